"""The conformal wrapper: CV+ intervals per quote around any engine."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.models._learned import calm_btc
from tests.models.conftest import synthetic_snapshot
from volguard.market import MarketSnapshot
from volguard.models import make_engine
from volguard.models.conformal import ConformalSurface, fold_rows
from volguard.models.ensemble import MIN_TRAIN, validation_rows
from volguard.models.parametric.sabr import SABR
from volguard.models.parametric.ssvi import SSVI
from volguard.models.parametric.svi import SVI
from volguard.models.quotes import fit_quotes


def _held_out(snapshot: MarketSnapshot, seed: int) -> tuple[MarketSnapshot, pd.DataFrame]:
    """The snapshot without a random fifth of each expiry's fit rows, and those rows."""
    rows = snapshot.quotes
    held = validation_rows(rows, 0.2, seed)
    keep = np.ones(len(rows), dtype=bool)
    keep[held] = False
    return MarketSnapshot.from_quotes(rows[keep]), rows.iloc[held]


def test_every_fit_row_of_a_large_expiry_is_dealt_into_balanced_folds() -> None:
    snap = synthetic_snapshot(0.003)
    labels = fold_rows(snap.quotes, 4, seed=3)
    q = snap.quotes
    for _, part in q.assign(fold=labels).groupby("expiry"):
        dealt = part["fold"][part["fold"] >= 0]
        counts = np.bincount(dealt, minlength=4)
        assert counts.max() - counts.min() <= 1 and len(part) - counts.max() >= MIN_TRAIN
    assert (labels >= 0).sum() == len(fit_quotes(snap))  # the OTM two-sided rows, all dealt
    np.testing.assert_array_equal(labels, fold_rows(q, 4, seed=3))
    assert not np.array_equal(labels, fold_rows(q, 4, seed=4))


def test_cv_plus_ends_are_the_order_statistics_of_the_definition() -> None:
    engine = ConformalSurface(base=SVI(), folds=3).fit(synthetic_snapshot(0.005))
    k, t = np.array([-0.3, 0.0, 0.2]), np.full(3, 0.25)
    lower, upper = engine.vol_interval(k, t, level=0.8)
    n = engine.residuals_.size
    for i in range(3):
        centre = np.array([engine.fold_bases_[j].implied_vol(k[i], t[i]) for j in range(3)])
        mu = centre[engine.residual_fold_]
        plus = np.sort(mu + engine.residuals_)
        minus = np.sort(mu - engine.residuals_)
        assert upper[i] == pytest.approx(plus[math.ceil(0.8 * (n + 1)) - 1], abs=1e-15)
        assert lower[i] == pytest.approx(minus[math.floor(0.2 * (n + 1)) - 1], abs=1e-15)
    wide_lower, wide_upper = engine.vol_interval(k, t, level=0.95)
    assert np.all(wide_lower <= lower) and np.all(wide_upper >= upper)
    # a level the calibration set cannot resolve gives the whole half-line
    lo, hi = engine.vol_interval(k, t, level=1 - 0.5 / (n + 1))
    assert np.all(lo == 0) and np.all(np.isinf(hi))


def test_intervals_cover_held_out_quotes_at_about_their_level() -> None:
    covered, n = 0, 0
    for i, snapshot in enumerate(calm_btc(3.0)):
        visible, held = _held_out(snapshot, seed=i)
        engine = ConformalSurface(base=SSVI()).fit(visible)
        lower, upper = engine.interval(held, snapshot, level=0.9)
        mid = fit_quotes(MarketSnapshot.from_quotes(held), "none")
        # fit_quotes sorts by (t, k): match the held rows to it through (t, k)
        frame = pd.DataFrame(
            {"t": held["t"].to_numpy(), "k": np.log(held["strike"] / held["forward"]).to_numpy()}
        ).assign(lower=lower, upper=upper)
        scored = pd.DataFrame({"t": mid.t, "k": mid.k, "mid": mid.mid_iv}).merge(
            frame, on=["t", "k"]
        )
        covered += int(
            ((scored["lower"] <= scored["mid"]) & (scored["mid"] <= scored["upper"])).sum()
        )
        n += len(scored)
    assert n > 300
    assert 0.84 <= covered / n <= 0.97  # 90 % nominal, a few hundred quotes


def test_the_wrapper_prices_as_its_engine_fitted_on_all_the_quotes() -> None:
    snapshot = calm_btc(1.0)[0]
    wrapped = ConformalSurface(base=SABR(), folds=3).fit(snapshot)
    alone = make_engine("sabr").fit(snapshot)
    k, t = np.linspace(-0.4, 0.3, 9), np.full(9, 0.1)
    np.testing.assert_allclose(wrapped.implied_vol(k, t), alone.implied_vol(k, t), rtol=1e-12)
    assert wrapped.result_.params["folds_used"] == 3
    dealt = int((fold_rows(snapshot.quotes, 3, 0) >= 0).sum())
    assert 0.9 * dealt <= wrapped.result_.params["n_calibration"] <= dealt


def test_settings_are_checked() -> None:
    snapshot = synthetic_snapshot()
    with pytest.raises(ValueError, match="an engine other than conformal"):
        ConformalSurface(base=ConformalSurface()).fit(snapshot)
    with pytest.raises(ValueError, match="an engine other than conformal"):
        ConformalSurface(base="svi").fit(snapshot)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="folds must be >= 2"):
        ConformalSurface(folds=1).fit(snapshot)
    engine = make_engine("conformal", base="svi").fit(snapshot)  # a name at the edge
    assert isinstance(engine.base, SVI) and engine.base_.result_ is not None
    with pytest.raises(ValueError, match="level must be in"):
        engine.vol_interval(0.0, 0.25, level=1.0)


def test_the_ensemble_interval_is_its_disagreement_scaled_to_the_level() -> None:
    snapshot = calm_btc(1.0)[0]
    ensemble = make_engine("ensemble", members=["ssvi", "sabr"]).fit(snapshot)
    contracts = snapshot.quotes[["expiry", "strike", "is_call"]].iloc[:50]
    lower, upper = ensemble.interval(contracts, snapshot, level=0.9)
    spread = ensemble.disagreement_at(contracts, snapshot)
    np.testing.assert_allclose(upper - lower, 2 * 1.6448536269514722 * spread, rtol=1e-9)
