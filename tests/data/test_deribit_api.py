"""``deribit-api`` loader: bundles of raw Deribit public API responses."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.data._files import DERIBIT_FIXTURES, expected_reasons
from volguard.data.loaders import LOADERS
from volguard.data.loaders.deribit_api import read_deribit_api
from volguard.data.schema import QUARANTINE_COLUMNS
from volguard.errors import DataFileError


def _bundle(currency: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DERIBIT_FIXTURES[currency].read_text())
    return data


def _write(path: Path, bundle: object) -> Path:
    path.write_text(json.dumps(bundle))
    return path


@pytest.mark.parametrize("currency", ["BTC", "ETH", "USDC"])
def test_fixture_rows_and_reasons(currency: str) -> None:
    path = DERIBIT_FIXTURES[currency]
    out = read_deribit_api(path)
    expected = expected_reasons()["deribit_api/" + path.name]
    assert (
        len(out)
        == expected["records"]
        == len(_bundle(currency)["get_book_summary_by_currency"]["result"])
    )
    assert sorted(out["source_row"]) == list(range(1, len(out) + 1))
    assert list(out.columns) == [c.name for c in QUARANTINE_COLUMNS]
    got = {str(r): v for r, v in zip(out["source_row"], out["reason"], strict=True) if pd.notna(v)}
    assert got == expected["reasons"]


@pytest.mark.parametrize("currency", ["BTC", "ETH", "USDC"])
def test_units_and_join_against_raw_records(currency: str) -> None:
    bundle = _bundle(currency)
    out = read_deribit_api(DERIBIT_FIXTURES[currency]).set_index("source_row")
    instruments = {i["instrument_name"]: i for i in bundle["get_instruments"]["result"]}
    checked = 0
    for pos, rec in enumerate(bundle["get_book_summary_by_currency"]["result"], start=1):
        if pd.notna(out.loc[pos, "reason"]):
            continue
        row, inst = out.loc[pos], instruments[rec["instrument_name"]]
        linear = rec["quote_currency"] == "USDC"
        unit = 1.0 if linear else rec["underlying_price"]
        assert row["settlement"] == ("linear" if linear else "inverse")
        assert row["mark"] == pytest.approx(rec["mark_price"] * unit)
        if rec["bid_price"] is None:
            assert np.isnan(row["bid"])
        else:
            assert row["bid"] == pytest.approx(rec["bid_price"] * unit)
        assert row["ask"] == pytest.approx(rec["ask_price"] * unit)
        assert row["mark_iv"] == pytest.approx(rec["mark_iv"] / 100)
        assert row["strike"] == inst["strike"]
        assert row["is_call"] == (inst["option_type"] == "call")
        assert row["expiry"] == pd.Timestamp(inst["expiration_timestamp"], unit="ms", tz="UTC")
        us_out = bundle["get_book_summary_by_currency"]["usOut"]
        assert row["ts"] == pd.Timestamp(us_out, unit="us", tz="UTC")  # one bundle, one ts
        assert row["index_price"] == rec["estimated_delivery_price"]
        assert row["underlying"] == inst["base_currency"]
        checked += 1
    assert checked >= 16


def _minimal(book: list[Any], instruments: list[Any]) -> dict[str, Any]:
    env = {
        "jsonrpc": "2.0",
        "usIn": 1748736001233000,
        "usOut": 1748736001234000,
        "usDiff": 1000,
        "testnet": False,
    }
    return {
        "currency": "BTC",
        "fetched_at_ms": 1748736000000,
        "get_instruments": {**env, "result": instruments},
        "get_book_summary_by_currency": {**env, "result": book},
    }


BOOK = {
    "instrument_name": "BTC-27JUN25-100000-C",
    "creation_timestamp": 1748736001234,
    "base_currency": "BTC",
    "quote_currency": "BTC",
    "underlying_price": 104854.29,
    "underlying_index": "BTC-27JUN25",
    "estimated_delivery_price": 104350.0,
    "bid_price": 0.0735,
    "ask_price": 0.0765,
    "mid_price": 0.075,
    "mark_price": 0.07509119,
    "mark_iv": 46.34,
    "open_interest": 579.7,
    "volume": 12.3,
    "volume_usd": 96000.0,
    "interest_rate": 0.0,
}
INSTRUMENT = {
    "instrument_name": "BTC-27JUN25-100000-C",
    "strike": 100000.0,
    "option_type": "call",
    "expiration_timestamp": 1751011200000,
    "settlement_currency": "BTC",
    "quote_currency": "BTC",
    "base_currency": "BTC",
    "counter_currency": "USD",
    "contract_size": 1.0,
    "tick_size": 0.0001,
    "kind": "option",
    "is_active": True,
}


def test_known_values(tmp_path: Path) -> None:
    out = read_deribit_api(_write(tmp_path / "b.json", _minimal([BOOK], [INSTRUMENT])))
    row = out.iloc[0]
    assert pd.isna(row["reason"]) and row["source_row"] == 1 and row["source"] == "b.json"
    assert row["bid"] == pytest.approx(0.0735 * 104854.29)
    assert row["mark"] == pytest.approx(0.07509119 * 104854.29)
    assert row["mark_iv"] == pytest.approx(0.4634)
    assert row["expiry"] == pd.Timestamp("2025-06-27 08:00", tz="UTC")
    assert row["t"] == pytest.approx((1751011200000 - 1748736001234) / 1000 / (365 * 86400))


def test_unmatched_record_keeps_its_row_and_name_fields(tmp_path: Path) -> None:
    orphan = {**BOOK, "instrument_name": "BTC-26SEP25-120000-P", "bid_price": None}
    out = read_deribit_api(_write(tmp_path / "b.json", _minimal([BOOK, orphan], [INSTRUMENT])))
    assert out["reason"].tolist()[1] == "missing:instrument"
    row = out.iloc[1]
    assert row["strike"] == 120000.0 and not row["is_call"]
    assert row["expiry"] == pd.Timestamp("2025-09-26 08:00", tz="UTC")


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("mark_price", "abc", "unparseable:mark_price"),
        ("underlying_price", [1, 2], "unparseable:underlying_price"),
        ("bid_price", "cheap", "unparseable:bid_price"),
        ("instrument_name", None, "missing:instrument_name"),
        ("quote_currency", "EUR", "unparseable:quote_currency"),
    ],
)
def test_bad_fields_get_reasons(tmp_path: Path, field: str, value: object, reason: str) -> None:
    bad = {**BOOK, field: value}
    out = read_deribit_api(_write(tmp_path / "b.json", _minimal([BOOK, bad, 7], [INSTRUMENT])))
    reasons = out["reason"].tolist()
    assert pd.isna(reasons[0]) and reasons[1:] == [reason, "malformed_row"]
    assert out["source_row"].tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"currency": "BTC", "get_instruments": ', "not valid JSON"),
        (b"[1, 2]", "top level"),
        (json.dumps({"get_instruments": {"result": []}}).encode(), "get_book_summary_by_currency"),
        ('{"currency": "\u00e9"}'.encode("latin-1"), "not UTF-8"),
    ],
)
def test_file_errors_name_the_file(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(content)
    with pytest.raises(DataFileError, match=problem) as info:
        read_deribit_api(path)
    assert "broken.json" in str(info.value)


def test_error_response_and_truncated_gzip(tmp_path: Path) -> None:
    bundle = _minimal([BOOK], [INSTRUMENT])
    bundle["get_instruments"] = {
        "jsonrpc": "2.0",
        "error": {"code": 10009, "message": "too_many_requests"},
    }
    with pytest.raises(DataFileError, match="too_many_requests"):
        read_deribit_api(_write(tmp_path / "err.json", bundle))
    data = gzip.compress(DERIBIT_FIXTURES["BTC"].read_bytes(), mtime=0)
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFileError, match=r"cut\.json\.gz"):
        read_deribit_api(cut)
    whole = tmp_path / "whole.json.gz"
    whole.write_bytes(data)
    assert len(read_deribit_api(whole)) == len(read_deribit_api(DERIBIT_FIXTURES["BTC"]))


def test_registered() -> None:
    assert LOADERS["deribit-api"] is read_deribit_api
