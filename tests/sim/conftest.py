"""Scenarios for the simulator tests."""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import pytest

from volguard.sim import REGIME_NAMES, Regime, Scenario


def flat_scenario(sigma: float = 1e-3, **regime: float) -> Scenario:
    """Every regime the same jump-free Heston with a tiny vol of variance (nearly Black)."""
    base = Regime("calm", kappa=2.0, theta=0.16, sigma=sigma, rho=-0.3, **regime)
    return Scenario(
        name="flat",
        underlying="BTC",
        start=pd.Timestamp("2026-03-02 09:00", tz="UTC"),
        spot=90_000.0,
        v0=0.16,
        regimes={name: replace(base, name=name) for name in REGIME_NAMES},
        script=(("calm", math.inf),),
    )


@pytest.fixture
def flat() -> Scenario:
    return flat_scenario()
