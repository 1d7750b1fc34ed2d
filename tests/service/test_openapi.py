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


@pytest.mark.slow
def test_fuzzed_requests_never_cause_a_server_error(api_schema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 60
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:
            case.call_and_validate(checks=[not_a_server_error, every_error_is_a_json_body])

        check()


def answered_operations(app) -> set[tuple[str, str]]:
    """("post", "/v1/events/{event_id}/reward") for every route the app answers, as OpenAPI spells it."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.endswith("static") or rule.endpoint.startswith("console."):  # files and HTML pages
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        found |= {(method.lower(), path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def test_the_document_names_every_operation_the_app_answers_and_no_other(fuzz_app) -> None:
    document = fuzz_app.test_client().get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    answered = answered_operations(fuzz_app)
    assert len(answered) >= 70
    assert {("get", "/metrics"), ("get", "/openapi.json"), ("patch", "/v1/config")} <= answered
    assert {("post", "/personalizer/rank"), ("post", "/personalizer/{api_version}/rank")} <= answered
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert documented == answered
    offers = document["paths"]["/v1/offers"]["post"]
    assert offers["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/OffersRequest")


def test_describing_a_view_leaves_it_unwrapped(fuzz_app) -> None:
    """The rank path pays nothing for the document: the routed function is the view itself."""
    from service import rank

    assert fuzz_app.view_functions["rank.rank"] is rank.rank
    assert not hasattr(rank.rank, "__wrapped__")


def test_each_operation_names_its_body_answer_errors_and_key(fuzz_app) -> None:
    document = fuzz_app.test_client().get("/openapi.json").get_json()
    paths, schemas = document["paths"], document["components"]["schemas"]
    assert set(document["components"]["securitySchemes"]) == {"admin", "storefront", "subscriptionKey"}
    assert document["components"]["securitySchemes"]["subscriptionKey"]["name"] == "Ocp-Apim-Subscription-Key"

    rank = paths["/v1/rank"]["post"]
    assert rank["security"] == [{}, {"storefront": []}]
    assert rank["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/RankResponse")
    assert {"400", "401", "403", "409", "413", "415", "422", "500", "503"} <= set(rank["responses"])
    assert rank["responses"]["413"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert "limit_exceeded" in rank["responses"]["413"]["description"]
    assert {"limit", "maximum"} <= set(schemas["ErrorDetail"]["properties"])

    assert paths["/v1/config"]["patch"]["security"] == [{"admin": []}]
    assert paths["/v1/events/{event_id}/feedback"]["post"]["responses"].keys() >= {"404", "409"}
    catalog = {p["name"] for p in paths["/v1/catalog"]["get"]["parameters"] if p["in"] == "query"}
    assert catalog == {"category", "limit", "offset"}
    assert paths["/healthz"]["get"].get("security") is None

    policy = paths["/personalizer/{api_version}/configurations/policy"]["put"]
    assert policy["security"] == [{"subscriptionKey": []}]
    assert "422" not in policy["responses"]  # Personalizer answers invalid fields with 400
    bad = policy["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
    assert bad.endswith("/PersonalizerErrorBody")
    version = next(p for p in policy["parameters"] if p["name"] == "api_version")
    assert re.fullmatch(version["schema"]["pattern"], "v1.1-preview.3")
    assert paths["/personalizer/rank"]["post"]["security"] == [{}, {"subscriptionKey": []}]
    assert "201" in paths["/personalizer/rank"]["post"]["responses"]
    model = paths["/personalizer/model"]["put"]["requestBody"]["content"]
    assert set(model) == {"application/octet-stream"}


def test_a_real_limit_exceeded_answer_has_the_documented_shape(tmp_path) -> None:
    app = demo_shop(tmp_path, max_action_features=2)
    try:
        client = app.test_client()
        schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
        actions = [{"id": "a", "features": {"o": {"x": 1, "y": 2, "z": 3}}}]
        response = client.post("/v1/rank", json={"context": {"c": {"d": "m"}}, "actions": actions})
        assert response.status_code == 413
        body = response.get_json()
        assert body["error"] == "limit_exceeded" and body["details"]
        assert set(body) <= set(schemas["ErrorBody"]["properties"])
        for detail in body["details"]:
            assert set(detail) <= set(schemas["ErrorDetail"]["properties"])
    finally:
        app.extensions["xsell"].store.close()


def test_numbers_too_big_for_sqlite_or_vw_are_a_4xx_not_a_5xx(fuzz_app) -> None:
    client = fuzz_app.test_client()
    body = '{"context": {"c": {"n": 1' + "0" * 400 + '}}, "actions": [{"id": "a"}]}'
    response = client.post("/v1/rank", data=body, content_type="application/json")
    assert response.status_code == 422
    assert response.get_json()["details"][0]["field"] == "context.c.n"
    assert client.get(f"/v1/catalog?offset={10**30}").status_code == 200


@pytest.mark.slow
def test_fuzzed_personalizer_administration_with_the_key_never_causes_a_server_error(api_schema) -> None:
    operations = [
        result.ok()
        for result in api_schema.get_all_operations()
        if result.ok().path.startswith("/personalizer/{api_version}")
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
