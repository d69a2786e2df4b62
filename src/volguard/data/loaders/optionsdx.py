"""``optionsdx``: OptionsDX "BTC EOD" files (Deribit BTC chains, one snapshot a day).

Comma+space separated with ``[NAME]`` headers (``btc_eod_<YYYYMM>.txt.gz``). Columns used, units:

=======================================  ====================================================
``QUOTE_UNIXTIME``, ``EXPIRY_UNIX``      unix seconds (UTC)
``INSTRUMENT_NAME``                      Deribit name, e.g. ``BTC-24JUN22-30000-C``
``BASE_CURRENCY``                        ``BTC``
``UNDERLYING_PRICE``                     USD, the expiry's future or synthetic forward (F)
``OPTION_RIGHT``, ``STRIKE``             ``call``/``put``; USD
``BID_PRICE``, ``ASK_PRICE``             coin per 1 coin; ``0`` = no order on that side
``BID_SIZE``, ``ASK_SIZE``               contracts
``OPEN_INTEREST``, ``VOLUME``            contracts (``VOLUME`` often empty)
``MARK_IV``                              Deribit mark implied vol in percent
=======================================  ====================================================

There is no mark price column: ``mark`` stays NaN, ``mark_iv`` is kept. A zero bid or ask is "no
quote" (NaN), not an error; the sizes are kept as the file gives them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from volguard.data.loaders._common import (
    RowReasons,
    assemble,
    missing_required,
    parse_choice,
    parse_float,
    parse_utc,
    read_csv_text,
)
from volguard.data.loaders._deribit import (
    no_quote_to_nan,
    percent_to_decimal,
)
from volguard.market.contracts import premium_to_usd
from volguard.market.deribit import settlement_from_symbol

REQUIRED = (
    "QUOTE_UNIXTIME",
    "INSTRUMENT_NAME",
    "BASE_CURRENCY",
    "UNDERLYING_PRICE",
    "EXPIRY_UNIX",
    "OPTION_RIGHT",
    "STRIKE",
    "BID_SIZE",
    "BID_PRICE",
    "ASK_PRICE",
    "ASK_SIZE",
    "OPEN_INTEREST",
    "VOLUME",
    "MARK_IV",
)


def read_optionsdx(path: Path) -> pd.DataFrame:
    """Read one OptionsDX BTC EOD file into quote rows.

    Parameters
    ----------
    path : Path
        A ``.txt``/``.csv`` file, plain or gzip, with the ``[NAME]`` columns of :data:`REQUIRED`.

    Returns
    -------
    DataFrame
        The quarantine columns, one row per data line: ``bid``/``ask`` in USD per 1 coin
        (``coin * UNDERLYING_PRICE``; NaN where the file has 0), ``mark`` NaN, ``mark_iv`` decimal,
        ``reason`` the row's first parse problem.

    Raises
    ------
    DataFileError
        If the file is unreadable, a truncated gzip, not UTF-8, or lacks a required column.
    """
    text, malformed = read_csv_text(path, REQUIRED, strip=True)
    reasons = RowReasons(len(text))
    required_cells = ("QUOTE_UNIXTIME", "INSTRUMENT_NAME", "BASE_CURRENCY", "EXPIRY_UNIX")
    missing_required(text, (*required_cells, "OPTION_RIGHT", "STRIKE"), reasons)
    ts = parse_utc(text, "QUOTE_UNIXTIME", reasons, unit="s")
    expiry = parse_utc(text, "EXPIRY_UNIX", reasons, unit="s")
    strike = parse_float(text, "STRIKE", reasons)
    is_call = parse_choice(text, "OPTION_RIGHT", {"call": True, "put": False}, reasons)
    numbers = {
        col: parse_float(text, col, reasons)
        for col in (
            "UNDERLYING_PRICE",
            "BID_PRICE",
            "ASK_PRICE",
            "BID_SIZE",
            "ASK_SIZE",
            "OPEN_INTEREST",
            "VOLUME",
            "MARK_IV",
        )
    }
    instrument = text["INSTRUMENT_NAME"]
    settlement = settlement_from_symbol(instrument)
    forward = numbers["UNDERLYING_PRICE"]
    return assemble(
        {
            "ts": ts,
            "venue": "deribit",
            "underlying": text["BASE_CURRENCY"].str.upper(),
            "instrument": instrument,
            "expiry": expiry,
            "strike": strike,
            "is_call": is_call,
            "settlement": settlement,
            "forward": forward,
            "bid": premium_to_usd(no_quote_to_nan(numbers["BID_PRICE"]), forward, settlement),
            "ask": premium_to_usd(no_quote_to_nan(numbers["ASK_PRICE"]), forward, settlement),
            "mark_iv": percent_to_decimal(numbers["MARK_IV"]),
            "bid_size": numbers["BID_SIZE"],
            "ask_size": numbers["ASK_SIZE"],
            "open_interest": numbers["OPEN_INTEREST"],
            "volume": numbers["VOLUME"],
        },
        reasons,
        source=path.name,
        source_row=text["source_row"],
        malformed=malformed,
    )
