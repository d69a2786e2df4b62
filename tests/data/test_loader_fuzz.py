"""Property tests: junk in random cells never raises and never loses a row, for every loader."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.data._files import (
    DERIBIT_FIXTURES,
    OPTIONSDX_HEADER,
    OPTIONSDX_ROWS,
    SMILES_HEADER,
    SMILES_ROWS,
    TARDIS_HEADER,
    TARDIS_ROWS,
)
from tests.data.test_mapped_csv import COIN_HEADER, COIN_MAPPING, COIN_ROWS
from volguard.data.loaders import LOADERS
from volguard.data.schema import QUARANTINE_COLUMNS

# CSV cell junk: anything but line breaks (the loaders read one record per line, quotes are
# plain text); commas make ragged lines.
JUNK = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
    max_size=12,
)
CELLS = st.one_of(
    JUNK,
    st.integers().map(str),
    st.floats().map(repr),
    st.sampled_from(["", "NaN", "inf", "-0", "1e400", "9999-12-31", "call", "put", "null"]),
)
EDITS = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000), CELLS), max_size=8)
# junk numbers (1e308 x F, inf x 0) make numpy warn inside the coin -> USD conversion
pytestmark = pytest.mark.filterwarnings(
    "ignore:(overflow|invalid value) encountered:RuntimeWarning"
)

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CSV_FORMATS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "tardis-smiles": (SMILES_HEADER, SMILES_ROWS, ","),
    "optionsdx": (OPTIONSDX_HEADER, OPTIONSDX_ROWS, ", "),
    "tardis": (TARDIS_HEADER, TARDIS_ROWS, ","),
    "csv": (COIN_HEADER, COIN_ROWS, ","),
}


def _check(out: pd.DataFrame, rows: list[int]) -> None:
    assert list(out.columns) == [c.name for c in QUARANTINE_COLUMNS]
    assert sorted(out["source_row"].tolist()) == rows


def _fuzz_csv(fmt: str, edits: list[tuple[int, int, str]]) -> None:
    header, rows, sep = CSV_FORMATS[fmt]
    table = [row.split(sep) for row in rows]
    for r, c, junk in edits:
        table[r % len(table)][c % len(table[0])] = junk
    lines = [sep.join(cells) for cells in table]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.csv"
        path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
        if fmt == "csv":
            (Path(tmp) / "mapping.toml").write_text(COIN_MAPPING)
        out = LOADERS[fmt](path)
    _check(out, list(range(2, len(rows) + 2)))


@SETTINGS
@given(EDITS)
def test_tardis_smiles_fuzz(edits: list[tuple[int, int, str]]) -> None:
    _fuzz_csv("tardis-smiles", edits)


@SETTINGS
@given(EDITS)
def test_optionsdx_fuzz(edits: list[tuple[int, int, str]]) -> None:
    _fuzz_csv("optionsdx", edits)


@SETTINGS
@given(EDITS)
def test_tardis_chain_fuzz(edits: list[tuple[int, int, str]]) -> None:
    _fuzz_csv("tardis", edits)


@SETTINGS
@given(EDITS)
def test_mapped_csv_fuzz(edits: list[tuple[int, int, str]]) -> None:
    _fuzz_csv("csv", edits)


JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
BASE = json.loads(DERIBIT_FIXTURES["USDC"].read_text())


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000), JSON_VALUES), max_size=8),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000), JSON_VALUES), max_size=4),
    st.lists(st.tuples(st.integers(0, 10_000), JSON_VALUES), max_size=2),
)
def test_deribit_api_fuzz(
    book_edits: list[tuple[int, int, Any]],
    inst_edits: list[tuple[int, int, Any]],
    whole_records: list[tuple[int, Any]],
) -> None:
    bundle = json.loads(json.dumps(BASE))
    book: list[Any] = bundle["get_book_summary_by_currency"]["result"]
    insts: list[Any] = bundle["get_instruments"]["result"]
    _edit(book, book_edits)
    _edit(insts, inst_edits)
    for r, value in whole_records:
        book[r % len(book)] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.json"
        path.write_text(json.dumps(bundle))
        out = LOADERS["deribit-api"](path)
    _check(out, list(range(1, len(book) + 1)))


def _edit(records: list[Any], edits: list[tuple[int, int, Any]]) -> None:
    for r, f, value in edits:
        rec = records[r % len(records)]
        if isinstance(rec, dict):
            keys = sorted(rec)
            rec[keys[f % len(keys)]] = value
