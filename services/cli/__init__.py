"""The `candleflow` console script: one verb per operator task, on top of every service package."""
