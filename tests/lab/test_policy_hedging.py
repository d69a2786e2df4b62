"""The policy-hedging protocol: path sets from the simulator and Binance, and a tiny study."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.models.hedging.test_ensemble import constant_policy
from volguard.kernels.api import black76_greeks
from volguard.kernels.heston_cos import bates_greeks
from volguard.lab.deep_hedging_deribit import (
    deribit_scorecard,
    load_perpetual_hourly,
    load_snapshots,
    policy_steps,
)
from volguard.lab.deep_hedging_paths import (
    bates_table,
    binance_paths,
    load_binance_hourly,
    simulated_paths,
    tau_grid,
)
from volguard.lab.policy_hedging import (
    BASELINES,
    GATED,
    PolicyHedgingSettings,
    policy_hedging_protocol,
    run_policy_hedging,
)
from volguard.models.hedging import GatedEnsemble
from volguard.sim import preset

DATA = Path(os.environ.get("VOLGUARD_DATA", "../shared/data"))
BINANCE = DATA / "binance-btc-eth-hourly-2020-2024" / "BTCUSDT_1h.csv.gz"
SNAPSHOTS = DATA / "deribit-svcj-snapshots" / "snapshots"
PERPETUAL = DATA / "tardis-deribit-monthly-smiles" / "spot_history_hourly.csv.gz"
TINY = {
    "train_regimes": ["calm"],
    "validation_regimes": ["plateau"],
    "test_regimes": ["calm", "crash"],
    "n_train": 64,
    "n_validation": 32,
    "n_test": 64,
    "days": 1.0,
    "hedge_hours": 4.0,
    "members": 2,
    "hidden": [4],
    "steps": 4,
    "batch": 32,
    "check_every": 2,
    "bootstrap": 20,
}


@pytest.fixture(scope="module")
def calm_table():
    return bates_table(preset("markov").regimes["calm"], tau_grid(1.0, 4.0)[:-1])


def test_bates_table_matches_cos(calm_table) -> None:
    # off the grid in both variance and moneyness: price within 2e-4 of the forward, delta 5e-3
    regime = preset("markov").regimes["calm"]
    k, v = np.array([-0.031, 0.0, 0.017, 0.052]), np.array([0.21, 0.33, 0.47, 0.9])
    price, delta = calm_table.lookup(k, v, 2)
    tau = calm_table.tau[2]
    for j in range(k.size):
        g = bates_greeks(1.0, np.exp(k[j]), tau, regime.pricing_params(v[j]), True, vega=False)
        assert price[j] == pytest.approx(float(g.price), abs=2e-4)
        assert delta[j] == pytest.approx(float(g.delta), abs=5e-3)


def test_simulated_paths(calm_table) -> None:
    scenario = preset("markov")
    a = simulated_paths(scenario, "calm", 30, days=1.0, hedge_hours=4.0, table=calm_table, seed=3)
    b = simulated_paths(scenario, "calm", 30, days=1.0, hedge_hours=4.0, table=calm_table, seed=3)
    np.testing.assert_array_equal(a.forward, b.forward)
    np.testing.assert_array_equal(a.delta_engine, b.delta_engine)
    assert a.forward.shape == (30, 7) and set(a.regime) == {"calm"}
    np.testing.assert_allclose(a.strike / a.forward[:, 0], np.exp(np.resize([-0.05, 0, 0.05], 30)))
    assert np.all(a.premium > 0) and np.all(np.isfinite(a.iv))
    assert np.all((a.delta_engine >= 0) & (a.delta_engine <= 1))
    assert np.all(a.realized_vol > 0)
    # Black-76 at the Bates implied vol and the Bates delta differ by the smile's slope only
    assert np.abs(a.delta_bs - a.delta_engine).max() < 0.1
    with pytest.raises(ValueError, match="regime must be one of"):
        simulated_paths(scenario, "boom", 3, table=calm_table)
    with pytest.raises(ValueError, match="hedge_hours must be whole hours"):
        simulated_paths(scenario, "calm", 3, days=1.0, hedge_hours=0.5)


@pytest.mark.skipif(not BINANCE.exists(), reason="shared Binance data not found")
def test_binance_paths() -> None:
    closes = load_binance_hourly(BINANCE).iloc[: 720 + 168 * 6 + 1]
    p = binance_paths(closes)
    assert p.n_paths == 6 and p.n_steps == 168
    np.testing.assert_allclose(p.forward[0, 0], closes.iloc[720])
    np.testing.assert_allclose(p.forward[0, -1], closes.iloc[720 + 168])
    g = black76_greeks(p.forward[:, 0], p.strike, p.tau[0], p.iv[:, 0], True)
    np.testing.assert_allclose(p.premium, g["price"])
    np.testing.assert_allclose(p.delta_engine, p.delta_bs)
    assert set(p.regime) <= {"down", "flat", "up"}
    with pytest.raises(ValueError, match="fewer than one window"):
        binance_paths(closes.iloc[:800])


def test_tiny_study_runs_and_is_seeded() -> None:
    result = run_policy_hedging(TINY, seed=1)
    card = result.scorecard
    expected = {*BASELINES, "ensemble_mean", GATED}
    assert set(card["strategy"]) == expected
    assert set(card["regime"]) == {"calm", "crash"}
    assert (card["cvar95_bp_lo"] <= card["cvar95_bp"]).all()
    assert (card["cvar95_bp"] <= card["cvar95_bp_hi"]).all()
    assert (card["pnl_q05_bp"] <= card["pnl_q50_bp"]).all()
    assert (card["pnl_q50_bp"] <= card["pnl_q95_bp"]).all()
    gated = card[card["strategy"] == GATED]
    assert gated["gate_share"].between(0, 1).all()
    assert list(result.verdict["check"]) == ["out_of_regime", "in_regime"]
    rows = policy_hedging_protocol(TINY, seed=1)
    assert {"engine", "regime", "cvar95_bp"} <= set(rows.columns)
    assert "check:out_of_regime" in set(rows["engine"])
    assert set(rows["protocol"]) == {"policy_hedging"}
    same = card[card["strategy"] == GATED].rename(columns={"strategy": "engine"})
    again = rows.loc[rows["engine"] == GATED, list(same.columns)]
    pd.testing.assert_frame_equal(
        again.reset_index(drop=True), same.reset_index(drop=True), check_dtype=False
    )


def test_settings_guard_the_held_out_regime() -> None:
    with pytest.raises(ValueError, match="out_of_regime 'crash' must be in neither"):
        PolicyHedgingSettings(train_regimes=("calm", "crash"))
    with pytest.raises(ValueError, match="validation_regimes"):
        PolicyHedgingSettings(validation_regimes=("calm",))
    with pytest.raises(ValueError, match="unknown policy_hedging setting"):
        PolicyHedgingSettings.from_mapping({"epochs": 3})


@pytest.mark.skipif(not SNAPSHOTS.exists(), reason="shared Deribit snapshots not found")
def test_policy_steps_on_real_snapshots() -> None:
    snaps = load_snapshots(SNAPSHOTS, "BTC", "2026-01-29", "2026-01-31")
    closes = load_perpetual_hourly(PERPETUAL, "btc")
    zero = constant_policy(0.0)
    shifted = GatedEnsemble((constant_policy(0.1), constant_policy(0.3)), threshold=np.inf)
    gated = GatedEnsemble((zero, zero), threshold=0.0, rule="switch")
    steps = policy_steps(snaps, {"zero": gated, "shifted": shifted}, closes)
    assert len(steps) > 100 and (steps["t"] <= 7 / 365).all()
    assert set(steps["regime"]) == {"crash"}
    # a zero residual is the Black-76 delta; a constant one shifts calls and puts alike
    np.testing.assert_allclose(steps["delta_zero"], steps["delta_bs"], atol=1e-12)
    np.testing.assert_allclose(steps["delta_shifted"] - steps["delta_bs"], 0.2, atol=1e-12)
    np.testing.assert_allclose(steps["disagreement_shifted"], 0.1)
    table = deribit_scorecard(steps, ["zero", "shifted"], 5e-4)
    assert set(table["delta"]) == {"bs", "zero", "shifted"}  # no calm rows: no mv
    bs = table[table["delta"] == "bs"].iloc[0]
    zero_row = table[table["delta"] == "zero"].iloc[0]
    assert zero_row["hedge_err_std_bp"] == pytest.approx(bs["hedge_err_std_bp"])


@pytest.mark.skipif(not PERPETUAL.exists(), reason="shared perpetual prices not found")
def test_perpetual_closes_are_indexed_when_known_not_when_their_bar_opened() -> None:
    raw = pd.read_csv(PERPETUAL)
    first = raw[raw["asset"] == "btc"].sort_values("t").iloc[0]
    closes = load_perpetual_hourly(PERPETUAL, "btc")
    opened = pd.Timestamp(int(first["t"]), unit="s", tz="UTC")
    assert closes.index[0] == opened + pd.Timedelta(hours=1)
    assert closes.iloc[0] == first["close"]
    # a snapshot inside the first bar sees no close yet
    inside = pd.DatetimeIndex([opened + pd.Timedelta(minutes=31)])
    assert np.isnan(closes.asof(inside)).all()
