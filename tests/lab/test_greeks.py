"""Delta estimators in the lab: no look-ahead, the Gain table by hand, real snapshots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from volguard.data.ingest import build_store
from volguard.data.store import open_store
from volguard.lab.greeks import (
    add_learned_deltas,
    causal_deltas,
    gain_table,
    hindsight_gain,
    in_band,
)
from volguard.lab.hedging import hedge_steps
from volguard.models.greeks import SpotVolBeta

CAUSAL = ["delta_regime", "delta_mv_roll", "delta_sm"]


def _steps(n_steps: int = 40, seed: int = 0) -> pd.DataFrame:
    """Synthetic hedge steps: vols move by -1.5 per unit ln F (a crash-like market)."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-01-01", periods=n_steps + 1, freq="6h", tz="UTC")
    rows = []
    for i in range(n_steps):
        n = 60
        t = rng.uniform(5, 120, n) / 365
        k = rng.normal(0, 0.1, n)
        call = k >= 0
        vega = rng.uniform(2e3, 2e4, n)
        dlnf = rng.normal(0, 0.03)
        delta_bs = np.where(call, rng.uniform(0.1, 0.5, n), rng.uniform(-0.5, -0.1, n))
        d_vol = -1.5 * dlnf + rng.normal(0, 1e-3, n)
        f = 1e5
        rows.append(
            pd.DataFrame(
                {
                    "ts": ts[i],
                    "next_ts": ts[i + 1],
                    "instrument": [f"X-{j}" for j in range(n)],
                    "is_call": call,
                    # a few shared expiries, so each step has smiles (slope -0.2) to read
                    "expiry": pd.Timestamp("2026-06-01", tz="UTC")
                    + pd.to_timedelta(rng.integers(0, 3, n) * 30, "D"),
                    "t": t,
                    "k": k,
                    "forward": f,
                    "d_forward": f * np.expm1(dlnf),
                    "d_value": delta_bs * f * np.expm1(dlnf) + vega * d_vol,
                    "vega": vega,
                    "mid_iv": 0.5 - 0.2 * k,
                    "delta_bs": delta_bs,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_hindsight_bound_is_exact_when_each_step_has_one_slope() -> None:
    # each step's vols move by its own slope b_s (t_ref/t)^(1/2) dlnF: the bound captures all
    steps = _steps(12)
    est = SpotVolBeta()
    _, scale = est.buckets(steps["k"], steps["t"], steps["mid_iv"])
    slope = np.random.default_rng(3).normal(0, 2, 12)[pd.factorize(steps["ts"])[0]]
    dlnf = np.log1p(steps["d_forward"] / steps["forward"])
    move = steps["delta_bs"] * steps["d_forward"]
    steps["d_value"] = move + steps["vega"] * slope * scale * dlnf
    regime = pd.Series(np.where(steps["ts"] < steps["ts"].unique()[6], "a", "b"), steps.index)
    bound = hindsight_gain(steps, regime, est).set_index("regime")
    np.testing.assert_allclose(bound["gain"], 1.0)
    np.testing.assert_allclose(bound["gain_without_top"], 1.0 - bound["top_share"])
    err2 = (steps["d_value"] - move) ** 2 / steps["forward"] ** 2
    sse = err2.groupby([regime, steps["ts"]]).sum()
    for name in ("a", "b"):
        assert bound.loc[name, "top_step"] == sse[name].idxmax()
        assert bound.loc[name, "top_share"] == pytest.approx(sse[name].max() / sse[name].sum())
    assert list(bound["n_steps"]) == [6, 6]


def test_altering_the_future_leaves_every_past_delta_unchanged() -> None:
    steps = _steps()
    base = causal_deltas(steps)
    cut = steps["ts"].unique()[25]
    future = steps["ts"] >= cut
    altered = steps.copy()
    rng = np.random.default_rng(9)
    # the outcomes of the step at `cut` and all later ones, shuffled and scaled
    altered.loc[future, "d_value"] = rng.permutation(altered.loc[future, "d_value"]) * 3.0
    altered.loc[future, "d_forward"] = -altered.loc[future, "d_forward"]
    # ... and the future smiles, which the skew term reads
    altered.loc[future, "mid_iv"] = altered.loc[future, "mid_iv"] + 0.3 * altered.loc[future, "k"]
    again = causal_deltas(altered)
    upto = (base["ts"] < cut).to_numpy()  # the step at `cut` reads its own (altered) smile
    assert (base["smile_slope"] != 0).all()
    for col in [*CAUSAL, "smile_slope"]:
        np.testing.assert_array_equal(again.loc[upto, col], base.loc[upto, col])
    # ... while the steps after `cut`, which have seen the altered outcomes, did change
    later = (base["ts"] > cut).to_numpy()
    assert not np.allclose(again.loc[later, "delta_regime"], base.loc[later, "delta_regime"])


def test_the_regime_delta_learns_a_planted_spot_vol_slope() -> None:
    out = causal_deltas(_steps(60))
    out["regime"] = np.where(out["ts"] < out["ts"].unique()[20], "early", "late")
    table = gain_table(out, ["regime", "mv_roll"], out["regime"], n_boot=50).set_index(
        ["regime", "delta"]
    )
    assert table.loc[("late", "regime"), "gain"] > 0.8
    assert table.loc[("late", "regime"), "gain_lo"] > 0.5


def test_gain_table_by_hand_and_seeded() -> None:
    steps = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2026-01-01", "2026-01-01", "2026-01-02"], utc=True),
            "next_ts": pd.to_datetime(["2026-01-02", "2026-01-02", "2026-01-03"], utc=True),
            "forward": 1e4,
            "d_forward": [100.0, 100.0, -50.0],
            "d_value": [60.0, 40.0, -30.0],
            "delta_bs": [0.5, 0.5, 0.5],
            "delta_x": [0.6, 0.5, 0.6],
        }
    )
    # bs errors (1e4 bp / 1e4 USD = 1 bp per USD): 10, -10, -5; x: 0, -10, 0
    out = gain_table(steps, ["x"], pd.Series("r", index=steps.index), n_boot=200, seed=3)
    row = out.iloc[0]
    assert row["gain"] == pytest.approx(1 - 100 / 225)
    assert row["bs_rms_bp"] == pytest.approx(np.sqrt(225 / 3))
    assert row["bs_rms_bp_day"] == pytest.approx(np.sqrt(225 / 3))
    assert row["n_steps"] == 2 and row["n_options"] == 3
    # resamples of two steps: {1,1}: 0.5, {1,2}: 1 - 100/225, {2,2}: 1
    assert 0.5 - 1e-12 <= row["gain_lo"] <= row["gain"] <= row["gain_hi"] <= 1.0
    again = gain_table(steps, ["x"], pd.Series("r", index=steps.index), n_boot=200, seed=3)
    pd.testing.assert_frame_equal(out, again)
    with pytest.raises(ValueError, match="n_boot must be >= 1"):
        gain_table(steps, ["x"], pd.Series("r", index=steps.index), n_boot=0)


def test_on_real_crash_snapshots(snapshot_files: list[Path], tmp_path: Path) -> None:
    # the first 6-hourly days of the crash window (2026-01-28 ..): the slope turns negative
    files = [f for f in snapshot_files if "20260128" <= f.name.split("_")[-1][:8] <= "20260131"]
    build_store(tmp_path / "store", [("deribit-snapshot", f) for f in files])
    store = open_store(tmp_path / "store")
    snaps = [store.snapshot_at("BTC", ts) for ts in store.timestamps("BTC")]
    steps = in_band(hedge_steps(snaps, {}, price="mark"))
    assert steps["ts"].nunique() == len(snaps) - 1 and len(steps) > 2000
    out = causal_deltas(steps)
    for col in CAUSAL:
        assert np.isfinite(out[col]).all()
    # before any outcome is known every learning delta is the static one
    first = out["ts"] == out["ts"].min()
    np.testing.assert_array_equal(out.loc[first, "delta_regime"], out.loc[first, "delta_bs"])
    table = gain_table(out, ["regime", "mv_roll", "sm"], pd.Series("all", index=out.index))
    assert np.isfinite(table[["gain", "gain_lo", "gain_hi"]].to_numpy()).all()


def test_study_steps_get_the_learned_deltas_per_underlying_on_market_rows_only() -> None:
    a, b = _steps(12, seed=1), _steps(12, seed=2)
    stressed = a.iloc[:50].assign(scenario="vol-up-20")
    parts = [
        a.assign(scenario="market", underlying="BTC"),
        b.assign(scenario="market", underlying="ETH"),
        stressed.assign(underlying="BTC"),
    ]
    steps = pd.concat(parts, ignore_index=True)
    out = add_learned_deltas(steps)
    assert len(out) == len(steps) and (out.index == steps.index).all()
    stress = (out["scenario"] != "market").to_numpy()
    assert out.loc[stress, "delta_regime"].isna().all()
    # each underlying's replay is the replay of that underlying alone
    alone = causal_deltas(a).sort_values(["ts", "instrument"])
    btc = out[(out["underlying"] == "BTC") & ~stress].sort_values(["ts", "instrument"])
    np.testing.assert_allclose(btc["delta_regime"], alone["delta_regime"])
