"""Per-quote errors of an engine against a snapshot's mids, in vol points and half-spreads
(the quotes' vols come from :func:`volguard.market.quotes.observed_vols`)."""

from __future__ import annotations

import pandas as pd

from volguard.kernels.residuals import vol_residuals
from volguard.market.quotes import OBSERVED_COLUMNS
from volguard.models.base import SurfaceEngine

RESIDUAL_COLUMNS = (
    *OBSERVED_COLUMNS,
    "model_iv",
    "err_vol",
    "err_hs",
)
"""Columns of :func:`residuals`: vols and ``err_vol`` are decimals, ``err_hs`` in half-spreads."""


def residuals(engine: SurfaceEngine, observed: pd.DataFrame) -> pd.DataFrame:
    """Add the engine's vol and its error to
    :func:`~volguard.market.quotes.observed_vols` rows.

    ``err_vol = model_iv - mid_iv`` (decimal vol); ``err_hs = err_vol / half_spread_iv`` (NaN
    for a zero spread). The engine is evaluated at the rows' own ``k`` and ``t`` (sticky
    moneyness: a surface fitted earlier is read at today's forwards).
    """
    out = observed.copy()
    model = engine.implied_vol(out["k"].to_numpy(dtype=float), out["t"].to_numpy(dtype=float))
    out["model_iv"] = model
    out["err_vol"], out["err_hs"] = vol_residuals(
        model, out["mid_iv"].to_numpy(dtype=float), out["half_spread_iv"].to_numpy(dtype=float)
    )
    return out[list(RESIDUAL_COLUMNS)]
