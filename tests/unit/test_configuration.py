"""Settings, compose, .env.example and the docs agree: every variable passed through and documented, the stop grace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from services.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.prod.yml")

# Settings that docker-compose.yml's x-app anchor deliberately does not pass through from the
# shell or .env, each with the reason.
NOT_PASSED_THROUGH = {
    # Built by compose from POSTGRES_* for its own postgres service: a .env written for
    # `make run-local` holds a localhost URL, which must not leak into the containers.
    "DATABASE_URL": "built by compose",
    # Points at compose's own redis service, for the same reason.
    "REDIS_URL": "set by compose",
    # Compose interpolates it as the *host* port; the container always listens on 9808, which
    # the port mapping and the healthcheck name. Passed through, it would move the listener.
    "EXPORTER_PORT": "the published host port",
    # Inside a container the exporter must listen on every interface, or the published port
    # reaches nothing.
    "EXPORTER_BIND": "run-local only",
}
# Variables the app containers receive that are not Settings fields → the file that reads them
# (None: a third-party program reads it, named in docs/configuration.md).
READ_ELSEWHERE = {
    "WORKER_METRICS_PORT": "services/core/celery_app.py",
    "GUNICORN_WORKERS": "compose/app/gunicorn.conf.py",
    "FLOWER_USER": "compose/app/start-flower",
    "FLOWER_PASSWORD": "compose/app/start-flower",
    "FLOWER_READ_ONLY": "compose/app/flowerconfig.py",
    "FLOWER_PURGE_OFFLINE_WORKERS": None,  # Flower reads every FLOWER_<option> itself
    "SIM_DIALECT": "compose/app/start-exchange-sim",
}


class _ComposeLoader(yaml.SafeLoader):
    """YAML with compose's merge tags (!reset, !override) read as their plain values."""


def _untagged(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> object:
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    return loader.construct_scalar(node)


_ComposeLoader.add_multi_constructor("!", _untagged)


def compose_file(name: str) -> dict:
    return yaml.load((ROOT / name).read_text(), Loader=_ComposeLoader)  # a SafeLoader: no arbitrary objects


def app_services() -> set[str]:
    """The services built from the application image (docker-compose.yml's x-app)."""
    services = compose_file("docker-compose.yml")["services"]
    return {name for name, service in services.items() if "APP_IMAGE" in str(service.get("image", ""))}


def app_environments(name: str) -> dict[str, dict]:
    """x-app anchor or app service → the environment compose file `name` gives it."""
    spec = compose_file(name)
    blocks = {key: value for key, value in spec.items() if key.startswith("x-app")}
    blocks |= {service: value for service, value in spec["services"].items() if service in app_services()}
    return {where: block.get("environment") or {} for where, block in blocks.items()}


def _from_outside(environment: dict) -> set[str]:
    """Bare names, or `NAME: ${NAME…}` with a compose default: the value comes from the shell or .env."""
    return {name for name, value in environment.items() if value is None or f"${{{name}" in str(value)}


def passed_through() -> set[str]:
    """The variables docker-compose.yml's x-app takes from the shell or .env."""
    return _from_outside(compose_file("docker-compose.yml")["x-app"]["environment"])


def compose_variables() -> set[str]:
    """Variables an operator sets for compose: interpolated by it, or passed through to an app container."""
    names = set()
    for name in COMPOSE_FILES:
        names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / name).read_text()))
        for environment in app_environments(name).values():
            names |= _from_outside(environment)
    return names


def settings_variables() -> set[str]:
    """Each Settings field by its environment variable (no prefix, case-insensitive)."""
    assert not Settings.model_config.get("env_prefix"), "a prefix would change every name below"
    return {field.upper() for field in Settings.model_fields}


def documented() -> str:
    return (ROOT / "docs" / "configuration.md").read_text()


def in_env_example() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_every_variable_is_documented():
    missing = {name for name in compose_variables() | settings_variables() if f"`{name}`" not in documented()}

    assert not missing, f"not in docs/configuration.md: {sorted(missing)}"


def test_every_variable_is_in_the_example_env_file():
    missing = (compose_variables() | settings_variables()) - in_env_example()

    assert not missing, f"not in .env.example: {sorted(missing)}"


def test_every_setting_is_passed_through_to_the_app_containers_or_excluded_for_a_reason():
    missing = settings_variables() - passed_through() - set(NOT_PASSED_THROUGH)

    assert not missing, f"not passed through by docker-compose.yml's x-app: {sorted(missing)}"


def test_an_excluded_setting_is_really_not_passed_through():
    assert set(NOT_PASSED_THROUGH) <= settings_variables(), "an exclusion names no setting"
    assert not set(NOT_PASSED_THROUGH) & passed_through(), "excluded, yet docker-compose.yml passes it through"


def test_every_variable_an_app_container_receives_is_a_setting_or_read_elsewhere():
    unknown = {(name, where, variable)
               for name in COMPOSE_FILES for where, environment in app_environments(name).items()
               for variable in environment
               if variable not in settings_variables() and variable not in READ_ELSEWHERE}

    assert not unknown, f"(file, service, variable) read by nothing we know of: {sorted(unknown)}"


def test_every_variable_read_elsewhere_is_read_where_the_list_says():
    misplaced = {name for name, reader in READ_ELSEWHERE.items()
                 if reader is not None and name not in (ROOT / reader).read_text()}

    assert not misplaced, f"no longer read where READ_ELSEWHERE says: {sorted(misplaced)}"
    assert not set(READ_ELSEWHERE) & settings_variables(), "a setting is listed as read elsewhere"


def _minutes(duration: str) -> float:
    """A compose duration such as `11m`, `90s` or `1m30s`, in minutes."""
    units = {"h": 60.0, "m": 1.0, "s": 1 / 60}
    return sum(float(amount) * units[unit] for amount, unit in re.findall(r"([0-9.]+)([hms])", duration))


def test_the_runbook_states_the_workers_stop_grace_that_compose_sets():
    grace = compose_file("docker-compose.yml")["x-worker"]["stop_grace_period"]
    assert f"`stop_grace_period: {grace}`" in (ROOT / "docs" / "operations.md").read_text()


def test_the_workers_stop_grace_outlasts_a_task_at_its_default_time_limit():
    grace = compose_file("docker-compose.yml")["x-worker"]["stop_grace_period"]
    assert _minutes(grace) * 60 > Settings.model_fields["task_time_limit_s"].default


# The beat's own RedBeat configuration draws this warning; the key names are what is tested here.
@pytest.mark.filterwarnings("ignore:RedBeat will stop falling back:DeprecationWarning")
def test_the_runbook_names_the_redis_keys_candleflow_writes():
    from redbeat.schedulers import RedBeatConfig

    from services.core import keys
    from services.scheduler.beat import app as beat_app

    runbook = (ROOT / "docs" / "operations.md").read_text()
    redbeat = RedBeatConfig(beat_app)
    run_locks = keys.run_lock("all", {}).split("run-lock:")[0] + "run-lock:*"
    named = {redbeat.lock_key, redbeat.schedule_key, run_locks}
    missing = {key for key in named if key not in runbook}
    assert not missing, f"docs/operations.md names none of {sorted(missing)}"
