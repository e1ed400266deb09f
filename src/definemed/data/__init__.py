"""Datasets the stages share: record schemas, JSONL/parquet IO and the bundled sample data."""
