"""Regime labels: features without look-ahead, rules, the HMM, date ranges; on the simulator
and on the real crash."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from volguard.data.ingest import build_store
from volguard.data.store import open_store
from volguard.lab.regimes import FEATURES, hmm_labels, range_labels, rule_labels, snapshot_features
from volguard.sim import SimResult, preset, simulate


@pytest.fixture(scope="module")
def run() -> SimResult:
    """12 calm days then 4 crash days, BTC every 12 hours."""
    scenario = replace(preset("calm-2026-01"), script=(("calm", 12.0), ("crash", 4.0)))
    return simulate(scenario, days=16, freq="12h", seed=2)


@pytest.fixture(scope="module")
def simulated(run: SimResult) -> pd.DataFrame:
    return snapshot_features(run.quotes).assign(truth=run.path["regime"].astype(str).to_numpy())


def test_features_cover_every_snapshot_without_look_ahead(
    run: SimResult, simulated: pd.DataFrame
) -> None:
    assert list(simulated.columns[3:11]) == list(FEATURES)
    assert len(simulated) == 32 and simulated["ts"].is_monotonic_increasing
    # the first snapshot has no history: its 7-day return and drawdown are 0
    assert simulated["return_7d"].iloc[0] == 0.0 and simulated["drawdown_7d"].iloc[0] == 0.0
    # the features of the first 20 snapshots do not change when the later ones are dropped
    cut = simulated["ts"].iloc[19]
    head = snapshot_features(run.quotes[run.quotes["ts"] <= cut])
    pd.testing.assert_frame_equal(head, simulated.iloc[:20].drop(columns="truth"))


def test_rules_see_the_simulated_crash(simulated: pd.DataFrame) -> None:
    labels = rule_labels(simulated)
    calm, crash = labels[simulated["truth"] == "calm"], labels[simulated["truth"] == "crash"]
    assert (calm == "calm").mean() >= 0.8
    assert crash.isin(["crash", "stressed", "illiquid"]).mean() >= 0.5


def test_hmm_orders_states_by_vol_and_is_seeded(simulated: pd.DataFrame) -> None:
    a = hmm_labels(simulated, n_states=2, seed=0)
    assert a.equals(hmm_labels(simulated, n_states=2, seed=0))
    vols = simulated.groupby(a)["atm_30d"].mean()
    assert vols["hmm0"] < vols["hmm1"]


def test_range_labels_include_whole_end_days() -> None:
    ts = pd.Series(pd.to_datetime(["2026-02-06 23:00", "2026-02-07 00:00"], utc=True))
    assert range_labels(ts, {"crash": ("2026-01-29", "2026-02-06")}).tolist() == ["crash", "other"]


@pytest.mark.realdata
def test_the_real_crash_is_labelled(snapshot_files: list[Path], tmp_path: Path) -> None:
    wanted = ("202601", "20260201", "20260202", "20260203", "20260204", "20260205")
    files = [f for f in snapshot_files if any(w in f.name for w in wanted)]
    build_store(tmp_path / "s", [("deribit-snapshot", f) for f in files])
    panel = open_store(tmp_path / "s").read(underlying="BTC")
    features = snapshot_features(panel)
    labels = rule_labels(features)
    days = features["ts"].dt.strftime("%Y-%m-%d")
    calm = labels[(days >= "2026-01-05") & (days <= "2026-01-27")]
    crash = labels[(days >= "2026-01-30") & (days <= "2026-02-05")]
    assert (calm == "calm").mean() >= 0.8
    assert (crash != "calm").mean() >= 0.6
