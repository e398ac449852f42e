"""Each table has one owning module: the only one whose SQL writes it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.core.models import Base

SERVICES = Path(__file__).resolve().parents[2] / "services"

OWNERS = {
    "instruments": "core/store/instruments.py",
    "stage_watermarks": "core/store/watermarks.py",
    "pipeline_runs": "core/pipeline/records.py",
    "pipeline_stage_results": "core/pipeline/records.py",
    "candles": "ingest/store.py",
    "fetch_ledger": "ingest/store.py",
    "rejected_candles": "ingest/store.py",
    "indicator_values": "indicators/analysis.py",
    "indicator_state": "indicators/state_store.py",
    "patterns": "indicators/analysis.py",
    "levels": "indicators/analysis.py",
    "signals": "signals/generation.py",
    "schedule_changes": "core/store/schedule_changes.py",
    "markets": "core/store/markets.py",
    "import_uploads": "core/store/uploads.py",
}
_WRITE = re.compile(r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE)\s+([a-z_]+)\b"
                    r"|copy_upsert\(\s*\w+,\s*\"([a-z_]+)\"")
_NOT_TABLES = {"set"}  # ON CONFLICT … DO UPDATE SET


def tables_written(source: str) -> set[str]:
    """Tables a module's SQL text writes: INSERT, UPDATE, DELETE, TRUNCATE, or a copy_upsert into them."""
    return {a or b for a, b in _WRITE.findall(source)} - _NOT_TABLES


def test_every_table_of_the_models_has_an_owner():
    assert set(Base.metadata.tables) == set(OWNERS)


def test_the_reader_finds_each_kind_of_write():
    source = ('text("INSERT INTO candles (a) VALUES (1) ON CONFLICT DO UPDATE SET a = 2")\n'
              'text("DELETE FROM fetch_ledger")\ncopy_upsert(conn, "signals", cols)\n')
    assert tables_written(source) == {"candles", "fetch_ledger", "signals"}


@pytest.mark.parametrize("path", sorted(p for p in SERVICES.rglob("*.py") if "migrations" not in p.parts),
                         ids=lambda p: str(p.relative_to(SERVICES)))
def test_a_module_writes_only_the_tables_it_owns(path):
    module = str(path.relative_to(SERVICES))
    foreign = {table for table in tables_written(path.read_text()) if OWNERS.get(table) != module}
    assert not foreign, f"{module} writes {sorted(foreign)}, owned by {[OWNERS.get(t) for t in sorted(foreign)]}"
