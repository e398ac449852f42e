"""Who changed something, as run and schedule history record it: the API's token or the CLI."""

from __future__ import annotations

__all__ = ["API_ACTOR", "CLI_ACTOR"]

# The API has one changing credential, API_TOKEN; its name says which one was used. A name, not
# the secret (bandit B105 reviewed).
API_ACTOR = "api-token"  # nosec B105
CLI_ACTOR = "cli"
