"""``tardis-smiles`` loader: real monthly files and hand-made lines."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.data._files import SMILES_HEADER, SMILES_ROWS, csv_file, truncated_gzip
from volguard.data.loaders import LOADERS
from volguard.data.loaders.tardis_smiles import read_tardis_smiles
from volguard.data.schema import QUARANTINE_COLUMNS
from volguard.errors import DataFileError
from volguard.market.deribit import parse_deribit_instrument


def _records(path: Path) -> int:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return sum(1 for _ in fh) - 1


@pytest.mark.realdata
@pytest.mark.parametrize("month", ["2025-06", "2026-02"])
def test_real_file_rows_units_and_names(shared_data: Path, month: str) -> None:
    path = shared_data / "tardis-deribit-monthly-smiles" / "smiles" / f"{month}.csv.gz"
    out = read_tardis_smiles(path)
    raw = pd.read_csv(path)
    assert len(out) == _records(path) == len(raw)
    assert list(out.columns) == [c.name for c in QUARANTINE_COLUMNS]
    assert out["reason"].isna().all()
    assert out["source_row"].tolist() == list(range(2, len(raw) + 2))
    # units: USD = coin x F; vols percent -> decimal
    np.testing.assert_allclose(out["mark"], raw["mark_price"] * raw["underlying_price"])
    np.testing.assert_allclose(out["mark_iv"], raw["mark_iv"] / 100)
    np.testing.assert_allclose(out["bid_iv"], raw["bid_iv"] / 100)
    assert out["bid"].isna().all() and out["ask"].isna().all()
    assert (out["settlement"] == "inverse").all() and (out["venue"] == "deribit").all()
    # the rebuilt names parse back to the row's own contract
    for _, row in out.sample(50, random_state=0).iterrows():
        inst = parse_deribit_instrument(row["instrument"])
        assert inst.expiry == row["expiry"]
        assert inst.strike == row["strike"]
        assert inst.is_call == row["is_call"]
        assert inst.underlying == row["underlying"]


@pytest.mark.realdata
def test_real_file_known_row(shared_data: Path) -> None:
    out = read_tardis_smiles(shared_data / "tardis-deribit-monthly-smiles/smiles/2025-06.csv.gz")
    row = out.iloc[0]  # line 2 of the file
    assert row["source_row"] == 2
    assert row["instrument"] == "ETH-27JUN25-2000-P"
    # last update at 00:59:53.159 is the quote as of 01:00
    assert row["ts"] == pd.Timestamp("2025-06-01 01:00", tz="UTC")
    assert row["expiry"] == pd.Timestamp("2025-06-27 08:00", tz="UTC")
    assert row["mark"] == pytest.approx(0.0111 * 2537.0)
    assert row["mark_iv"] == pytest.approx(0.7649)
    assert row["bid_iv"] == pytest.approx(0.7526)
    assert row["open_interest"] == 18344.0
    assert row["t"] == pytest.approx((row["expiry"] - row["ts"]).total_seconds() / (365 * 86400))


def test_hand_made_rows(tmp_path: Path) -> None:
    out = read_tardis_smiles(csv_file(tmp_path / "m.csv.gz", SMILES_HEADER, SMILES_ROWS, gz=True))
    assert len(out) == len(SMILES_ROWS)
    assert out["instrument"].tolist()[:3] == [
        "ETH-27JUN25-2000-P",
        "ETH-27JUN25-2400-P",
        "ETH-26DEC25-3800-P",
    ]
    assert np.isnan(out["bid_iv"].iloc[2]) and pd.isna(out["reason"].iloc[2])  # no bid is no error
    assert bool(out["is_call"].iloc[3]) is True
    assert out["source"].iloc[0] == "m.csv.gz"


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("strike", "2k", "unparseable:strike"),
        ("opt_type", "straddle", "unparseable:opt_type"),
        ("opt_type", "", "missing:opt_type"),
        ("ts_us", "yesterday", "unparseable:ts_us"),
        ("mark_price", "0,0111", None),  # an extra comma: the line is ragged
        ("underlying_price", "12o0", "unparseable:underlying_price"),
    ],
)
def test_bad_cells_get_reasons(tmp_path: Path, column: str, value: str, reason: str | None) -> None:
    names = SMILES_HEADER.split(",")
    cells = SMILES_ROWS[1].split(",")
    cells[names.index(column)] = value
    rows = [SMILES_ROWS[0], ",".join(cells), SMILES_ROWS[2]]
    out = read_tardis_smiles(csv_file(tmp_path / "bad.csv", SMILES_HEADER, rows))
    assert len(out) == 3
    bad = out.loc[out["source_row"] == 3, "reason"].item()
    assert bad == (reason or "malformed_row")
    assert out.loc[out["source_row"] != 3, "reason"].isna().all()


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    text = "\n".join([SMILES_HEADER, *SMILES_ROWS]) + "\n"
    with pytest.raises(DataFileError, match=r"cut\.csv.gz"):
        read_tardis_smiles(truncated_gzip(tmp_path / "cut.csv.gz", text * 200))
    no_strike = SMILES_HEADER.replace("strike,", "")
    with pytest.raises(DataFileError, match=r"nostrike\.csv.*strike"):
        read_tardis_smiles(csv_file(tmp_path / "nostrike.csv", no_strike, ["1,eth"]))
    latin = tmp_path / "latin.csv"
    row = SMILES_ROWS[0].replace(",eth,", ",\u00e9th,").encode("latin-1")
    latin.write_bytes((SMILES_HEADER + "\n").encode() + row + b"\n")
    with pytest.raises(DataFileError, match=r"latin\.csv"):
        read_tardis_smiles(latin)


def test_registered() -> None:
    assert LOADERS["tardis-smiles"] is read_tardis_smiles
