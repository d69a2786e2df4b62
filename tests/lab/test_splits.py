"""Splitters: hand-checked index sets, purging against a brute force, CPCV and PBO."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from volguard.lab.splits import (
    CombinatorialPurgedCV,
    ForecastSplit,
    LeaveOneRegimeOut,
    NowcastSplit,
    PurgedKFold,
    WalkForward,
    probability_of_backtest_overfitting,
)

DAY = pd.Timestamp("2026-01-01", tz="UTC")


def panel_of(days: list[int], lives: list[float]) -> pd.DataFrame:
    """One row per (day, life in days): quoted on that day, expiring ``life`` days later."""
    ts = [DAY + pd.Timedelta(days=d) for d in days]
    return pd.DataFrame(
        {
            "ts": ts,
            "expiry": [t + pd.Timedelta(days=life) for t, life in zip(ts, lives, strict=True)],
        }
    )


def test_purged_kfold_by_hand() -> None:
    # days 0..5, two options a day: a daily (life 0.5) and a 3-day one (life 3)
    panel = panel_of([d for d in range(6) for _ in range(2)], [0.5, 3.0] * 6)
    splits = list(PurgedKFold(n_splits=3, embargo="0s").split(panel))
    # fold 0 tests days 0-1 (rows 0-3): nothing quoted before it, nothing to purge
    assert splits[0][1].tolist() == [0, 1, 2, 3]
    assert splits[0][0].tolist() == [4, 5, 6, 7, 8, 9, 10, 11]
    # fold 1 tests days 2-3 (rows 4-7): the 3-day options of days 0 and 1 (rows 1, 3) live into it
    assert splits[1][0].tolist() == [0, 2, 8, 9, 10, 11]
    # fold 2 tests days 4-5: the 3-day options of days 1, 2, 3 (rows 3, 5, 7) overlap it
    assert splits[2][0].tolist() == [0, 1, 2, 4, 6]


def test_embargo_drops_the_snapshots_right_after_a_test_fold() -> None:
    panel = panel_of(list(range(6)), [0.1] * 6)
    train, test = next(iter(PurgedKFold(n_splits=3, embargo="1D").split(panel)))
    assert test.tolist() == [0, 1] and train.tolist() == [3, 4, 5]


def test_purging_removes_exactly_the_overlapping_labels() -> None:
    rng = np.random.default_rng(0)
    days = np.sort(rng.integers(0, 40, 300)).tolist()
    panel = panel_of(days, rng.uniform(0.1, 12.0, 300).tolist())
    ts, end = panel["ts"].to_numpy(), panel["expiry"].to_numpy()
    for train, test in PurgedKFold(n_splits=5).split(panel):
        start, stop = ts[test].min(), ts[test].max()
        overlapping = set(np.flatnonzero((ts <= stop) & (end >= start)))
        assert set(train) == set(range(len(panel))) - overlapping
        assert not set(train) & set(test)


def test_cpcv_tests_each_group_once_per_path() -> None:
    panel = panel_of(list(range(12)), [0.2] * 12)
    cv = CombinatorialPurgedCV(n_groups=6, n_test_groups=2)
    splits = list(cv.split(panel))
    assert len(splits) == cv.get_n_splits() == 15
    counts = Counter(int(i) for _, test in splits for i in test)
    assert set(counts.values()) == {cv.n_paths}  # every row tested in 5 splits
    for train, test in splits:
        assert len(test) == 4 and not set(train) & set(test)
        assert len(train) + len(test) == 12  # short-lived labels: nothing to purge


def test_walk_forward_never_trains_on_the_future() -> None:
    panel = panel_of(list(range(10)), [0.1] * 10)
    for train, test in WalkForward(n_splits=3, gap=1).split(panel):
        assert panel["ts"].iloc[train].max() < panel["ts"].iloc[test].min() - pd.Timedelta(days=1)


def test_leave_one_regime_out_and_forecast() -> None:
    groups = np.array(["calm", "crash", "calm", "rally", "crash"])
    out = {
        tuple(te.tolist()): tr.tolist() for tr, te in LeaveOneRegimeOut().split(None, groups=groups)
    }
    assert out == {(0, 2): [1, 3, 4], (1, 4): [0, 2, 3], (3,): [0, 1, 2, 4]}
    with pytest.raises(ValueError, match="groups"):
        next(iter(LeaveOneRegimeOut().split(None)))
    panel = panel_of([0, 0, 1, 2, 2], [1.0] * 5)
    assert [(a.tolist(), b.tolist()) for a, b in ForecastSplit(2).split(panel)] == [
        ([0, 1], [3, 4])
    ]


def test_nowcast_modes() -> None:
    panel = pd.DataFrame(
        {
            "ts": [0] * 8,
            "expiry": [1, 1, 1, 2, 2, 3, 3, 3],
            "k": [-0.1, 0.0, 0.1, -0.1, 0.1, -0.2, 0.0, 0.2],
            "bid": [1.0, 1.0, np.nan, 1.0, 1.0, 1.0, 1.0, np.nan],
            "ask": [2.0] * 8,
        }
    )
    train, test = next(iter(NowcastSplit("illiquid").split(panel)))
    assert test.tolist() == [2, 7] and train.tolist() == [0, 1, 3, 4, 5, 6]
    splits = list(NowcastSplit("expiry").split(panel))
    assert [t.tolist() for _, t in splits] == [[3, 4]]  # the interior expiry only
    assert NowcastSplit("expiry").get_n_splits(panel) == 1
    a = [t.tolist() for _, t in NowcastSplit("random", 0.5, n_splits=3, seed=1).split(panel)]
    b = [t.tolist() for _, t in NowcastSplit("random", 0.5, n_splits=3, seed=1).split(panel)]
    assert a == b and all(set(t) <= {0, 1, 3, 4, 5, 6} for t in a)


def test_pbo_is_high_for_noise_and_zero_for_a_dominant_candidate() -> None:
    rng = np.random.default_rng(3)
    noise = rng.normal(size=(240, 30))
    assert 0.3 < probability_of_backtest_overfitting(noise, n_splits=8) < 0.7
    skilled = noise.copy()
    skilled[:, 0] += 1.0
    assert probability_of_backtest_overfitting(skilled, n_splits=8) == 0.0
    with pytest.raises(ValueError, match="even"):
        probability_of_backtest_overfitting(noise, n_splits=3)
