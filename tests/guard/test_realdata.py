"""The issue's real-data check on a subset of deribit-svcj-snapshots (BTC and ETH).

Subset: the snapshots from 30 Dec 2025 to 1 Feb 2026 (calm January, then the crash that starts
with the 29 Jan 15:45 UTC snapshot) and from 16 Jun to 17 Aug 2026 (calm July and early
August, with its own warm-up in late June). ``examples/guard_replay_deribit.py`` replays all.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from volguard.data.events import ReplaySource
from volguard.data.ingest import build_store
from volguard.data.store import QuoteStore, open_store
from volguard.guard.policy import State
from volguard.guard.runtime import Guard
from volguard.guard.summary import alarms_per_month, snapshots_to_leave_normal
from volguard.models import make_engine

pytestmark = pytest.mark.realdata
CRASH_START = "2026-01-29T12:00"  # first snapshot after: 29 Jan 15:45 UTC (BTC -3.8 % in 6 h)
WINDOWS = (("20251230", "20260201"), ("20260616", "20260817"))


def _in_windows(path: Path) -> bool:
    day = path.name.split("_")[-1][:8]
    return any(lo <= day <= hi for lo, hi in WINDOWS)


@pytest.fixture(scope="module")
def store(snapshot_files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> QuoteStore:
    root = tmp_path_factory.mktemp("guard-real") / "store"
    build_store(root, [("deribit-snapshot", p) for p in snapshot_files if _in_windows(p)])
    return open_store(root)


def decisions(store: QuoteStore, underlying: str, start: str, end: str) -> pd.DataFrame:
    guard = Guard(make_engine("ssvi"), make_engine("black76-flat"))
    rows = []
    for snap in ReplaySource(store, [underlying], start, end):
        guard.update(snap)
        assert guard.decision is not None
        d = guard.decision
        rows.append({"ts": d.ts, "previous": d.previous, "state": d.state, "reason": d.reason})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("underlying", ["BTC", "ETH"])
def test_crash_is_caught_and_calm_january_is_quiet(store: QuoteStore, underlying: str) -> None:
    d = decisions(store, underlying, "2025-12-30", "2026-02-01T23:59")
    left = snapshots_to_leave_normal(d, CRASH_START)
    assert left is not None and left <= 2
    crash = d[d["ts"] >= pd.Timestamp(CRASH_START, tz="UTC")]
    assert max(State[s] for s in crash["state"]) >= State.RECALIBRATE
    assert (alarms_per_month(d, "2026-01-01", "2026-01-28T23:59") <= 1).all()


@pytest.mark.parametrize("underlying", ["BTC", "ETH"])
def test_calm_july_august_raise_at_most_one_alarm_a_month(
    store: QuoteStore, underlying: str
) -> None:
    d = decisions(store, underlying, "2026-06-16", "2026-08-17T23:59")
    assert (alarms_per_month(d, "2026-07-01", "2026-08-17T23:59") <= 1).all()
