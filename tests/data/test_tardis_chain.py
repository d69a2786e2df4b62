"""``tardis`` loader: Tardis.dev ``options_chain`` (Deribit) fixture and the documented example."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.data._files import (
    TARDIS_FIXTURE,
    TARDIS_HEADER,
    TARDIS_ROWS,
    csv_file,
    expected_reasons,
    truncated_gzip,
)
from volguard.data.loaders import LOADERS
from volguard.data.loaders.tardis_chain import read_tardis_chain, thin_options_chain
from volguard.data.schema import QUARANTINE_COLUMNS
from volguard.errors import DataFileError


def _raw_lines(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def test_fixture_rows_and_reasons() -> None:
    out = read_tardis_chain(TARDIS_FIXTURE)
    expected = expected_reasons()["tardis/" + TARDIS_FIXTURE.name]
    assert len(out) == expected["records"] == len(_raw_lines(TARDIS_FIXTURE)) - 1
    assert sorted(out["source_row"]) == list(range(2, len(out) + 2))
    assert list(out.columns) == [c.name for c in QUARANTINE_COLUMNS]
    got = {str(r): v for r, v in zip(out["source_row"], out["reason"], strict=True) if pd.notna(v)}
    assert got == expected["reasons"]


def test_fixture_units_against_raw_cells() -> None:
    out = read_tardis_chain(TARDIS_FIXTURE).set_index("source_row")
    lines = _raw_lines(TARDIS_FIXTURE)
    header = lines[0]
    checked = 0
    for line_no, cells in enumerate(lines[1:], start=2):
        if len(cells) != len(header) or pd.notna(out.loc[line_no, "reason"]):
            continue
        raw = dict(zip(header, cells, strict=True))
        row = out.loc[line_no]
        forward = float(raw["underlying_price"]) if raw["underlying_price"] else np.nan
        unit = 1.0 if "_USDC-" in raw["symbol"] else forward
        assert row["settlement"] == ("linear" if unit == 1.0 else "inverse")
        assert row["mark"] == pytest.approx(float(raw["mark_price"]) * unit, nan_ok=True)
        if raw["bid_price"]:
            assert row["bid"] == pytest.approx(float(raw["bid_price"]) * unit, nan_ok=True)
        else:
            assert np.isnan(row["bid"])
        assert row["ask_iv"] == pytest.approx(float(raw["ask_iv"] or "nan") / 100, nan_ok=True)
        update = pd.Timestamp(int(raw["timestamp"]), unit="us", tz="UTC")
        assert row["ts"] == update.floor("h") + pd.Timedelta(hours=1)  # as-of snapshot time
        assert row["instrument"] == raw["symbol"]
        checked += 1
    assert checked > 190


def test_documented_example_row(tmp_path: Path) -> None:
    out = read_tardis_chain(csv_file(tmp_path / "chain.csv", TARDIS_HEADER, TARDIS_ROWS))
    assert out["reason"].isna().all()
    first = out.iloc[0]
    assert first["instrument"] == "BTC-9JUN20-9875-P"
    assert first["underlying"] == "BTC" and first["venue"] == "deribit"
    assert first["ts"] == pd.Timestamp("2020-06-08 00:00", tz="UTC")  # update 23:59:59.413
    assert first["expiry"] == pd.Timestamp("2020-06-09 08:00", tz="UTC")
    assert first["bid"] == pytest.approx(0.0205 * 9756.36)
    assert first["ask"] == pytest.approx(0.0235 * 9756.36)
    assert first["mark"] == pytest.approx(0.02210436 * 9756.36)
    assert (first["bid_iv"], first["ask_iv"], first["mark_iv"]) == pytest.approx(
        (0.5591, 0.6894, 0.6289)
    )
    assert (first["bid_size"], first["ask_size"], first["open_interest"]) == (15.0, 15.0, 0.1)
    linear = out.iloc[1]  # USDC option: prices already USD
    assert linear["settlement"] == "linear" and linear["underlying"] == "ETH"
    assert (linear["bid"], linear["ask"], linear["mark"]) == (101.5, 104.2, 102.9)
    one_sided = out.iloc[2]  # empty bid cells: no bid, not an error
    assert np.isnan(one_sided["bid"]) and np.isnan(one_sided["bid_iv"])
    assert one_sided["ask"] == pytest.approx(0.0015 * 104854.29)


def test_zero_bid_is_no_quote(tmp_path: Path) -> None:
    cells = TARDIS_ROWS[0].split(",")
    cells[TARDIS_HEADER.split(",").index("bid_price")] = "0"
    out = read_tardis_chain(csv_file(tmp_path / "z.csv", TARDIS_HEADER, [",".join(cells)]))
    assert np.isnan(out["bid"].iloc[0]) and pd.isna(out["reason"].iloc[0])


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    text = "\n".join([TARDIS_HEADER, *TARDIS_ROWS]) + "\n"
    with pytest.raises(DataFileError, match=r"cut\.csv\.gz"):
        read_tardis_chain(truncated_gzip(tmp_path / "cut.csv.gz", text * 100))
    with pytest.raises(DataFileError, match=r"short\.csv.*mark_iv"):
        read_tardis_chain(
            csv_file(tmp_path / "short.csv", TARDIS_HEADER.replace("mark_iv,", ""), [])
        )
    bad = tmp_path / "cp1252.csv"
    bad.write_bytes(text.replace("SYN.BTC", "SYN.\u20acBTC").encode("cp1252"))
    with pytest.raises(DataFileError, match=r"cp1252\.csv"):
        read_tardis_chain(bad)


def test_registered() -> None:
    assert LOADERS["tardis"] is read_tardis_chain


def test_thin_keeps_last_update_per_symbol_and_bucket(tmp_path: Path) -> None:
    lines = _raw_lines(TARDIS_FIXTURE)
    header, body = lines[0], [r for r in lines[1:] if len(r) == len(lines[0])]
    # the fixture has two updates per symbol, ten minutes apart: hourly buckets keep the later one
    result = thin_options_chain(TARDIS_FIXTURE, tmp_path / "thin.csv.gz", block_bytes=4096)
    assert result.malformed_lines == 1 and result.rows_in == len(body)
    col = {c: i for i, c in enumerate(header)}
    last: dict[tuple[str, float], list[str]] = {}
    untimed = 0
    for r in body:
        try:
            key = (r[col["symbol"]], float(int(r[col["timestamp"]]) // 3_600_000_000))
        except ValueError:
            untimed += 1
            continue
        last[key] = r
    assert result.rows_out == len(last) + untimed
    thin = read_tardis_chain(result.path)
    assert len(thin) == result.rows_out
    kept = thin.dropna(subset=["ts"]).set_index("instrument")
    for (symbol, _), r in list(last.items())[:20]:
        if symbol in kept.index and not isinstance(kept.loc[symbol, "ts"], pd.Series):
            # the kept row is the later update: its mark, as of the bucket's end
            update = pd.Timestamp(int(r[col["timestamp"]]), unit="us", tz="UTC")
            assert kept.loc[symbol, "ts"] == update.floor("h") + pd.Timedelta(hours=1)
            assert kept.loc[symbol, "mark"] == pytest.approx(
                float(r[col["mark_price"]]) * float(r[col["underlying_price"]])
            )
    btc = thin_options_chain(TARDIS_FIXTURE, tmp_path / "btc.csv.gz", prefixes=("BTC-",))
    assert set(read_tardis_chain(btc.path)["instrument"].str[:4]) == {"BTC-"}
    with pytest.raises(DataFileError, match=r"cut\.csv\.gz"):
        thin_options_chain(
            truncated_gzip(tmp_path / "cut.csv.gz", "\n".join([TARDIS_HEADER, *TARDIS_ROWS]) * 200),
            tmp_path / "never.csv.gz",
        )
    assert not (tmp_path / "never.csv.gz").exists()
