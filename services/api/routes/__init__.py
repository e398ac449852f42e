"""The API's routes, one module per concern: trigger, read, health (and the shared deps and params)."""

__all__: list[str] = []
