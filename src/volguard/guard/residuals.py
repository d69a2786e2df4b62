"""Per-quote errors of an engine against a snapshot's mids, in vol points and half-spreads."""

from __future__ import annotations

import numpy as np
import pandas as pd

from volguard.kernels.api import implied_vol
from volguard.market.contracts import SECONDS_PER_YEAR
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import SurfaceEngine

RESIDUAL_COLUMNS = (
    "instrument",
    "expiry",
    "strike",
    "is_call",
    "forward",
    "t",
    "k",
    "mid_iv",
    "half_spread_iv",
    "model_iv",
    "err_vol",
    "err_hs",
)
"""Columns of :func:`residuals`: vols and ``err_vol`` are decimals, ``err_hs`` in half-spreads."""


def observed_vols(snapshot: MarketSnapshot) -> pd.DataFrame:
    """The two-sided out-of-the-money quotes of ``snapshot`` with their bid, ask and mid vols.

    Out-of-the-money: puts below the forward, calls at and above it (the liquid side, as in
    :func:`volguard.models.quotes.fit_quotes`). Rows whose bid or ask has no implied vol are
    dropped. ``t`` is ACT/365 years from the snapshot time, ``k = ln(K/F)``.
    """
    q = snapshot.quotes
    f = q["forward"].to_numpy(dtype=float, na_value=np.nan)
    strike = q["strike"].to_numpy(dtype=float)
    t = (pd.DatetimeIndex(q["expiry"]) - snapshot.ts).total_seconds().to_numpy(
        dtype=float
    ) / SECONDS_PER_YEAR
    is_call = q["is_call"].to_numpy(dtype=bool, na_value=False)
    bid = q["bid"].to_numpy(dtype=float, na_value=np.nan)
    ask = q["ask"].to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.log(strike / f)
    keep = np.where(k >= 0, is_call, ~is_call) & np.isfinite(k) & (t > 0)
    keep &= np.isfinite(bid) & np.isfinite(ask) & (bid > 0)
    vols = implied_vol(
        np.concatenate([bid[keep], ask[keep]]),
        np.tile(f[keep], 2),
        np.tile(strike[keep], 2),
        np.tile(t[keep], 2),
        np.tile(is_call[keep], 2),
    )
    n = int(keep.sum())
    bid_iv, ask_iv = vols[:n], vols[n:]
    ok = np.isfinite(bid_iv) & np.isfinite(ask_iv) & (ask_iv >= bid_iv)
    out = pd.DataFrame(
        {
            "instrument": q["instrument"].to_numpy()[keep][ok],
            "expiry": pd.DatetimeIndex(q["expiry"])[keep][ok],
            "strike": strike[keep][ok],
            "is_call": is_call[keep][ok],
            "forward": f[keep][ok],
            "t": t[keep][ok],
            "k": k[keep][ok],
            "mid_iv": (bid_iv[ok] + ask_iv[ok]) / 2,
            "half_spread_iv": (ask_iv[ok] - bid_iv[ok]) / 2,
        }
    )
    return out


def residuals(engine: SurfaceEngine, observed: pd.DataFrame) -> pd.DataFrame:
    """Add the engine's vol and its error to :func:`observed_vols` rows.

    ``err_vol = model_iv - mid_iv`` (decimal vol); ``err_hs = err_vol / half_spread_iv`` (NaN
    for a zero spread). The engine is evaluated at the rows' own ``k`` and ``t`` (sticky
    moneyness: a surface fitted earlier is read at today's forwards).
    """
    out = observed.copy()
    model = engine.implied_vol(out["k"].to_numpy(dtype=float), out["t"].to_numpy(dtype=float))
    out["model_iv"] = model
    out["err_vol"] = model - out["mid_iv"].to_numpy(dtype=float)
    half = out["half_spread_iv"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["err_hs"] = np.where(half > 0, out["err_vol"].to_numpy(dtype=float) / half, np.nan)
    return out[list(RESIDUAL_COLUMNS)]
