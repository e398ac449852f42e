"""Service boundaries at run time: a worker process loads only core and its own package; the app no worker code."""

import subprocess
import sys

import pytest

PACKAGES = ("ingest", "indicators", "signals")


def _loaded_packages(module: str) -> set[str]:
    code = (f"import sys, {module}; "
            "print(' '.join(sorted({m.split('.')[1] for m in sys.modules if m.startswith('services.')})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("package", PACKAGES)
def test_a_worker_imports_only_core_and_its_own_package(package):
    loaded = _loaded_packages(f"services.{package}.tasks")
    assert loaded - {"core", package} == set()
    assert package in loaded


def test_the_celery_app_registers_only_orchestration_tasks_by_itself():
    loaded = _loaded_packages("services.core.celery_app")
    assert loaded == {"core"}
