"""``tardis-smiles``: hourly Deribit cross-sections derived from Tardis.dev ``options_chain``.

The files of ``tardis-deribit-monthly-smiles/smiles/<YYYY-MM>.csv.gz``: one row per instrument
and kept UTC hour. Columns and units:

========================  ==============================================================
``ts_us``, ``expiry_us``  microseconds since the epoch (UTC)
``asset``                 ``btc`` / ``eth``
``strike``                USD
``opt_type``              ``call`` / ``put``
``mark_iv``, ``bid_iv``,  Deribit implied vols in percent (empty = no bid / no ask)
``ask_iv``
``mark_price``            coin per 1 coin (inverse option)
``underlying_price``      USD, the expiry's future or synthetic forward (F)
``delta``                 Deribit delta (not kept)
``open_interest``         contracts
========================  ==============================================================

Each row is an option's last update inside its UTC hour (in practice at HH:59:5x), i.e. its quote as
of the next full hour: that hour is the row's ``ts``, so the rows of one kept hour form one
snapshot. The file has no bid/ask prices, so ``bid`` and ``ask`` stay NaN while
``bid_iv``/``ask_iv`` are kept; ``mark`` is ``mark_price * underlying_price`` USD. The instrument
name is rebuilt the Deribit way (``BTC-27JUN25-2000-P``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from volguard.data.loaders._common import (
    RowReasons,
    as_of_bucket_end,
    assemble,
    missing_required,
    parse_choice,
    parse_float,
    parse_utc,
    read_csv_text,
)
from volguard.data.loaders._deribit import percent_to_decimal
from volguard.market.contracts import premium_to_usd
from volguard.market.deribit import deribit_names

REQUIRED = (
    "ts_us",
    "asset",
    "expiry_us",
    "strike",
    "opt_type",
    "mark_iv",
    "bid_iv",
    "ask_iv",
    "mark_price",
    "underlying_price",
    "open_interest",
)


def read_tardis_smiles(path: Path) -> pd.DataFrame:
    """Read one ``tardis-deribit-monthly-smiles`` file into quote rows.

    Parameters
    ----------
    path : Path
        A ``.csv`` or ``.csv.gz`` file with the columns of :data:`REQUIRED`.

    Returns
    -------
    DataFrame
        The quarantine columns (:data:`volguard.data.schema.QUARANTINE_COLUMNS`), one row per data
        line: ``mark`` in USD per 1 coin, vols as decimals, ``bid``/``ask`` NaN (not in the file),
        ``venue`` ``deribit``, ``settlement`` ``inverse``, ``reason`` the row's first parse problem.

    Raises
    ------
    DataFileError
        If the file is unreadable, a truncated gzip, not UTF-8, or lacks a required column.
    """
    text, malformed = read_csv_text(path, REQUIRED)
    reasons = RowReasons(len(text))
    missing_required(text, ("ts_us", "asset", "expiry_us", "strike", "opt_type"), reasons)
    ts = as_of_bucket_end(parse_utc(text, "ts_us", reasons, unit="us"), 3600.0)
    expiry = parse_utc(text, "expiry_us", reasons, unit="us")
    strike = parse_float(text, "strike", reasons)
    is_call = parse_choice(text, "opt_type", {"call": True, "put": False}, reasons)
    numbers = {
        col: parse_float(text, col, reasons)
        for col in (
            "mark_iv",
            "bid_iv",
            "ask_iv",
            "mark_price",
            "underlying_price",
            "open_interest",
        )
    }
    underlying = text["asset"].str.strip().str.upper()
    forward = numbers["underlying_price"]
    n = len(text)
    return assemble(
        {
            "ts": ts,
            "venue": "deribit",
            "underlying": underlying,
            "instrument": deribit_names(underlying, expiry, strike, is_call),
            "expiry": expiry,
            "strike": strike,
            "is_call": is_call,
            "settlement": "inverse",
            "forward": forward,
            "bid": np.full(n, np.nan),
            "ask": np.full(n, np.nan),
            "mark": premium_to_usd(numbers["mark_price"], forward, "inverse"),
            "bid_iv": percent_to_decimal(numbers["bid_iv"]),
            "ask_iv": percent_to_decimal(numbers["ask_iv"]),
            "mark_iv": percent_to_decimal(numbers["mark_iv"]),
            "open_interest": numbers["open_interest"],
        },
        reasons,
        source=path.name,
        source_row=text["source_row"],
        malformed=malformed,
    )
