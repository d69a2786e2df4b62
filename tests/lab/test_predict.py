"""Nowcast and forecast predictions on a simulated market, scored against quotes and truth."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from volguard.lab.metrics import scorecard
from volguard.lab.predict import forecast, nowcast
from volguard.lab.splits import NowcastSplit
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
    with pytest.raises(ValueError, match="illiquid"):
        nowcast(snaps, ENGINES, NowcastSplit("illiquid"))
    assert isinstance(cells, pd.DataFrame)
