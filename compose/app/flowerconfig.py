"""Flower's configuration file (tornado executes it at start): read-only by default, /metrics behind its auth."""

import os

import tornado.web
from flower.views import monitor

# Flower can send any task and control any worker, bypassing the API's token and validation;
# operators start, cancel and re-prioritise runs through the API instead. FLOWER_READ_ONLY=false
# gives those buttons back (development only: production refuses it in start-flower).
read_only = os.environ.get("FLOWER_READ_ONLY", "true").strip().lower() not in ("false", "0", "no")

# Flower serves /metrics to anyone; under basic auth it now asks for the same credentials.
monitor.Metrics.get = tornado.web.authenticated(monitor.Metrics.get)
