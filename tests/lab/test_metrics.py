"""Scorecard metrics and the generalization gap, on hand-made predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volguard.lab.metrics import (
    generalization_gap,
    quote_errors,
    scorecard,
    selection_overfitting,
)


def predictions(seed: int = 0) -> pd.DataFrame:
    """Two engines; engine ``b`` is twice as wrong in the crash as in calm, ``a`` equally."""
    rng = np.random.default_rng(seed)
    rows = []
    for regime, n_snap in (("calm", 40), ("crash", 20)):
        for s in range(n_snap):
            ts = pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(
                hours=s + (1000 if regime == "crash" else 0)
            )
            for engine, scale in (("a", 1.0), ("b", 1.0 if regime == "calm" else 2.0)):
                err = rng.normal(0, 0.01 * scale, 30)
                rows.append(
                    pd.DataFrame(
                        {
                            "engine": engine,
                            "protocol": "nowcast",
                            "regime": regime,
                            "ts": ts,
                            "mid_iv": 0.5,
                            "model_iv": 0.5 + err,
                            "bid_iv": 0.49,
                            "ask_iv": 0.51,
                            "vega": 100.0,
                            "price": 1000.0,
                            "model_price": 1000.0 + 100.0 * err,
                            "forward": 50_000.0,
                        }
                    )
                )
    return pd.concat(rows, ignore_index=True)


def test_scorecard_metrics_by_hand() -> None:
    pred = pd.DataFrame(
        {
            "engine": ["x"] * 4,
            "model_iv": [0.52, 0.48, 0.50, 0.53],
            "mid_iv": [0.50] * 4,
            "bid_iv": [0.49, 0.49, 0.49, np.nan],
            "ask_iv": [0.51, 0.51, 0.51, 0.51],
            "vega": [1.0, 1.0, 2.0, 0.0],
            "price": [10.0] * 4,
            "model_price": [11.0, 9.0, 10.0, 12.0],
            "forward": [100.0] * 4,
            "true_delta": [0.5] * 4,
            "model_delta": [0.6, 0.4, 0.5, 0.5],
        }
    )
    row = scorecard(pred).iloc[0]
    assert row["n"] == 4
    assert row["iv_rmse_vol_pts"] == pytest.approx(np.sqrt((4 + 4 + 0 + 9) / 4))
    assert row["iv_mae_vol_pts"] == pytest.approx((2 + 2 + 0 + 3) / 4)
    assert row["vega_w_rmse"] == pytest.approx(np.sqrt((4 + 4) / 4))  # zero vega: no weight
    # the ask-only quote counts on its side: 0.53 is above its ask, so outside
    assert row["inside_spread_pct"] == pytest.approx(100 / 4)
    assert row["half_spread_rmse"] == pytest.approx(np.sqrt((4 + 4 + 0) / 3))
    assert row["price_rmse_usd"] == pytest.approx(np.sqrt((1 + 1 + 0 + 4) / 4))
    assert row["price_rmse_coin"] == pytest.approx(row["price_rmse_usd"] / 100)
    assert row["delta_rmse"] == pytest.approx(np.sqrt(0.02 / 4))
    assert np.isnan(row["true_iv_rmse_vol_pts"])  # no truth given


def test_scorecard_groups_and_merges_cells() -> None:
    pred = predictions()
    cells = pd.DataFrame(
        {
            "engine": ["a", "a", "b"],
            "protocol": "nowcast",
            "regime": ["calm", "crash", "calm"],
            "fit_ms": [1.0, 3.0, 5.0],
            "failed": [False, True, False],
            "arb_violations": [0, 2, 1],
        }
    )
    card = scorecard(pred, cells).set_index(["engine", "regime"])
    assert len(card) == 4
    assert card.loc[("a", "crash"), "failures"] == 1
    assert card.loc[("b", "calm"), "arb_violations"] == 1
    assert card.loc[("b", "crash"), "iv_rmse_vol_pts"] == pytest.approx(2.0, rel=0.1)


def test_generalization_gap_and_its_interval() -> None:
    first = generalization_gap(predictions(), "calm", n_boot=300)
    gap = first.set_index(["engine", "regime"])
    assert gap.loc[("a", "calm"), "gen_gap"] == 1.0
    assert gap.loc[("b", "crash"), "gen_gap"] == pytest.approx(2.0, rel=0.1)
    assert gap.loc[("b", "crash"), "gen_gap_lo"] < 2.0 < gap.loc[("b", "crash"), "gen_gap_hi"]
    assert gap.loc[("a", "crash"), "gen_gap_lo"] < 1.0 < gap.loc[("a", "crash"), "gen_gap_hi"]
    again = generalization_gap(predictions(), "calm", n_boot=300)
    pd.testing.assert_frame_equal(first, again)  # seeded


def test_quote_errors_are_nan_without_the_columns() -> None:
    err = quote_errors(pd.DataFrame({"model_iv": [0.5], "mid_iv": [0.4]}))
    assert err["iv_err_vol_pts"].iloc[0] == pytest.approx(10.0)
    assert np.isnan(err["delta_err"].iloc[0])


def test_selection_overfitting_finds_the_better_engine_and_no_overfitting() -> None:
    pred = predictions(5)  # engine b twice as wrong in the crash, a tie in calm
    table = selection_overfitting(pred, n_splits=4).set_index("protocol")
    assert table.loc["nowcast", "best_engine"] == "a" and table.loc["nowcast", "snapshots"] == 60
    # a is better in the crash and a tie in calm: chosen in-sample, it rarely ranks low out of it
    assert table.loc["nowcast", "pbo"] <= 0.5
