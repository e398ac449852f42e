"""The OpenAPI document describes exactly the routes the app serves."""

from __future__ import annotations

from services.api.openapi import OPENAPI

_HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def served_operations(api) -> set[tuple[str, str]]:
    return {(rule.rule, method.lower()) for rule in api.url_map.iter_rules()
            for method in rule.methods if method not in ("HEAD", "OPTIONS")}


def documented_operations(document: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item if method in _HTTP_METHODS}


def test_every_served_route_is_documented_and_every_documented_route_is_served(api):
    served = served_operations(api)
    assert {path for path, _ in served if path.startswith("/api")}  # the comparison is not vacuous
    assert served == documented_operations(OPENAPI)


def test_the_document_is_served_as_json(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.get_json()["openapi"].startswith("3.0")
    assert response.get_json()["paths"].keys() == OPENAPI["paths"].keys()


def test_every_reference_points_at_a_defined_schema():
    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    schemas = OPENAPI["components"]["schemas"]
    for ref in refs(OPENAPI):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref


def test_the_mutating_route_requires_the_bearer_scheme_and_reads_do_not():
    assert OPENAPI["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "The API_TOKEN setting"}
    for path, item in OPENAPI["paths"].items():
        for method, operation in item.items():
            assert ("security" in operation) == (method == "post"), (path, method)
            assert operation["responses"], (path, method)


def test_every_query_parameter_a_route_accepts_is_documented(client):
    # A parameter missing from the document would be refused as unknown: ask each route with each documented one.
    samples = {"symbol": "BTC/USD", "timeframe": "1h", "since": "2024-01-01", "until": "2024-01-02", "limit": "1",
               "strategy": "x", "exchange": "kraken", "state": "SUCCESS", "task": "ohlc", "active": "true",
               "task_id": "x"}
    for path, item in OPENAPI["paths"].items():
        if "get" not in item:
            continue
        for parameter in item["get"].get("parameters", []):
            response = client.get(f"{path}?{parameter['name']}={samples[parameter['name']]}")
            assert response.get_json().get("parameter") != parameter["name"] or response.status_code != 400, \
                (path, parameter["name"], response.get_json())
