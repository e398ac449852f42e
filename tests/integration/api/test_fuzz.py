"""Schemathesis over the served OpenAPI document: no 5xx, and every answer matches what the document says."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.integration.api.conftest import AUTH

pytestmark = pytest.mark.integration

# Per operation; bounded so the whole document is covered in seconds, not minutes.
EXAMPLES = 40
# Checks that cannot apply, and why:
# - positive data acceptance, everywhere: which parameters a run takes depends on its kind, and
#   `until` must follow `since`; OpenAPI 3.0 cannot say either, so a schema-valid request can be
#   refused with a 400 that names the parameter (tests/integration/api/test_trigger.py covers them);
# - no server error, for readiness only: its 503 is the answer "not ready" (no worker runs here).
EXCUSED = {"GET /api/health": [not_a_server_error]}


def _exercise(operation, headers: dict, excluded: list) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def exercise(case) -> None:
        case.call_and_validate(headers=headers, excluded_checks=excluded)

    exercise()


@pytest.mark.parametrize("headers", [AUTH, {}], ids=["with-token", "without-token"])
def test_garbage_and_valid_looking_requests_get_documented_answers(api, headers):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", api)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8, "the document lists every route"
    for operation in operations:
        try:
            _exercise(operation, headers, [positive_data_acceptance, *EXCUSED.get(operation.label, [])])
        except (Exception, FailureGroup) as exc:  # every operation is exercised; failures are reported together
            failures.append(f"{operation.label}: {exc}"[:2000])
    assert not failures, "\n\n".join(failures)
