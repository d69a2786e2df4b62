"""A Black-Scholes world for the hedging tests: driftless geometric Brownian forwards with a
constant vol, where the Black-76 delta is the exact hedge and the premium is fair."""

from __future__ import annotations

import numpy as np

from volguard.kernels.api import black76_greeks
from volguard.models.hedging import HedgePaths


def bs_paths(
    n: int, m: int, *, vol: float = 0.6, days: float = 7.0, k0: float = 0.0, seed: int = 0
) -> HedgePaths:
    """``n`` paths of ``m`` equal steps over ``days`` with forward 100 at the start."""
    rng = np.random.default_rng(seed)
    tau = (m - np.arange(m + 1)) * days / 365.0 / m
    dt = days / 365.0 / m
    shocks = vol * np.sqrt(dt) * rng.standard_normal((n, m)) - 0.5 * vol**2 * dt
    forward = 100.0 * np.exp(np.column_stack([np.zeros(n), np.cumsum(shocks, axis=1)]))
    strike = np.full(n, 100.0 * np.exp(k0))
    iv = np.full((n, m), vol)
    g = black76_greeks(forward[:, :-1], strike[:, None], tau[None, :-1], iv, True)
    return HedgePaths(
        forward=forward,
        strike=strike,
        tau=tau,
        premium=g["price"][:, 0].copy(),
        iv=iv,
        delta_engine=g["delta"],
        realized_vol=np.full((n, m), vol),
        regime=np.full(n, "bs", dtype=object),
    )
