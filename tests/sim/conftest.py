"""Base markets of the stress tests: the synthetic eSSVI market and two real Deribit chains."""

from __future__ import annotations

from pathlib import Path

import pytest

from volguard.data.hygiene import classify, split
from volguard.data.loaders import read_deribit_snapshot
from volguard.market import MarketSnapshot
from volguard.sim.stress import Reference, synthetic_snapshot

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
