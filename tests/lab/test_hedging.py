"""Hedging backtests: hand-made steps, the minimum-variance fit, and a simulated market."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from volguard.lab.hedging import MinVarianceDelta, fit_min_variance, hedge_steps, hedge_summary
from volguard.models.registry import make_engine
from volguard.sim import preset, simulate


def test_summary_by_hand() -> None:
    steps = pd.DataFrame(
        {
            "ts": [0, 1, 0],
            "instrument": ["A", "A", "B"],
            "forward": [100.0, 100.0, 100.0],
            "d_forward": [2.0, -1.0, 2.0],
            "d_value": [1.0, -0.5, 0.8],
            "delta_bs": [0.5, 0.5, 0.5],
            "delta_x": [0.4, 0.6, 0.4],
        }
    )
    out = hedge_summary(steps, ["bs", "x"], futures_cost=0.01).set_index("delta")
    # bs errors: 1 - 1, -0.5 + 0.5, 0.8 - 1 = (0, 0, -0.2); x: (0.2, 0.1, 0.0)
    assert out.loc["bs", "hedge_err_std"] == pytest.approx(np.std([0.0, 0.0, -0.2]))
    assert out.loc["x", "hedge_err_std"] == pytest.approx(np.std([0.2, 0.1, 0.0]))
    # turnover: A 0.4 then 0.2, B 0.4; cost = turnover x 100 x 1 %
    assert out.loc["x", "turnover"] == pytest.approx((0.4 + 0.2 + 0.4) / 3)
    assert out.loc["x", "mean_cost"] == pytest.approx((0.4 + 0.2 + 0.4) / 3)
    assert out.loc["bs", "reduction_vs_bs"] == 0.0
    # in basis points of the forward (100): errors x 100
    assert out.loc["x", "hedge_err_std_bp"] == pytest.approx(100 * np.std([0.2, 0.1, 0.0]))
    # x's errors (0.2, 0.1, 0) less costs (0.4, 0.2, 0.4): worst 5 % is -0.4 (a loss of 0.4)
    assert out.loc["x", "hedge_err_cvar95"] == pytest.approx(0.4)
    assert out.loc["x", "hedge_err_cvar95_bp"] == pytest.approx(40.0)
    assert out.loc["x", "reduction_vs_bs"] == pytest.approx(
        1 - np.var([0.2, 0.1, 0.0]) / np.var([0.0, 0.0, -0.2])
    )


def test_min_variance_fit_recovers_planted_coefficients() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    call = rng.random(n) < 0.5
    d = np.where(call, rng.uniform(0.05, 0.95, n), rng.uniform(-0.95, -0.05, n))
    steps = pd.DataFrame(
        {
            "is_call": call,
            "delta_bs": d,
            "vega": rng.uniform(5, 50, n),
            "forward": 100.0,
            "t": rng.uniform(0.05, 1.0, n),
            "d_forward": rng.normal(0, 2, n),
        }
    )
    planted = MinVarianceDelta(calls=(-0.2, 0.1, 0.3), puts=(-0.1, -0.4, 0.2))
    steps["d_value"] = planted.delta(steps) * steps["d_forward"] + rng.normal(0, 1e-3, n)
    fitted = fit_min_variance(steps)
    np.testing.assert_allclose(fitted.calls, planted.calls, atol=1e-3)
    np.testing.assert_allclose(fitted.puts, planted.puts, atol=1e-3)


def test_on_a_simulated_market_deltas_beat_no_hedge() -> None:
    scenario = replace(preset("calm-2026-01"), script=(("calm", 3.0),))
    run = simulate(scenario, days=2, freq="6h", seed=4)
    steps = hedge_steps(list(run.snapshots()), {"ssvi": make_engine("ssvi")})
    assert len(steps) > 1000 and not steps["fit_failed_ssvi"].any()
    truth = run.truth[["ts", "instrument", "true_delta"]].rename(
        columns={"true_delta": "delta_true"}
    )
    steps = steps.merge(truth, on=["ts", "instrument"], how="left")
    steps["delta_none"] = 0.0
    out = hedge_summary(steps, ["bs", "ssvi", "true", "none"]).set_index("delta")
    # over 6-hour steps the variance moves too (vega risk no delta removes): a clear cut, not all
    for name in ("bs", "ssvi", "true"):
        assert out.loc[name, "hedge_err_std"] < 0.85 * out.loc["none", "hedge_err_std"]
    assert out.loc["none", "turnover"] == 0.0
