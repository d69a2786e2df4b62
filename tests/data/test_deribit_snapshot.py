"""The ``deribit-snapshot`` loader on real files and on crafted bad input."""

from __future__ import annotations

import gzip
import string
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from volguard.data.hygiene import classify
from volguard.data.loaders import read_deribit_snapshot
from volguard.errors import DataFileError

HEADER = (
    "timestamp,instrument_name,underlying,underlying_name,option_type,strike,expiry_datetime,"
    "time_to_maturity,bid_price,ask_price,mark_price,mid_price,futures_price,"
    "futures_instrument_name,implied_volatility,delta,vega,open_interest,volume,bid_ask_spread,"
    "currency,index_price,volume_usd"
)
GOOD = (
    "2026-01-15T09:21:30.027641+00:00,BTC-27MAR26-95000-C,97596.23,BTC-27MAR26,call,95000.0,"
    "2026-03-27T08:00:00+00:00,0.1942,0.084,0.085,0.08426074,0.0845,97596.23,BTC-27MAR26,0.4048,"
    "0.59495,166.76868,2564.4,59.4,0.001,BTC,96627.07,446196.48"
)
N_FIELDS = HEADER.count(",") + 1


def write(tmp_path: Path, lines: list[str], name: str = "snap.csv.gz") -> Path:
    path = tmp_path / name
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join([HEADER, *lines]) + "\n")
    return path


def test_real_file_units_and_counts(snapshot_files: list[Path]) -> None:
    path = next(p for p in snapshot_files if "20260115T092130Z" in p.name)
    raw = pd.read_csv(path)
    rows = read_deribit_snapshot(path)
    assert len(rows) == len(raw) and rows["reason"].isna().all()
    assert set(rows["underlying"]) == {"BTC", "ETH"}
    row = rows.set_index("instrument").loc["BTC-27MAR26-95000-C"]
    # USD premium = coin premium x F (the row's underlying)
    assert row["bid"] == pytest.approx(0.084 * 97596.23, rel=1e-15)
    assert row["mark"] == pytest.approx(0.08426074 * 97596.23, rel=1e-15)
    assert row["mark_iv"] == pytest.approx(0.4048)
    assert row["settlement"] == "inverse" and bool(row["is_call"])
    # t is ACT/365 from the run start to the 08:00 UTC expiry (the file's own column uses 365.25)
    expected_t = (
        pd.Timestamp("2026-03-27 08:00", tz="UTC")
        - pd.Timestamp("2026-01-15T09:21:30.027641", tz="UTC")
    ).total_seconds() / (365 * 86400)
    assert row["t"] == pytest.approx(expected_t, rel=1e-12)
    assert row["source_row"] == 2  # first data line


def test_bad_cells_get_a_reason_and_keep_their_line(tmp_path: Path) -> None:
    bad_strike = GOOD.replace(",95000.0,", ",ninety-five,", 1)
    bad_type = GOOD.replace(",call,", ",straddle,", 1)
    ragged = GOOD + ",extra"
    bad_time = GOOD.replace("2026-03-27T08:00:00+00:00", "27/03/2026", 1)
    no_name = GOOD.replace("BTC-27MAR26-95000-C", "", 1)
    path = write(tmp_path, [GOOD, bad_strike, ragged, bad_type, "", bad_time, no_name])
    rows = read_deribit_snapshot(path).sort_values("source_row")
    assert rows["source_row"].tolist() == [2, 3, 4, 5, 6, 7, 8]
    assert rows["reason"].fillna("ok").tolist() == [
        "ok",
        "unparseable:strike",
        "malformed_row",
        "unparseable:option_type",
        "missing:timestamp",
        "unparseable:expiry_datetime",
        "missing:instrument_name",
    ]


def test_truncated_gzip_is_a_file_error(tmp_path: Path) -> None:
    path = write(tmp_path, [GOOD] * 2000)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataFileError, match=r"snap\.csv\.gz: cannot be read"):
        read_deribit_snapshot(path)


def test_missing_columns_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("timestamp,instrument_name\n2026-01-15T09:21:30Z,BTC-27MAR26-95000-C\n")
    with pytest.raises(DataFileError, match=r"short\.csv: missing required column\(s\)"):
        read_deribit_snapshot(path)


def test_wrong_encoding_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        (HEADER + "\n" + GOOD.replace("BTC,96627", "B\xe9C,96627") + "\n").encode("latin-1")
    )
    with pytest.raises(DataFileError, match=r"latin1\.csv: cannot be read .*UTF-8"):
        read_deribit_snapshot(path)


def test_missing_file_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="file not found"):
        read_deribit_snapshot(tmp_path / "nope.csv.gz")


junk = st.text(alphabet=string.printable.replace("\n", "").replace("\r", ""), max_size=12)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_malformed_rows_never_raise_and_never_vanish(tmp_path: Path, data: st.DataObject) -> None:
    n_lines = data.draw(st.integers(1, 6))
    lines = []
    for _ in range(n_lines):
        cells = GOOD.split(",")
        for _ in range(data.draw(st.integers(0, 4))):
            cells[data.draw(st.integers(0, N_FIELDS - 1))] = data.draw(junk)
        if data.draw(st.booleans()):
            cells = cells[: data.draw(st.integers(1, N_FIELDS))]
        lines.append(",".join(cells))
    path = write(tmp_path, lines, name="fuzz.csv.gz")
    rows = read_deribit_snapshot(path)
    # every line comes back exactly once, clean or with a reason (an empty line too)
    assert sorted(rows["source_row"]) == list(range(2, 2 + n_lines))
    # after hygiene, a row is clean only with a positive strike and a parsed time
    judged = classify(rows)
    clean = judged["reason"].isna()
    assert (judged.loc[clean, "strike"] > 0).all() and judged.loc[clean, "ts"].notna().all()
