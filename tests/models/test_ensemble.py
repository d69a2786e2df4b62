"""The ensemble engine: weights from a validation split, the combined fit, member disagreement.

Simulated markets: one snapshot of calm BTC (``calm-2026-01`` held calm) and one in the crash
(``crash-2026-02``), seed 3. Real data: BTC on 2026-01-15 09:21 UTC (calm) and 2026-02-05
09:36 UTC (in the crash).
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from volguard.data.ingest import build_store
from volguard.data.store import open_store
from volguard.market.snapshot import MarketSnapshot
from volguard.models.ensemble import EnsembleSurface, combination_weights, validation_rows
from volguard.models.learned.gbm import GBMSurface
from volguard.models.parametric.sabr import SABR
from volguard.models.parametric.svi import SVI
from volguard.models.quotes import fit_quotes
from volguard.models.registry import make_engine
from volguard.sim import preset, simulate


@functools.cache
def _simulated(regime: str) -> MarketSnapshot:
    scenario = preset("crash-2026-02")
    if regime == "calm":
        scenario = replace(preset("calm-2026-01"), script=(("calm", 5.0),))
    return next(iter(simulate(scenario, days=0.3, freq="8h", seed=3).snapshots()))


@functools.cache
def _fitted(
    regime: str, members: tuple[str, ...] = ("ssvi", "sabr", "svi"), **settings: object
) -> EnsembleSurface:
    engine = make_engine("ensemble", members=list(members), **settings)
    return engine.fit(_simulated(regime))  # type: ignore[return-value]


def _median_disagreement(engine: EnsembleSurface, snapshot: MarketSnapshot) -> float:
    quotes = fit_quotes(snapshot)
    return float(np.median(engine.disagreement(quotes.k, quotes.t)))


def test_weights_sum_to_one_and_favour_the_better_member() -> None:
    engine = _fitted("calm", ("sabr", "black76-flat"))
    params = engine.result_.params
    assert sum(params["weights"].values()) == pytest.approx(1.0, abs=1e-12)
    rmse = params["validation_rmse_vol_pts"]
    assert rmse["sabr"] < rmse["black76-flat"]
    assert params["weights"]["sabr"] > 0.9  # 0.95: 0.93 vs 4.46 vol pts on the held-out quotes
    assert params["fallback"] == {"sabr": None, "black76-flat": None}
    assert params["n_validation"] > 0 and engine.result_.fallback is None


@pytest.mark.parametrize("regime", ["calm", "crash"])
@pytest.mark.parametrize("weights", ["inverse-mse", "stacking"])
def test_combined_fit_is_between_the_best_and_the_worst_member(regime: str, weights: str) -> None:
    engine = _fitted(regime, weights=weights)
    members = [m.result_.rmse_vol_pts for m in engine.members_ if m is not None]
    best, worst = min(members), max(members)
    combined = engine.result_.rmse_vol_pts
    # measured (vol pts against the mids): calm 1.05 (stacking 1.08), members 0.86-1.73;
    # crash 2.17 (stacking 1.69), members 1.58-5.84
    assert combined <= worst
    assert combined <= best + (worst - best) / 3
    weights_ = engine.weights_
    assert np.all(weights_ >= 0) and weights_.sum() == pytest.approx(1.0, abs=1e-12)


def test_equal_weights() -> None:
    engine = make_engine("ensemble", members=["sabr", "svi"], weights="equal")
    engine.fit(_simulated("calm"))
    np.testing.assert_array_equal(engine.weights_, [0.5, 0.5])


def test_seeded_split_is_deterministic() -> None:
    snapshot = _simulated("calm")
    a = EnsembleSurface(seed=5).fit(snapshot)
    b = EnsembleSurface(seed=5).fit(snapshot)
    c = EnsembleSurface(seed=6).fit(snapshot)
    assert a.result_.params == b.result_.params
    assert a.result_.params["weights"] != c.result_.params["weights"]
    k, t = np.linspace(-0.3, 0.3, 7), np.full(7, 0.1)
    np.testing.assert_array_equal(a.implied_vol(k, t), b.implied_vol(k, t))


def test_split_is_stratified_by_expiry() -> None:
    quotes = _simulated("calm").quotes
    held = validation_rows(quotes, 0.25, 0)
    kept = quotes.drop(index=quotes.index[held])
    assert set(kept["expiry"]) == set(quotes["expiry"])
    held_per_expiry = quotes.iloc[held].groupby("expiry").size()
    assert held_per_expiry.size > quotes["expiry"].nunique() / 2
    np.testing.assert_array_equal(held, validation_rows(quotes, 0.25, 0))


def test_disagreement_is_zero_for_identical_members_and_positive_otherwise() -> None:
    snapshot = _simulated("calm")
    quotes = fit_quotes(snapshot)
    same = _fitted("calm", ("sabr", "sabr"))
    np.testing.assert_allclose(same.disagreement(quotes.k, quotes.t), 0.0, atol=1e-12)
    mixed = _fitted("calm")
    d = mixed.disagreement(quotes.k, quotes.t)
    assert d.shape == quotes.k.shape and np.all(d >= 0) and np.median(d) > 1e-4
    vols = mixed.member_vols(quotes.k, quotes.t)
    assert vols.shape == (3, len(quotes))
    # the disagreement is the weighted spread of the member vols around their weighted mean
    mean = mixed.weights_ @ vols
    np.testing.assert_allclose(d, np.sqrt(mixed.weights_ @ (vols - mean) ** 2), rtol=1e-12)
    frame = mixed.member_frame(quotes.k[:5], quotes.t[:5])
    assert list(frame.columns) == ["k", "t", "ssvi", "sabr", "svi", "iv", "disagreement"]


def test_disagreement_per_contract() -> None:
    snapshot = _simulated("calm")
    engine = _fitted("calm")
    contracts = snapshot.quotes[["expiry", "strike", "is_call"]]
    d = engine.disagreement_at(contracts, snapshot)
    f, strike, t, _ = engine.contract_inputs(contracts, snapshot)
    np.testing.assert_array_equal(d, engine.disagreement(np.log(strike / f), t))
    assert d.shape == (len(contracts),) and np.all(np.isfinite(d))


def test_disagreement_is_higher_in_the_simulated_crash() -> None:
    calm = _median_disagreement(_fitted("calm"), _simulated("calm"))
    crash = _median_disagreement(_fitted("crash"), _simulated("crash"))
    assert crash > 2 * calm  # measured: 0.54 vs 0.15 vol pts


def test_convex_combination_keeps_calendar_order() -> None:
    engine = _fitted("crash", ("ssvi", "essvi"))
    assert [m.result_.arbitrage.calendar_count for m in engine.members_ if m is not None] == [0, 0]
    assert engine.result_.arbitrage.calendar_count == 0


def test_a_failed_member_gets_weight_zero() -> None:
    snapshot = _simulated("calm")
    engine = EnsembleSurface([("sabr", SABR(beta=2.0)), ("svi", SVI())])
    engine.fit(snapshot)
    assert engine.result_.params["weights"] == {"sabr": 0.0, "svi": 1.0}
    assert engine.result_.params["fallback"]["sabr"] == "failed"
    assert "sabr" in (engine.result_.fallback or "")
    assert any("sabr failed" in w for w in engine.result_.warnings)
    svi = make_engine("svi").fit(snapshot)
    k, t = np.linspace(-0.3, 0.3, 7), np.full(7, 0.1)
    np.testing.assert_allclose(engine.implied_vol(k, t), svi.implied_vol(k, t), rtol=1e-12)
    np.testing.assert_array_equal(engine.disagreement(k, t), 0.0)
    with pytest.raises(ValueError, match="every ensemble member failed"):
        EnsembleSurface([("sabr", SABR(beta=2.0))]).fit(snapshot)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"members": [("sabr", SABR()), ("gbm", GBMSurface())]}, "'gbm' needs a trained model"),
        ({"members": [("sabr", SABR()), ("x", "sabr")]}, "member 'x' is not an engine"),
        ({"members": []}, "at least one"),
        ({"members": ("sabr", "svi")}, "members must be \\(label, engine\\) pairs"),
        ({"members": [("a", SABR()), ("a", SVI())]}, "labels must be unique"),
        ({"weights": "best"}, "weights 'best' is unknown"),
        ({"validation_size": 1.0}, "validation_size must be in"),
    ],
)
def test_settings_are_validated(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EnsembleSurface(**settings).fit(_simulated("calm"))  # type: ignore[arg-type]


def test_configuration_names_become_members_at_the_edge() -> None:
    engine = make_engine(
        "ensemble", members=["sabr", "svi", "sabr"], member_settings={"sabr": {"beta": 0.5}}
    )
    assert [label for label, _ in engine.members] == ["sabr", "svi", "sabr#2"]
    params = engine.get_params(deep=True)
    assert params["sabr__beta"] == params["sabr#2__beta"] == 0.5
    before = engine.get_params()["svi__weighting"]
    twin = clone(engine).set_params(svi__weighting="none")
    assert before != "none" and twin.get_params()["svi__weighting"] == "none"
    assert engine.get_params()["svi__weighting"] == before  # the clone is independent
    with pytest.raises(ValueError, match="engine 'nope' is unknown"):
        make_engine("ensemble", members=["sabr", "nope"])
    with pytest.raises(ValueError, match="member_settings has 1 entries for 2 members"):
        make_engine("ensemble", members=["sabr", "svi"], member_settings=[{}])
    with pytest.raises(ValueError, match="no ensemble member is labelled 'x'"):
        engine.set_params(x__beta=1.0)


def test_stacking_finds_the_exact_combination_inverse_mse_does_not() -> None:
    # members biased +2 and -4 vol pts: 2/3 and 1/3 of them is exact; inverse MSE gives 0.8/0.2
    target = np.linspace(0.4, 0.8, 50)
    members = np.stack([target + 0.02, target - 0.04])
    stacked = combination_weights("stacking", members, target, np.ones(50))
    np.testing.assert_allclose(stacked, [2 / 3, 1 / 3], atol=1e-9)
    inverse = combination_weights("inverse-mse", members, target, np.ones(50))
    np.testing.assert_allclose(inverse, [0.8, 0.2])
    # a member that only adds bias gets no stacking weight
    worse = np.stack([target + 0.02, target + 0.03])
    np.testing.assert_allclose(
        combination_weights("stacking", worse, target, np.ones(50)), [1.0, 0.0], atol=1e-9
    )


@pytest.mark.realdata
def test_real_disagreement_is_higher_in_the_crash(
    snapshot_files: list[Path], tmp_path: Path
) -> None:
    names = ("20260115T092130Z", "20260205T093647Z")
    files = [f for f in snapshot_files if any(n in f.name for n in names)]
    if len(files) != 2:
        pytest.skip(f"Deribit snapshots {names} not found in {snapshot_files[:1]}'s folder")
    build_store(tmp_path / "s", [("deribit-snapshot", f) for f in files])
    store = open_store(tmp_path / "s")
    medians, means = {}, {}
    for label, ts in (("calm", "2026-01-15 09:21"), ("crash", "2026-02-05 09:36")):
        snapshot = store.snapshot_at("BTC", pd.Timestamp(ts, tz="UTC"))
        engine = EnsembleSurface().fit(snapshot)
        quotes = fit_quotes(snapshot)
        d = engine.disagreement(quotes.k, quotes.t)
        medians[label], means[label] = float(np.median(d)), float(np.mean(d))
    # measured (vol pts): median 0.234 calm, 0.258 crash; mean 0.39 calm, 0.53 crash
    assert medians["crash"] > medians["calm"]
    assert means["crash"] > 1.2 * means["calm"]
