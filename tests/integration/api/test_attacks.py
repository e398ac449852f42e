"""Hand-made attacks on the API: each gets the documented JSON error and changes nothing."""

from __future__ import annotations

import pytest

from tests.integration.api.conftest import AUTH, TOKEN
from tests.utils.broker import queued

pytestmark = pytest.mark.integration

# (name, method, path, extra headers, body, expected status)
ATTACKS = [
    ("sql in a symbol", "GET", "/api/candles?symbol=BTC/USD'%20OR%201=1--", {}, None, 400),
    ("sql in a run id", "GET", "/api/manual-update/?task_id=1'%3BDROP%20TABLE%20candles--", {}, None, 400),
    ("path traversal", "GET", "/api/../../etc/passwd", {}, None, 404),
    ("encoded traversal", "GET", "/api/%2e%2e/%2e%2e/etc/passwd", {}, None, 404),
    ("crlf in a parameter", "GET", "/api/candles?symbol=BTC/USD%0D%0ASet-Cookie:%20x=1", {}, None, 400),
    ("nul byte", "GET", "/api/candles?symbol=BTC%00/USD", {}, None, 400),
    ("huge limit", "GET", "/api/candles?symbol=BTC/USD&limit=" + "9" * 400, {}, None, 400),
    ("negative limit", "GET", "/api/signals?limit=-1", {}, None, 400),
    ("repeated parameter", "GET", "/api/candles?symbol=BTC/USD&symbol=ETH/USD", {}, None, 400),
    ("unknown parameter", "GET", "/api/runs?debug=1", {}, None, 400),
    ("token in the query string", "POST", f"/api/manual-update/?task=all&token={TOKEN}", {}, None, 401),
    ("token in a cookie", "POST", "/api/manual-update/?task=all", {"Cookie": f"token={TOKEN}"}, None, 401),
    ("basic auth with the token", "POST", "/api/manual-update/?task=all",
     {"Authorization": f"Basic {TOKEN}"}, None, 401),
    ("token with a suffix", "POST", "/api/manual-update/?task=all", {"Authorization": f"Bearer {TOKEN}0"}, None, 401),
    ("token prefix", "POST", "/api/manual-update/?task=all", {"Authorization": f"Bearer {TOKEN[:-1]}"}, None, 401),
    ("method override header", "GET", "/api/manual-update/?task=all", {"X-HTTP-Method-Override": "POST"}, None, 400),
    ("trace", "TRACE", "/api/runs", {}, None, 405),
    ("delete on a read route", "DELETE", "/api/candles?symbol=BTC/USD", AUTH, None, 405),
    ("a body where none is read", "POST", "/api/manual-update/?task=all", AUTH, b"x" * (65 * 1024), 413),
    ("json body smuggling the task", "POST", "/api/manual-update/", {**AUTH, "Content-Type": "application/json"},
     b'{"task": "all"}', 400),
    ("unknown run kind", "POST", "/api/manual-update/?task=__import__('os')", AUTH, None, 400),
    ("timeframe far too long", "POST", "/api/manual-update/?task=ohlc&timeframe=999999999999d", AUTH, None, 400),
    ("leading-zero timeframe", "POST", "/api/manual-update/?task=ohlc&timeframe=01h", AUTH, None, 400),
    ("unicode digits as a date", "POST", "/api/manual-update/?task=backfill&symbol=BTC/USD&since=%C2%B2", AUTH,
     None, 400),
    ("forged forwarded-for", "POST", "/api/manual-update/?task=all", {"X-Forwarded-For": "127.0.0.1"}, None, 401),
    ("a forged host", "POST", "/api/manual-update/?task=all", {"Host": "evil.example"}, None, 401),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status"),
                         [attack[1:] for attack in ATTACKS], ids=[attack[0] for attack in ATTACKS])
def test_each_attack_gets_the_documented_json_error_and_queues_nothing(client, broker, method, path, headers, body,
                                                                      status):
    response = client.open(path, method=method, headers=headers, data=body)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    if status >= 400:
        assert response.get_json()["status"] == "error"
        assert len(response.get_data()) < 2000, "nothing sent is echoed back at length"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in response.headers
    assert queued(broker, "pipeline") == 0
