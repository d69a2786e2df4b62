"""Conformal intervals from a predictions table: hand-checked quantiles, coverage on exchangeable
errors, recovery after a variance jump, causality, the warm-up and the half-spread score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volguard.errors import ConfigError
from volguard.lab.uncertainty import (
    conformal_intervals,
    coverage_table,
    recovery_after,
)

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def tiny() -> pd.DataFrame:
    """Three snapshots of one engine, errors (mid - model) in vol chosen by hand."""
    errors = {0: [0.01, -0.02, 0.03, -0.04], 1: [0.005, 0.025, -0.05], 2: [0.0, 0.02, -0.03]}
    rows = [
        {
            "engine": "e",
            "protocol": "p",
            "ts": T0 + pd.Timedelta(hours=12 * s),
            "model_iv": 0.5,
            "mid_iv": 0.5 + e,
        }
        for s, errs in errors.items()
        for e in errs
    ]
    return pd.DataFrame(rows)


def synthetic(
    n_snap: int = 100, n_quotes: int = 400, jump_at: int | None = None, seed: int = 0
) -> pd.DataFrame:
    """One engine whose errors are iid N(0, 2 vol pts), scaled x3 from snapshot ``jump_at``."""
    rng = np.random.default_rng(seed)
    snap = np.repeat(np.arange(n_snap), n_quotes)
    shifted = snap >= jump_at if jump_at is not None else np.zeros(snap.size, dtype=bool)
    sd = 0.02 * np.where(shifted, 3.0, 1.0)
    mid = 0.5 + rng.standard_normal(snap.size) * sd
    half = rng.uniform(0.005, 0.02, snap.size)
    return pd.DataFrame(
        {
            "engine": "e",
            "protocol": "p",
            "scenario": "market",
            "regime": np.where(shifted, "shift", "calm"),
            "ts": snap,
            "model_iv": 0.5,
            "mid_iv": mid,
            "bid_iv": mid - half,
            "ask_iv": mid + half,
        }
    )


# --- the quantile and the ACI step ------------------------------------------------------------


def test_split_intervals_by_hand() -> None:
    out = conformal_intervals(tiny(), level=0.5, window=1)
    snap0, snap1, snap2 = out.iloc[:4], out.iloc[4:7], out.iloc[7:]
    assert snap0[["lower_iv", "upper_iv", "covered"]].isna().all().all()
    # snapshot 1 from snapshot 0's scores (0.01, 0.02, 0.03, 0.04): k = ceil(5 * 0.5) = 3 -> 0.03
    np.testing.assert_allclose(snap1["lower_iv"], 0.47)
    np.testing.assert_allclose(snap1["upper_iv"], 0.53)
    assert snap1["covered"].tolist() == [1.0, 1.0, 0.0]
    # snapshot 2 from snapshot 1 only (window 1): (0.005, 0.025, 0.05), k = ceil(2) = 2 -> 0.025
    np.testing.assert_allclose(snap2["upper_iv"] - snap2["model_iv"], 0.025)
    assert snap2["covered"].tolist() == [1.0, 1.0, 0.0]
    # window 2: seven scores, k = ceil(8 * 0.5) = 4 -> 0.025 (0.005, 0.01, 0.02, 0.025, ...)
    wide = conformal_intervals(tiny(), level=0.5, window=2)
    np.testing.assert_allclose(wide.iloc[7:]["upper_iv"] - 0.5, 0.025)
    assert out.attrs["conformal"]["level"] == 0.5


def test_aci_intervals_by_hand() -> None:
    out = conformal_intervals(tiny(), level=0.5, method="aci", gamma=1.0, window=2)
    # snapshot 1: alpha_1 = 0.5, q = 0.03 as split; one miss in three:
    # alpha_2 = 0.5 + 1.0 (0.5 - 1/3) = 2/3, level 1/3 over seven scores: k = ceil(8 / 3) = 3,
    # the third of (0.005, 0.01, 0.02, 0.025, ...) = 0.02 (split: k = 4, 0.025)
    np.testing.assert_allclose(out.iloc[4:7]["upper_iv"] - 0.5, 0.03)
    np.testing.assert_allclose(out.iloc[7:]["upper_iv"] - 0.5, 0.02)


def test_input_is_not_mutated_and_index_kept() -> None:
    pred = tiny().sample(frac=1.0, random_state=3)  # rows out of time order
    before = pred.copy()
    out = conformal_intervals(pred, level=0.5, window=1)
    pd.testing.assert_frame_equal(pred, before)
    assert out.index.equals(pred.index)
    ordered = conformal_intervals(tiny(), level=0.5, window=1)
    pd.testing.assert_frame_equal(out.sort_index(), ordered)


# --- coverage, recovery ------------------------------------------------------------------------


def test_split_covers_exchangeable_errors_at_nominal() -> None:
    out = conformal_intervals(synthetic(n_snap=60, n_quotes=200), 0.9, window=10)
    row = coverage_table(out).iloc[0]
    assert row["n_intervals"] == 59 * 200
    assert 88.0 <= row["coverage_pct"] <= 92.0
    assert row["coverage_gap_pts"] == pytest.approx(row["coverage_pct"] - 90.0)
    # 90 % of |N(0, 2 pts)| is 1.645 * 2 = 3.29 vol pts: full width 6.58
    assert row["median_width_vol_pts"] == pytest.approx(6.58, abs=0.3)


def test_aci_recovers_from_a_variance_jump_faster_than_split() -> None:
    """Errors x3 from snapshot 50 (400 quotes a snapshot, window 20 for both).

    Rolling coverage over 5 snapshots, tolerance 2 points, up to snapshot 99 (seed 0):
    split enters the band after 19 snapshots and stays; ACI (gamma 0.2) enters after 5 but
    over-covers until about 22 (it repays its early misses); ACI with gamma 0.5 is back for good
    after 8, after a few snapshots of whole-line intervals.
    """
    pred = synthetic(jump_at=50)
    split = conformal_intervals(pred, 0.9, window=20)
    aci2 = conformal_intervals(pred, 0.9, method="aci", gamma=0.2, window=20)
    aci5 = conformal_intervals(pred, 0.9, method="aci", gamma=0.5, window=20)
    r_split, r_aci2, r_aci5 = (recovery_after(x, 50).iloc[0] for x in (split, aci2, aci5))
    assert r_split["snapshots_after"] == 50
    assert r_split["min_rolling_pct"] < 50.0  # the jump is felt: first snapshot about 42 %
    assert r_aci2["first_within_snapshots"] < r_split["first_within_snapshots"] / 2  # 5 vs 19
    assert r_aci5["recovery_snapshots"] < r_split["recovery_snapshots"] / 2  # 8 vs 19
    assert 16 <= r_split["recovery_snapshots"] <= 22
    # over the shifted regime ACI keeps nominal coverage; split falls short while refilling
    cov = {
        name: coverage_table(x, by=("regime",)).set_index("regime")["coverage_pct"]
        for name, x in (("split", split), ("aci", aci2))
    }
    assert abs(cov["aci"]["shift"] - 90.0) < 1.0 < 90.0 - cov["split"]["shift"]
    assert abs(cov["split"]["calm"] - 90.0) < 1.0


def test_recovery_counts_by_hand() -> None:
    covered = [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0]
    iv = pd.DataFrame(
        {"engine": "e", "ts": np.arange(8), "covered": covered, "lower_iv": 0.4, "upper_iv": 0.6}
    )
    # after ts 2 with window 1: rolling coverage 0, 0, 1, 1, 1, 0 -> never back for good
    r = recovery_after(iv, 2, 0.9, window=1, tolerance=0.1).iloc[0]
    assert np.isnan(r["recovery_snapshots"]) and r["first_within_snapshots"] == 2.0
    # up to ts 6: outside at snapshots 1-2, within from 3 on
    r = recovery_after(iv, 2, 0.9, window=1, tolerance=0.1, until=6).iloc[0]
    assert r["recovery_snapshots"] == 2.0 and r["snapshots_after"] == 5
    assert r["coverage_after_pct"] == pytest.approx(60.0)
    # never outside: 0
    assert (
        recovery_after(iv, 4, 0.9, window=1, tolerance=0.1, until=6).iloc[0]["recovery_snapshots"]
        == 0.0
    )


def test_recovery_accepts_timestamps() -> None:
    out = conformal_intervals(tiny(), level=0.5, window=1)
    r = recovery_after(out, "2026-01-01 12:00")  # naive: read as UTC
    assert r["snapshots_after"].tolist() == [2]


# --- causality and warm-up ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["split", "aci"])
def test_a_later_snapshot_never_changes_earlier_intervals(method: str) -> None:
    pred = synthetic(n_snap=30, n_quotes=20, jump_at=15, seed=1)
    base = conformal_intervals(pred, 0.9, method=method, window=5, gamma=0.3)
    rng = np.random.default_rng(7)
    for j in (3, 10, 15, 29):
        altered = pred.copy()
        at = altered["ts"] == j
        altered.loc[at, "mid_iv"] = 0.5 + rng.normal(0, 0.5, int(at.sum()))  # wild errors
        altered = altered.sample(frac=1.0, random_state=j)  # and a shuffled table
        out = conformal_intervals(altered, 0.9, method=method, window=5, gamma=0.3).loc[pred.index]
        keep = (pred["ts"] < j).to_numpy()
        cols = ["lower_iv", "upper_iv", "covered"]
        pd.testing.assert_frame_equal(out.loc[keep, cols], base.loc[keep, cols])
        # snapshot j's own interval is unchanged too (only its coverage can change)
        same = (pred["ts"] == j).to_numpy()
        np.testing.assert_array_equal(
            out.loc[same, "upper_iv"] - out.loc[same, "model_iv"],
            base.loc[same, "upper_iv"] - base.loc[same, "model_iv"],
        )
        later = (pred["ts"] > j).to_numpy()
        if later.any() and j < 29:
            assert not out.loc[later, "upper_iv"].equals(base.loc[later, "upper_iv"])


def test_no_interval_until_min_history_and_groups_apart() -> None:
    one = synthetic(n_snap=8, n_quotes=30)
    two = one.assign(engine="f", ts=one["ts"] + 3)  # a second engine starting later
    out = conformal_intervals(
        pd.concat([one, two], ignore_index=True), 0.9, window=4, min_history=3
    )
    for engine, start in (("e", 0), ("f", 3)):
        mine = out[out["engine"] == engine]
        early = mine["ts"] < start + 3
        assert mine.loc[early, ["lower_iv", "upper_iv", "covered"]].isna().all().all()
        assert mine.loc[~early, ["lower_iv", "upper_iv", "covered"]].notna().all().all()
    # the same errors give the same intervals in each group: calibrated apart
    np.testing.assert_array_equal(
        out.loc[out["engine"] == "e", "upper_iv"].to_numpy(),
        out.loc[out["engine"] == "f", "upper_iv"].to_numpy(),
    )


def test_too_few_scores_give_the_whole_line() -> None:
    pred = synthetic(n_snap=3, n_quotes=5)  # 5 scores: k = ceil(6 * 0.9) = 6 > 5
    out = conformal_intervals(pred, 0.9, window=1)
    snap1 = out[out["ts"] == 1]
    assert np.isinf(snap1["upper_iv"]).all() and (snap1["covered"] == 1.0).all()
    assert coverage_table(out).iloc[0]["median_width_vol_pts"] == np.inf


# --- the half-spread score ---------------------------------------------------------------------


def test_half_spread_score_scales_width_with_the_spread() -> None:
    pred = synthetic(n_snap=20, n_quotes=100)
    out = conformal_intervals(pred, 0.9, score="half_spread", window=5)
    half = (pred["ask_iv"] - pred["bid_iv"]) / 2
    ratio = (out["upper_iv"] - out["model_iv"]) / half
    per_snap = ratio.groupby(pred["ts"]).agg(["min", "max"]).dropna()
    np.testing.assert_allclose(per_snap["min"], per_snap["max"], rtol=1e-12)  # one q a snapshot
    width = (out["upper_iv"] - out["lower_iv"]).to_numpy()
    later = (pred["ts"] == 10).to_numpy()
    assert np.corrcoef(width[later], half[later])[0, 1] > 0.999
    # a one-sided quote has no half-spread: no score, no interval
    one_sided = pred.assign(bid_iv=np.where(pred.index % 2 == 0, np.nan, pred["bid_iv"]))
    got = conformal_intervals(one_sided, 0.9, score="half_spread", window=5)
    assert got.loc[one_sided["bid_iv"].isna(), "covered"].isna().all()
    assert got.loc[one_sided["bid_iv"].notna() & (pred["ts"] > 0), "covered"].notna().all()


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"level": 1.0}, "level"),
        ({"method": "cqr"}, "method"),
        ({"score": "rel"}, "score"),
        ({"window": 0}, "window"),
        ({"gamma": 0.0}, "gamma"),
        ({"min_history": 5, "window": 3}, "min_history"),
    ],
)
def test_settings_are_checked_by_name(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        conformal_intervals(tiny(), **kwargs)  # type: ignore[arg-type]


def test_missing_columns_and_missing_level() -> None:
    with pytest.raises(ValueError, match="mid_iv"):
        conformal_intervals(tiny().drop(columns="mid_iv"))
    out = conformal_intervals(tiny(), level=0.5, window=1)
    out.attrs.clear()
    with pytest.raises(ConfigError, match="level"):
        coverage_table(out)
    assert coverage_table(out, level=0.5)["n_intervals"].tolist() == [6]
