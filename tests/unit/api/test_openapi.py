"""The OpenAPI document is generated from the app: every served route, exactly the parameters its model accepts."""

from __future__ import annotations

import re

import pytest
from werkzeug.datastructures import MultiDict

from services.api.errors import ApiError
from services.api.openapi import _RULE_ARGUMENT, _path_parameters, openapi_document
from services.api.query import parse_query, query_model_of

_HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
# JSON Schema words that OpenAPI 3.0 parameter schemas do not have (3.0 says nullable, example).
_NOT_OPENAPI_30 = {"anyOf", "oneOf", "const", "examples", "title", "$defs", "ge", "le"}


def served_operations(api) -> set[tuple[str, str]]:
    return {(_RULE_ARGUMENT.sub(r"{\1}", rule.rule), method.lower()) for rule in api.url_map.iter_rules()
            for method in rule.methods if method not in ("HEAD", "OPTIONS")}


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in _HTTP_METHODS:
                yield path, method, operation


def endpoint_views(api) -> dict[tuple[str, str], object]:
    """(path, method) → the view function Flask dispatches it to."""
    return {(_RULE_ARGUMENT.sub(r"{\1}", rule.rule), method.lower()): api.view_functions[rule.endpoint]
            for rule in api.url_map.iter_rules() for method in rule.methods if method not in ("HEAD", "OPTIONS")}


@pytest.fixture()
def document(api) -> dict:
    return openapi_document(api)


def test_every_served_route_is_documented_and_every_documented_route_is_served(api, document):
    served = served_operations(api)
    assert {path for path, _ in served if path.startswith("/api")}  # the comparison is not vacuous
    assert served == {(path, method) for path, method, _ in operations(document)}


def test_the_documented_parameters_are_exactly_those_the_routes_model_accepts(api, document):
    views = endpoint_views(api)
    with_models = 0
    for path, method, operation in operations(document):
        model = query_model_of(views[(path, method)])
        documented = {p["name"]: p["required"] for p in operation.get("parameters", []) if p["in"] == "query"}
        if model is None:  # /metrics reads no parameters
            assert documented == {}, path
            continue
        with_models += 1
        assert documented == {name: field.is_required() for name, field in model.model_fields.items()}, (path, method)
    assert with_models == len(views) - 1


def test_the_served_document_is_the_generated_one(client, api):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.get_json() == openapi_document(api)
    assert response.get_json()["openapi"].startswith("3.0")


def test_parameter_schemas_are_openapi_3_0(document):
    def keys(node):
        if isinstance(node, dict):
            yield from node
            for value in node.values():
                yield from keys(value)
        elif isinstance(node, list):
            for value in node:
                yield from keys(value)

    for path, method, operation in operations(document):
        for parameter in operation.get("parameters", []):
            assert parameter["in"] in ("query", "path") and isinstance(parameter["required"], bool)
            assert not _NOT_OPENAPI_30 & set(keys(parameter["schema"])), (path, method, parameter)
            assert parameter["schema"].get("type") in ("string", "integer", "boolean"), (path, parameter)


def _sample(parameter: dict) -> str:
    schema = parameter["schema"]
    if "example" in parameter:
        return str(parameter["example"])
    if "enum" in schema:
        return schema["enum"][0]
    return {"integer": str(schema.get("default", 1)), "boolean": "true"}.get(schema["type"], "x")


def _accepts(model, parameters: list[dict], name: str, value: str) -> bool:
    given = {p["name"]: _sample(p) for p in parameters if p["required"]} | {name: value}
    try:
        parse_query(model, MultiDict(given))
    except ApiError as error:
        assert error.parameter == name, error.message
        return False
    return True


def test_what_a_schema_documents_is_what_its_model_accepts_and_refuses(api, document):
    views, checked = endpoint_views(api), set()
    for path, method, operation in operations(document):
        model = query_model_of(views[(path, method)])
        parameters = [p for p in operation.get("parameters", []) if p["in"] == "query"]
        for parameter in parameters:
            name, schema = parameter["name"], parameter["schema"]
            assert _accepts(model, parameters, name, _sample(parameter)), (path, name)
            if "example" in parameter and "pattern" in schema:
                assert re.search(schema["pattern"], str(parameter["example"])), (path, name)
                assert not _accepts(model, parameters, name, "not valid!"), (path, name)
                checked.add("pattern")
            if "minimum" in schema:
                assert _accepts(model, parameters, name, str(schema["minimum"]))
                assert _accepts(model, parameters, name, str(schema["maximum"]))
                assert not _accepts(model, parameters, name, str(schema["maximum"] + 1)), (path, name)
                assert not _accepts(model, parameters, name, str(schema["minimum"] - 1)), (path, name)
                checked.add("bounds")
            if "enum" in schema and method == "get":  # POST's task is checked by core's run validator
                assert all(_accepts(model, parameters, name, value) for value in schema["enum"]), (path, name)
                assert not _accepts(model, parameters, name, "NOT-A-" + name), (path, name)
                checked.add("enum")
    assert checked == {"pattern", "bounds", "enum"}


def test_every_reference_points_at_a_defined_schema(document):
    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    schemas = document["components"]["schemas"]
    assert list(refs(document))
    for ref in refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref


def test_only_the_token_guarded_routes_are_documented_with_the_bearer_scheme(document):
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "The API_TOKEN setting"}
    guarded = {(path, method) for path, method, operation in operations(document) if "security" in operation}
    assert guarded == {("/api/manual-update/", "post"), ("/api/schedules", "post"), ("/api/schedules/{name}", "patch"),
                       ("/api/schedules/{name}", "delete"), ("/api/schedules/{name}/run", "post"),
                       ("/api/schedules/{name}/reset", "post")}
    for path, method, operation in operations(document):
        assert ("401" in operation["responses"]) == ((path, method) in guarded), (path, method)
        assert ("400" in operation["responses"]) == bool(path != "/metrics"), (path, method)


def test_every_operation_has_a_unique_id_and_a_summary(document):
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids)) == len(list(operations(document)))
    assert all(operation["summary"] for _, _, operation in operations(document))


def test_a_route_missing_from_the_operations_table_fails_the_build(api):
    @api.get("/api/undocumented")
    def undocumented():
        return {}

    with pytest.raises(LookupError, match="undocumented"):
        openapi_document(api)


def test_path_arguments_become_required_path_parameters_in_path_order():
    rule = "/api/instruments/<exchange>/<path:symbol>/history"
    assert _RULE_ARGUMENT.sub(r"{\1}", rule) == "/api/instruments/{exchange}/{symbol}/history"
    parameters = _path_parameters(_RULE_ARGUMENT.findall(rule))
    assert [(p["name"], p["in"], p["required"]) for p in parameters] == [("exchange", "path", True),
                                                                         ("symbol", "path", True)]
