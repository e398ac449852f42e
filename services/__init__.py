"""candleflow: market-data pipeline services."""
