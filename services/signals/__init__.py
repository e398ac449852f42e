"""Signal worker: pure strategy rules and their tasks."""
