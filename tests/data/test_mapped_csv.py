"""``csv`` loader: CSV/Parquet through a TOML column mapping."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.data._files import csv_file
from volguard.data.loaders import LOADERS, make_mapped_csv_loader
from volguard.data.loaders.mapped_csv import load_mapping, read_mapped_csv
from volguard.data.schema import QUARANTINE_COLUMNS
from volguard.errors import ConfigError, DataFileError

COIN_MAPPING = """
premium_unit = "coin"
iv_unit = "percent"
time_unit = "ms"

[columns]
ts = "time"
instrument = "name"
expiry = "exp"
strike = "K"
is_call = "cp"
forward = "F"
bid = "bid"
ask = "ask"
mark = "mark"
mark_iv = "iv"
open_interest = "oi"

[constants]
venue = "deribit"
underlying = "BTC"
settlement = "inverse"
"""
COIN_HEADER = "time,name,exp,K,cp,F,bid,ask,mark,iv,oi"
COIN_ROWS = (
    "1748736000000,BTC-27JUN25-100000-C,1751011200000,100000,C,104854.29,0.0735,0.0765,0.0751,46.34,579.7",
    "1748736000000,BTC-27JUN25-100000-P,1751011200000,100000,p,104854.29,,0.031,0.0295,47.1,12",
)


def _mapping(tmp_path: Path, text: str, name: str = "m.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_coin_premiums_epoch_ms_percent_iv(tmp_path: Path) -> None:
    loader = make_mapped_csv_loader(_mapping(tmp_path, COIN_MAPPING))
    out = loader(csv_file(tmp_path / "q.csv", COIN_HEADER, COIN_ROWS))
    assert list(out.columns) == [c.name for c in QUARANTINE_COLUMNS]
    assert out["reason"].isna().all() and len(out) == 2
    row = out.iloc[0]
    assert row["bid"] == pytest.approx(0.0735 * 104854.29)
    assert row["mark"] == pytest.approx(0.0751 * 104854.29)
    assert row["mark_iv"] == pytest.approx(0.4634)
    assert row["ts"] == pd.Timestamp("2025-06-01", tz="UTC")
    assert row["expiry"] == pd.Timestamp("2025-06-27 08:00", tz="UTC")
    assert (row["venue"], row["underlying"], row["settlement"]) == ("deribit", "BTC", "inverse")
    assert out["is_call"].tolist() == [True, False]
    assert np.isnan(out["bid"].iloc[1])


def test_usd_iso_decimal_and_built_names(tmp_path: Path) -> None:
    mapping = _mapping(
        tmp_path,
        """
