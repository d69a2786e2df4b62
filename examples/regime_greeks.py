"""Every delta estimator of issue 10 on the real Deribit snapshots: Gain vs Black-76 per regime.

One-step hedges between consecutive snapshots (daily, 6-hourly in the stress windows) of every
option quoted two-sided in both, with ``|delta_bs|`` in the configured band, marked at the
venue's mark (``price`` in the TOML). ``Gain = 1 - SSE(delta) / SSE(delta_bs)`` of the errors
``dV - delta dF`` in bp of the forward, with a 95 % bootstrap interval over steps. Deltas:

``sm``        sticky moneyness from the step's own smile (``beta = -dsigma/dk``)
``mv_train``  Hull-White minimum-variance delta fitted on the training regime (calm January)
``mv_all``    the same fitted on every step: LOOK-AHEAD, a reference only
``mv_roll``   the naive adaptive baseline: refitted on the previous ``rolling_window`` steps
``regime``    the regime-aware delta (:class:`volguard.models.greeks.SpotVolBeta`)
``regime_guard`` the same, its threshold moved toward ``stress_threshold`` by the guard's
              online stress probability (:func:`volguard.models.regime.stress_probability`)
``<e>-model``, ``<e>-mv`` with ``--model-deltas heston bates``: each engine's model delta
              (variance fixed) and minimum-variance delta, fitted on the step's first snapshot
``<engine>``  with ``--study RUN``: each engine's sticky-strike delta from ``RUN/hedging.parquet``
              (a ``volguard study`` run on the same data, e.g. examples/deribit-2026.toml)

The hindsight bound is the Gain of one slope per step and moneyness bucket fitted on that step
itself: no delta of the family beats it, and a causal one cannot know the step that opens a shock.

``--sim`` adds the simulator check: a scripted calm -> crash -> plateau -> rally -> calm path,
the deltas' RMSE against the simulator's true (variance-fixed) delta per regime, the hedging
Gain per regime, and the steps the ATM slope takes to settle after each switch.

Run: ``python examples/regime_greeks.py examples/regime_greeks.toml [--study runs/deribit-2026]
[--sim] [--sensitivity]`` (about 40 s on one core with the store built, 80 s with ``--sim`` and
``--sensitivity``; building the store once under ``--cache`` takes ~40 s more).
"""

from __future__ import annotations

import argparse
import os
import time
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from volguard.data.ingest import build_store
from volguard.data.store import open_store
from volguard.lab.greeks import causal_deltas, gain_table, hindsight_gain, in_band
from volguard.lab.hedging import fit_min_variance, hedge_steps
from volguard.lab.regimes import range_labels
from volguard.market.quotes import observed_vols
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import FIT_ERRORS
from volguard.models.greeks import SpotVolBeta
from volguard.models.parametric.heston import Heston
from volguard.models.regime import stress_probability
from volguard.models.registry import make_engine
from volguard.sim import preset, simulate

BASE = ["sm", "mv_train", "mv_all", "mv_roll", "regime", "regime_guard"]


def load_snapshots(cfg: dict[str, Any], cache: Path) -> list[MarketSnapshot]:
    """The configured underlying's snapshots, from a store built once under ``cache``."""
    store_dir = cache / "store"
    if not (store_dir / "_manifest.json").exists():
        root = Path(os.environ.get("VOLGUARD_DATA", "../shared/data")) / cfg["dataset"]
        files = sorted((root / "snapshots").glob("*.csv.gz"))
        if not files:
            raise SystemExit(f"no snapshots under {root} (set VOLGUARD_DATA)")
        build_store(store_dir, [("deribit-snapshot", f) for f in files])
    store = open_store(store_dir)
    u = cfg["underlying"]
    return [store.snapshot_at(u, ts) for ts in store.timestamps(u)]


