"""docs/data.md documents every column, reason and flag the code defines."""

from __future__ import annotations

from pathlib import Path

from volguard.data.schema import FLAGS, QUOTE_COLUMNS, REASONS

DOC = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text(encoding="utf-8")


def test_every_column_is_documented_with_its_dtype_and_unit() -> None:
    for column in QUOTE_COLUMNS:
        assert f"| `{column.name}` | {column.dtype} | {column.unit} |" in DOC, column.name


def test_every_reason_and_flag_is_documented() -> None:
    for code in [*REASONS, *FLAGS]:
        assert f"| `{code}` |" in DOC, code
