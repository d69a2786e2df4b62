"""Bid, ask and mark implied vols of a quote table in one call.

Reads the quote schema (:mod:`volguard.data.schema`): ``bid``/``ask``/``mark`` are USD per one
unit of underlying, ``forward`` is ``F``, ``t`` is ACT/365 years. Coin premiums (Deribit's
raw inverse quotes, coin per coin) are accepted with ``premium="coin"`` and converted with
:func:`volguard.market.contracts.coin_to_usd` (``usd = coin * F``), the one place where that
conversion lives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from volguard._typing import ArrayLike
from volguard.kernels.api import implied_vol
from volguard.kernels.status import STATUS_NAMES
from volguard.market.contracts import coin_to_usd

PRICE_COLUMNS: tuple[str, ...] = ("bid", "ask", "mark")
NEEDED: tuple[str, ...] = ("forward", "strike", "t", "is_call")


def quote_implied_vols(
    quotes: pd.DataFrame,
    *,
    premium: Literal["usd", "coin"] = "usd",
    columns: Sequence[str] = PRICE_COLUMNS,
    discount: ArrayLike = 1.0,
) -> pd.DataFrame:
    """Implied Black-76 vols and statuses of the premium columns of a quote table.

    Parameters
    ----------
    quotes : DataFrame
        Rows in the quote schema; needs ``forward`` (USD), ``strike`` (USD), ``t`` (years),
        ``is_call`` (bool) and the premium ``columns``. Missing premiums (NaN, e.g. no bid)
        get NaN vol and status ``non_finite_input``.
    premium : {"usd", "coin"}, default "usd"
        Unit of the premium columns: USD per unit of underlying (the schema) or coin per
        coin (Deribit inverse quotes as published), converted as ``coin * forward``.
    columns : sequence of str, default ("bid", "ask", "mark")
        Premium columns to invert.
    discount : array_like, default 1.0
        Discount factor of the premiums (1.0 for Deribit; broadcast against the rows).

    Returns
    -------
    DataFrame
        Same index as ``quotes``; for each column ``c``: ``c_iv`` (decimal, float64, NaN
        unless ok) and ``c_iv_status`` (status name: ``ok``, ``below_intrinsic``,
        ``above_upper_bound``, ``zero_time``, ``non_finite_input``, ``ill_posed``,
        ``invalid_input``), in the order of ``columns``.

    Raises
    ------
    ValueError
        If a needed column is missing or ``premium`` is not "usd"/"coin".

    Examples
    --------
    >>> q = pd.DataFrame({"forward": [100.0], "strike": [100.0], "t": [1.0],
    ...                   "is_call": [True], "bid": [7.9], "ask": [8.1], "mark": [8.0]})
    >>> out = quote_implied_vols(q)
    >>> [round(float(out[c].iloc[0]), 4) for c in ("bid_iv", "ask_iv", "mark_iv")]
    [0.1983, 0.2034, 0.2009]
    >>> out["mark_iv_status"].tolist()
    ['ok']
    """
    if premium not in ("usd", "coin"):
        raise ValueError(f"premium must be 'usd' or 'coin'; got {premium!r}")
    missing = [c for c in (*NEEDED, *columns) if c not in quotes.columns]
    if missing:
        raise ValueError(f"quotes lacks column(s) {missing}; needs {[*NEEDED, *columns]}")
    forward = quotes["forward"].to_numpy(dtype=np.float64, na_value=np.nan)
    strike = quotes["strike"].to_numpy(dtype=np.float64, na_value=np.nan)
    t = quotes["t"].to_numpy(dtype=np.float64, na_value=np.nan)
    is_call_raw = quotes["is_call"]
    known = is_call_raw.notna().to_numpy()
    is_call = is_call_raw.fillna(True).astype(bool).to_numpy()
    out: dict[str, object] = {}
    for col in columns:
        price = quotes[col].to_numpy(dtype=np.float64, na_value=np.nan)
        if premium == "coin":
            price = coin_to_usd(price, forward)
        price = np.where(known, price, np.nan)
        vol, status = implied_vol(price, forward, strike, t, is_call, discount, return_status=True)
        out[f"{col}_iv"] = vol
        lookup = np.array([STATUS_NAMES[i] for i in sorted(STATUS_NAMES)], dtype=object)
        out[f"{col}_iv_status"] = pd.array(lookup[status.astype(np.int64)], dtype="string")
    return pd.DataFrame(out, index=quotes.index)
