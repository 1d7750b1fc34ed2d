"""The VW option allowlist: what it refuses (with real VW, nothing is written) and what it accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.deciding.vw import VWPolicy, VWRegressor
from policies.deciding.vw_args import (
    ALLOWED,
    check_header_options,
    check_vw_args,
    parse_vw_args,
    policy_arg_list,
)

BASE = "--cb_explore_adf --epsilon 0.1"

# Each writes or reads a file, or opens a socket, in VW. {path} is a file under tmp_path.
TOUCHING = [
    "-r {path}",
    "--raw_predictions {path}",
    "-f{path}",
    "-f {path}",
    "--final_regressor={path}",
    "-p{path}",
    "-d{path}",
    "-i{path}",
    "-c",
    "--cache_file {path}",
    "--readable_model {path}",
    "--invert_hash {path}",
    "--audit_regressor {path}",
    "--output_feature_regularizer_text {path}",
    "--output_feature_regularizer_binary {path}",
    "--predict_only_model",
    "--save_per_pass",
    "--save_resume",
    "--passes 2",
    "--feature_mask {path}",
    "--dictionary a:{path}",
    "--port_file {path}",
    "--json",
    "{path}",  # a bare word is a data file to VW
]
# These daemonize or listen in real VW: checked by the parser only, never handed to VW here.
NETWORK = ["--daemon", "--port 26542", "--pid_file {path}", "--foreground", "--active", "--sendto localhost"]


@pytest.mark.parametrize("extra", TOUCHING)
def test_options_that_touch_files_are_refused_and_vw_writes_nothing(tmp_path: Path, extra: str) -> None:
    target = tmp_path / "target"
    with pytest.raises(ValueError, match="not allowed|unexpected VW argument"):
        VWPolicy(f"{BASE} {extra.format(path=target)}").save(tmp_path / "m.vw")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("extra", NETWORK)
def test_options_that_open_sockets_or_daemonize_are_refused(tmp_path: Path, extra: str) -> None:
    with pytest.raises(ValueError, match="is not allowed"):
        check_vw_args(f"{BASE} {extra.format(path=tmp_path / 'pid')}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("--epsilon 0.1", "must include --cb_explore_adf"),
        ("--cb_adf", "--cb_adf is not allowed"),  # VW writes it into headers; never an operator's
        (f"{BASE} -b 30", "-b '30': must be from 1 to 24"),
        (f"{BASE} -b30", "-b '30': must be from 1 to 24"),
        (f"{BASE} --bit_precision=25", "must be from 1 to 24"),
        (f"{BASE} --cb_type sm", "must be one of ips, dr, mtr, dm"),
        ("--cb_explore_adf --epsilon 1.5", "must be from 0 to 1"),
        ("--cb_explore_adf --epsilon nan", "is not a number"),
        ("--cb_explore_adf --epsilon inf", "is not a number"),
        ("--cb_explore_adf --epsilon 1e999", "must be from 0 to 1"),
        ("--cb_explore_adf --epsilon", "needs a value"),
        ("--cb_explore_adf --epsilon 0.1 --epsilon 0.2", "more than once"),
        ("--cb_explore_adf --squarecb=1", "takes no value"),
        ("--cb_explore_adf -q a/", "namespace letters"),
        ("--cb_explore_adf -qabcd", "namespace letters"),
        ("--cb_explore_adf --ignore :", "namespace letters"),
        ("--cb_explore_adf --cover 0", "must be from 1 to 64"),
        ("--cb_explore_adf --bag 2.5", "whole number"),
        ("--cb_explore_adf --loss_function logistic", "not allowed"),  # the reward model's only
        ("--cb_explore_adf -q 'ab'", "may not contain"),
        ('--cb_explore_adf -q "ab"', "may not contain"),
        ("--cb_explore_adf -q a\\b", "may not contain"),
        ("--cb_explore_adf\n-f x", "may not contain"),
        ("--cb_explore_adf --epsilon\t0.1", "may not contain"),
        ("--cb_explore_adf --", "unexpected VW argument"),
        ("--cb_explore_adf -", "unexpected VW argument"),
        ("--cb_explore_adf -x", "-x is not allowed"),
        ("--cb_explore_adf " + "-q :: " * 17, "more than 16 times"),
        ("--cb_explore_adf " + "x" * 2000, "limited to 2000 characters"),
    ],
)
def test_bad_policy_arguments_are_refused_naming_the_problem(args: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_vw_args(args)


@pytest.mark.parametrize(
    ("args", "tokens"),
    [
        ("--cb_explore_adf -qab", ["--cb_explore_adf", "--quadratic", "ab"]),
        ("--cb_explore_adf -q ::", ["--cb_explore_adf", "--quadratic", "::"]),
        (
            "--cb_explore_adf -b18 -l0.5",
            ["--cb_explore_adf", "--bit_precision", "18", "--learning_rate", "0.5"],
        ),
        ("--cb_explore_adf --epsilon=0.05", ["--cb_explore_adf", "--epsilon", "0.05"]),
        ("--cb_explore_adf --softmax --lambda -2", ["--cb_explore_adf", "--softmax", "--lambda", "-2"]),
        ("  --cb_explore_adf   --quiet ", ["--cb_explore_adf", "--quiet"]),
    ],
)
def test_arguments_are_read_by_vw_rules_and_rebuilt_in_long_form(args: str, tokens: list[str]) -> None:
    assert policy_arg_list(args) == tokens


POLICIES = [
    "--cb_explore_adf",
    "--cb_explore_adf --epsilon 0.2 -q :: --power_t 0 -l 0.001 --cb_type mtr",
    "--cb_explore_adf --squarecb --gamma_scale 10 --gamma_exponent 0.5 -q ::",
    "--cb_explore_adf --squarecb --elim --mellowness 0.01",
    "--cb_explore_adf --cover 3 --psi 0.1 --nounif --cb_type dr",
    "--cb_explore_adf --bag 3 --greedify --random_seed 7",
    "--cb_explore_adf --first 2 --cb_type ips",
    "--cb_explore_adf --softmax --lambda 10 --cb_type dm",
    "--cb_explore_adf --regcb --mellowness 0.1",
    "--cb_explore_adf --regcbopt",
    "--cb_explore_adf --synthcover --synthcoverpsi 0.1 --synthcoversize 10",
    "--cb_explore_adf --epsilon 0.1 --cubic abc --interactions ab -q ::",
    "--cb_explore_adf --epsilon 0.1 --ignore x --keep so --noconstant -b 20",
    "--cb_explore_adf --epsilon 0.1 --l1 1e-7 --l2 1e-6 --quiet",
    # Personalizer's multi-slot form: xsell's own per-slot learning, so VW gets --cb_explore_adf (#18)
    "--ccb_explore_adf --epsilon 0.2 --power_t 0 -l 0.001 --cb_type mtr -q ::",
]


@pytest.mark.parametrize("args", POLICIES)
def test_every_allowed_policy_runs_in_vw_and_its_saved_header_passes(tmp_path: Path, args: str) -> None:
    path = tmp_path / "m.vw"
    VWPolicy(args).save(path)
    loaded = VWPolicy.load(path)  # checks the header VW wrote against the allowlist
    assert loaded.vw_args == args


def test_every_allowlisted_option_is_exercised_by_a_test() -> None:
    used = set()
    for args in POLICIES:
        used |= parse_vw_args(args).names()
    used |= parse_vw_args(VWRegressor.DEFAULT_ARGS, "regressor").names()
    used |= parse_vw_args("--loss_function logistic --link logistic", "regressor").names()
    used |= {"cb_adf", "csoaa_ldf", "csoaa_rank", "first_only"}  # header-only, or cover's variant
    assert set(ALLOWED) - used == set()


def test_the_multi_slot_form_reaches_vw_as_cb_explore_adf_and_one_reduction_only() -> None:
    assert policy_arg_list("--ccb_explore_adf -q ::") == ["--cb_explore_adf", "--quadratic", "::"]
    with pytest.raises(ValueError, match="only one of --cb_explore_adf or --ccb_explore_adf"):
        check_vw_args("--ccb_explore_adf --cb_explore_adf")
    with pytest.raises(ValueError, match="--ccb_explore_adf is not allowed"):
        # VW never writes it: a header holding it is forged
        check_header_options(" --ccb_explore_adf --cb_adf")


def test_the_reward_model_takes_its_own_allowlist() -> None:
    VWRegressor("-q :: --loss_function logistic --link logistic").close()
    for bad in ("--cb_explore_adf", "-f /tmp/x", "--loss_function hinge", "-q :: -p/tmp/x"):
        with pytest.raises(ValueError):
            VWRegressor(bad)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (" --cb_adf --cb_explore_adf --readable_model /tmp/x", "--readable_model is not allowed"),
        (" --cb_explore_adf --quadratic :: -f /tmp/x", "namespace letters"),  # a value to VW's header rule
        (" --cb_explore_adf --id x --daemon", "--id is not allowed"),
        (" --cb_explore_adf --epsilon", "has no value"),
        (" --cb_explore_adf --csoaa_rank yes", "takes no value"),
        (" /tmp/x --cb_explore_adf", "start with a value"),
        (" --cb_explore_adf --bit_precision 31", "must be from 1 to 24"),
        (" --cb_explore_adf --epsilon=0.1", "not allowed"),  # VW reads that as an option named so
        (" --cb_adf --csoaa_ldf multiline", "must include --cb_explore_adf"),
        (" --cb_explore_adf\x01", "characters VW never writes"),
    ],
)
def test_header_options_are_read_by_vws_header_rule_and_refused(header: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_header_options(header)
