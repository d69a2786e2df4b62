"""``optionsdx`` loader: real OptionsDX BTC EOD files and hand-made lines."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.data._files import OPTIONSDX_HEADER, OPTIONSDX_ROWS, csv_file, truncated_gzip
from volguard.data.loaders import LOADERS
from volguard.data.loaders.optionsdx import read_optionsdx
from volguard.data.schema import QUARANTINE_COLUMNS
from volguard.errors import DataFileError


def _raw(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep=r",\s*", engine="python")
    frame.columns = [c.strip("[]") for c in frame.columns]
    return frame


@pytest.mark.realdata
@pytest.mark.parametrize("month", ["202106", "202201"])
def test_real_file_rows_and_units(shared_data: Path, month: str) -> None:
    path = shared_data / "optionsdx-deribit-btc-eod" / f"btc_eod_{month}.txt.gz"
    out = read_optionsdx(path)
    raw = _raw(path)
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        assert len(out) == sum(1 for _ in fh) - 1 == len(raw)
    assert list(out.columns) == [c.name for c in QUARANTINE_COLUMNS]
    assert out["reason"].isna().all()
    bid_coin = raw["BID_PRICE"].where(raw["BID_PRICE"] != 0)
    np.testing.assert_allclose(out["bid"], bid_coin * raw["UNDERLYING_PRICE"])
    ask_coin = raw["ASK_PRICE"].where(raw["ASK_PRICE"] != 0)
    np.testing.assert_allclose(out["ask"], ask_coin * raw["UNDERLYING_PRICE"])
    np.testing.assert_allclose(out["mark_iv"], raw["MARK_IV"] / 100)
    assert out["mark"].isna().all()
    assert out["bid"].isna().mean() > 0.2  # many rows have no bid (0 in the file)
    assert (out["instrument"] == raw["INSTRUMENT_NAME"]).all()
    assert (out["expiry"].dt.hour == 8).all()


@pytest.mark.realdata
def test_real_file_known_row(shared_data: Path) -> None:
    out = read_optionsdx(shared_data / "optionsdx-deribit-btc-eod" / "btc_eod_202201.txt.gz")
    row = out.iloc[1]  # line 3: BTC-1JAN22-38000-P
    assert row["source_row"] == 3
    assert row["instrument"] == "BTC-1JAN22-38000-P"
    assert row["ts"] == pd.Timestamp(1641013246, unit="s", tz="UTC")
    assert row["expiry"] == pd.Timestamp("2022-01-01 08:00", tz="UTC")
    assert np.isnan(row["bid"])
    assert row["ask"] == pytest.approx(0.0005 * 46711.86)
    assert row["ask_size"] == 39.9 and row["open_interest"] == 4.5 and row["volume"] == 1.5
    assert row["mark_iv"] == pytest.approx(1.2664)
    assert not row["is_call"]


def test_hand_made_rows(tmp_path: Path) -> None:
    out = read_optionsdx(csv_file(tmp_path / "btc_eod_x.txt", OPTIONSDX_HEADER, OPTIONSDX_ROWS))
    assert len(out) == 3 and out["reason"].isna().all()
    last = out.iloc[2]
    assert last["bid"] == pytest.approx(0.071 * 47150.5)
    assert last["ask"] == pytest.approx(0.0745 * 47150.5)
    assert last["bid_size"] == 12.0 and last["volume"] == 20.0
    assert np.isnan(out["volume"].iloc[0])  # empty VOLUME: missing, not an error
    assert out["underlying"].tolist() == ["BTC"] * 3


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("STRIKE", "5e4x", "unparseable:STRIKE"),
        ("OPTION_RIGHT", "", "missing:OPTION_RIGHT"),
        ("BID_PRICE", "zero", "unparseable:BID_PRICE"),
        ("EXPIRY_UNIX", "soon", "unparseable:EXPIRY_UNIX"),
        ("INSTRUMENT_NAME", "", "missing:INSTRUMENT_NAME"),
    ],
)
def test_bad_cells_get_reasons(tmp_path: Path, column: str, value: str, reason: str) -> None:
    names = [n.strip().strip("[]") for n in OPTIONSDX_HEADER.split(",")]
    cells = OPTIONSDX_ROWS[2].split(", ")
    cells[names.index(column)] = value
    rows = [OPTIONSDX_ROWS[0], ", ".join(cells), OPTIONSDX_ROWS[1]]
    out = read_optionsdx(csv_file(tmp_path / "bad.txt", OPTIONSDX_HEADER, rows))
    assert len(out) == 3
    assert out.loc[out["source_row"] == 3, "reason"].item() == reason
    assert out.loc[out["source_row"] != 3, "reason"].isna().all()


def test_ragged_line_is_malformed(tmp_path: Path) -> None:
    rows = [OPTIONSDX_ROWS[0], OPTIONSDX_ROWS[1].rsplit(", ", 3)[0], OPTIONSDX_ROWS[2]]
    out = read_optionsdx(csv_file(tmp_path / "ragged.txt.gz", OPTIONSDX_HEADER, rows, gz=True))
    assert sorted(out["source_row"]) == [2, 3, 4]
    assert out.loc[out["source_row"] == 3, "reason"].item() == "malformed_row"


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    text = "\n".join([OPTIONSDX_HEADER, *OPTIONSDX_ROWS]) + "\n"
    with pytest.raises(DataFileError, match=r"cut\.txt.gz"):
        read_optionsdx(truncated_gzip(tmp_path / "cut.txt.gz", text * 100))
    header = OPTIONSDX_HEADER.replace("[MARK_IV], ", "")
    with pytest.raises(DataFileError, match=r"nomark\.txt.*MARK_IV"):
        read_optionsdx(csv_file(tmp_path / "nomark.txt", header, []))
    with pytest.raises(DataFileError, match=r"absent\.txt"):
        read_optionsdx(tmp_path / "absent.txt")


def test_registered() -> None:
    assert LOADERS["optionsdx"] is read_optionsdx
