"""The desk's protocol: buckets, per-snapshot aggregation, Diebold-Mariano, skill."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volguard.lab.skill import (
    desk_scorecard,
    desk_table,
    diebold_mariano,
    quote_buckets,
    skill_table,
)


def test_buckets_follow_expiry_and_delta() -> None:
    t = np.array([1.9, 2.0, 30.0, 30.0, 30.0]) / 365
    k = np.array([0.0, 0.0, 0.0, 0.5, -0.5])
    call = np.array([True, True, True, True, False])
    assert quote_buckets(t, k, np.full(5, 0.5), call).tolist() == [
        "short",
        "core",
        "core",
        "wing",  # a 30-day call 50 % out of the money: delta far below 0.1
        "wing",
    ]


def _rows(engine: str, errors: list[list[float]]) -> pd.DataFrame:
    """Prediction rows: one snapshot per inner list, mid 0.5, half-spread 1 vol point."""
    frames = []
    for day, errs in enumerate(errors):
        e = np.asarray(errs) / 100
        frames.append(
            pd.DataFrame(
                {
                    "engine": engine,
                    "protocol": "forecast-1",
                    "ts": pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(days=day),
                    "t": 30 / 365,
                    "k": 0.0,
                    "is_call": True,
                    "mid_iv": 0.5,
                    "bid_iv": 0.49,
                    "ask_iv": 0.51,
                    "vega": np.arange(1.0, e.size + 1),
                    "model_iv": 0.5 + e,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_per_snapshot_figures_are_aggregated_by_median_and_quartiles() -> None:
    rows = _rows("a", [[1.0, -1.0], [3.0, 3.0], [0.5, 2.0], [4.0, 0.0]])
    card = desk_scorecard(rows, ["engine"]).iloc[0]
    per = np.array([1.0, 3.0, np.sqrt((0.25 + 4) / 2), np.sqrt(8.0)])  # per-snapshot RMSE
    assert card["snapshots"] == 4
    assert card["iv_rmse_vol_pts"] == pytest.approx(np.median(per))
    assert card["iv_rmse_vol_pts_q25"] == pytest.approx(np.quantile(per, 0.25))
    assert card["iv_rmse_vol_pts_q75"] == pytest.approx(np.quantile(per, 0.75))
    # inside [bid, ask] = within 1 vol point: 2/2, 0/2, 1/2, 1/2 -> median 50 %
    assert card["inside_pct"] == pytest.approx(50.0)
    assert card["half_spread_rmse"] == pytest.approx(np.median(per))  # half-spread = 1 point
    weighted = [1.0, 3.0, np.sqrt((0.25 + 2 * 4) / 3), np.sqrt(16 / 3)]  # vega 1 and 2
    assert card["vega_w_rmse"] == pytest.approx(np.median(weighted))


def _dm_by_hand(d: np.ndarray, h: int) -> float:
    n = d.size
    mean = sum(d) / n
    gammas = []
    for lag in range(h):
        gammas.append(sum((d[i] - mean) * (d[i - lag] - mean) for i in range(lag, n)) / n)
    variance = (gammas[0] + 2 * sum(gammas[1:])) / n
    hln = ((n + 1 - 2 * h + h * (h - 1) / n) / n) ** 0.5  # Harvey et al. (1997), eq. 9
    return float(hln * mean / variance**0.5)


@pytest.mark.parametrize("h", [1, 2, 3])
def test_diebold_mariano_matches_the_formula_written_out(h: int) -> None:
    rng = np.random.default_rng(h)
    a, b = rng.gamma(2.0, 1.0, 40), rng.gamma(2.2, 1.0, 40)
    stat, p = diebold_mariano(a, b, horizon=h)
    assert stat == pytest.approx(_dm_by_hand(a - b, h), rel=1e-12)
    assert 0 < p < 1


def test_diebold_mariano_rejects_at_its_level_under_the_null() -> None:
    rng = np.random.default_rng(0)
    p = [diebold_mariano(*rng.normal(0, 1, (2, 60)) ** 2)[1] for _ in range(600)]
    assert 0.03 < np.mean(np.asarray(p) < 0.05) < 0.08
    assert np.isnan(diebold_mariano([1.0, 2.0], [1.0, 2.0])[0])  # too few pairs


def test_skill_is_against_the_best_baseline_with_its_test() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 2, (30, 8))
    rows = pd.concat(
        [
            _rows("persist-strike", noise.tolist()),
            _rows("persist-moneyness", (3 * noise).tolist()),  # a worse baseline
            _rows("engine", (0.5 * noise).tolist()),  # half the error of the best
            _rows("loser", (1.5 * noise).tolist()),
        ],
        ignore_index=True,
    )
    skill = skill_table(rows, ["protocol"]).set_index("engine")
    assert set(skill["best_baseline"]) == {"persist-strike"}
    assert skill.loc["persist-strike", "skill"] == 0.0
    assert skill.loc["engine", "skill"] == pytest.approx(0.5)
    assert skill.loc["engine", "dm_stat"] < 0 and skill.loc["engine", "dm_p"] < 1e-3
    assert skill.loc["loser", "skill"] == pytest.approx(-0.5)  # losing is reported as losing
    assert skill.loc["loser", "dm_stat"] > 0
    marked = pd.concat([rows, _rows("venue-mark", (0.1 * noise).tolist())], ignore_index=True)
    table = desk_table(marked, ["engine", "protocol"]).set_index("engine")
    assert set(table["best_baseline"]) == {"venue-mark"}  # the venue's own surface wins ...
    assert set(table["best_naive"]) == {"persist-strike"}  # ... the naive bar stays
    assert table.loc["engine", "skill_naive"] == pytest.approx(0.5)
    assert table.loc["engine", "skill"] == pytest.approx(-4.0)
    table = desk_table(rows, ["engine", "protocol"])
    assert set(table["bucket"]) == {"core"}
    assert table.set_index("engine")["baseline"].to_dict() == {
        "engine": False,
        "loser": False,
        "persist-moneyness": True,
        "persist-strike": True,
    }


def test_two_underlyings_at_one_time_are_two_snapshots() -> None:
    btc = _rows("a", [[1.0, 1.0]]).assign(underlying="BTC")
    eth = _rows("a", [[3.0, 3.0]]).assign(underlying="ETH")
    card = desk_scorecard(pd.concat([btc, eth], ignore_index=True), ["engine"]).iloc[0]
    assert card["snapshots"] == 2 and card["iv_rmse_vol_pts"] == pytest.approx(2.0)
