"""The read routes' parameters: columns= as its documented pattern says, format= from the one list of formats."""

from __future__ import annotations

import re

import pytest
from werkzeug.datastructures import MultiDict

from services.api.errors import ApiError
from services.api.formats import FORMATS
from services.api.query import parse_query, query_parameters
from services.api.routes.params import CandlesQuery, IndicatorsQuery, LevelsQuery, PatternsQuery, SignalsQuery
from services.core.models import INDICATOR_COLUMNS
from services.core.store.analysis_reads import INDICATOR_FIELDS


def parameter(model, name: str) -> dict:
    return next(p for p in query_parameters(model) if p["name"] == name)


def columns_of(value: str):
    return parse_query(IndicatorsQuery, MultiDict({"symbol": "BTC/USD", "columns": value})).columns


def test_the_selectable_columns_are_the_stored_indicator_columns_and_the_regime():
    assert (*INDICATOR_COLUMNS, "regime") == INDICATOR_FIELDS


@pytest.mark.parametrize("value", ["rsi", "adx,rsi", ",".join(INDICATOR_FIELDS), "regime,macd_hist"])
def test_columns_the_pattern_documents_are_accepted_in_their_order(value):
    assert re.fullmatch(parameter(IndicatorsQuery, "columns")["schema"]["pattern"], value)
    assert columns_of(value) == tuple(value.split(","))


@pytest.mark.parametrize("value", ["", "rsi,", ",rsi", "rsi adx", "Rsi", "volume", "rsi;adx"])
def test_columns_the_pattern_refuses_are_refused_naming_columns(value):
    assert not re.fullmatch(parameter(IndicatorsQuery, "columns")["schema"]["pattern"], value)
    with pytest.raises(ApiError) as refused:
        columns_of(value)
    assert refused.value.parameter == "columns"


def test_a_repeated_column_is_refused_though_the_pattern_cannot_say_so():
    with pytest.raises(ApiError, match="'rsi' more than once"):
        columns_of("rsi,adx,rsi")


def test_no_columns_is_none_for_the_route_to_read_all():
    assert parse_query(IndicatorsQuery, MultiDict({"symbol": "BTC/USD"})).columns is None


@pytest.mark.parametrize("model", [CandlesQuery, IndicatorsQuery, PatternsQuery, LevelsQuery, SignalsQuery])
def test_every_data_route_documents_format_from_the_one_list(model):
    schema = parameter(model, "format")["schema"]
    assert schema["enum"] == list(FORMATS) and schema["default"] == "json"


def test_levels_document_their_range_as_the_last_touch():
    assert "last touched" in parameter(LevelsQuery, "since")["description"]
    assert "last touched" in parameter(LevelsQuery, "until")["description"]
