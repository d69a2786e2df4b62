"""Nowcast and forecast predictions on a simulated market, scored against quotes and truth."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from volguard.lab.metrics import scorecard
from volguard.lab.predict import PERSISTENCE, forecast, forecast_snapshot, nowcast
from volguard.lab.splits import NowcastSplit
from volguard.market.quotes import observed_vols
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import SurfaceEngine
from volguard.models.registry import make_engine
from volguard.sim import SimResult, preset, simulate


@pytest.fixture(scope="module")
def run() -> SimResult:
    scenario = replace(preset("calm-2026-01"), script=(("calm", 5.0),))
    return simulate(scenario, days=1, freq="8h", seed=3)


ENGINES = {"ssvi": make_engine("ssvi"), "flat": make_engine("black76-flat")}


def test_nowcast_predicts_exactly_the_held_out_quotes(run: SimResult) -> None:
    snaps = list(run.snapshots())
    pred, cells = nowcast(snaps, ENGINES, NowcastSplit("random", 0.25, n_splits=2, seed=1))
    assert set(cells["engine"]) == {"ssvi", "flat"} and len(cells) == 2 * 2 * len(snaps)
    assert not cells["failed"].any()
    # the two engines predict the same held-out rows of each split
    keys = pred.groupby("engine")[["ts", "split", "instrument"]].apply(
        lambda g: sorted(map(tuple, g.astype(str).to_numpy()))
    )
    assert keys["ssvi"] == keys["flat"]
    card = scorecard(pred, cells).set_index("engine")
    # a smile beats a flat vol on the quotes it did not see
    assert card.loc["ssvi", "iv_rmse_vol_pts"] < 0.5 * card.loc["flat", "iv_rmse_vol_pts"]
    assert card.loc["ssvi", "inside_spread_pct"] > card.loc["flat", "inside_spread_pct"]


def test_forecast_reads_the_old_surface_at_the_new_forwards(run: SimResult) -> None:
    snaps = list(run.snapshots())
    pred, cells = forecast(snaps, {"ssvi": ENGINES["ssvi"]}, horizon=1)
    assert len(cells) == len(snaps) - 1
    assert set(pred["ts"]) == {s.ts for s in snaps[1:]}
    truth = run.truth[["ts", "instrument", "true_iv", "true_delta"]]
    scored = pred.merge(truth, on=["ts", "instrument"])
    assert len(scored) == len(pred)
    card = scorecard(scored, cells).iloc[0]
    assert card["true_iv_rmse_vol_pts"] < 3.0 and card["delta_rmse"] < 0.05


class Broken(SurfaceEngine):
    name = "broken"

    def _calibrate(self, quotes: object) -> tuple[dict[str, float], bool, None, tuple[str, ...]]:
        raise ValueError("cannot fit")

    def total_variance(self, k: np.ndarray, t: np.ndarray) -> np.ndarray:
        raise AssertionError("never fitted")


def test_a_failing_engine_gives_failed_cells_not_an_exception(run: SimResult) -> None:
    snaps: list[MarketSnapshot] = list(run.snapshots())[:2]
    pred, cells = nowcast(snaps, {"broken": Broken()}, NowcastSplit("wings", 0.2))
    assert pred.empty and cells["failed"].all() and len(cells) == 2
    assert isinstance(cells, pd.DataFrame)


def test_illiquid_nowcast_scores_the_one_sided_quotes_against_their_mark(run: SimResult) -> None:
    snapshot = next(iter(run.snapshots()))
    q = snapshot.quotes
    k = np.log(q["strike"] / q["forward"])
    otm = np.where(k >= 0, q["is_call"], ~q["is_call"])
    one_sided = q[(q["bid"].notna() != q["ask"].notna()) & otm]
    assert len(one_sided) > 10  # the simulated book's wings have no bid
    pred, cells = nowcast([snapshot], ENGINES, NowcastSplit("illiquid"))
    assert set(pred["protocol"]) == {"nowcast-illiquid"} and len(cells) == len(ENGINES)
    ssvi = pred[pred["engine"] == "ssvi"].set_index("instrument")
    assert set(ssvi.index) == set(one_sided["instrument"])
    marks = one_sided.set_index("instrument")["mark_iv"]
    np.testing.assert_allclose(ssvi["mid_iv"], marks.reindex(ssvi.index))
    assert ssvi["bid_iv"].isna().all() == one_sided["bid"].isna().all()
    card = scorecard(pred).set_index("engine")
    # a bid-only or ask-only quote is "inside" when the model is on its side of the one price
    assert card.loc["ssvi", "inside_spread_pct"] > 50 and np.isnan(
        card.loc["ssvi", "half_spread_rmse"]
    )


def test_persistence_baselines(run: SimResult) -> None:
    first, second = list(run.snapshots())[:2]
    same, _ = forecast_snapshot({}, first, first, "forecast-0", baselines=True)
    # the snapshot predicted by itself: both baselines give back every quote's mid vol
    assert set(same["engine"]) == set(PERSISTENCE)
    np.testing.assert_allclose(same["model_iv"], same["mid_iv"], atol=1e-12)
    pred, cells = forecast_snapshot({}, first, second, "forecast-1", baselines=True)
    assert len(cells) == 2 and (cells["fit_ms"] == 0).all()
    strike = pred[pred["engine"] == "persist-strike"].set_index("instrument")["model_iv"]
    before = observed_vols(first).set_index("instrument")["mid_iv"]
    np.testing.assert_allclose(strike, before.reindex(strike.index))
    moneyness = pred[pred["engine"] == "persist-moneyness"]
    assert len(moneyness) >= len(strike)  # new strikes are interpolated, not dropped


def test_sticky_strike_reads_the_old_fit_at_the_old_moneyness(run: SimResult) -> None:
    first, second = list(run.snapshots("BTC"))[:2]
    fitted = make_engine("svi-plain").fit(first)
    table = forecast_snapshot(
        {"svi-plain": (fitted, {})}, first, second, "forecast-1", baselines=True
    )[0]
    strike = table[table["engine"] == "svi-plain-strike"]
    moneyness = table[table["engine"] == "svi-plain"]
    assert len(strike) == len(moneyness) > 0
    f_then = first.forwards.reindex(pd.DatetimeIndex(strike["expiry"])).to_numpy()
    k_then = np.log(strike["strike"].to_numpy() / f_then)
    np.testing.assert_allclose(
        strike["model_iv"], fitted.implied_vol(k_then, strike["t"].to_numpy()), rtol=1e-12
    )
    assert not np.allclose(strike["model_iv"], moneyness["model_iv"])  # the forward moved
