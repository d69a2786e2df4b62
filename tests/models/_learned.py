"""Shared by the learned-engine tests: the simulated calm market they train on, and the error
they are judged by."""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np

from volguard.market import MarketSnapshot
from volguard.models.base import SurfaceEngine
from volguard.models.quotes import fit_quotes
from volguard.sim import preset, simulate


@functools.cache
def calm_btc(days: float) -> tuple[MarketSnapshot, ...]:
    """Calm BTC snapshots 12 hours apart over ``days`` (simulated, seed 1), simulated once."""
    scenario = replace(preset("calm-2026-01"), script=(("calm", 5.0),))
    return tuple(simulate(scenario, days=days, freq="12h", seed=1).snapshots("BTC"))


def rmse_vol_pts(engine: SurfaceEngine, snapshot: MarketSnapshot) -> float:
    """Unweighted RMSE (vol points) of a fitted engine against the mid vols of the fit quotes of
    ``snapshot``."""
    q = fit_quotes(snapshot)
    return 100 * float(np.sqrt(np.mean((engine.implied_vol(q.k, q.t) - q.mid_iv) ** 2)))
