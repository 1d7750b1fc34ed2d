"""The OpenAPI document describes the API, and fuzzing every operation from it finds no 5xx."""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import demo_shop


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory):
    app = demo_shop(tmp_path_factory.mktemp("fuzz"), admin_api_keys="fuzz-admin")
    yield app
    app.extensions["xsell"].store.close()


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)


def every_error_is_a_json_body(ctx, response, case) -> None:
    if response.status_code >= 400:
        body = response.json()
        if case.path.startswith("/personalizer"):  # Personalizer's error shape
            assert isinstance(body, dict) and {"code", "message"} <= set(body["error"]), body
        else:
            assert isinstance(body, dict) and {"error", "message", "details"} <= set(body), body


def test_fuzzed_requests_never_cause_a_server_error(api_schema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 60
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:
            case.call_and_validate(checks=[not_a_server_error, every_error_is_a_json_body])

        check()


def test_the_document_names_every_public_route(fuzz_app) -> None:
    document = fuzz_app.test_client().get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    routes = {rule.rule for rule in fuzz_app.url_map.iter_rules() if rule.endpoint != "static"}
    documented = {path.replace("{", "<").replace("}", ">") for path in document["paths"]}

    def plain(rule: str) -> str:  # <path:event_id> -> <event_id>; Personalizer's names are camelCase
        rule = re.sub(r"<[^:>]+:([^>]+)>", r"<\1>", rule)
        for snake, camel in (
            ("api_version", "apiVersion"),
            ("event_id", "eventId"),
            ("evaluation_id", "evaluationId"),
            ("importance_id", "featureImportanceId"),
        ):
            if rule.startswith("/personalizer"):
                rule = rule.replace(f"<{snake}>", f"<{camel}>")
        return rule

    missing = {r for r in routes if r not in {"/openapi.json", "/metrics"} and plain(r) not in documented}
    assert not missing
    offers = document["paths"]["/v1/offers"]["post"]
    assert offers["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("OffersRequest")


def test_numbers_too_big_for_sqlite_or_vw_are_a_4xx_not_a_5xx(fuzz_app) -> None:
    client = fuzz_app.test_client()
    body = '{"context": {"c": {"n": 1' + "0" * 400 + '}}, "actions": [{"id": "a"}]}'
    response = client.post("/v1/rank", data=body, content_type="application/json")
    assert response.status_code == 422
    assert response.get_json()["details"][0]["field"] == "context.c.n"
    assert client.get(f"/v1/catalog?offset={10**30}").status_code == 200


def test_fuzzed_personalizer_administration_with_the_key_never_causes_a_server_error(api_schema) -> None:
    operations = [
        result.ok()
        for result in api_schema.get_all_operations()
        if result.ok().path.startswith("/personalizer/{apiVersion}")
        and result.ok().definition.raw.get("security") == [{"subscriptionKey": []}]
    ]
    assert len(operations) >= 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:
            case.headers = {**(case.headers or {}), "Ocp-Apim-Subscription-Key": "fuzz-admin"}
            case.call_and_validate(checks=[not_a_server_error, every_error_is_a_json_body])

        check()
