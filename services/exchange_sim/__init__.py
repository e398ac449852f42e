"""Offline exchange simulator speaking a real exchange REST dialect."""
