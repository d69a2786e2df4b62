"""The simulator: seeded determinism, ground-truth greeks, hedging with them, regimes, assets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from tests.sim.conftest import flat_scenario
from volguard.kernels.heston_cos import bates_greeks, bates_price
from volguard.sim import REGIME_NAMES, Scenario, SecondAsset, preset, simulate
from volguard.sim.liquidity import liquidity_stats
from volguard.sim.scenario import calibration
from volguard.sim.simulator import TRUTH_COLUMNS, regime_steps, simulate_assets
from volguard.sim.surface_facts import surface_facts


def test_same_seed_same_run_bit_for_bit_and_other_seeds_differ() -> None:
    a = simulate(preset("calm-then-crash"), days=0.5, freq="2h", seed=5)
    b = simulate(preset("calm-then-crash"), days=0.5, freq="2h", seed=5)
    c = simulate(preset("calm-then-crash"), days=0.5, freq="2h", seed=6)
    for name in ("path", "truth", "quotes"):
        left, right = getattr(a, name), getattr(b, name)
        assert pd.util.hash_pandas_object(left).equals(pd.util.hash_pandas_object(right))
    assert not np.array_equal(a.path["spot"].to_numpy(), c.path["spot"].to_numpy())
    assert not a.quotes["bid"].equals(c.quotes["bid"])
    assert list(a.truth.columns) == list(TRUTH_COLUMNS)
    assert set(a.path["underlying"]) == {"BTC", "ETH"}


def test_truth_greeks_match_bump_and_revalue_under_the_model() -> None:
    run = simulate(preset("crash-2026-02"), days=0.1, freq="1h", seed=2, quote=False)
    rows = run.truth[run.truth["ts"] == run.truth["ts"].iloc[0]]
    regime = run.scenario.regimes[str(rows["regime"].iloc[0])]
    params = regime.pricing_params(float(rows["variance"].iloc[0]))
    f, k = rows["forward"].to_numpy(), rows["strike"].to_numpy()
    t, call = rows["t"].to_numpy(), rows["is_call"].to_numpy()
    h = 1e-4 * f

    def price(fwd: np.ndarray) -> np.ndarray:
        return bates_price(fwd, k, t, params, call)

    up, mid, down = price(f + h), price(f), price(f - h)
    np.testing.assert_allclose(rows["true_price"], mid, rtol=1e-9, atol=1e-9 * f.max())
    np.testing.assert_allclose(rows["true_delta"], (up - down) / (2 * h), atol=2e-6)
    gamma_fd = (up - 2 * mid + down) / h**2
    scale = np.abs(rows["true_gamma"].to_numpy()).max()
    np.testing.assert_allclose(rows["true_gamma"], gamma_fd, atol=2e-4 * scale)
    # puts by parity: same gamma, delta one below the call's
    calls, puts = rows[rows["is_call"]], rows[~rows["is_call"]]
    np.testing.assert_allclose(calls["true_delta"].to_numpy() - 1, puts["true_delta"].to_numpy())
    # the truth's implied vol reprices the truth's price
    assert rows["true_iv"].notna().all()
    # the minimum-variance delta adds rho sigma dPrice/dv / F, dPrice/dv by bumping v
    hv = 1e-5
    v_up, v_down = (
        bates_price(f, k, t, (params[0] + sign * hv, *params[1:]), call) for sign in (1, -1)
    )
    d_var = (v_up - v_down) / (2 * hv)
    mv = rows["true_delta"].to_numpy() + regime.rho * regime.sigma * d_var / f
    np.testing.assert_allclose(rows["true_mv_delta"], mv, atol=2e-5)
    assert regime.rho < 0 and np.all(rows["true_mv_delta"] < rows["true_delta"])


def _hedge_error(scenario: Scenario, every: int, n_paths: int) -> tuple[float, float]:
    """RMS of the replication error of a 7-day ATM call hedged with the true delta."""
    step_days = scenario.step_minutes / 1440
    n = round(7 / step_days)
    dt = step_days / 365
    codes = np.zeros(n, dtype=np.int64)
    rng = np.random.default_rng(123)
    strike, expiry_t = 90_000.0, n * dt
    regime = scenario.regimes["calm"]
    errors, premium = [], np.nan
    for _ in range(n_paths):
        _, x, _ = simulate_assets(scenario, codes, dt, rng)["BTC"]
        f = np.exp(x)
        idx = np.arange(0, n, every)
        g = bates_greeks(f[idx], strike, expiry_t - idx * dt, regime.pricing_params(0.16), True)
        premium = float(g.price[0])
        gains = np.sum(g.delta * np.diff(np.append(f[idx], f[-1])))
        errors.append(premium + gains - max(f[-1] - strike, 0.0))
    return float(np.sqrt(np.mean(np.square(errors)))), premium


def test_true_delta_hedge_converges_to_zero_error_without_jumps(flat: Scenario) -> None:
    fine, premium = _hedge_error(flat, every=1, n_paths=24)
    coarse, _ = _hedge_error(flat, every=12, n_paths=24)
    assert fine < 0.02 * premium  # 5-minute hedging: under 2 % of the premium
    assert fine < 0.45 * coarse  # error ~ sqrt(dt): 12x finer hedging, ~3.5x smaller


def test_regime_script_is_followed_then_the_markov_chain_takes_over() -> None:
    scenario = preset("calm-then-crash")
    codes = regime_steps(scenario, 45 * 288, 5 / 1440, np.random.SeedSequence(0))
    names = np.array(REGIME_NAMES)[codes]
    assert (names[: 30 * 288] == "calm").all()
    assert (names[30 * 288 : 37 * 288] == "crash").all()
    assert names[37 * 288] != "crash" or scenario.regimes["crash"].switch_to.get("crash")


def test_markov_chain_time_shares_match_the_stationary_distribution() -> None:
    scenario = preset("markov")
    step_days = 1 / 24
    codes = regime_steps(scenario, int(400 * 365 / step_days), step_days, np.random.SeedSequence(1))
    shares = np.bincount(codes, minlength=len(REGIME_NAMES)) / codes.size
    # embedded jump chain P, its stationary pi; time shares are pi * mean stay, normalised
    p = np.array(
        [[scenario.regimes[a].switch_to.get(b, 0.0) for b in REGIME_NAMES] for a in REGIME_NAMES]
    )
    p = p / p.sum(axis=1, keepdims=True)
    w, vecs = np.linalg.eig(p.T)
    pi = np.real(vecs[:, np.argmin(np.abs(w - 1))])
    expected = pi / pi.sum() * np.array([scenario.regimes[n].mean_days for n in REGIME_NAMES])
    expected /= expected.sum()
    np.testing.assert_allclose(shares, expected, atol=0.03)


def test_second_asset_has_its_correlation_and_vol_scale() -> None:
    corr = dict.fromkeys(REGIME_NAMES, 0.7)
    scenario = replace(
        flat_scenario(sigma=0.5), second_asset=SecondAsset("ETH", 3_000.0, 1.4, corr)
    )
    n, dt = 2 * 8760, 1 / 8760
    paths = simulate_assets(scenario, np.zeros(n, dtype=np.int64), dt, np.random.default_rng(4))
    r_btc, r_eth = np.diff(paths["BTC"][1]), np.diff(paths["ETH"][1])
    assert np.corrcoef(r_btc, r_eth)[0, 1] == pytest.approx(0.7, abs=0.02)
    assert r_eth.std() / r_btc.std() == pytest.approx(1.4, rel=0.03)
    np.testing.assert_allclose(paths["ETH"][2], 1.4**2 * paths["BTC"][2], rtol=1e-12)


def test_bad_lengths_and_frequencies_are_refused(flat: Scenario) -> None:
    with pytest.raises(ValueError, match="days must be > 0"):
        simulate(flat, days=0)
    with pytest.raises(ValueError, match="multiple of the path step"):
        simulate(flat, days=1, freq="7min")


@pytest.mark.parametrize(("name", "window"), [("calm-2026-01", "calm"), ("crash-2026-02", "crash")])
def test_presets_reproduce_their_real_window(name: str, window: str) -> None:
    """ATM term structure, 25-delta skew, quote counts, one-sided shares and spreads against the
    real window's figures stored by the calibration (docs/simulator.md has the table)."""
    # the median over snapshots of six independent 2-day runs from the preset's start
    runs = [simulate(preset(name), days=2, freq="12h", seed=s) for s in range(6)]
    quotes = pd.concat(
        [r.quotes.assign(ts=r.quotes["ts"] + pd.Timedelta(days=10 * i)) for i, r in enumerate(runs)]
    )
    sim = pd.DataFrame([surface_facts(g) for _, g in quotes.groupby("ts")]).median()
    real = calibration()["windows"][window]
    for tenor in ("atm_7d", "atm_30d", "atm_90d"):
        assert sim[tenor] == pytest.approx(real["facts"][tenor], abs=0.025), tenor
    assert sim["rr_25d"] == pytest.approx(real["facts"]["rr_25d"], abs=0.035)
    assert sim["rr_25d"] < 0
    got, want = liquidity_stats(quotes), real["liquidity"]
    assert got["quotes_per_snapshot"] == pytest.approx(want["quotes_per_snapshot"], rel=0.2)
    assert got["no_bid_share"] == pytest.approx(want["no_bid_share"], abs=0.05)
    assert got["no_ask_share"] == pytest.approx(want["no_ask_share"], abs=0.05)
    for bucket in ("short_atm", "long_atm"):
        key = f"{bucket}.spread_volpt_p50"
        assert got[key] == pytest.approx(want[key], rel=0.35), key
