"""Deribit option instruments: the one place that parses and writes their names.

``BTC-25SEP26-120000-P`` is an inverse (coin-settled) BTC put expiring on 25 September 2026 at
08:00 UTC, strike 120,000 USD; ``BTC_USDC-...`` is the linear (USDC-settled) twin; strikes with a
decimal write ``d`` for the point (``XRP_USDC-30JAN26-2d5-C``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from volguard._typing import FloatArray, Settlement

DERIBIT_EXPIRY_HOUR_UTC = 8
"""Deribit options expire at 08:00 UTC."""

_MONTH_CODES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass(frozen=True)
class DeribitInstrument:
    """A Deribit option: ``BTC-25SEP26-120000-P`` (inverse), ``BTC_USDC-...`` (linear)."""

    name: str
    underlying: str
    expiry: pd.Timestamp
    strike: float
    is_call: bool
    settlement: Settlement


_MONTHS = {m: i for i, m in enumerate(_MONTH_CODES, start=1)}
_NAME = re.compile(
    r"^(?P<base>[A-Z]+)(?:_(?P<quote>[A-Z]+))?-(?P<day>\d{1,2})(?P<mon>[A-Z]{3})(?P<yy>\d{2})"
    r"-(?P<strike>\d+(?:d\d+)?)-(?P<cp>[CP])$"
)


def parse_deribit_instrument(name: str) -> DeribitInstrument:
    """Parse a Deribit option instrument name; expiries are at 08:00 UTC.

    Strikes with a decimal use ``d`` as the point (``XRP_USDC-30JAN26-2d5-C``).

    Raises
    ------
    ValueError
        If ``name`` is not a Deribit option name; the message shows the expected form.

    Examples
    --------
    >>> inst = parse_deribit_instrument("BTC-25SEP26-120000-P")
    >>> (inst.underlying, str(inst.expiry), inst.strike, inst.is_call, inst.settlement)
    ('BTC', '2026-09-25 08:00:00+00:00', 120000.0, False, 'inverse')
    """
    match = _NAME.match(name.strip()) if isinstance(name, str) else None
    if match is None or match["mon"] not in _MONTHS:
        raise ValueError(
            f"instrument name {name!r} is not a Deribit option name like 'BTC-25SEP26-120000-P'"
        )
    try:
        expiry = pd.Timestamp(
            year=2000 + int(match["yy"]),
            month=_MONTHS[match["mon"]],
            day=int(match["day"]),
            hour=DERIBIT_EXPIRY_HOUR_UTC,
            tz="UTC",
        )
    except ValueError as exc:
        raise ValueError(f"instrument name {name!r} has an impossible expiry date") from exc
    quote = match["quote"]
    return DeribitInstrument(
        name=name.strip(),
        underlying=match["base"],
        expiry=expiry,
        strike=float(match["strike"].replace("d", ".")),
        is_call=match["cp"] == "C",
        settlement="linear" if quote and quote != match["base"] else "inverse",
    )


def strike_code(strike: float) -> str:
    """Deribit's strike text: ``2000`` for whole strikes, ``2d5`` for 2.5.

    Examples
    --------
    >>> strike_code(120000.0), strike_code(2.5)
    ('120000', '2d5')
    """
    if float(strike).is_integer():
        return str(int(strike))
    return repr(float(strike)).replace(".", "d")


def deribit_names(
    underlying: pd.Series, expiry: pd.Series, strike: FloatArray, is_call: pd.Series
) -> pd.Series:
    """Build Deribit option names such as ``BTC-27JUN25-2000-P`` (day without a leading zero).

    Parameters
    ----------
    underlying : Series of str
        Coin code (``BTC``, ``ETH``), upper case.
    expiry : Series of datetime64[ns, UTC]
        Expiry instants; the name uses their UTC calendar date.
    strike : ndarray, shape (n,)
        Strikes in USD.
    is_call : Series of boolean
        True for calls, False for puts.

    Returns
    -------
    Series of string
        The names; missing where any input of the row is missing.

    Examples
    --------
    >>> names = deribit_names(
    ...     pd.Series(["BTC"]),
    ...     pd.Series(pd.to_datetime(["2025-06-27 08:00"], utc=True)),
    ...     np.array([2000.0]),
    ...     pd.Series([False], dtype="boolean"),
    ... )
    >>> names.tolist()
    ['BTC-27JUN25-2000-P']
    """
    n = len(underlying)
    out: list[str | None] = [None] * n
    under: list[str | None] = [
        None if pd.isna(u) else str(u) for u in underlying.astype("string").tolist()
    ]
    exp = pd.to_datetime(expiry, utc=True)
    days = exp.dt.day.to_numpy(dtype=float, na_value=np.nan)
    months = exp.dt.month.to_numpy(dtype=float, na_value=np.nan)
    years = exp.dt.year.to_numpy(dtype=float, na_value=np.nan)
    calls: list[bool | None] = [
        None if pd.isna(c) else bool(c) for c in is_call.astype("boolean").tolist()
    ]
    strikes = np.asarray(strike, dtype=float)
    for i in range(n):
        if under[i] is None or calls[i] is None or np.isnan(days[i]) or not np.isfinite(strikes[i]):
            continue
        out[i] = (
            f"{under[i]}-{int(days[i])}{_MONTH_CODES[int(months[i]) - 1]}"
            f"{int(years[i]) % 100:02d}-{strike_code(strikes[i])}-{'C' if calls[i] else 'P'}"
        )
    return pd.Series(pd.array(out, dtype="string"), index=underlying.index)


def settlement_from_symbol(symbol: pd.Series) -> np.ndarray:
    """``linear`` for Deribit USDC-margined names (``BTC_USDC-...``), else ``inverse``.

    Examples
    --------
    >>> settlement_from_symbol(pd.Series(["BTC-27JUN25-2000-P", "BTC_USDC-27JUN25-2000-P"]))
    array(['inverse', 'linear'], dtype='<U7')
    """
    head = symbol.astype("string").str.split("-", n=1).str[0]
    linear = head.str.contains("_", regex=False).fillna(False).to_numpy(dtype=bool)
    return np.where(linear, "linear", "inverse")


def underlying_from_symbol(symbol: pd.Series) -> pd.Series:
    """The coin of a Deribit name: ``BTC`` from ``BTC-...`` and from ``BTC_USDC-...``.

    Examples
    --------
    >>> underlying_from_symbol(pd.Series(["ETH-1JUN25-2000-C", "AVAX_USDC-29MAY26-8d6-P"])).tolist()
    ['ETH', 'AVAX']
    """
    head = symbol.astype("string").str.split("-", n=1).str[0]
    coin = head.str.split("_", n=1).str[0].str.upper()
    return coin.where(coin.str.len() > 0)
