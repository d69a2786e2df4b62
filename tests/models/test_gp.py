"""``gp``: fit quality, posterior uncertainty and interval coverage on a simulated chain.

The market is the simulator's calm BTC preset held calm, three snapshots 8 hours apart
(seed 3); its truth table gives each instrument's true implied vol (``true_iv``).
"""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from volguard.market import MarketSnapshot
from volguard.models import make_engine
from volguard.models.gp import GPSurface
from volguard.sim import preset, simulate


@functools.cache
def _market() -> tuple[list[MarketSnapshot], pd.DataFrame]:
    run = simulate(
        replace(preset("calm-2026-01"), script=(("calm", 5.0),)), days=1, freq="8h", seed=3
    )
    return list(run.snapshots()), run.truth


@pytest.fixture(scope="module")
def snapshot() -> MarketSnapshot:
    return _market()[0][0]


@pytest.fixture(scope="module")
def engine(snapshot: MarketSnapshot) -> GPSurface:
    fitted = make_engine("gp").fit(snapshot)
    assert isinstance(fitted, GPSurface)
    return fitted


def test_fits_the_mids_better_than_a_flat_vol(engine: GPSurface, snapshot: MarketSnapshot) -> None:
    # Measured: 0.57 vol pts RMSE against the mids (267 fit quotes), black76-flat 5.55.
    rmse = engine.result_.summary()["rmse_vol_pts"]
    flat = make_engine("black76-flat").fit(snapshot).result_.summary()["rmse_vol_pts"]
    assert rmse < 1.0
    assert rmse < flat / 4
    assert engine.result_.arbitrage.bounds_count == 0


def test_posterior_std_grows_away_from_the_quotes(engine: GPSurface) -> None:
    t = engine.expiry_t_
    atm = engine.vol_std(np.zeros_like(t), t)
    left = engine.vol_std(np.full_like(t, -1.5), t)
    right = engine.vol_std(np.full_like(t, 1.5), t)
    assert np.all(atm > 0) and np.all(atm < 0.02)  # within 2 vol pts at the money
    assert np.all(left > 5 * atm) and np.all(right > 5 * atm)
    assert engine.vol_std(np.zeros((3, 4)), np.full((3, 4), 0.1)).shape == (3, 4)


def _in_range_coverage(snapshot: MarketSnapshot, truth: pd.DataFrame) -> tuple[int, int]:
    """Quotes (both sides, every listed instrument) inside their expiry's fitted k range whose
    true vol lies in the 90 % interval: (covered, counted)."""
    engine = make_engine("gp").fit(snapshot)
    rows = snapshot.quotes.merge(
        truth[["instrument", "ts", "true_iv"]], on=["instrument", "ts"], validate="one_to_one"
    )
    lower, upper = engine.interval(rows, snapshot, level=0.9)
    assert np.all(lower <= engine.implied_vol(np.log(rows.strike / rows.forward), rows.t))
    k = np.log(rows["strike"] / rows["forward"]).to_numpy()
    i = pd.DatetimeIndex(engine.expiries_).get_indexer(pd.DatetimeIndex(rows["expiry"]))
    fitted = i >= 0
    k_lo = np.where(fitted, engine.k_range_[np.maximum(i, 0), 0], np.inf)
    k_hi = np.where(fitted, engine.k_range_[np.maximum(i, 0), 1], -np.inf)
    inside = (k >= k_lo) & (k <= k_hi)
    true_iv = rows["true_iv"].to_numpy()
    covered = (true_iv >= lower) & (true_iv <= upper)
    return int(covered[inside].sum()), int(inside.sum())


def test_intervals_cover_the_true_vols() -> None:
    # Measured: 410/550, 460/560, 514/582 quotes (75, 82, 88 %), 82 % pooled; the intervals are
    # for the latent vol, from the posterior of a GP whose noise is set by the bid-ask spread.
    snapshots, truth = _market()
    counts = np.array([_in_range_coverage(s, truth) for s in snapshots])
    assert np.all(counts[:, 1] > 500)
    per_snapshot = counts[:, 0] / counts[:, 1]
    pooled = counts[:, 0].sum() / counts[:, 1].sum()
    assert np.all(per_snapshot > 0.7) and 0.78 < pooled <= 1.0


def test_interval_widens_with_level_and_validates(
    engine: GPSurface, snapshot: MarketSnapshot
) -> None:
    contracts = snapshot.quotes[["expiry", "strike", "is_call"]].head(20)
    lo50, hi50 = engine.interval(contracts, snapshot, level=0.5)
    lo99, hi99 = engine.interval(contracts, snapshot, level=0.99)
    assert np.all(lo99 <= lo50) and np.all(hi99 > hi50) and np.all(lo50 < hi50)
    with pytest.raises(ValueError, match="level"):
        engine.interval(contracts, snapshot, level=1.0)


def test_seeded_and_deterministic(snapshot: MarketSnapshot) -> None:
    a = make_engine("gp", seed=5).fit(snapshot)
    b = make_engine("gp", seed=5).fit(snapshot)
    k = np.linspace(-1.0, 0.8, 9)[:, None]
    t = np.array([0.01, 0.1, 0.5])[None, :]
    assert a.result_.params == b.result_.params
    np.testing.assert_array_equal(a.implied_vol(k, t), b.implied_vol(k, t))
    np.testing.assert_array_equal(a.vol_std(k, t), b.vol_std(k, t))


def test_subsample_and_settings(snapshot: MarketSnapshot) -> None:
    small = make_engine("gp", max_points=100).fit(snapshot)
    assert small.result_.params["n_points"] == 100
    assert small.result_.summary()["rmse_vol_pts"] < 2.0
    with pytest.raises(ValueError, match="max_points"):
        make_engine("gp", max_points=3).fit(snapshot)


def test_wings_are_linear_outward_and_within_lee(engine: GPSurface) -> None:
    left, right = engine.wing_slope_
    assert np.all(left <= 0) and np.all(left >= -2) and np.all(right >= 0) and np.all(right <= 2)
    t = engine.expiry_t_[-1]
    lo = engine.k_range_[-1, 0]
    w = engine.total_variance(np.array([lo - 1.0, lo - 0.5, lo]), np.full(3, t))
    np.testing.assert_allclose(w[0] - w[1], w[1] - w[2], rtol=1e-9)
