"""Layers that hold: which service package may import which, read from every import statement."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"

# Package → the service packages it may import besides itself. `cli` is the top layer and may
# import anything; core's own sub-layers come after (foundation ← store ← pipeline).
ALLOWED = {
    "core": set(),
    "ingest": {"core"},
    "indicators": {"core"},
    "signals": {"core"},
    "scheduler": {"core"},
    "api": {"core"},
    "exporter": {"core"},
    "exchange_sim": set(),
    "cli": {"core", "ingest", "indicators", "signals", "scheduler", "api", "exporter", "exchange_sim"},
}
# Inside core: the foundation (top-level modules) imports neither store nor pipeline; the store
# does not import the pipeline. Migrations are frozen copies and stand outside the rule.
CORE_LAYERS = {"foundation": set(), "store": {"foundation"}, "pipeline": {"foundation", "store"}}


def imports_in(source: str, package: str) -> set[str]:
    """Every module `source` (a module of `package`) imports, function-level and relative imports included."""
    tree = ast.parse(source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def imported_modules(path: Path) -> set[str]:
    package = ".".join(path.relative_to(SERVICES.parent).with_suffix("").parts[:-1])
    return imports_in(path.read_text(), package)


def service_package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "services" else None


def core_layer(module: str) -> str | None:
    """foundation | store | pipeline for a services.core module, else None."""
    parts = module.split(".")
    if parts[:2] != ["services", "core"] or len(parts) < 3:
        return None
    return parts[2] if parts[2] in ("store", "pipeline") else "foundation"


def _files():
    return sorted(p for p in SERVICES.rglob("*.py") if "migrations" not in p.parts)


def test_the_rules_cover_every_service_package():
    packages = {p.name for p in SERVICES.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(ALLOWED)


def test_the_import_reader_sees_imports_inside_functions_and_relative_ones():
    source = "def sync():\n    from services.ingest import fetching\n    from ..store import bulk\n"
    assert {"services.ingest.fetching", "services.core.store.bulk"} <= imports_in(source, "services.core.pipeline")


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(SERVICES)))
def test_a_module_imports_only_the_packages_its_layer_allows(path):
    owner = path.relative_to(SERVICES).parts[0]
    if owner.endswith(".py"):  # services/__init__.py
        return
    imported = {service_package(m) for m in imported_modules(path)} - {None, owner}
    assert imported <= ALLOWED[owner], f"{path.relative_to(SERVICES)} imports {sorted(imported - ALLOWED[owner])}"
    if owner == "core":
        layer = core_layer(".".join(("services", *path.relative_to(SERVICES).with_suffix("").parts)))
        used = {core_layer(m) for m in imported_modules(path)} - {None, layer}
        assert used <= CORE_LAYERS[layer], f"core/{layer} module {path.name} imports core/{sorted(used)}"
