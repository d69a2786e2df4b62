"""One simulated year of hourly BTC chains; the chain pricing beside QuantLib's Bates engine.

* ``volguard``: :func:`volguard.sim.simulate` on the ``markov`` preset, 365 days every hour
  (8,760 snapshots), quotes included: regimes, path, listings, COS pricing of every chain with
  delta and gamma, implied vols, liquidity model, hygiene check. Wall time of the whole call and
  of the truth stage alone (``quote=False``).
* ``QuantLib``: the chains of ``--sample`` snapshots of that year priced with ``BatesEngine``
  on a ``BatesModel`` built per snapshot (the variance changes every hour), maturities rounded
  to whole days (QuantLib dates have no time of day), with QuantLib's default integration
  (Gauss-Laguerre, order 144) and with its adaptive Gauss-Lobatto at 1e-12 relative tolerance,
  the accuracy reference; the time per snapshot is scaled to the year. volguard's COS prices the
  same rounded maturities; differences are against the adaptive prices (USD per 1 BTC,
  out-of-the-money side).

The QuantLib part runs where QuantLib is installed (``make bench`` builds ``.venv-bench``)::

    .venv-bench/bin/python benchmarks/bench_simulator.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import load_average, machine
from volguard.kernels.heston_cos import bates_price
from volguard.sim import preset, simulate


def quantlib_chain(
    rows: dict[str, np.ndarray], params: tuple[float, ...], spot: float, adaptive: bool
) -> np.ndarray:
    """QuantLib Bates prices of one chain (r = 0, dividend yield = -basis so F = S e^{basis t})."""
    import QuantLib as ql

    today = ql.Date(2, 3, 2026)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    zero = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc))
    carry = ql.YieldTermStructureHandle(ql.FlatForward(today, -float(rows["basis"]), dc))
    v0, kappa, theta, sigma, rho, lam, mu_j, sigma_j = params
    process = ql.BatesProcess(
        zero,
        carry,
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        v0,
        kappa,
        theta,
        sigma,
        rho,
        lam,
        mu_j,
        sigma_j,
    )
    model = ql.BatesModel(process)
    engine = ql.BatesEngine(model, 1e-12, 1_000_000) if adaptive else ql.BatesEngine(model)
    out = np.empty(rows["strike"].size)
    for i, (days, strike, call) in enumerate(
        zip(rows["days"], rows["strike"], rows["call"], strict=True)
    ):
        kind = ql.Option.Call if call else ql.Option.Put
        option = ql.VanillaOption(
            ql.PlainVanillaPayoff(kind, float(strike)), ql.EuropeanExercise(today + int(days))
        )
        option.setPricingEngine(engine)
        out[i] = option.NPV()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=365.0)
    parser.add_argument("--sample", type=int, default=20, help="snapshots priced by QuantLib")
    args = parser.parse_args()
    print(f"machine: {machine()}; load average before: {load_average()}")
    scenario = preset("markov")
    simulate(scenario, days=1, freq="1h", seed=0)  # compile and warm the kernels

    start = time.perf_counter()
    truth_only = simulate(scenario, days=args.days, freq="1h", seed=0, quote=False)
    truth_s = time.perf_counter() - start
    start = time.perf_counter()
    run = simulate(scenario, days=args.days, freq="1h", seed=0)
    full_s = time.perf_counter() - start
    del truth_only
    per_snap = run.quotes.groupby("ts").size()
    print(
        f"volguard: {len(run.path):,} snapshots, {len(run.truth):,} priced options "
        f"({len(run.truth) / len(run.path):.0f} per snapshot), {len(run.quotes):,} quotes "
        f"(median {per_snap.median():.0f} per snapshot); regimes: "
        + ", ".join(f"{k} {v}" for k, v in run.path["regime"].value_counts().items())
    )
    print(f"volguard simulate, truth only: {truth_s:.1f} s; with quotes: {full_s:.1f} s")
    print(f"load average after: {load_average()}")

    try:
        import QuantLib  # noqa: F401
    except ImportError:
        print("QuantLib: not installed here (run from .venv-bench)")
        return
    truth = run.truth
    stamps = run.path["ts"].iloc[np.linspace(0, len(run.path) - 1, args.sample).astype(int)]
    ql_s, ql_adaptive_s, vg_s, worst, worst_default = 0.0, 0.0, 0.0, 0.0, 0.0
    n_options = 0
    for ts in stamps:
        g = truth[(truth["ts"] == ts) & (truth["is_call"] == (truth["k"] >= 0))]
        regime = scenario.regimes[str(g["regime"].iloc[0])]
        params = regime.pricing_params(float(g["variance"].iloc[0]))
        days = np.maximum(np.round(g["t"].to_numpy() * 365), 1)
        spot = float(g["index_price"].iloc[0])
        forward = spot * np.exp(regime.basis * days / 365)
        rows = {
            "days": days,
            "strike": g["strike"].to_numpy(),
            "call": g["is_call"].to_numpy(),
            "basis": np.float64(regime.basis),
        }
        start = time.perf_counter()
        ql_price = quantlib_chain(rows, params, spot, adaptive=False)
        ql_s += time.perf_counter() - start
        start = time.perf_counter()
        reference = quantlib_chain(rows, params, spot, adaptive=True)
        ql_adaptive_s += time.perf_counter() - start
        start = time.perf_counter()
        vg_price = bates_price(forward, rows["strike"], days / 365, params, rows["call"])
        vg_s += time.perf_counter() - start
        worst = max(worst, float(np.max(np.abs(reference - vg_price))))
        worst_default = max(worst_default, float(np.max(np.abs(reference - ql_price))))
        n_options += len(g)
    n = len(stamps)
    print(
        f"chain pricing, {n} snapshots x {n_options / n:.0f} out-of-the-money options, ms per "
        f"snapshot: volguard COS {vg_s / n * 1e3:.2f}; QuantLib BatesEngine default "
        f"{ql_s / n * 1e3:.1f} ({ql_s / vg_s:.0f}x, {ql_s / n * len(run.path) / 60:.1f} min per "
        f"simulated year), adaptive {ql_adaptive_s / n * 1e3:.1f} ({ql_adaptive_s / vg_s:.0f}x)"
    )
    print(
        f"max |price - QuantLib adaptive|, USD per BTC: volguard COS {worst:.2e}, "
        f"QuantLib default {worst_default:.2e}"
    )


if __name__ == "__main__":
    main()
