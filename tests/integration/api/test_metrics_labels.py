"""The API's request metrics keep a closed label set: made-up methods and paths add no time series."""

from __future__ import annotations

import random
import string

import pytest
from prometheus_client import generate_latest

from services.api.metrics import METRICS_KEY

pytestmark = pytest.mark.integration


def series(api) -> set[str]:
    """Every sample line's name and labels in the API's registry."""
    text = generate_latest(api.extensions[METRICS_KEY].registry).decode()
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}


def _word(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(length))


def test_a_hundred_random_methods_and_paths_add_no_series_beyond_the_closed_sets(api, client):
    # Warm up: the two label combinations the random requests below can legitimately produce.
    client.open("/no/such/path", method="GET")
    client.open("/no/such/path", method="BREW")
    before = series(api)
    rng = random.Random(7)
    for _ in range(100):
        method = _word(rng, rng.randint(3, 12))
        path = "/" + "/".join(_word(rng, rng.randint(1, 8)).lower() for _ in range(rng.randint(1, 4)))
        client.open(path, method=method)
    after = series(api)
    assert after == before, sorted(after - before)
    assert any('method="other"' in line and 'route="<unmatched>"' in line for line in after)
