"""The quotes volguard fits, scores and guards against: one view, one mid.

:class:`QuoteVols` is the single definition of the observed quote universe and its vols, read
by the engines' fits (:func:`volguard.models.quotes.fit_quotes`), the lab's scorecard and the
guard alike, so an engine is scored against the very mid it was fitted to:

* **universe**: the out-of-the-money side of each strike (puts below the forward, calls at and
  above it) with a two-sided quote (a positive bid and an ask not below it) and ``t > 0``;
* **forward and t**: the snapshot's (:class:`~volguard.market.snapshot.MarketSnapshot`), so
  ``k = ln(K / F)`` with ``F`` the expiry's one forward;
* **bid and ask vols**: Black-76 implied vols (Let's Be Rational) of the bid and ask prices;
* **mid vol**: the implied vol of the **mid price** ``(bid + ask) / 2``, not the average of the
  two vols. The mid price is the price a trade at the middle of the book pays, and its vol
  always lies inside ``[bid_iv, ask_iv]``; in the wings, where the premium is convex in vol,
  the average of the two vols sits below the mid price's vol (``docs/data.md`` measures it).
  Sources that publish vols but no prices (Tardis smiles) are priced at their bid and ask vols
  first, so the same rule applies;
* **half-spread** ``(ask_iv - bid_iv) / 2`` (decimal vol): the unit of the errors in
  half-spreads, and the band ``[bid_iv, ask_iv]`` of the inside-band share.

A quote whose bid or ask has no implied vol (below the numerical floor of the inversion) is
left out.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from volguard._typing import FloatArray, IntArray
from volguard.kernels.api import black76_price, implied_vol
from volguard.market.snapshot import MarketSnapshot


@dataclass(frozen=True)
class QuoteVols:
    """Two-sided out-of-the-money quotes of one snapshot, as arrays of equal length.

    ``rows`` are the quotes' positions in ``snapshot.quotes`` (for the instrument names and any
    other column), in the snapshot's order (expiry, strike); ``expiry`` UTC; ``strike`` and
    ``forward`` USD; ``t`` ACT/365 years; ``k = ln(K/F)``; vols decimal (see the module
    docstring for the mid).
    """

    rows: IntArray
    expiry: pd.DatetimeIndex
    strike: FloatArray
    is_call: np.ndarray
    forward: FloatArray
    t: FloatArray
    k: FloatArray
    bid_iv: FloatArray
    ask_iv: FloatArray
    mid_iv: FloatArray

    @property
    def half_spread_iv(self) -> FloatArray:
        """Half the bid-ask spread in vol, ``(ask_iv - bid_iv) / 2`` (decimal)."""
        half: FloatArray = (self.ask_iv - self.bid_iv) / 2
        return half

    def __len__(self) -> int:
        return int(self.rows.size)

    def subset(self, mask: np.ndarray) -> QuoteVols:
        """The quotes where ``mask`` (bool or positions) selects."""
        return QuoteVols(*(getattr(self, f.name)[mask] for f in fields(self)))

    @classmethod
    def from_snapshot(cls, snapshot: MarketSnapshot) -> QuoteVols:
        """The two-sided out-of-the-money quotes of ``snapshot`` and their vols.

        Examples
        --------
        >>> rows = pd.DataFrame({
        ...     "ts": pd.to_datetime(["2026-01-15 08:00"] * 2, utc=True), "underlying": "BTC",
        ...     "instrument": ["BTC-14FEB26-90000-P", "BTC-14FEB26-110000-C"],
        ...     "expiry": pd.to_datetime(["2026-02-14 08:00"] * 2, utc=True),
        ...     "strike": [90e3, 110e3], "is_call": [False, True], "forward": [100e3, 100e3],
        ...     "bid": [2_300.0, 1_500.0], "ask": [2_500.0, 1_700.0]})
        >>> qv = QuoteVols.from_snapshot(MarketSnapshot.from_quotes(rows))
        >>> qv.rows.tolist(), qv.mid_iv.round(4).tolist(), qv.half_spread_iv.round(4).tolist()
        ([0, 1], [0.5671, 0.4269], [0.0114, 0.0113])
        """
        q = snapshot.quotes
        f = q["forward"].to_numpy(dtype=float, na_value=np.nan)
        strike = q["strike"].to_numpy(dtype=float)
        t = q["t"].to_numpy(dtype=float, na_value=np.nan)
        is_call = q["is_call"].to_numpy(dtype=bool, na_value=False)
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.log(strike / f)
        otm = np.where(k >= 0, is_call, ~is_call) & np.isfinite(k) & (t > 0)
        bid = _price(q, "bid", f, strike, t, is_call, otm)
        ask = _price(q, "ask", f, strike, t, is_call, otm)
        rows = np.flatnonzero(otm & (bid > 0) & np.isfinite(ask) & (ask >= bid))
        n = rows.size
        vols = implied_vol(
            np.concatenate([bid[rows], ask[rows], (bid[rows] + ask[rows]) / 2]),
            np.tile(f[rows], 3),
            np.tile(strike[rows], 3),
            np.tile(t[rows], 3),
            np.tile(is_call[rows], 3),
        )
        bid_iv, ask_iv, mid_iv = vols[:n], vols[n : 2 * n], vols[2 * n :]
        ok = np.isfinite(bid_iv) & np.isfinite(ask_iv) & np.isfinite(mid_iv)
        rows = rows[ok]
        return cls(
            rows,
            pd.DatetimeIndex(q["expiry"])[rows],
            strike[rows],
            is_call[rows],
            f[rows],
            t[rows],
            k[rows],
            bid_iv[ok],
            ask_iv[ok],
            mid_iv[ok],
        )


def _price(
    q: pd.DataFrame,
    side: str,
    f: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    is_call: np.ndarray,
    otm: np.ndarray,
) -> FloatArray:
    """The ``side`` premium (USD); where a source gives the vol but no price, the Black-76
    price at that vol (out-of-the-money rows only: the others are never used)."""
    price = q[side].to_numpy(dtype=float, na_value=np.nan)
    column = f"{side}_iv"
    if column not in q:
        return price
    vol = q[column].to_numpy(dtype=float, na_value=np.nan)
    fill = otm & ~np.isfinite(price) & np.isfinite(vol) & (vol > 0)
    if fill.any():
        price = price.copy()
        price[fill] = black76_price(f[fill], strike[fill], t[fill], vol[fill], is_call[fill])
    return price


OBSERVED_COLUMNS: tuple[str, ...] = (
    "instrument",
    "expiry",
    "strike",
    "is_call",
    "forward",
    "t",
    "k",
    "bid_iv",
    "ask_iv",
    "mid_iv",
    "half_spread_iv",
)
"""Columns of :func:`observed_vols` (USD, ACT/365 years, decimal vols)."""


def observed_vols(snapshot: MarketSnapshot) -> pd.DataFrame:
    """:class:`QuoteVols` of ``snapshot`` as a table (:data:`OBSERVED_COLUMNS`), with the
    instrument names."""
    v = QuoteVols.from_snapshot(snapshot)
    return pd.DataFrame(
        {
            "instrument": snapshot.quotes["instrument"].to_numpy()[v.rows],
            "expiry": v.expiry,
            "strike": v.strike,
            "is_call": v.is_call,
            "forward": v.forward,
            "t": v.t,
            "k": v.k,
            "bid_iv": v.bid_iv,
            "ask_iv": v.ask_iv,
            "mid_iv": v.mid_iv,
            "half_spread_iv": v.half_spread_iv,
        }
    )
