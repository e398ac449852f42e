"""One secret rule for production: every secret refused when empty, a placeholder, short or padded, by name."""

from __future__ import annotations

import pytest

from services.core.config import load_settings
from services.core.exceptions import ConfigurationError
from services.core.secrets import MIN_SECRET_LENGTH, url_password, weakness

STRONG = "3f9a1c07d2b84e6a9c5d"
WEAK = {"empty": "", "placeholder": "CHANGE_ME", "placeholder, other case": "changeme",
        "placeholder, spaced": "Change-Me", "placeholder, padded": "CHANGE_ME ", "one letter": "a",
        "short": "s3cr3t-but-15ch", "trailing space": STRONG + " ", "admin": "admin", "repeated": "a" * 40}


@pytest.mark.parametrize("value", list(WEAK.values()), ids=list(WEAK))
def test_weak_values_are_refused_with_a_reason(value):
    assert weakness(value) is not None


def test_a_long_random_value_passes_and_the_minimum_is_documented_as_16():
    assert MIN_SECRET_LENGTH == 16
    assert weakness(STRONG) is None


def _prod(monkeypatch, **env):
    base = {"ENVIRONMENT": "prod", "API_TOKEN": STRONG,
            "DATABASE_URL": f"postgresql://candleflow:{STRONG}@postgres:5432/candleflow",
            "REDIS_URL": f"redis://:{STRONG}@redis:6379/0"}
    for name, value in {**base, **env}.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def test_production_with_strong_secrets_starts(monkeypatch):
    _prod(monkeypatch).require_real_secrets()


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("API_TOKEN", "CHANGE_ME ", "API_TOKEN"),
    ("API_TOKEN", "changeme", "API_TOKEN"),
    ("DATABASE_URL", "postgresql://candleflow:candleflow@postgres:5432/candleflow", "POSTGRES_PASSWORD"),
    ("REDIS_URL", "redis://redis:6379/0", "REDIS_PASSWORD"),
    ("REDIS_URL", "redis://:short@redis:6379/0", "REDIS_PASSWORD"),
])
def test_each_weak_secret_stops_production_naming_it(monkeypatch, variable, value, named):
    settings = _prod(monkeypatch, **{variable: value})
    with pytest.raises(ConfigurationError, match=named):
        settings.require_real_secrets()


def test_development_keeps_its_easy_defaults(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "dev")
    monkeypatch.setenv("API_TOKEN", "CHANGE_ME")
    load_settings().require_real_secrets()


def test_passwords_are_read_from_connection_urls():
    assert url_password("redis://:pw@redis:6379/0") == "pw"
    assert url_password("postgresql+psycopg2://u:p%40ss@db/x") == "p%40ss"
    assert url_password("redis://redis:6379/0") is None
