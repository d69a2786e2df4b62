"""Quote schema, venue loaders, hygiene and quarantine, and the Parquet + DuckDB store."""
