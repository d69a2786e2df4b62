"""Option contracts and the one place where coin premiums become USD and back.

Deribit BTC/ETH options are *inverse*: the premium is paid in the coin, per one coin of
notional. Inside volguard every price is in USD per one unit of underlying; the conversion
uses the expiry's forward ``F`` (Deribit's ``underlying_price``), as Deribit does for its marks:
``usd = coin * F``.
"""

from __future__ import annotations

import numpy as np

from volguard._typing import ArrayLike, FloatArray


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
