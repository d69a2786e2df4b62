"""Calibration: jump statistics on planted jumps, and the stored calibration against real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from volguard.data.ingest import build_store
from volguard.data.store import open_store
from volguard.sim.calibrate import WINDOWS, jump_statistics, window_snapshots
from volguard.sim.scenario import calibration
from volguard.sim.surface_facts import surface_facts


def test_jump_statistics_find_planted_jumps() -> None:
    rng = np.random.default_rng(0)
    n = 24 * 365 * 3
    r = rng.normal(0.0, 0.5 / np.sqrt(8760), n)  # 50 % vol diffusion
    at = rng.choice(np.arange(200, n), size=90, replace=False)  # 30 jumps a year
    r[at] += np.sign(rng.normal(size=at.size)) * rng.uniform(0.04, 0.08, at.size)  # > 7 sigma
    close = pd.Series(
        90_000 * np.exp(np.cumsum(r)), index=pd.date_range("2021-01-01", periods=n, freq="h")
    )
    stats = jump_statistics(close)
    both = (
        stats["calm"]["lam"] * stats["calm"]["hours"]
        + stats["stressed"]["lam"] * stats["stressed"]["hours"]
    ) / (stats["calm"]["hours"] + stats["stressed"]["hours"])
    assert both == pytest.approx(30.0, rel=0.15)
    assert stats["calm"]["realised_vol"] == pytest.approx(0.5, rel=0.25)


@pytest.mark.realdata
def test_stored_window_facts_are_reproduced_from_the_real_snapshots(
    snapshot_files: list[Path], tmp_path: Path
) -> None:
    stored = calibration()["windows"]
    wanted = {pd.Timestamp(ts) for name in ("calm", "crash") for ts in stored[name]["snapshots"]}
    files = [
        f
        for f in snapshot_files
        if any(
            abs(pd.Timestamp(f.name.split("_")[-1][:15], tz="UTC") - ts) < pd.Timedelta(minutes=2)
            for ts in wanted
        )
    ]
    build_store(tmp_path / "store", [("deribit-snapshot", f) for f in files])
    store = open_store(tmp_path / "store")
    for name in ("calm", "crash"):
        snaps = window_snapshots(
            store, "BTC", WINDOWS[name], per_window=len(stored[name]["snapshots"])
        )
        assert [str(s.ts) for s in snaps] == stored[name]["snapshots"]
        facts = pd.DataFrame([surface_facts(s.quotes) for s in snaps]).median()
        for key, value in stored[name]["facts"].items():
            assert facts[key] == pytest.approx(value, rel=1e-5), (name, key)