time_unit = "iso"
[columns]
ts = "quote_time"
expiry = "expiry"
strike = "strike"
is_call = "right"
underlying = "coin"
settlement = "style"
bid = "bid_usd"
mark_iv = "iv"
""",
    )
    rows = [
        "2025-06-01T00:00:00Z,2025-06-27T08:00:00Z,2500,call,eth,linear,101.5,0.61",
        "2025-06-01T00:00:00Z,2025-06-27T08:00:00Z,2.5,put,xrp,inverse,0.01,0.9",
        "2025-06-01T00:00:00Z,2025-06-27T08:00:00Z,2500,call,eth,sideways,101.5,0.61",
    ]
    out = make_mapped_csv_loader(mapping)(
        csv_file(tmp_path / "q.csv", "quote_time,expiry,strike,right,coin,style,bid_usd,iv", rows)
    )
    assert out["instrument"].tolist()[:2] == ["ETH-27JUN25-2500-C", "XRP-27JUN25-2d5-P"]
    assert out["bid"].iloc[0] == 101.5 and out["mark_iv"].iloc[0] == 0.61
    assert out["settlement"].tolist()[:2] == ["linear", "inverse"]
    assert out["reason"].tolist()[2] == "unparseable:style"


def test_parquet_with_timestamp_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime(["2025-06-01 00:00", "2025-06-01 00:00"], utc=True),
            "name": ["BTC-27JUN25-100000-C", "BTC-27JUN25-100000-P"],
            "exp": pd.to_datetime(["2025-06-27 08:00", "2025-06-27 08:00"], utc=True),
            "K": [100000.0, 100000.0],
            "cp": ["call", "put"],
            "F": [104854.29, 104854.29],
            "bid": [0.0735, None],
            "ask": [0.0765, 0.031],
            "mark": [0.0751, 0.0295],
            "iv": [46.34, 47.1],
            "oi": [579.7, 12.0],
        }
    )
    path = tmp_path / "q.parquet"
    frame.to_parquet(path)
    out = make_mapped_csv_loader(_mapping(tmp_path, COIN_MAPPING))(path)
    assert out["reason"].isna().all()
    assert out["source_row"].tolist() == [1, 2]
    assert out["ts"].iloc[0] == pd.Timestamp("2025-06-01", tz="UTC")
    assert out["ask"].iloc[1] == pytest.approx(0.031 * 104854.29)
    with pytest.raises(DataFileError, match=r"q2\.parquet.*'oi'"):
        frame.drop(columns="oi").to_parquet(tmp_path / "q2.parquet")
        make_mapped_csv_loader(_mapping(tmp_path, COIN_MAPPING))(tmp_path / "q2.parquet")


def test_bad_cells_and_ragged_lines(tmp_path: Path) -> None:
    rows = [
        COIN_ROWS[0].replace(",100000,C,", ",1e5x,C,"),
        COIN_ROWS[1].replace(",p,", ",straddle,"),
        COIN_ROWS[0] + ",extra",
        COIN_ROWS[0].replace("1748736000000,", ",", 1),
    ]
    loader = make_mapped_csv_loader(_mapping(tmp_path, COIN_MAPPING))
    out = loader(csv_file(tmp_path / "bad.csv", COIN_HEADER, rows)).sort_values("source_row")
    assert out["reason"].tolist() == [
        "unparseable:K",
        "unparseable:cp",
        "malformed_row",
        "missing:time",
    ]


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (('premium_unit = "coin"', 'premium_unit = "sats"'), "premium_unit"),
        (('iv_unit = "percent"', 'iv_unit = "bp"'), "iv_unit"),
        (('time_unit = "ms"', 'time_unit = "fortnights"'), "time_unit"),
        (('strike = "K"', ""), "columns.strike"),
        (('forward = "F"', ""), "columns.forward"),
        (('open_interest = "oi"', 'open_interest = "oi"\ngreeks = "delta"'), "columns.greeks"),
        (('settlement = "inverse"', 'settlement = "quanto"'), "constants.settlement"),
        (('venue = "deribit"', 'venue = "deribit"\nstrike = "1"'), "constants.strike"),
        (("[constants]", "colour = 1\n[constants]"), "colour"),
        (('venue = "deribit"', "venue = 3"), "constants.venue"),
        (('time_unit = "ms"', 'time_unit = "ms"\ndelimiter = ";;"'), "delimiter"),
        (('time_unit = "ms"', 'time_unit = "ms"\nquoted = "yes"'), "quoted"),
    ],
)
def test_bad_mapping_is_config_error_naming_the_key(
    tmp_path: Path, edit: tuple[str, str], key: str
) -> None:
    assert edit[0] in COIN_MAPPING
    path = _mapping(tmp_path, COIN_MAPPING.replace(*edit))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        make_mapped_csv_loader(path)


def test_unreadable_mapping_and_missing_columns(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_mapping(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_mapping(_mapping(tmp_path, "premium_unit = ", "broken.toml"))
    loader = make_mapped_csv_loader(_mapping(tmp_path, COIN_MAPPING))
    with pytest.raises(DataFileError, match=r"short\.csv.*'oi'"):
        loader(csv_file(tmp_path / "short.csv", COIN_HEADER.replace(",oi", ""), []))


def test_registered_loader_uses_the_mapping_beside_the_file(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "q.csv", COIN_HEADER, COIN_ROWS)
    with pytest.raises(ConfigError, match="--mapping"):
        read_mapped_csv(data)
    _mapping(tmp_path, COIN_MAPPING, "q.csv.mapping.toml")
    assert len(LOADERS["csv"](data)) == 2


def test_quoted_csv(tmp_path: Path) -> None:
    header = ",".join(f'"{c}"' for c in COIN_HEADER.split(","))
    rows = [",".join(f'"{c}"' for c in COIN_ROWS[0].split(","))]
    loader = make_mapped_csv_loader(_mapping(tmp_path, "quoted = true\n" + COIN_MAPPING))
    out = loader(csv_file(tmp_path / "q.csv", header, rows))
    assert out["reason"].isna().all() and out["strike"].iloc[0] == 100000.0


def test_loader_pickles_for_worker_processes(tmp_path: Path) -> None:
    loader = make_mapped_csv_loader(_mapping(tmp_path, COIN_MAPPING))
    clone = pickle.loads(pickle.dumps(loader))
    data = csv_file(tmp_path / "q.csv", COIN_HEADER, COIN_ROWS)
    pd.testing.assert_frame_equal(clone(data), loader(data))
