"""The unit tier starts no servers: no test or fixture under tests/unit asks for Redis or Postgres (`make unit`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1]
# tests/conftest.py's fixtures that start (or need) the suite's own Redis and Postgres servers.
SERVER_FIXTURES = {"redis_url", "database_url", "engine", "fresh_servers"}
# tests/utils/servers.py's context managers that start them directly.
SERVER_STARTERS = {"redis_server", "postgres_server"}


def _asks_for_fixtures(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A test or a fixture: pytest fills its arguments (a helper's `engine` parameter is its own)."""
    return function.name.startswith("test") or any("fixture" in ast.unparse(d) for d in function.decorator_list)


def server_uses(source: str) -> set[str]:
    """Server fixtures a module's functions take or name in usefixtures, and server starters it imports."""
    used = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _asks_for_fixtures(node):
            used |= {arg.arg for arg in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)}
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "usefixtures":
            used |= {arg.value for arg in node.args if isinstance(arg, ast.Constant)}
        elif isinstance(node, ast.ImportFrom):
            used |= {alias.name for alias in node.names}
    return used & (SERVER_FIXTURES | SERVER_STARTERS)


def test_the_reader_sees_a_fixture_argument_usefixtures_and_an_imported_starter():
    source = ("import pytest\nfrom tests.utils.servers import free_port, redis_server\n"
              "@pytest.mark.usefixtures('fresh_servers')\ndef test_x(engine, tmp_path): pass\n"
              "@pytest.fixture()\ndef client(redis_url): pass\n"
              "def registry_for(database_url): pass\n")
    assert server_uses(source) == {"redis_server", "fresh_servers", "engine", "redis_url"}


@pytest.mark.parametrize("path", sorted(UNIT.rglob("*.py")), ids=lambda p: str(p.relative_to(UNIT)))
def test_a_unit_module_asks_for_no_server(path):
    assert server_uses(path.read_text()) == set(), "move it to tests/integration, or give it a fake"
