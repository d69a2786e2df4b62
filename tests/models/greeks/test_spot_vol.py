"""SpotVolBeta: planted slopes recovered, calm held at the static delta, a switch followed."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from volguard.models.greeks import SpotVolBeta

REF = 30 / 365


def _step(
    rng: np.random.Generator,
    beta_ref: float,
    *,
    ratio: float = 0.0,
    n: int = 120,
    vol_noise: float = 0.004,
) -> dict[str, np.ndarray]:
    """One step of options on smiles of slope ``s`` (-0.4 to +0.2 vol per unit of k) whose
    vols move by ``(beta_ref (REF/t)^0.5 + ratio s) dlnF`` plus a shock common to the step
    (vol of vol) and option noise."""
    t = rng.uniform(5, 200, n) / 365
    vol = np.full(n, 0.5)
    k = rng.normal(0, 0.15, n) * np.sqrt(t)
    slope = rng.uniform(-0.4, 0.2, n)
    vega = rng.uniform(1e3, 2e4, n)
    dlnf = rng.normal(0, 0.03)
    move = beta_ref * np.sqrt(REF / t) + ratio * slope
    d_vol = move * dlnf + rng.normal(0, vol_noise) + rng.normal(0, 1e-3, n)
    return {
        "k": k,
        "t": t,
        "vol": vol,
        "vega": vega,
        "d_ln_forward": dlnf,
        "error": vega * d_vol,
        "slope": slope,
    }


def test_a_persistent_slope_is_recovered_with_its_term_scaling() -> None:
    rng = np.random.default_rng(0)
    est = SpotVolBeta()
    for _ in range(80):
        est.update(**_step(rng, -1.2))
    beta = est.beta([0.0, 0.0], [REF, 4 * REF], [0.5, 0.5], slope=[0.0, 0.0])
    np.testing.assert_allclose(beta, [-1.2, -0.6], rtol=0.1)
    assert est.n_updates == 80


def test_a_skew_ratio_is_recovered_and_flips_the_correction_with_the_smile() -> None:
    # vols move by +1 x the smile slope per unit of ln F (a skew stickiness ratio of 2)
    rng = np.random.default_rng(7)
    est = SpotVolBeta()
    for _ in range(80):
        est.update(**_step(rng, 0.0, ratio=1.0))
    coef = est.coefficients()
    np.testing.assert_allclose(coef[:, 1], 1.0, atol=0.1)
    np.testing.assert_allclose(coef[:, 0], 0.0, atol=0.1)
    atm = ([0.0, 0.0], [REF, REF], [0.5, 0.5])
    put_skew, call_skew = est.beta(*atm, slope=[-0.3, 0.3])
    assert float(est.beta(0.0, REF, 0.5, slope=-0.3)) == pytest.approx(put_skew)  # scalars
    assert put_skew == pytest.approx(-0.3, abs=0.05) and call_skew == pytest.approx(0.3, abs=0.05)
    with pytest.raises(ValueError, match="needs the smile slope"):
        est.beta(*atm)
    assert est.terms == ("slope", "skew") and SpotVolBeta(skew=False).terms == ("slope",)


def test_a_vol_drift_loads_on_the_slope_unless_fitted() -> None:
    # a trending forward (mean move -2 %) with vols falling 3 points a step whatever it does:
    # through the origin the slope is off by about a E[dlnF] / E[dlnF^2] = 0.46
    rng = np.random.default_rng(5)
    plain, with_drift = SpotVolBeta(drift=False), SpotVolBeta(drift=True)
    for _ in range(80):
        step = _step(rng, -1.0)
        dlnf = float(step["d_ln_forward"])
        step["d_ln_forward"] = dlnf - 0.02
        step["error"] = step["error"] + step["vega"] * np.sqrt(REF / step["t"]) * (
            -1.0 * -0.02 - 0.03
        )
        plain.update(**step)
        with_drift.update(**step)
    atm = ([0.0], [REF], [0.5], None, [0.0])
    assert with_drift.beta(*atm)[0] == pytest.approx(-1.0, rel=0.1)
    assert plain.beta(*atm)[0] > -0.85


def test_calm_noise_leaves_the_static_delta() -> None:
    rng = np.random.default_rng(1)
    est = SpotVolBeta()
    moved = []
    for _ in range(150):
        est.update(**_step(rng, 0.0))
        moved.append(np.abs(est.coefficients()[:, 0]).max())
    # the slope is shrunk to exactly 0 on most steps, and stays small on the others
    assert np.mean(np.asarray(moved) == 0.0) > 0.7
    assert max(moved) < 0.3


def test_a_regime_switch_is_followed_within_a_few_steps_and_not_before() -> None:
    rng = np.random.default_rng(2)
    est = SpotVolBeta()
    for _ in range(60):
        est.update(**_step(rng, 0.0))
    before = est.coefficients()[:, 0][1]
    path = []
    for _ in range(10):
        est.update(**_step(rng, -2.0))
        path.append(est.coefficients()[:, 0][1])
    assert abs(before) < 0.3
    assert path[1] > -0.5  # one step is not evidence enough
    assert path[6] < -1.5  # within 7 steps of the switch the ATM slope is most of the way


def test_a_detected_change_stays_out_of_the_long_run_when_frozen() -> None:
    rng = np.random.default_rng(6)
    steps = [_step(rng, 0.0) for _ in range(60)] + [_step(rng, -2.0) for _ in range(12)]
    frozen, open_ = SpotVolBeta(), SpotVolBeta(freeze=False)
    start: dict[str, np.ndarray] = {}
    for s in steps:
        frozen.update(**s)
        open_.update(**s)
        if not start and np.all(frozen.weights()[1][:, 0] > 0.5):  # the change is detected
            start = {"frozen": frozen.coefficients_slow, "open": open_.coefficients_slow}
    assert start, "the switch was never detected"
    moved_frozen = np.abs(frozen.coefficients_slow - start["frozen"]).sum()
    moved_open = np.abs(open_.coefficients_slow - start["open"]).sum()
    assert moved_frozen < 0.5 * moved_open


def test_regime_probability_lowers_the_evidence_needed_and_none_is_calm() -> None:
    rng = np.random.default_rng(3)
    est = SpotVolBeta()
    for _ in range(40):
        est.update(**_step(rng, 0.0))
    for _ in range(2):  # two steps of a new slope: weak evidence
        est.update(**_step(rng, -2.0))
    (w_s, w_f), (w_s0, w_f0) = est.weights(), est.weights(regime_prob=0.0)
    np.testing.assert_array_equal(w_f, w_f0)
    np.testing.assert_array_equal(w_s, w_s0)
    half, full = est.weights(regime_prob=0.5)[1], est.weights(regime_prob=1.0)[1]
    assert np.all(w_f0 <= half) and np.all(half <= full) and np.any(w_f0 < full)
    np.testing.assert_array_equal(est.weights(regime_prob=1.0)[0], w_s)  # long run unchanged
    with pytest.raises(ValueError, match="regime_prob must be in"):
        est.weights(regime_prob=1.5)
    # the threshold is interpolated: equal thresholds make p irrelevant
    flat = pickle.loads(pickle.dumps(est))
    flat.stress_threshold = flat.threshold
    for p in (0.0, 0.3, 1.0):
        np.testing.assert_array_equal(flat.weights(regime_prob=p)[1], w_f)


def test_reset_pickle_and_determinism() -> None:
    steps = [_step(np.random.default_rng(4), b) for b in (0.0, -1.0, -1.0, -1.0, -1.0)]
    a, b = SpotVolBeta(min_steps=1), SpotVolBeta(min_steps=1)
    for s in steps:
        a.update(**s)
        b.update(**s)
    np.testing.assert_array_equal(a.coefficients(), b.coefficients())
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(c.coefficients(), a.coefficients())
    a.reset()
    assert a.n_updates == 0 and np.all(a.coefficients() == 0.0)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"fast_half_life": 0}, "fast_half_life must be > 0"),
        ({"slow_half_life": 2}, "slow_half_life must be > fast_half_life"),
        ({"threshold": -1}, "threshold must be >= 0"),
        ({"stress_threshold": -1}, "stress_threshold must be >= 0"),
        ({"min_steps": 0.5}, "min_steps must be >= 1"),
        ({"moneyness_edges": (0.5, -0.5)}, "moneyness_edges must increase"),
        ({"term_power": -0.1}, "term_power must be >= 0"),
        ({"ref_years": 0}, "ref_years must be > 0"),
    ],
)
def test_bad_settings_name_the_parameter(kwargs: dict[str, float], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        SpotVolBeta(**kwargs)
