"""`python -m services.exchange_sim`: run the exchange simulator (see server.main)."""

from .server import main

__all__ = ["main"]

raise SystemExit(main())
