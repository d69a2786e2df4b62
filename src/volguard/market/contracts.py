"""Option contracts and the one place where coin premiums become USD and back.

Deribit BTC/ETH options are *inverse*: the premium is paid in the coin, per one coin of
notional. Inside volguard every price is in USD per one unit of underlying; the conversion
uses the expiry's forward ``F`` (Deribit's ``underlying_price``), as Deribit does for its marks:
``usd = coin * F``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from volguard._typing import ArrayLike, FloatArray, Settlement

DERIBIT_EXPIRY_HOUR_UTC = 8


def coin_to_usd(price_coin: ArrayLike, forward: ArrayLike) -> FloatArray:
    """Convert an inverse option premium from coin to USD per unit of underlying.

    Parameters
    ----------
    price_coin : array_like
        Premium in coin (BTC or ETH) per one coin of notional.
    forward : array_like
        Forward of the option's expiry, USD per coin; broadcasts against ``price_coin``.

    Returns
    -------
    ndarray
        Premium in USD per one coin, ``price_coin * forward``.

    Examples
    --------
    >>> float(coin_to_usd(0.05, 90_000.0))
    4500.0
    """
    usd: FloatArray = np.multiply(
        np.asarray(price_coin, dtype=float), np.asarray(forward, dtype=float)
    )
    return usd


def usd_to_coin(price_usd: ArrayLike, forward: ArrayLike) -> FloatArray:
    """Convert a USD premium per unit of underlying to coin per coin (see :func:`coin_to_usd`).

    Examples
    --------
    >>> float(usd_to_coin(4500.0, 90_000.0))
    0.05
    """
    coin: FloatArray = np.divide(
        np.asarray(price_usd, dtype=float), np.asarray(forward, dtype=float)
    )
    return coin


def premium_to_usd(price: ArrayLike, forward: ArrayLike, settlement: ArrayLike) -> FloatArray:
    """Premium in USD per unit of underlying, whatever the settlement of each row.

    ``settlement`` holds ``"inverse"`` (coin premium, converted with ``forward``) or ``"linear"``
    (already USD/USDC, returned unchanged) per row.
    """
    price_arr = np.asarray(price, dtype=float)
    inverse = np.asarray(settlement) == "inverse"
    return np.where(inverse, coin_to_usd(price_arr, forward), price_arr)


@dataclass(frozen=True)
class DeribitInstrument:
    """A Deribit option: ``BTC-25SEP26-120000-P`` (inverse), ``BTC_USDC-...`` (linear)."""

    name: str
    underlying: str
    expiry: pd.Timestamp
    strike: float
    is_call: bool
    settlement: Settlement


_MONTHS = {
    m: i
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
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
    expiry = pd.Timestamp(
        year=2000 + int(match["yy"]),
        month=_MONTHS[match["mon"]],
        day=int(match["day"]),
        hour=DERIBIT_EXPIRY_HOUR_UTC,
        tz="UTC",
    )
    quote = match["quote"]
    return DeribitInstrument(
        name=name.strip(),
        underlying=match["base"],
        expiry=expiry,
        strike=float(match["strike"].replace("d", ".")),
        is_call=match["cp"] == "C",
        settlement="linear" if quote and quote != match["base"] else "inverse",
    )
