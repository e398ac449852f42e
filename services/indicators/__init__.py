"""Indicator worker: pure DataFrame transforms and their tasks."""
