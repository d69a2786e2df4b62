"""Snapshots for the engine tests: a synthetic SVI market and a real Deribit crash chain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from volguard.data.hygiene import classify, split
from volguard.data.loaders import read_deribit_snapshot
from volguard.kernels.api import black76_price
from volguard.market import MarketSnapshot
from volguard.models.parametric.svi import svi_raw

TS = pd.Timestamp("2026-01-15 09:00", tz="UTC")
TRUE_SVI = {  # a skewed crypto-like smile, total variance at t = 0.25
    "a": 0.02,
    "b": 0.12,
    "rho": -0.3,
    "m": 0.02,
    "sigma": 0.15,
}


def synthetic_snapshot(noise_vol: float = 0.0, seed: int = 7) -> MarketSnapshot:
    """Two expiries priced from SVI (the second with 2x the variance): calendar-consistent."""
    rng = np.random.default_rng(seed)
    rows = []
    for scale, days in ((1.0, 91.25), (2.0, 182.5)):
        expiry = TS + pd.Timedelta(days=days)
        t = days / 365.0
        forward = 95_000.0
        for k in np.linspace(-0.6, 0.5, 30):
            w = scale * svi_raw(np.array(k), **TRUE_SVI) * t / 0.25
            vol = float(np.sqrt(w / t)) + noise_vol * rng.standard_normal()
            strike = forward * np.exp(k)
            is_call = k >= 0
            mid = float(black76_price(forward, strike, t, vol, is_call))
            half = 0.002 * forward * 0.5
            rows.append(
                {
                    "ts": TS,
                    "underlying": "BTC",
                    "expiry": expiry,
                    "t": t,
                    "strike": strike,
                    "is_call": is_call,
                    "forward": forward,
                    "bid": max(mid - half, 1e-8),
                    "ask": mid + half,
                    "mark": mid,
                    "bid_iv": np.nan,
                    "ask_iv": np.nan,
                    "open_interest": 1.0,
                }
            )
    return MarketSnapshot.from_quotes(pd.DataFrame(rows))


@pytest.fixture(scope="session")
def synthetic() -> MarketSnapshot:
    return synthetic_snapshot()


@pytest.fixture(scope="session")
def crash_snapshot(snapshot_files: list[Path]) -> MarketSnapshot:
    """BTC on 2026-02-05 09:36 UTC, in the crash (12 expiries, 792 quotes)."""
    path = next(p for p in snapshot_files if "20260205T093647Z" in p.name)
    clean, _ = split(classify(read_deribit_snapshot(path)))
    return MarketSnapshot.from_quotes(clean[clean["underlying"] == "BTC"])
