"""Query parameters as pydantic models: one class per route parses request.args and describes them to OpenAPI."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from functools import cache, wraps
from typing import Annotated, Any, TypeVar

from flask import request
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError
from pydantic_core import ErrorDetails
from werkzeug.datastructures import MultiDict

from services.api.errors import ApiError, bad_parameter

__all__ = ["QueryModel", "NoParameters", "pattern", "parse_query", "with_query", "query_model_of",
           "query_parameters"]

Query = TypeVar("Query", bound="QueryModel")

# Control characters (NUL, newline...) have no place in any parameter; Postgres even refuses NUL.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# A bad value is quoted back this far: enough to recognise it, never a 5000-character echo.
_SHOWN = 40
# pattern → what it asks for in words, so a mismatch reads "expected BASE/QUOTE ...", not a regex.
_PATTERN_FORMS: dict[str, str] = {}
_RANGE_ERRORS = ("int_parsing", "int_type", "greater_than_equal", "less_than_equal")


class QueryModel(BaseModel):
    """The parameters one route accepts: every other name is refused, and a parsed query is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParameters(QueryModel):
    """A route that takes no parameters, so a stray one is refused rather than ignored."""


def pattern(regex: str, form: str) -> Any:
    """A string type that must match `regex`; `form` says in words what it expects."""
    # pydantic and JSON Schema both search rather than match: unanchored, "xBTC/USDx" would pass.
    if not (regex.startswith("^") and regex.endswith("$")):
        raise ValueError(f"pattern {regex!r} must be anchored with ^ and $")
    _PATTERN_FORMS[regex] = form
    return Annotated[str, StringConstraints(pattern=regex)]


def parse_query(model: type[Query], args: MultiDict[str, str]) -> Query:
    """The query string as `model`; a 400 ApiError naming the first parameter that is unknown, repeated or bad."""
    given = _single_values(model, args)
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise _bad_parameter(model, exc.errors()[0]) from None


def with_query(model: type[QueryModel]) -> Callable[[Callable], Callable]:
    """Decorate a view to receive its parsed query as `query=`; the model is kept on the view for OpenAPI."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def parsed(*args: Any, **kwargs: Any) -> Any:
            return view(*args, query=parse_query(model, request.args), **kwargs)

        parsed.query_model = model  # functools.wraps copies it onto outer decorators (require_token)
        return parsed

    return decorate


def query_model_of(view: Callable) -> type[QueryModel] | None:
    """The model a view was decorated with, if any."""
    return getattr(view, "query_model", None)


def query_parameters(model: type[QueryModel]) -> list[dict]:
    """OpenAPI 3.0 query parameter objects, from the model's JSON schema, in field order."""
    return [{"name": name, "in": "query", **copy.deepcopy(parameter)}
            for name, parameter in _field_parameters(model).items()]


def _single_values(model: type[QueryModel], args: MultiDict[str, str]) -> dict[str, str]:
    # Checked before the model: a typo'd name must be the error reported, not the required one it misses.
    values: dict[str, str] = {}
    for name, given in args.lists():
        if name not in model.model_fields:
            raise bad_parameter(name, _unknown(model, name))
        if len(given) > 1:
            raise bad_parameter(name, f"parameter {name!r} given {len(given)} times; give it once")
        if _CONTROL_RE.search(given[0]):
            raise bad_parameter(name, f"parameter {name!r} contains control characters")
        values[name] = given[0]
    return values


def _unknown(model: type[QueryModel], name: str) -> str:
    return f"unknown parameter {name!r}; this route accepts: {', '.join(model.model_fields) or 'none'}"


def _bad_parameter(model: type[QueryModel], error: ErrorDetails) -> ApiError:
    if not error["loc"]:
        return ApiError(400, error["msg"])
    name = str(error["loc"][0])
    return bad_parameter(name, _message(model, name, error))


def _message(model: type[QueryModel], name: str, error: ErrorDetails) -> str:
    """The pydantic error in the API's own words, from what the model's schema says about the field."""
    kind, parameter = error["type"], _field_parameters(model).get(name, {"schema": {}})
    schema = parameter["schema"]
    shown = repr(str(error["input"])[:_SHOWN])
    if kind == "missing":
        return _required(name, parameter)
    if kind == "extra_forbidden":
        return _unknown(model, name)
    if kind == "value_error":  # our validators (and core's parsers) word their own messages
        return str(error["ctx"]["error"])
    if kind == "literal_error" and "enum" in schema:
        return f"unknown {name} {shown}; valid: {', '.join(map(str, schema['enum']))}"
    if kind in _RANGE_ERRORS and {"minimum", "maximum"} <= schema.keys():
        return f"{name} must be an integer from {schema['minimum']} to {schema['maximum']}, got {shown}"
    if kind == "bool_parsing":
        return f"{name} must be true or false, got {shown}"
    if kind == "string_pattern_mismatch":
        regex = error["ctx"]["pattern"]
        return f"malformed {name} {shown}: expected {_PATTERN_FORMS.get(regex, f'a value matching {regex}')}"
    return f"parameter {name!r}: {error['msg']}"


def _required(name: str, parameter: dict) -> str:
    if "enum" in parameter["schema"]:
        return f"{name} is required; valid: {', '.join(map(str, parameter['schema']['enum']))}"
    if "example" in parameter:
        return f"{name} is required, e.g. {name}={parameter['example']}"
    description = parameter.get("description", "").rstrip(".")
    return f"{name} is required: {description[:1].lower()}{description[1:]}" if description else f"{name} is required"


@cache
def _field_parameters(model: type[QueryModel]) -> dict[str, dict]:
    """Each field as the body of an OpenAPI parameter: description and example beside a flat schema."""
    document = model.model_json_schema()
    if "$defs" in document:
        raise TypeError(f"{model.__name__}: query parameters must be flat values, not nested models or enums")
    required = set(document.get("required", ()))
    return {name: {"required": name in required, **_described(schema)}
            for name, schema in document.get("properties", {}).items()}


def _described(field: dict) -> dict:
    # Optional[X] arrives as anyOf [X, null] with default null: a query parameter is absent or a value, never null.
    branches = [branch for branch in field.get("anyOf", ()) if branch != {"type": "null"}]
    if len(branches) > 1:
        raise TypeError(f"a query parameter has one type, not {branches}")
    schema = dict(branches[0]) if branches else {}
    outer = {key: value for key, value in field.items() if key not in ("anyOf", "title", "description", "examples")}
    schema.update(outer)
    if schema.get("default", 0) is None:
        del schema["default"]
    examples = field.get("examples") or schema.get("examples")
    schema.pop("examples", None)
    described = {"description": field["description"]} if "description" in field else {}
    if examples:  # OpenAPI 3.0 takes one `example`, not JSON Schema's list
        described["example"] = examples[0]
    return {**described, "schema": schema}
