"""Small file builders shared by the loader tests (fixtures live in ``tests/fixtures``)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TARDIS_FIXTURE = FIXTURES / "tardis" / "deribit_options_chain_2025-06-01_OPTIONS.csv.gz"
DERIBIT_FIXTURES = {
    c: FIXTURES / "deribit_api" / f"deribit_{c}_options.json" for c in ("BTC", "ETH", "USDC")
}


def expected_reasons() -> dict[str, dict[str, Any]]:
    """``{fixture path relative to tests/fixtures: {"records": n, "reasons": {row: reason}}}``."""
    data: dict[str, dict[str, Any]] = json.loads((FIXTURES / "expected_reasons.json").read_text())
    return data


def write_text(path: Path, text: str, *, gz: bool = False) -> Path:
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def truncated_gzip(path: Path, text: str) -> Path:
    """A gzip file cut in the middle of its deflate stream."""
    data = gzip.compress(text.encode("utf-8"), mtime=0)
    path.write_bytes(data[: len(data) // 2])
    return path


# Header and first data lines of each CSV format, as the real files / Tardis docs have them.
SMILES_HEADER = (
    "ts_us,asset,expiry_us,strike,opt_type,mark_iv,bid_iv,ask_iv,mark_price,"
    "underlying_price,delta,open_interest"
)
SMILES_ROWS = (
    "1748739593159000,eth,1751011200000000,2000,put,76.49,75.26,77.34,0.0111,2537.0,-0.10362,18344.0",
    "1748739593159000,eth,1751011200000000,2400,put,68.93,68.01,69.53,0.0479,2536.96,-0.34734,15688.0",
    "1748739593899000,eth,1766736000000000,3800,put,68.17,,69.05,0.5381,2611.45,-0.68115,163.0",
    "1748739593899000,eth,1753430400000000,1400,call,90.36,78.76,96.06,0.4554,2549.95,0.97094,89.0",
)

OPTIONSDX_HEADER = (
    "[QUOTE_UNIXTIME], [QUOTE_READTIME], [QUOTE_DATE], [QUOTE_TIME_HOURS], [INSTRUMENT_NAME], "
    "[BASE_CURRENCY], [CONTRACT_SIZE], [UNDERLYING_INDEX], [UNDERLYING_PRICE], [EXPIRY_DATE], "
    "[EXPIRY_UNIX], [EXPIRY_TIME], [DTE], [OPTION_RIGHT], [STRIKE], [BID_SIZE], [BID_PRICE], "
    "[ASK_PRICE], [ASK_SIZE], [OPEN_INTEREST], [VOLUME], [DELTA], [GAMMA], [VEGA], [THETA], "
    "[RHO], [MARK_IV], [STRIKE_DISTANCE_PCT]"
)
OPTIONSDX_ROWS = (
    "1641013246, 2022-01-01 00:00, 2022-01-01, 0.000000, BTC-1JAN22-38000-C, BTC, 1.000000, "
    "SYN.BTC-1JAN22, 46699.620000, 2022-01-01, 1641024000, 3.000000, 0.124470, call, "
    "38000.000000, 0.000000, 0.000000, 0.000000, 0.000000, 0.000000, , 1.000000, 0.000000, "
    "0.000000, 0.000000, 0.130140, 126.640000, 0.186270",
    "1641013246, 2022-01-01 00:00, 2022-01-01, 0.000000, BTC-1JAN22-38000-P, BTC, 1.000000, "
    "SYN.BTC-1JAN22, 46711.860000, 2022-01-01, 1641024000, 3.000000, 0.124470, put, "
    "38000.000000, 0.000000, 0.000000, 0.000500, 39.900000, 4.500000, 1.500000, 0.000000, "
    "0.000000, 0.000000, 0.000000, 0.000000, 126.640000, 0.186490",
    "1641013246, 2022-01-01 00:00, 2022-01-01, 0.000000, BTC-25MAR22-50000-C, BTC, 1.000000, "
    "BTC-25MAR22, 47150.500000, 2022-03-25, 1648195200, 4.000000, 83.124470, call, "
    "50000.000000, 12.000000, 0.071000, 0.074500, 3.500000, 812.000000, 20.000000, 0.460000, "
    "0.000020, 90.000000, -30.000000, 40.000000, 84.100000, 0.060430",
)

TARDIS_HEADER = (
    "exchange,symbol,timestamp,local_timestamp,type,strike_price,expiration,open_interest,"
    "last_price,bid_price,bid_amount,bid_iv,ask_price,ask_amount,ask_iv,mark_price,mark_iv,"
    "underlying_index,underlying_price,delta,gamma,vega,theta,rho"
)
TARDIS_ROWS = (
    # the example row of the Tardis.dev options_chain documentation
    "deribit,BTC-9JUN20-9875-P,1591574399413000,1591574400196008,put,9875,1591689600000000,0.1,"
    "0.0295,0.0205,15.0,55.91,0.0235,15.0,68.94,0.02210436,62.89,SYN.BTC-9JUN20,9756.36,"
    "-0.61752,0.00103,2.24964,-53.05655,-0.22796",
    "deribit,ETH_USDC-27JUN25-2600-C,1748736000003157,1748736000040960,call,2600,"
    "1751011200000000,12.0,,101.5,4.0,60.1,104.2,2.0,62.3,102.9,61.2,ETH-27JUN25,2541.3,"
    "0.45,0.0005,3.1,-2.5,0.9",
    "deribit,BTC-27JUN25-120000-C,1748736000003157,1748736000040960,call,120000,"
    "1751011200000000,800.5,,,,,0.0015,25.0,52.1,0.0012,50.2,BTC-27JUN25,104854.29,"
    "0.08,0.00001,20.1,-40.2,0.5",
)


def csv_file(
    path: Path, header: str, rows: tuple[str, ...] | list[str], *, gz: bool = False
) -> Path:
    return write_text(path, "\n".join([header, *rows]) + "\n", gz=gz)
