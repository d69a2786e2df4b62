"""Quote schema, venue loaders, hygiene and quarantine, and the Parquet + DuckDB store."""

from volguard.data.hygiene import HygieneRules, classify, split
from volguard.data.ingest import IngestSummary, ingest
from volguard.data.loaders import LOADERS
from volguard.data.schema import FLAGS, QUOTE_COLUMNS, REASONS
from volguard.data.store import QuoteStore, open_store

__all__ = [
    "FLAGS",
    "LOADERS",
    "QUOTE_COLUMNS",
    "REASONS",
    "HygieneRules",
    "IngestSummary",
    "QuoteStore",
    "classify",
    "ingest",
    "open_store",
    "split",
]
