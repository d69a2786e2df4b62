"""Stress transforms: no static arbitrage over their bounds, and each does what it says."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from volguard.errors import ConfigError
from volguard.models.parametric.ssvi import ESSVI
from volguard.models.quotes import fit_quotes
from volguard.sim.stress import (
    SYNTHETIC_SLICES,
    TRANSFORMS,
    BasisDislocation,
    CorrelationFlip,
    EssviSurface,
    Jump,
    LiquidityCrunch,
    Reference,
    SkewTwist,
    StaleQuotes,
    StressScenario,
    VolShock,
    compose,
    stress,
    synthetic_snapshot,
)

SURFACE_KINDS = [k for k, c in TRANSFORMS.items() if c.stage == "surface"]


def _finite(lo: float, hi: float) -> tuple[float, float]:
    return lo, (hi if math.isfinite(hi) else 10.0)


@st.composite
def scenarios(draw: st.DrawFn) -> StressScenario:
    """A random composition: any subset of the transforms, parameters anywhere in their bounds."""
    params = {}
    for kind, cls in TRANSFORMS.items():
        if draw(st.booleans()):
            for name, bound in cls.bounds.items():
                lo, hi = _finite(*bound)
                params[f"{kind}.{name}"] = draw(st.floats(lo, hi))
    return compose(params)


def _corners(kind: str) -> list[StressScenario]:
    cls = TRANSFORMS[kind]
    bounds = [_finite(*b) for b in cls.bounds.values()]
    out = []
    for i in range(2 ** len(bounds)):
        values = [b[(i >> j) & 1] for j, b in enumerate(bounds)]
        out.append(StressScenario(kind, (cls(**dict(zip(cls.bounds, values, strict=True))),)))
    return out


# ------------------------------------------------------------------------- no arbitrage
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_any_composition_within_bounds_is_free_of_static_arbitrage(
    synthetic_ref: Reference, scenario: StressScenario
) -> None:
    res = stress(synthetic_ref, scenario)
    assert res.surface.condition_violations() == []
    assert res.arbitrage.total == 0, res.arbitrage.to_dict()


@pytest.mark.realdata
@pytest.mark.parametrize("kind", SURFACE_KINDS)
def test_every_corner_of_every_transform_is_arbitrage_free_on_real_chains(
    real_ref: Reference, kind: str
) -> None:
    assert real_ref.surface.condition_violations() == []
    for scenario in _corners(kind):
        res = stress(real_ref, scenario)
        assert res.surface.condition_violations() == [], scenario
        assert res.arbitrage.total == 0, (scenario, res.arbitrage.to_dict())


@pytest.mark.realdata
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_random_compositions_are_arbitrage_free_on_the_crash_chain(
    crash_ref: Reference, scenario: StressScenario
) -> None:
    assert stress(crash_ref, scenario).arbitrage.total == 0


def test_condition_check_catches_a_broken_surface() -> None:
    s = EssviSurface(np.array([0.1, 0.2]), np.array([0.02, 0.03]), np.array([0.0, 0.9]), np.ones(2))
    assert "put wing decreases at slice 1" in s.condition_violations()


# ------------------------------------------------------------------------- the reference
def test_surface_interpolates_as_the_essvi_engine(synthetic_ref: Reference) -> None:
    engine = ESSVI().fit(synthetic_snapshot())
    kk, tt = np.meshgrid(np.linspace(-1, 1, 41), np.linspace(0.005, 1.0, 37))
    surface = EssviSurface.from_engine(engine)
    np.testing.assert_allclose(surface.total_variance(kk, tt), engine.total_variance(kk, tt))


def test_reference_recovers_the_synthetic_surface(synthetic_ref: Reference) -> None:
    s = synthetic_ref.surface
    atm = np.sqrt(s.theta / s.t)
    np.testing.assert_allclose(atm, SYNTHETIC_SLICES["atm_vol"], atol=2e-3)  # 0.2 vol points
    np.testing.assert_allclose(s.rho, SYNTHETIC_SLICES["rho"], atol=0.03)


def test_identity_requotes_the_reference_with_the_base_spreads(synthetic_ref: Reference) -> None:
    res = stress(synthetic_ref, [])
    base = synthetic_ref.snapshot.quotes
    got = res.snapshot.quotes
    assert len(got) == len(base) == len(res.truth)
    assert list(got.columns) == list(base.columns)
    assert (got["instrument"] == base["instrument"]).all()
    fq = fit_quotes(res.snapshot)
    assert len(fq) == len(base) // 2  # one out-of-the-money side per strike
    # the mid price sits above the price at the mid vol (convexity): within 0.2 vol points
    assert np.abs(fq.mid_iv - res.surface.implied_vol(fq.k, fq.t)).max() < 2e-3
    np.testing.assert_allclose(got["mark"], res.truth["price"])
    np.testing.assert_allclose(got["mark_iv"], res.truth["iv"])
    np.testing.assert_allclose(got["ask_iv"] - got["bid_iv"], 2 * synthetic_ref.half_vol)
    np.testing.assert_allclose(synthetic_ref.half_vol, base["ask_iv"] - base["mark_iv"], atol=1e-9)


# ------------------------------------------------------------------------- each transform
def test_parallel_vol_shock_scales_every_atm_vol(synthetic_ref: Reference) -> None:
    res = stress(synthetic_ref, [VolShock(level=0.3)])
    s0, s1 = synthetic_ref.surface, res.surface
    np.testing.assert_allclose(np.sqrt(s1.theta / s1.t), 1.3 * np.sqrt(s0.theta / s0.t))
    np.testing.assert_array_equal(s1.psi, s0.psi)  # wings kept when vol rises


def test_term_shaped_vol_shock_hits_the_front_hardest(synthetic_ref: Reference) -> None:
    res = stress(synthetic_ref, [VolShock(level=0.5, term_decay=1.0)])
    s0, s1 = synthetic_ref.surface, res.surface
    ratio = np.sqrt(s1.theta / s0.theta)
    assert ratio[0] == pytest.approx(1.5)
    assert np.all(np.diff(ratio) <= 0)
    assert ratio[-1] < 1.25


def test_vol_crush_shrinks_wings_into_the_butterfly_domain(synthetic_ref: Reference) -> None:
    res = stress(synthetic_ref, [VolShock(level=-0.6)])
    s0, s1 = synthetic_ref.surface, res.surface
    np.testing.assert_allclose(s1.theta, 0.16 * s0.theta)
    assert np.all(s1.psi <= s0.psi)
    assert res.surface.condition_violations() == []


def test_jump_sticky_moneyness_keeps_the_smile_in_k(synthetic_ref: Reference) -> None:
    base = stress(synthetic_ref, [])
    res = stress(synthetic_ref, [Jump(size=-0.2, beta=0.0)])
    np.testing.assert_allclose(res.truth["forward"], base.truth["forward"] * math.exp(-0.2))
    np.testing.assert_allclose(res.truth["k"], base.truth["k"] + 0.2)
    k = np.linspace(-0.5, 0.5, 11)
    s0, s1 = synthetic_ref.surface, res.surface
    np.testing.assert_allclose(s1.implied_vol(k, 0.3), s0.implied_vol(k, 0.3))
    np.testing.assert_allclose(
        res.snapshot.quotes["index_price"], base.snapshot.quotes["index_price"] * math.exp(-0.2)
    )


def test_jump_sticky_strike_sets_atm_to_the_old_vol_at_the_new_forward(
    synthetic_ref: Reference,
) -> None:
    s0 = synthetic_ref.surface
    res = stress(synthetic_ref, [Jump(size=-0.15, beta=1.0)])
    old_at_new_forward = s0.total_variance(np.full(s0.t.size, -0.15), s0.t)
    np.testing.assert_allclose(res.surface.theta, old_at_new_forward)
    assert np.all(res.surface.theta > s0.theta)  # put skew: vol rises on a drop


def test_full_correlation_flip_mirrors_every_smile(synthetic_ref: Reference) -> None:
    s0 = synthetic_ref.surface
    s1 = stress(synthetic_ref, [CorrelationFlip(strength=1.0)]).surface
    np.testing.assert_allclose(s1.rho, -s0.rho)
    k = np.linspace(-1, 1, 21)
    np.testing.assert_allclose(s1.total_variance(k, 0.2), s0.total_variance(-k, 0.2))


def test_skew_twist_steepens_puts_and_flattens_calls(synthetic_ref: Reference) -> None:
    s0 = synthetic_ref.surface
    s1 = stress(synthetic_ref, [SkewTwist(amount=0.3)]).surface
    (p0, c0), (p1, c1) = s0.wings, s1.wings
    np.testing.assert_allclose(p1 / p0, np.full(p0.size, p1[0] / p0[0]))
    np.testing.assert_allclose(p1 / c1, 1.3 / 0.7 * p0 / c0)
    assert np.all(s1.rho < s0.rho)


def test_basis_dislocation_moves_the_front_and_the_quotes_lag(synthetic_ref: Reference) -> None:
    base = stress(synthetic_ref, [])
    res = stress(synthetic_ref, [BasisDislocation(shift=-0.04, term_decay=1.0, lag=0.5)])
    move = np.log(res.snapshot.forwards / base.snapshot.forwards)
    true_move = np.log(res.truth.groupby("expiry")["forward"].first() / base.snapshot.forwards)
    t = res.truth.groupby("expiry")["t"].first()
    expected = -0.04 * (30 / 365 / np.maximum(t, 30 / 365))
    np.testing.assert_allclose(true_move, expected)
    np.testing.assert_allclose(move, expected / 2)


def test_crunch_leaves_the_truth_and_degrades_the_quotes(synthetic_ref: Reference) -> None:
    base = stress(synthetic_ref, [])
    crunch = LiquidityCrunch(spread_mult=3.0, wing_cut=0.8, bid_drop=0.5)
    res = stress(synthetic_ref, [crunch], seed=3)
    pd.testing.assert_frame_equal(
        res.truth.drop(columns="visible"), base.truth.drop(columns="visible")
    )
    t = res.truth
    wing = np.abs(t["k"]) / np.sqrt(t["t"]) > 0.8
    protected = t.groupby("expiry")["k"].transform(lambda k: k.abs().rank(method="dense") <= 2)
    assert not (t["visible"] & wing & ~protected).any()
    assert t.loc[~wing | protected, "visible"].all()
    q = res.snapshot.quotes.set_index("instrument")
    b = base.snapshot.quotes.set_index("instrument").loc[q.index]
    np.testing.assert_allclose(q["ask_iv"] - q["mark_iv"], 3 * (b["ask_iv"] - b["mark_iv"]))
    dropped = q["bid"].isna().mean()
    assert 0.3 < dropped < 0.7
    assert q.loc[sorted(t.loc[protected, "instrument"]), "bid"].notna().all()
    again = stress(synthetic_ref, [crunch], seed=3).snapshot.quotes
    pd.testing.assert_frame_equal(again, res.snapshot.quotes)
    other = stress(synthetic_ref, [crunch], seed=4).snapshot.quotes
    assert not other["bid"].isna().equals(res.snapshot.quotes["bid"].isna())


def test_stale_quotes_keep_their_pre_stress_prices(synthetic_ref: Reference) -> None:
    res = stress(synthetic_ref, [VolShock(level=0.5), StaleQuotes(fraction=0.3)], seed=1)
    base = synthetic_ref.snapshot.quotes
    q = res.snapshot.quotes
    stale = res.truth["stale"].to_numpy()
    assert 0.15 < stale.mean() < 0.45
    np.testing.assert_allclose(q.loc[stale, "mark"], base.loc[stale, "mark"])
    assert np.all(q.loc[~stale, "mark"] > base.loc[~stale, "mark"])
    np.testing.assert_allclose(q.loc[~stale, "mark"], res.truth.loc[~stale, "price"])


# ------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: VolShock(level=3.0), r"vol_shock\.level must be in \[-0\.6, 2\.0\]"),
        (lambda: Jump(size="big"), r"jump\.size must be a number"),
        (lambda: LiquidityCrunch(bid_drop=1.0), r"crunch\.bid_drop"),
        (lambda: compose({"vol.level": 0.1}), r"'vol\.level' is unknown"),
        (lambda: StressScenario("x", (Jump(), Jump())), "repeats a transform kind"),
    ],
)
def test_invalid_parameters_name_the_parameter_and_rule(make: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make()  # type: ignore[operator]


def test_transforms_are_frozen_and_report_their_params() -> None:
    shock = VolShock(level=0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        shock.level = 0.2  # type: ignore[misc]
    assert shock.params == {"level": 0.1, "term_decay": 0.0}
    flat = {f"vol_shock.{k}": v for k, v in shock.params.items()}
    assert compose(flat).transforms == (shock,)
