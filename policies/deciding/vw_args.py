"""The allowlist of Vowpal Wabbit options xsell passes to VW, and the parser that applies it.

Every argument string that reaches VW (an operator's policy, an evaluation's
candidate, the environment's defaults, the reward model, and the options stored in
a model file's header) is parsed here by VW's own rules and rebuilt from the table
below. Anything the table does not name is refused with a ValueError naming the
option, so no VW process can be told to read or write a file, open a socket or
daemonize: those options are simply not in the table.

To accept a new learning option, add one row to ``ALLOWED``.

Examples
--------
>>> policy_arg_list("--cb_explore_adf -qab --epsilon=0.1 -b18")
['--cb_explore_adf', '--quadratic', 'ab', '--epsilon', '0.1', '--bit_precision', '18']
>>> check_vw_args("--cb_explore_adf -f/tmp/model")
Traceback (most recent call last):
...
ValueError: VW option -f is not allowed (xsell accepts learning options only: see docs/models.md)
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Collection
from dataclasses import dataclass

__all__ = [
    "ALLOWED",
    "MAX_BITS",
    "REQUIRED_REDUCTIONS",
    "VWArgs",
    "check_header_options",
    "check_regressor_args",
    "check_vw_args",
    "parse_vw_args",
    "policy_arg_list",
    "regressor_arg_list",
]

MAX_BITS = 24  # 2**24 weights per model bounds a worker's memory
MAX_ARGS_CHARS = 2000
MAX_VALUES = 16  # of one repeatable option (-q ab -q cd ...)
# Operator strings may hold printable ASCII and spaces only: no quotes or
# backslashes, so every VW tokenizer splits them exactly as str.split(" ") does.
_SAFE = frozenset(string.ascii_letters + string.digits + string.punctuation + " ") - set("\"'`\\")
_NUMBER = re.compile(r"[+-]?(?:\d{1,20}(?:\.\d{0,20})?|\.\d{1,20})(?:[eE][+-]?\d{1,3})?")
_INTEGER = re.compile(r"\d{1,20}")

# Where an option may appear: an operator's policy arguments, the reward model's
# arguments, or a model header (which also holds what VW adds on its own).
POLICY, REGRESSOR, HEADER = "policy", "regressor", "header"
_EVERYWHERE = frozenset({POLICY, REGRESSOR, HEADER})
_EXPLORATION = frozenset({POLICY, HEADER})


def _number(low: float, high: float, *, integer: bool = False) -> Callable[[str], str]:
    """Return a check that a value is a number (an integer if asked) in [low, high]."""

    def check(text: str) -> str:
        if not (_INTEGER if integer else _NUMBER).fullmatch(text):
            raise ValueError("is not " + ("a whole number" if integer else "a number"))
        if not low <= (int(text) if integer else float(text)) <= high:
            raise ValueError(f"must be from {low:g} to {high:g}")
        return text

    return check


def _choice(*allowed: str) -> Callable[[str], str]:
    """Return a check that a value is one of `allowed`."""

    def check(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return text

    return check


def _namespaces(low: int, high: int, *, wildcard: bool) -> Callable[[str], str]:
    """Return a check that a value is `low`..`high` namespace letters (``:`` = any, if allowed)."""
    pattern = re.compile(rf"[A-Za-z0-9{':' if wildcard else ''}]{{{low},{high}}}")

    def check(text: str) -> str:
        if not pattern.fullmatch(text):
            wild = " or ':' for every namespace" if wildcard else ""
            raise ValueError(f"must be {low} to {high} namespace letters{wild}")
        return text

    return check


@dataclass(frozen=True, slots=True)
class Option:
    """One allowed VW option: how to check its value (None for a switch) and where it may appear."""

    value: Callable[[str], str] | None
    uses: frozenset[str]
    repeatable: bool = False
    vw_name: str | None = None  # the option VW gets in its place (None: this one)


# The allowlist: VW's long option name -> Option. Nothing else reaches VW.
ALLOWED: dict[str, Option] = {
    # the contextual-bandit reduction
    "cb_explore_adf": Option(None, _EXPLORATION),
    # Personalizer's multi-slot policy form. xsell learns every decision, multi-slot
    # included, one conditional cb_explore_adf example per slot (policies/deciding/vw.py),
    # which is the reduction VW's ccb_explore_adf applies; so VW gets --cb_explore_adf.
    "ccb_explore_adf": Option(None, frozenset({POLICY}), vw_name="cb_explore_adf"),
    "cb_type": Option(_choice("ips", "dr", "mtr", "dm"), _EXPLORATION),
    # exploration algorithms and their parameters
    "epsilon": Option(_number(0, 1), _EXPLORATION),
    "first": Option(_number(1, 1_000_000, integer=True), _EXPLORATION),
    "squarecb": Option(None, _EXPLORATION),
    "gamma_scale": Option(_number(0, 1e6), _EXPLORATION),
    "gamma_exponent": Option(_number(0, 10), _EXPLORATION),
    "elim": Option(None, _EXPLORATION),
    "mellowness": Option(_number(0, 1e6), _EXPLORATION),
    "cover": Option(_number(1, 64, integer=True), _EXPLORATION),
    "psi": Option(_number(0, 1e3), _EXPLORATION),
    "nounif": Option(None, _EXPLORATION),
    "first_only": Option(None, _EXPLORATION),
    "bag": Option(_number(1, 64, integer=True), _EXPLORATION),
    "greedify": Option(None, _EXPLORATION),
    "softmax": Option(None, _EXPLORATION),
    "lambda": Option(_number(-1e3, 1e3), _EXPLORATION),
    "regcb": Option(None, _EXPLORATION),
    "regcbopt": Option(None, _EXPLORATION),
    "synthcover": Option(None, _EXPLORATION),
    "synthcoverpsi": Option(_number(0, 1e3), _EXPLORATION),
    "synthcoversize": Option(_number(1, 1000, integer=True), _EXPLORATION),
    # features and learning, for policies and the reward model alike
    "quadratic": Option(_namespaces(2, 2, wildcard=True), _EVERYWHERE, repeatable=True),
    "cubic": Option(_namespaces(3, 3, wildcard=True), _EVERYWHERE, repeatable=True),
    "interactions": Option(_namespaces(2, 3, wildcard=True), _EVERYWHERE, repeatable=True),
    "ignore": Option(_namespaces(1, 62, wildcard=False), _EVERYWHERE, repeatable=True),
    "keep": Option(_namespaces(1, 62, wildcard=False), _EVERYWHERE, repeatable=True),
    "noconstant": Option(None, _EVERYWHERE),
    "learning_rate": Option(_number(0, 100), _EVERYWHERE),
    "power_t": Option(_number(0, 1), _EVERYWHERE),
    "l1": Option(_number(0, 1), _EVERYWHERE),
    "l2": Option(_number(0, 1), _EVERYWHERE),
    "bit_precision": Option(_number(1, MAX_BITS, integer=True), _EVERYWHERE),
    # a header stores the generator's state here, any 64-bit value
    "random_seed": Option(_number(0, 2**64 - 1, integer=True), _EVERYWHERE),
    "quiet": Option(None, frozenset({POLICY, REGRESSOR})),
    # the reward model's loss
    "loss_function": Option(_choice("squared", "logistic", "quantile"), frozenset({REGRESSOR})),
    "link": Option(_choice("identity", "logistic"), frozenset({REGRESSOR})),
    # written into every cb_explore_adf model header by VW itself; never an operator's
    "cb_adf": Option(None, frozenset({HEADER})),
    "csoaa_ldf": Option(_choice("multiline"), frozenset({HEADER})),
    "csoaa_rank": Option(None, frozenset({HEADER})),
}
SHORT_NAMES = {"q": "quadratic", "l": "learning_rate", "b": "bit_precision"}
# A policy (and a model file) must use one of these reductions.
REQUIRED_REDUCTIONS = ("cb_explore_adf", "ccb_explore_adf")
_REFUSED = "is not allowed (xsell accepts learning options only: see docs/models.md)"


@dataclass(frozen=True, slots=True)
class VWArgs:
    """Parsed, allowlisted VW options in the order given: (long name, value or None)."""

    options: tuple[tuple[str, str | None], ...]

    def names(self) -> set[str]:
        """Return the long names of the options given."""
        return {name for name, _ in self.options}

    def arg_list(self, *, leave_out: Collection[str] = ()) -> list[str]:
        """Return the tokens to hand VW (long names only), without the options in `leave_out`."""
        tokens: list[str] = []
        for name, value in self.options:
            if name not in leave_out:
                flag = f"--{ALLOWED[name].vw_name or name}"
                tokens += [flag] if value is None else [flag, value]
        return tokens


def parse_vw_args(text: str, use: str = POLICY) -> VWArgs:
    """Parse an operator's argument string by VW's command-line rules; raise ValueError if refused.

    ``--name value``, ``--name=value``, ``-x value`` and ``-xvalue`` (a short option glued
    to its value, as ``-qab`` or ``-b18``) are read as VW reads them; a bare word would
    be a data file to VW and is refused, as is every option not allowed for `use`.
    """
    if len(text) > MAX_ARGS_CHARS:
        raise ValueError(f"VW arguments are limited to {MAX_ARGS_CHARS} characters")
    unsafe = sorted(set(text) - _SAFE)
    if unsafe:
        raise ValueError(f"VW arguments may not contain {''.join(unsafe)!r}: use options and plain values")
    tokens = text.split()
    options: list[tuple[str, str | None]] = []
    position = 0
    while position < len(tokens):
        token = tokens[position]
        position += 1
        if token.startswith("--") and len(token) > 2:
            name, has_value, glued = token[2:].partition("=")
            shown = f"--{name}"
            value = glued if has_value else None
        elif token.startswith("-") and len(token) > 1 and token[1] != "-":
            shown = token[:2]
            name = SHORT_NAMES.get(token[1], "")
            value = token[2:] or None
        else:
            raise ValueError(f"unexpected VW argument {token[:40]!r}: VW would read it as a data file")
        spec = _allowed(name, shown, use)
        if spec.value is None:
            if value is not None:
                raise ValueError(f"VW option {shown} takes no value")
            options.append((name, None))
            continue
        if value is None:
            if position == len(tokens):
                raise ValueError(f"VW option {shown} needs a value")
            value = tokens[position]
            position += 1
        options.append((name, _value(spec, shown, value)))
    _check_repeats(options)
    return VWArgs(tuple(options))


def check_header_options(text: str) -> VWArgs:
    """Check the options a model file's header would make VW apply; raise ValueError if refused.

    VW splits the header's option string at spaces; a token starting with ``--``
    names an option and every other token is a value of the option before it
    (VW's ``parse_model_command_line_legacy``), so ``-f`` there is a value, and a
    value no check accepts is refused.
    """
    if set(text) - _SAFE:
        raise ValueError("the model header's options hold characters VW never writes")
    grouped: dict[str, list[str]] = {}
    current = None
    for token in text.split():
        if token.startswith("--") and len(token) > 2:
            current = token[2:]
            grouped.setdefault(current, [])
        elif current is None:
            raise ValueError(f"the model header's options start with a value {token[:40]!r}")
        else:
            grouped[current].append(token)
    options: list[tuple[str, str | None]] = []
    for name, values in grouped.items():
        shown = f"--{name}"
        spec = _allowed(name, shown, HEADER)
        if spec.value is None and values:
            raise ValueError(f"VW option {shown} takes no value, the model header gives {values[0][:40]!r}")
        if spec.value is not None and not values:
            raise ValueError(f"VW option {shown} has no value in the model header")
        options += [(name, _value(spec, shown, v)) for v in values] if values else [(name, None)]
    _check_repeats(options)
    parsed = VWArgs(tuple(options))
    _require_reduction(parsed, "the model header")
    return parsed


def check_vw_args(vw_args: str) -> str:
    """Return `vw_args` if it is an allowed policy argument string; raise ValueError naming the problem."""
    _require_reduction(parse_vw_args(vw_args, POLICY), "VW arguments")
    return vw_args


def policy_arg_list(vw_args: str, *, leave_out: Collection[str] = ()) -> list[str]:
    """Return the tokens VW gets for a policy's arguments, rebuilt from the allowlist."""
    parsed = parse_vw_args(vw_args, POLICY)
    _require_reduction(parsed, "VW arguments")
    return parsed.arg_list(leave_out=leave_out)


def check_regressor_args(vw_args: str) -> str:
    """Return `vw_args` if the reward model may use it; raise ValueError otherwise."""
    parse_vw_args(vw_args, REGRESSOR)
    return vw_args


def regressor_arg_list(vw_args: str) -> list[str]:
    """Return the tokens VW gets for the reward model's arguments (VWRegressor adds --quiet)."""
    return parse_vw_args(vw_args, REGRESSOR).arg_list(leave_out={"quiet"})


def _allowed(name: str, shown: str, use: str) -> Option:
    spec = ALLOWED.get(name)
    if spec is None or use not in spec.uses:
        raise ValueError(f"VW option {shown} {_REFUSED}")
    return spec


def _value(spec: Option, shown: str, value: str) -> str:
    assert spec.value is not None
    try:
        return spec.value(value)
    except ValueError as error:
        raise ValueError(f"VW option {shown} {value[:40]!r}: {error}") from None


def _check_repeats(options: list[tuple[str, str | None]]) -> None:
    counts: dict[str, int] = {}
    for name, _ in options:
        counts[name] = counts.get(name, 0) + 1
        limit = MAX_VALUES if ALLOWED[name].repeatable else 1
        if counts[name] > limit:
            times = "once" if limit == 1 else f"{limit} times"
            raise ValueError(f"VW option --{name} is given more than {times}")


def _require_reduction(parsed: VWArgs, where: str) -> None:
    given = parsed.names() & set(REQUIRED_REDUCTIONS)
    if not given:
        raise ValueError(f"{where} must include --{' or --'.join(REQUIRED_REDUCTIONS)}")
    if len(given) > 1:
        raise ValueError(f"{where} must include only one of --{' or --'.join(REQUIRED_REDUCTIONS)}")