def with_model_deltas(
    steps: pd.DataFrame, snapshots: list[MarketSnapshot], engines: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """``steps`` with each engine's model delta (variance fixed) and minimum-variance delta,
    the engine fitted on the step's first snapshot only (NaN where the fit fails)."""
    by_ts = {snap.ts: snap for snap in snapshots}
    out = steps.copy()
    names = [f"{e}-{kind}" for e in engines for kind in ("model", "mv")]
    for name in names:
        out[f"delta_{name}"] = np.nan
    for _, rows in out.groupby("ts", sort=True):
        snap = by_ts[rows["ts"].iloc[0]]
        contracts = pd.DataFrame(
            {
                "expiry": rows["expiry"],
                "strike": rows["forward"] * np.exp(rows["k"]),
                "is_call": rows["is_call"],
            }
        )
        for engine in engines:
            try:
                fitted = make_engine(engine).fit(snap)
            except FIT_ERRORS:
                continue
            if not isinstance(fitted, Heston):
                raise SystemExit(f"--model-deltas takes heston or bates; got {engine!r}")
            model = fitted.greeks(contracts, snap, delta="model")["delta"]
            mv = fitted.greeks(contracts, snap, delta="minimum-variance")["delta"]
            out.loc[rows.index, f"delta_{engine}-model"] = model
            out.loc[rows.index, f"delta_{engine}-mv"] = mv
    return out, names


def with_engines(steps: pd.DataFrame, study: Path) -> tuple[pd.DataFrame, list[str]]:
    """``steps`` with the engines' deltas of a study run, on the rows every engine priced."""
    h = pd.read_parquet(study / "hedging.parquet")
    h = h[(h["scenario"] == "market") & (h["instrument"].isin(steps["instrument"]))]
    cols = [c for c in h.columns if c.startswith("delta_") and c != "delta_bs"]
    out = steps.merge(h[["ts", "instrument", *cols]], on=["ts", "instrument"], how="inner")
    kept = out.loc[np.isfinite(out[cols].to_numpy(float)).all(axis=1)]
    return kept, [c.removeprefix("delta_") for c in cols]


def gains(
    steps: pd.DataFrame, names: list[str], cfg: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gain per regime of each name (regimes may overlap), and Black-76's error size."""
    parts = []
    for regime, (lo, hi) in cfg["regimes"].items():
        inside = range_labels(steps["ts"], {regime: (lo, hi)}) == regime
        sub = steps[inside.to_numpy()]
        label = pd.Series(regime, index=sub.index)
        parts.append(gain_table(sub, names, label, n_boot=cfg["n_boot"], seed=cfg["seed"]))
    table = pd.concat(parts, ignore_index=True)
    size = table.groupby("regime", sort=False)[
        ["n_steps", "n_options", "bs_rms_bp", "bs_rms_bp_day"]
    ].first()
    return table, size


def bounds(steps: pd.DataFrame, cfg: dict[str, Any]) -> pd.DataFrame:
    """:func:`hindsight_gain` per regime: the best Gain of one slope per step and bucket."""
    parts = []
    for regime, (lo, hi) in cfg["regimes"].items():
        inside = range_labels(steps["ts"], {regime: (lo, hi)}) == regime
        sub = steps[inside.to_numpy()]
        parts.append(hindsight_gain(sub, pd.Series(regime, index=sub.index)))
    table = pd.concat(parts, ignore_index=True).set_index("regime")
    for col in ("gain", "top_share", "gain_without_top"):
        table[col] = (100 * table[col]).round(1)
    return table


def print_gains(table: pd.DataFrame, names: list[str]) -> None:
    cell = table.assign(
        txt=lambda t: [
            f"{100 * g:+6.1f} [{100 * lo:+6.1f},{100 * hi:+6.1f}]"
            for g, lo, hi in zip(t["gain"], t["gain_lo"], t["gain_hi"], strict=True)
        ]
    )
    wide = cell.pivot(index="regime", columns="delta", values="txt")
    wide = wide.reindex(index=pd.unique(table["regime"]), columns=names)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(wide.to_string())


def sim_check(est: SpotVolBeta, seed: int) -> None:
    """Regime-aware vs Black-76 delta against the simulator's truth, per regime."""
    script = (("calm", 20.0), ("crash", 7.0), ("plateau", 15.0), ("rally", 7.0), ("calm", 15.0))
    run = simulate(replace(preset("calm-2026-01"), script=script), 64, "6h", seed)
    steps = in_band(hedge_steps(list(run.snapshots("BTC")), {}, price="mark"))
    truth = run.truth[["ts", "instrument", "true_delta", "true_mv_delta", "regime"]]
    out = causal_deltas(steps.merge(truth, on=["ts", "instrument"]), est)
    out["regime"] = out["regime"].astype(str)
    print(f"\nsimulator ({' -> '.join(r for r, _ in script)}, 6-hourly, seed {seed}):")
    print("RMSE of each delta against the true variance-fixed and minimum-variance deltas:")
    names = ["bs", "sm", "mv_roll", "regime"]
    rows = []
    for regime, g in out.groupby("regime", sort=False):
        row: dict[str, Any] = {"regime": regime}
        for truth_col in ("true_delta", "true_mv_delta"):
            for d in names:
                miss = g[f"delta_{d}"] - g[truth_col]
                row[f"{truth_col.removeprefix('true_')}:{d}"] = np.sqrt(np.mean(miss**2))
        rows.append(row)
    table = gain_table(out, ["regime", "mv_roll", "sm"], out["regime"], n_boot=200, seed=seed)
    err = pd.DataFrame(rows).set_index("regime").round(4)
    err["gain_regime_pct"] = (
        100 * table[table["delta"] == "regime"].set_index("regime")["gain"]
    ).round(1)
    print(err.to_string())
    # steps for the near-the-money slope to reach half of the regime's own full-sample slope
    # (same sign) after each switch, and the share of the spell it stays beyond that half
    path = run.path[["ts", "regime"]].drop_duplicates("ts")
    est.reset()
    slopes = []
    for _, rows_ in out.groupby("ts", sort=True):
        slopes.append((rows_["ts"].iloc[0], float(est.coefficients()[1, 0])))
        est.update(
            k=rows_["k"],
            t=rows_["t"],
            vol=rows_["mid_iv"],
            vega=rows_["vega"],
            d_ln_forward=np.log1p(rows_["d_forward"] / rows_["forward"]),
            error=(rows_["d_value"] - rows_["delta_bs"] * rows_["d_forward"]).to_numpy(),
            slope=rows_["smile_slope"],
        )
    s = pd.DataFrame(slopes, columns=["ts", "beta"]).merge(path, on="ts", how="left")
    s["spell"] = (s["regime"] != s["regime"].shift()).cumsum()
    for _, spell in list(s.groupby("spell"))[1:]:
        target = _oracle_slope(out[out["ts"].isin(spell["ts"])], est)
        half = spell["beta"].to_numpy() * np.sign(target) >= 0.5 * abs(target)
        reached = int(np.argmax(half)) if half.any() else None
        print(
            f"  switch to {spell['regime'].iloc[0]:8s}: in-regime slope {target:+.2f}; half of "
            f"it reached after {reached if reached is not None else 'never in'} of "
            f"{len(half)} steps, held on {100 * half.mean():.0f} % of them"
        )


def _oracle_slope(rows: pd.DataFrame, est: SpotVolBeta) -> float:
    """Least-squares bucket-1 (near the money) slope of a set of steps, all at once."""
    bucket, scale = est.buckets(rows["k"], rows["t"], rows["mid_iv"])
    x = rows["vega"] * scale * np.log1p(rows["d_forward"] / rows["forward"])
    e = rows["d_value"] - rows["delta_bs"] * rows["d_forward"]
    m = bucket == 1
    return float((x[m] * e[m]).sum() / (x[m] ** 2).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("runs/regime-greeks"))
    parser.add_argument("--study", type=Path, help="a study run with hedging.parquet")
    parser.add_argument(
        "--model-deltas",
        nargs="+",
        metavar="ENGINE",
        help="add these engines' model and minimum-variance deltas (heston, bates)",
    )
    parser.add_argument("--sim", action="store_true", help="add the simulator check")
    parser.add_argument(
        "--sensitivity", action="store_true", help="the regime-aware Gain over a settings grid"
    )
    args = parser.parse_args()
    cfg = tomllib.loads(args.config.read_text(encoding="utf-8"))
    start = time.perf_counter()
    snapshots = load_snapshots(cfg, args.cache)
    steps = in_band(hedge_steps(snapshots, {}, price=cfg["price"]), *cfg["delta_band"])
    names = list(BASE)
    if args.model_deltas:
        steps, models = with_model_deltas(steps, snapshots, args.model_deltas)
        names += models
    if args.study:
        steps, engines = with_engines(steps, args.study)
        names += engines
    est = SpotVolBeta(**cfg["estimator"])
    out = causal_deltas(steps, est, window=cfg["rolling_window"])
    # the guard's view at each snapshot, from all of its two-sided quotes (not only the options
    # still quoted at the next snapshot, which would be hindsight)
    quotes = [observed_vols(snap).assign(ts=snap.ts) for snap in snapshots]
    prob = stress_probability(pd.concat(quotes, ignore_index=True))
    guarded = causal_deltas(steps, est, window=1, regime_prob=prob)
    out["delta_regime_guard"] = guarded["delta_regime"].to_numpy()
    lo, hi = cfg["regimes"][cfg["train_regime"]]
    train = (range_labels(out["ts"], {"t": (lo, hi)}) == "t").to_numpy()
    out["delta_mv_train"] = fit_min_variance(out[train]).delta(out)
    out["delta_mv_all"] = fit_min_variance(out).delta(out)
    table, size = gains(out, names, cfg)
    print(
        f"{cfg['underlying']} one-step hedges marked at the {cfg['price']}, |delta_bs| in "
        f"{cfg['delta_band']}; Black-76 error size per regime (bp of the forward):"
    )
    print(size.round(1).to_string())
    print("\nGain vs Black-76 delta, % [95 % bootstrap interval over steps]:")
    print_gains(table, names)
    print(
        "\nhindsight bound, %: each step's own least-squares slope per bucket (LOOK-AHEAD), "
        "and the same with the regime's largest step left to Black-76"
    )
    print(bounds(out, cfg).to_string())
    if args.sensitivity:
        print("\nregime-aware Gain, % (settings grid; the table above uses the TOML's):")
        grid = []
        for half_life in (1.5, 2.0, 2.5, 3.0):
            for threshold in (4.0, 9.0, 12.0, 16.0):
                settings = {**cfg["estimator"], "fast_half_life": half_life}
                settings["threshold"] = threshold
                again = causal_deltas(steps, SpotVolBeta(**settings), window=1)
                t, _ = gains(again, ["regime"], {**cfg, "n_boot": 1})
                row = (100 * t.set_index("regime")["gain"]).round(1)
                grid.append(row.rename(f"half-life {half_life:g}, c {threshold:g}"))
        print(pd.DataFrame(grid).to_string())
        print("\nregime_guard Gain, % (stress_threshold grid):")
        grid = []
        for stress in (0.0, 1.0, 2.0, 4.0):
            settings = {**cfg["estimator"], "stress_threshold": stress}
            again = causal_deltas(steps, SpotVolBeta(**settings), window=1, regime_prob=prob)
            t, _ = gains(again, ["regime"], {**cfg, "n_boot": 1})
            row = (100 * t.set_index("regime")["gain"]).round(1)
            grid.append(row.rename(f"stress_threshold {stress:g}"))
        print(pd.DataFrame(grid).to_string())
    if args.sim:
        sim_check(SpotVolBeta(**cfg["estimator"]), cfg["seed"])
    print(f"\nrun time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
