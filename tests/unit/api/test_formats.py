"""CSV bodies: RFC 4180 quoting, cells spelled as JSON spells them, and file names safe in a header."""

from __future__ import annotations

import csv
import io

import pytest

from services.api.formats import FORMATS, attachment_name, csv_text


def test_the_header_comes_first_and_cells_follow_the_columns_order():
    text = csv_text([{"b": 2, "a": 1.5}], ("a", "b"))
    assert text == "a,b\r\n1.5,2\r\n"


def test_null_is_an_empty_cell_and_booleans_are_spelled_as_in_json():
    assert csv_text([{"x": None, "y": True, "z": False}], ("x", "y", "z")) == "x,y,z\r\n,true,false\r\n"


def test_cells_with_commas_quotes_or_line_breaks_are_quoted_and_read_back():
    rows = [{"text": 'a,b "c"\r\nd', "inputs": {"rsi": 25.0, "why": "x,y"}}]
    text = csv_text(rows, ("text", "inputs"))
    assert '"a,b ""c""\r\nd"' in text and '"{""rsi"":25.0,""why"":""x,y""}"' in text
    assert list(csv.reader(io.StringIO(text, newline=""))) == [["text", "inputs"],
                                                               ['a,b "c"\r\nd', '{"rsi":25.0,"why":"x,y"}']]


def test_a_float_is_written_with_every_bit():
    value = 0.1 + 0.2
    assert float(csv_text([{"v": value}], ("v",)).split("\r\n")[1]) == value


@pytest.mark.parametrize(("parts", "name"), [
    (("BTC/USD", "1h", "candles"), "BTC-USD-1h-candles.csv"),
    ((None, None, "signals"), "signals.csv"),
    (("BTC/USD", None, "signals"), "BTC-USD-signals.csv"),
    (('x"; filename="evil.sh', "1h", "candles"), "x-filename-evil.sh-1h-candles.csv"),
    (("../../etc", "1h\r\nSet-Cookie: a", "candles"), "etc-1h-Set-Cookie-a-candles.csv"),
])
def test_attachment_names_keep_only_characters_safe_in_a_header(parts, name):
    assert attachment_name(parts) == name


def test_json_is_the_default_format():
    assert FORMATS[0] == "json" and "csv" in FORMATS
