"""Markdown and JSON views of an ingest and of a store's contents."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from volguard.data.ingest import IngestSummary


def store_report_json(summaries: dict[str, IngestSummary], contents: pd.DataFrame) -> str:
    """The ingest counts per format and the store summary, as indented JSON."""
    payload: dict[str, Any] = {
        "ingest": {fmt: s.to_dict() for fmt, s in summaries.items()},
        "store": json.loads(contents.to_json(orient="records")),
    }
    return json.dumps(payload, indent=2) + "\n"


def store_report_markdown(summaries: dict[str, IngestSummary], contents: pd.DataFrame) -> str:
    """A short Markdown report: rows per format and what happened to them, then the store."""
    lines = [
        "# volguard demo: a simulated calm -> crash market",
        "",
        "## Ingest",
        "",
        "| format | files | rows read | clean | quarantined | reasons | flags (kept) |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for fmt, s in summaries.items():
        reasons = ", ".join(f"{k} {v:,}" for k, v in s.quarantine_by_reason.items()) or "none"
        flags = ", ".join(f"{k} {v:,}" for k, v in s.flags.items()) or "none"
        lines.append(
            f"| {fmt} | {s.files_read} | {s.rows_read:,} | {s.rows_clean:,} | "
            f"{s.rows_quarantined:,} | {reasons} | {flags} |"
        )
    lines += [
        "",
        "## Store",
        "",
        "| " + " | ".join(contents.columns) + " |",
        "| " + " | ".join("---" for _ in contents.columns) + " |",
    ]
    lines += [
        "| " + " | ".join(str(v) for v in row) + " |" for row in contents.itertuples(index=False)
    ]
    return "\n".join(lines) + "\n"
