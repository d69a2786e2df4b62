"""Shared markets of the sim tests: simulator scenarios, the synthetic eSSVI market, real chains."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from volguard.data.hygiene import classify, split
from volguard.data.loaders import read_deribit_snapshot
from volguard.market import MarketSnapshot
from volguard.sim import REGIME_NAMES, Regime, Scenario
from volguard.sim.stress import Reference, synthetic_snapshot


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


REAL = {"calm": "20260115T092130Z", "crash": "20260205T093647Z"}
"""BTC chains of 2026-01-15 (calm, 674 quotes) and 2026-02-05 (crash, 792 quotes)."""


@pytest.fixture(scope="session")
def synthetic_ref() -> Reference:
    return Reference.fit(synthetic_snapshot())


def _btc(path: Path) -> MarketSnapshot:
    clean, _ = split(classify(read_deribit_snapshot(path)))
    return MarketSnapshot.from_quotes(clean[clean["underlying"] == "BTC"])


@pytest.fixture(scope="session", params=sorted(REAL))
def real_ref(request: pytest.FixtureRequest, snapshot_files: list[Path]) -> Reference:
    """The eSSVI reference of a real BTC chain (calm or crash)."""
    path = next(p for p in snapshot_files if REAL[request.param] in p.name)
    return Reference.fit(_btc(path))


@pytest.fixture(scope="session")
def crash_ref(snapshot_files: list[Path]) -> Reference:
    path = next(p for p in snapshot_files if REAL["crash"] in p.name)
    return Reference.fit(_btc(path))
