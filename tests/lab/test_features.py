"""Feature stability: permutation importance across leave-one-regime-out folds, the report."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from volguard.lab.features import (
    COLUMNS,
    derangement,
    feature_importance,
    select_stable_features,
    stability_report,
)
from volguard.market import MarketSnapshot
from volguard.models.learned import DEFAULT_FEATURES as FEATURES
from volguard.sim import preset, simulate

FAST = {"n_estimators": 100}
"""gbm training settings of the tests (100 trees instead of 400: seconds)."""


@pytest.fixture(scope="module")
def market() -> tuple[list[MarketSnapshot], list[str]]:
    """Six BTC snapshots 12 hours apart: three calm, then three in a crash (seed 1)."""
    scenario = replace(preset("calm-2026-01"), script=(("calm", 1.5), ("crash", 1.5)))
    run = simulate(scenario, days=3, freq="12h", seed=1)
    labels = run.truth.groupby("ts", observed=True)["regime"].first().astype(str).tolist()
    return list(run.snapshots("BTC")), labels


@pytest.fixture(scope="module")
def table(market: tuple[list[MarketSnapshot], list[str]]) -> pd.DataFrame:
    snaps, labels = market
    return feature_importance(snaps, labels, train_settings=FAST)


def test_one_row_per_fold_and_input(
    market: tuple[list[MarketSnapshot], list[str]], table: pd.DataFrame
) -> None:
    _, labels = market
    assert labels == ["calm"] * 3 + ["crash"] * 3
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == 2 * (2 + len(FEATURES))
    assert table.groupby("fold")["feature"].apply(tuple).to_dict() == {
        "calm": ("k", "t", *FEATURES),
        "crash": ("k", "t", *FEATURES),
    }
    assert (table["test_snapshots"] == 3).all() and np.isfinite(table["importance"]).all()
    assert (table["rmse_vol_pts"] > 0).all()
    # the smile's shape: scrambling log-moneyness costs more than anything else in every fold
    top = table[table["rank"] == 1]
    assert top["feature"].tolist() == ["k", "k"] and (top["importance"] > 1.0).all()
    # ranks: 1 = largest importance within the fold
    for _, g in table.groupby("fold"):
        order = g.sort_values("importance", ascending=False)
        assert order["rank"].is_monotonic_increasing


def test_seeded_and_deterministic(
    market: tuple[list[MarketSnapshot], list[str]], table: pd.DataFrame
) -> None:
    snaps, labels = market
    pd.testing.assert_frame_equal(feature_importance(snaps, labels, train_settings=FAST), table)
    other = feature_importance(snaps, labels, seed=1, train_settings=FAST)
    assert not np.allclose(other["importance"], table["importance"])


def test_a_feature_constant_across_the_held_out_snapshots_has_zero_importance(
    market: tuple[list[MarketSnapshot], list[str]], table: pd.DataFrame
) -> None:
    # the crash fold trains on the three calm snapshots either way; held out are the three
    # crash snapshots, or three copies of the first: then every state feature is constant
    # across the held-out snapshots and permuting it changes no prediction
    snaps, labels = market
    crash = table[table["fold"] == "crash"].set_index("feature")["importance"]
    assert (crash[list(FEATURES)] != 0).any()  # the model does read a state feature
    copies = feature_importance(snaps[:3] + [snaps[3]] * 3, labels, train_settings=FAST)
    held = copies[copies["fold"] == "crash"].set_index("feature")["importance"]
    assert (held[list(FEATURES)] == 0.0).all()
    assert held["k"] > 1.0


def test_derangements_leave_no_snapshot_its_own_value_and_are_uniform() -> None:
    rng = np.random.default_rng(0)
    draws = [tuple(derangement(3, rng).tolist()) for _ in range(400)]
    # the two derangements of three snapshots, each about half the time
    assert set(draws) == {(1, 2, 0), (2, 0, 1)}
    assert 150 < draws.count((1, 2, 0)) < 250
    with pytest.raises(ValueError, match="n >= 2"):
        derangement(1, rng)


def test_only_the_trained_features_are_permuted(
    market: tuple[list[MarketSnapshot], list[str]],
) -> None:
    snaps, labels = market
    two = feature_importance(
        snaps, labels, features=("atm_vol_30d", "put_share"), n_repeats=1, train_settings=FAST
    )
    assert set(two["feature"]) == {"k", "t", "atm_vol_30d", "put_share"}
    assert len(two) == 8 and (two["importance_std"] == 0).all()  # one repeat


def test_nn_is_supported(market: tuple[list[MarketSnapshot], list[str]]) -> None:
    snaps, labels = market
    table = feature_importance(
        snaps,
        labels,
        engine="nn",
        features=("term_slope",),
        n_repeats=1,
        train_settings={"epochs": 20},
    )
    assert len(table) == 2 * 3 and np.isfinite(table["importance"]).all()


def test_select_stable_features_is_the_reports_suggestion(
    market: tuple[list[MarketSnapshot], list[str]], table: pd.DataFrame
) -> None:
    snaps, labels = market
    chosen = select_stable_features(snaps, labels, train_settings=FAST, min_share=0.5)
    assert chosen == stability_report(table, min_share=0.5).features
    assert set(chosen) <= set(FEATURES)


def _hand() -> pd.DataFrame:
    rows = []
    values = {
        "calm": [4.0, 1.0, 0.3, 0.0, 0.2],
        "crash": [3.0, 2.0, -0.1, 0.0, 0.1],
        "rally": [5.0, 0.5, 0.4, 0.0, 0.3],
    }
    names = ["k", "atm_vol_30d", "term_slope", "put_share", "half_spread_vol"]
    for fold, imp in values.items():
        rows += [
            {"fold": fold, "feature": n, "importance": v} for n, v in zip(names, imp, strict=True)
        ]
    return pd.DataFrame(rows)


def test_report_flags_follow_the_rule() -> None:
    report = stability_report(_hand())
    t = report.table.set_index("feature")
    assert t.index.tolist() == ["k", "atm_vol_30d", "half_spread_vol", "term_slope", "put_share"]
    assert t.loc["atm_vol_30d", "mean"] == pytest.approx(3.5 / 3)
    assert t.loc["atm_vol_30d", "std"] == pytest.approx(np.std([1.0, 2.0, 0.5], ddof=1))
    assert t.loc["term_slope", "share_positive"] == pytest.approx(2 / 3)
    assert (t.loc["term_slope", "worst_fold"], t.loc["term_slope", "worst"]) == ("crash", -0.1)
    assert t["stable"].to_dict() == {
        "k": True,
        "atm_vol_30d": True,
        "half_spread_vol": True,
        "term_slope": False,  # hurts when crash is held out
        "put_share": False,  # never used: exactly 0 is not an improvement
    }
    assert not t.loc["k", "selectable"] and t.loc["put_share", "selectable"]
    assert report.features == ("atm_vol_30d", "half_spread_vol")  # FEATURES order, no k
    # two folds of three suffice at min_share 0.6; a 0.25 vol-point floor drops half_spread_vol
    assert stability_report(_hand(), min_share=0.6).features == (
        "atm_vol_30d",
        "term_slope",
        "half_spread_vol",
    )
    assert stability_report(_hand(), min_importance=0.25).features == ("atm_vol_30d",)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"regimes": ["calm"] * 5}, "one label per snapshot"),
        ({"engine": "ssvi"}, "no permutable state inputs"),
        ({"engine": "hybrid"}, "no permutable state inputs"),
        ({"features": ("vix",)}, "unknown"),
        ({"n_repeats": 0}, "n_repeats must be >= 1"),
        ({"min_snapshots": 1}, "min_snapshots must be >= 2"),
        ({"train_settings": {"features": ("k",)}}, "must not set ['features']"),
        ({"min_snapshots": 4}, "no fold"),
        ({"regimes": ["calm"] * 6}, "no fold"),
    ],
)
def test_invalid_arguments_are_named(
    market: tuple[list[MarketSnapshot], list[str]], kwargs: dict[str, object], needle: str
) -> None:
    snaps, labels = market
    args: dict[str, object] = {"regimes": labels, **kwargs}
    with pytest.raises(ValueError) as info:
        feature_importance(snaps, **args)  # type: ignore[arg-type]
    assert needle in str(info.value)


def test_report_rejects_a_malformed_table() -> None:
    with pytest.raises(ValueError, match="lacks columns"):
        stability_report(pd.DataFrame({"fold": ["a"], "feature": ["k"]}))
    with pytest.raises(ValueError, match="twice"):
        stability_report(pd.concat([_hand(), _hand()]))
    with pytest.raises(ValueError, match="min_share"):
        stability_report(_hand(), min_share=0)
