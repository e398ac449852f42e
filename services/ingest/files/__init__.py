"""The file source: CSV (optionally gzipped) and Parquet candle files read, validated and stored like fetched ones."""
