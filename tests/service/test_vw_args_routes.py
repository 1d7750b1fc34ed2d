"""Every route that hands VW arguments applies the allowlist: a JSON 4xx, nothing written or changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from pydantic import ValidationError

from policies.deciding.vw import VWRegressor
from policies.evaluation.candidates import parse_candidate
from scripts.cli import cli
from service.app import create_app
from service.settings import Settings
from tests.conftest import make_settings

V1 = "/personalizer/v1.0"
ADMIN = {"Ocp-Apim-Subscription-Key": "admin-key"}
# The audit's attacks, glued and spaced as VW reads them; {path} is a file under tmp_path.
ATTACKS = [
    "--cb_explore_adf -f{path}",
    "--cb_explore_adf -p{path}",
    "--cb_explore_adf -d{path}",
    "--cb_explore_adf -i{path}",
    "--cb_explore_adf -r {path}",
    "--cb_explore_adf --raw_predictions={path}",
    "--cb_explore_adf --pid_file {path}",
    "--cb_explore_adf --daemon --port 26542",
    "--cb_explore_adf --audit_regressor {path}",
    "--cb_explore_adf --output_feature_regularizer_text {path}",
    "--cb_explore_adf --readable_model {path}",
    "--cb_explore_adf --epsilon 0.1 {path}",
]


@pytest.fixture
def pclient(tmp_path: Path) -> FlaskClient:
    app = create_app(make_settings(tmp_path, admin_api_keys="admin-key"))
    yield app.test_client()
    app.extensions["xsell"].store.close()


@pytest.mark.parametrize("attack", ATTACKS)
def test_put_policy_refuses_options_outside_the_allowlist(
    pclient: FlaskClient, tmp_path: Path, attack: str
) -> None:
    target = tmp_path / "target"
    body = {"name": "evil", "arguments": attack.format(path=target)}
    response = pclient.put(f"{V1}/configurations/policy", headers=ADMIN, json=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["target"] == "arguments" and (
        "not allowed" in error["message"] or "data file" in error["message"]
    )
    assert not target.exists()
    registry = pclient.application.extensions["xsell"].registry
    assert [m.version for m in registry.index.versions()] == ["v1"]


@pytest.mark.parametrize("attack", ATTACKS)
def test_evaluation_policies_refuse_options_outside_the_allowlist(
    pclient: FlaskClient, tmp_path: Path, attack: str
) -> None:
    target = tmp_path / "target"
    body = {
        "name": "evil",
        "startTime": "2026-01-01T00:00:00Z",
        "endTime": "2026-01-02T00:00:00Z",
        "policies": [
            {"name": "ok", "arguments": "--cb_explore_adf"},
            {"name": "x", "arguments": attack.format(path=target)},
        ],
    }
    response = pclient.post(f"{V1}/evaluations", headers=ADMIN, json=body)
    assert response.status_code == 400
    assert "policies[1].arguments" in response.get_json()["error"]["message"]
    assert pclient.get(f"{V1}/evaluations", headers=ADMIN).get_json() == []
    assert not target.exists()


@pytest.mark.parametrize("field", ["vw_args", "shadow_vw_args"])
@pytest.mark.parametrize("attack", ATTACKS[:6])
def test_environment_arguments_are_refused_at_start(tmp_path: Path, field: str, attack: str) -> None:
    with pytest.raises(ValidationError, match="not allowed|data file"):
        Settings(data_dir=tmp_path, **{field: attack.format(path=tmp_path / "target")})


def test_the_configured_arguments_are_refused_by_the_cli_as_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XSELL_VW_ARGS", f"--cb_explore_adf -f{tmp_path / 'target'}")
    result = CliRunner().invoke(cli, ["learn"])
    assert result.exit_code == 2 and "-f is not allowed" in result.output
    assert not (tmp_path / "target").exists()


@pytest.mark.parametrize("attack", ATTACKS)
def test_evaluate_vw_candidates_refuse_options_outside_the_allowlist(tmp_path: Path, attack: str) -> None:
    with pytest.raises(ValueError, match="not allowed|data file"):
        parse_candidate("vw:" + attack.format(path=tmp_path / "target"))
    assert not (tmp_path / "target").exists()


def test_reward_model_arguments_pass_their_own_allowlist(tmp_path: Path) -> None:
    for allowed in (VWRegressor.DEFAULT_ARGS, VWRegressor.LOGISTIC_ARGS):
        VWRegressor(allowed).close()
    with pytest.raises(ValueError, match="-f is not allowed"):
        VWRegressor(f"-q :: -f{tmp_path / 'target'}")
    assert not (tmp_path / "target").exists()
