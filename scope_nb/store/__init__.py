"""Parquet segments, loading and merging, export."""
