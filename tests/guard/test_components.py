"""Events, residuals, monitors, regime filter and conformal intervals of the guard."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from tests.guard.conftest import START, synthetic_market, synthetic_snapshot, write_store
from volguard.data.events import ReplaySource, quote_updates
from volguard.data.store import QuoteStore
from volguard.guard.conformal import AdaptiveConformal
from volguard.guard.monitors import ErrorMonitor, error_rate
from volguard.guard.residuals import residuals
from volguard.market.quotes import observed_vols
from volguard.market.smile import atm_vol
from volguard.market.snapshot import MarketSnapshot
from volguard.models import make_engine
from volguard.models.regime import (
    DVOL_MODEL,
    AtmRegime,
    RegimeFilter,
    fit_regime_hmm,
    stress_probability,
)


def test_replay_merges_underlyings_in_time_order(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    frames = [
        synthetic_snapshot(START + pd.Timedelta(hours=h), 0.5, -0.1, rng, underlying=u)
        for u, hours in (("BTC", (0, 12, 24)), ("ETH", (6, 12, 30)))
        for h in hours
    ]
    store = write_store(tmp_path / "s", pd.concat(frames, ignore_index=True))
    seen = [(s.ts, s.underlying) for s in ReplaySource(store, ["BTC", "ETH"])]
    assert seen == sorted(seen, key=lambda item: (item[0], item[1] != "BTC"))
    assert [u for _, u in seen] == ["BTC", "ETH", "BTC", "ETH", "BTC", "ETH"]
    window = list(ReplaySource(store, ["ETH"], START + pd.Timedelta(hours=7)))
    assert [s.ts.hour for s in window] == [21, 15]
    with pytest.raises(ValueError, match="speed"):
        ReplaySource(store, ["BTC"], speed=0)


def test_quote_updates_carry_every_quote() -> None:
    rows = synthetic_snapshot(START, 0.5, -0.1, np.random.default_rng(1))
    snap = MarketSnapshot.from_quotes(rows)
    updates = list(quote_updates(snap))
    assert len(updates) == len(rows)
    assert {u.instrument for u in updates} == set(rows["instrument"])
    assert all(u.bid < u.mid < u.ask for u in updates)


def test_residuals_of_the_true_surface_are_within_the_noise() -> None:
    rows = synthetic_snapshot(START, 0.5, -0.1, np.random.default_rng(2), noise=0.0)
    observed = observed_vols(MarketSnapshot.from_quotes(rows))
    # out-of-the-money side only: 5 expiries x 13 strikes, the ATM strike as a call
    assert len(observed) == 65
    engine = make_engine("svi").fit(MarketSnapshot.from_quotes(rows))
    res = residuals(engine, observed)
    # the quotes are symmetric in vol around the true smile, and the mid is the mid PRICE's vol:
    # in the far wings (premium convex in vol) it sits up to 0.25 vol points below the smile
    assert np.abs(res["err_vol"]).max() < 0.003
    assert np.median(np.abs(res["err_vol"])) < 0.0005
    np.testing.assert_allclose(res["half_spread_iv"], 0.006, atol=1e-6)
    np.testing.assert_allclose(res["err_hs"], res["err_vol"] / res["half_spread_iv"])


def test_monitor_buckets_rolling_and_ewma() -> None:
    mon = ErrorMonitor(window=2, halflife=1.0)
    frame = pd.DataFrame({"t": [0.2], "k": [0.0], "err_vol": [0.01], "err_hs": [1.0]})
    for err in (0.01, 0.03, 0.05):
        mon.update(frame.assign(err_vol=err, err_hs=err * 100))
    row = mon.summary.loc[("30-90d", "atm")]
    assert row["rolling_vol_pts"] == pytest.approx(4.0)  # the last two: 3 and 5
    assert row["ewma_vol_pts"] == pytest.approx(0.25 * 1 + 0.25 * 3 + 0.5 * 5)
    assert row["quotes"] == 3
    mon.reset()
    assert mon.summary.empty and mon.n_updates == 0


def test_error_rate_removes_the_floor_and_scales_with_age() -> None:
    assert error_rate(0.4, 0.5, 1.0) == 0.0
    assert error_rate(1.0, 0.0, 0.25) == pytest.approx(2.0)
    assert error_rate(1.0, 0.0, 1.0) == pytest.approx(error_rate(2.0, 0.0, 4.0))


def test_regime_filter_matches_hmmlearn_forward_probabilities() -> None:
    from hmmlearn.hmm import GaussianHMM

    x = np.array([0.3, -1.2, 0.8, 9.0, -7.0, 6.5, 0.2, -0.4, 0.1, 0.3])[:, None]
    hmm = GaussianHMM(2, covariance_type="full")
    hmm.startprob_, hmm.transmat_ = DVOL_MODEL.startprob, DVOL_MODEL.transmat
    hmm.means_, hmm.covars_ = DVOL_MODEL.means, DVOL_MODEL.covars
    # the smoothed probability of the last observation of a prefix is the filtered one
    expected = [hmm.predict_proba(x[: i + 1])[-1] for i in range(len(x))]
    f = RegimeFilter()
    got = []
    for row in x:
        f.update(row)
        got.append(f.probabilities)
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_fit_regime_hmm_orders_states_calm_first() -> None:
    rng = np.random.default_rng(3)
    x = np.r_[rng.normal(0, 4, 200), rng.normal(0, 1, 400)][:, None]
    model = fit_regime_hmm(x, seed=0)
    assert model.covars[0, 0, 0] < model.covars[1, 0, 0]
    np.testing.assert_allclose(model.transmat.sum(axis=1), 1.0)


def test_atm_vol_reads_the_synthetic_level() -> None:
    rows = synthetic_snapshot(START, 0.5, -0.1, np.random.default_rng(4), noise=0.0)
    observed = observed_vols(MarketSnapshot.from_quotes(rows))
    assert atm_vol(observed["t"], observed["k"], observed["mid_iv"]) == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("seed", [0, 1])
def test_aci_coverage_is_near_nominal_and_recovers_after_a_shift(seed: int) -> None:
    rng = np.random.default_rng(seed)
    aci = AdaptiveConformal(alpha=0.1, gamma=0.05, window=5)
    misses = []
    for step in range(600):
        scale = 1.0 if step < 300 else 3.0  # errors triple at step 300
        y = rng.normal(0.0, scale, 50)
        aci.update(np.zeros(50), y)
        misses.append(aci.last_miss_rate)
    calm, after = np.nanmean(misses[50:300]), np.nanmean(misses[350:600])
    assert abs(calm - 0.1) < 0.02
    assert abs(after - 0.1) < 0.02
    assert abs(aci.coverage - 0.9) < 0.02


def test_replay_of_a_synthetic_store_reads_every_snapshot(
    make_store: Callable[..., QuoteStore],
) -> None:
    store = make_store(4, None)
    assert len(list(ReplaySource(store, ["BTC"]))) == 4
    assert len(synthetic_market(4, None)) == 4 * 5 * 26


def _atm_steps(levels: list[float]) -> pd.DataFrame:
    """Daily steps whose 30-day at-the-money vol is each of ``levels`` (decimal)."""
    ts = pd.date_range("2026-01-01", periods=len(levels), freq="D", tz="UTC")
    grid = [(t, k) for t in (20 / 365, 40 / 365) for k in (-0.1, 0.1)]
    return pd.DataFrame(
        [
            {"ts": d, "t": t, "k": k, "mid_iv": v}
            for d, v in zip(ts, levels, strict=True)
            for t, k in grid
        ]
    )


def test_stress_probability_rises_on_a_vol_spike_and_never_looks_ahead() -> None:
    calm = [0.45 + 0.002 * np.sin(i) for i in range(20)]
    p = stress_probability(_atm_steps([*calm, 0.60, 0.70, 0.75]))
    values = list(p.values())
    assert max(values[:20]) < 0.2 and values[-1] > 0.8
    altered = stress_probability(_atm_steps([*calm, 0.30, 0.30, 0.30]))
    # a step's p uses the snapshots up to its start, its own included
    assert list(altered.values())[:20] == values[:20] and altered != p


def test_stress_probability_bridges_a_snapshot_without_an_atm_vol_as_the_runtime_does() -> None:
    frame = _atm_steps([0.45, 0.46, 0.47, 0.55])
    gap = frame["ts"] == frame["ts"].unique()[2]
    frame.loc[gap, "mid_iv"] = np.nan  # no mid vol that day: no at-the-money vol
    p = list(stress_probability(frame).values())
    regime, expected = AtmRegime(), []
    for ts, atm in zip(frame["ts"].unique(), [45.0, 46.0, np.nan, 55.0], strict=True):
        change = regime.update(ts, atm)
        expected.append(regime.stress_probability)
    assert change == pytest.approx((55.0 - 46.0) / np.sqrt(2.0))  # two days since the last
    np.testing.assert_allclose(p, expected)
