"""The guard's hot path on plain arrays: a snapshot's quote vols and an engine's errors.

:class:`QuoteVols` holds what :func:`volguard.models.quotes.observed_vols` returns (the two-sided
out-of-the-money quotes with their mid vol and half-spread in vol) as NumPy arrays, built
straight from the snapshot's columns: no DataFrame is made per snapshot, so scoring costs the
vectorised kernels (Let's Be Rational inversion, the engine's surface) and little else.
:func:`score` reads the engine at each quote and returns the errors of
:func:`volguard.guard.residuals.residuals`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from volguard._typing import FloatArray
from volguard.kernels.api import implied_vol
from volguard.market.contracts import SECONDS_PER_YEAR
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import SurfaceEngine

NS_PER_SECOND = 1e9


@dataclass(frozen=True)
class QuoteVols:
    """Two-sided out-of-the-money quotes of one snapshot, as arrays of equal length.

    ``rows`` are the quotes' positions in ``snapshot.quotes`` (for the instrument names and any
    other column); ``t`` ACT/365 years from the snapshot, ``k = ln(K/F)``, vols decimal,
    ``half_spread_iv = (ask_iv - bid_iv) / 2``, ``mid_iv = (bid_iv + ask_iv) / 2``.
    """

    rows: np.ndarray
    strike: FloatArray
    is_call: np.ndarray
    forward: FloatArray
    t: FloatArray
    k: FloatArray
    mid_iv: FloatArray
    half_spread_iv: FloatArray

    def __len__(self) -> int:
        return int(self.rows.size)

    def subset(self, mask: np.ndarray) -> QuoteVols:
        """The quotes where ``mask`` is True."""
        return QuoteVols(
            self.rows[mask],
            self.strike[mask],
            self.is_call[mask],
            self.forward[mask],
            self.t[mask],
            self.k[mask],
            self.mid_iv[mask],
            self.half_spread_iv[mask],
        )

    @classmethod
    def from_snapshot(cls, snapshot: MarketSnapshot) -> QuoteVols:
        """The quotes :func:`~volguard.models.quotes.observed_vols` keeps, same rules and order.

        Out-of-the-money: puts below the forward, calls at and above it; the bid must be
        positive and both sides must invert to a vol with ``ask_iv >= bid_iv``.

        Examples
        --------
        >>> rows = pd.DataFrame({
        ...     "ts": pd.to_datetime(["2026-01-15 08:00"] * 2, utc=True), "underlying": "BTC",
        ...     "instrument": ["BTC-14FEB26-90000-P", "BTC-14FEB26-110000-C"],
        ...     "expiry": pd.to_datetime(["2026-02-14 08:00"] * 2, utc=True),
        ...     "strike": [90e3, 110e3], "is_call": [False, True], "forward": [100e3, 100e3],
        ...     "bid": [2_300.0, 1_500.0], "ask": [2_500.0, 1_700.0]})
        >>> qv = QuoteVols.from_snapshot(MarketSnapshot.from_quotes(rows))
        >>> qv.rows.tolist(), qv.mid_iv.round(3).tolist()
        ([0, 1], [0.567, 0.427])
        """
        q = snapshot.quotes
        f = q["forward"].to_numpy(dtype=float, na_value=np.nan)
        strike = q["strike"].to_numpy(dtype=float)
        expiry_ns = pd.DatetimeIndex(q["expiry"]).as_unit("ns").asi8  # any stored resolution
        t = (expiry_ns - snapshot.ts.value) / NS_PER_SECOND / SECONDS_PER_YEAR
        is_call = q["is_call"].to_numpy(dtype=bool, na_value=False)
        bid = q["bid"].to_numpy(dtype=float, na_value=np.nan)
        ask = q["ask"].to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.log(strike / f)
        keep = np.where(k >= 0, is_call, ~is_call) & np.isfinite(k) & (t > 0)
        keep &= np.isfinite(bid) & np.isfinite(ask) & (bid > 0)
        rows = np.flatnonzero(keep)
        vols = implied_vol(
            np.concatenate([bid[rows], ask[rows]]),
            np.tile(f[rows], 2),
            np.tile(strike[rows], 2),
            np.tile(t[rows], 2),
            np.tile(is_call[rows], 2),
        )
        bid_iv, ask_iv = vols[: rows.size], vols[rows.size :]
        ok = np.isfinite(bid_iv) & np.isfinite(ask_iv) & (ask_iv >= bid_iv)
        rows, bid_iv, ask_iv = rows[ok], bid_iv[ok], ask_iv[ok]
        return cls(
            rows,
            strike[rows],
            is_call[rows],
            f[rows],
            t[rows],
            k[rows],
            (bid_iv + ask_iv) / 2,
            (ask_iv - bid_iv) / 2,
        )


@dataclass(frozen=True)
class Scores:
    """An engine's vols at some quotes and its errors: ``err_vol = model_iv - mid_iv``
    (decimal vol), ``err_hs = err_vol / half_spread_iv`` (NaN for a zero spread)."""

    model_iv: FloatArray
    err_vol: FloatArray
    err_hs: FloatArray


def score(engine: SurfaceEngine, quotes: QuoteVols) -> Scores:
    """The engine read at the quotes' own ``k`` and ``t`` (sticky moneyness), and its errors."""
    model = np.asarray(engine.implied_vol(quotes.k, quotes.t), dtype=float)
    err = model - quotes.mid_iv
    half = quotes.half_spread_iv
    with np.errstate(divide="ignore", invalid="ignore"):
        err_hs = np.where(half > 0, err / half, np.nan)
    return Scores(model, err, err_hs)
