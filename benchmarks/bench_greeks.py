"""Black-76 price + greeks benchmark: volguard against a fused NumPy closed form and QuantLib.

Run ``make bench`` (or ``.venv-bench/bin/python benchmarks/bench_greeks.py``). Same seeded
1,000,000-option set as the implied-vol benchmark. The NumPy baseline computes price, delta,
gamma, vega and theta in one fused pass (shared d1, d2, pdf, cdf); volguard's kernel returns
those plus vanna and volga, with the price evaluated without cancellation (Jaeckel's
normalised Black). QuantLib ``BlackCalculator`` runs as a scalar loop on a subset.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math

import numba
import numpy as np
from scipy.special import ndtr

from _common import OptionSet, best_of, load_average, machine, make_option_set, race
from volguard._typing import FloatArray
from volguard.kernels.black76 import GREEK_NAMES, greeks_kernel


def fused_numpy(o: OptionSet) -> dict[str, FloatArray]:
    """Price, delta, gamma, vega, theta in one NumPy pass (the baseline)."""
    sqrt_t = np.sqrt(o.t)
    s = o.vol * sqrt_t
    d1 = np.log(o.forward / o.strike) / s + 0.5 * s
    d2 = d1 - s
    sign = np.where(o.is_call, 1.0, -1.0)
    nd1 = ndtr(sign * d1)
    nd2 = ndtr(sign * d2)
    dpdf = o.discount * np.exp(-0.5 * d1 * d1) * (1.0 / math.sqrt(2.0 * math.pi))
    fdpdf = o.forward * dpdf
    return {
        "price": o.discount * sign * (o.forward * nd1 - o.strike * nd2),
        "delta": o.discount * sign * nd1,
        "gamma": dpdf / (o.forward * s),
        "vega": fdpdf * sqrt_t,
        "theta": -0.5 * fdpdf * o.vol / sqrt_t,
    }


def quantlib_loop(o: OptionSet, n: int) -> float:
    import QuantLib as ql

    total = 0.0
    for i in range(n):
        payoff = ql.PlainVanillaPayoff(
            ql.Option.Call if o.is_call[i] else ql.Option.Put, float(o.strike[i])
        )
        std = float(o.vol[i] * math.sqrt(o.t[i]))
        calc = ql.BlackCalculator(payoff, float(o.forward[i]), std, float(o.discount[i]))
        total += calc.value() + calc.deltaForward() + calc.gammaForward()
        total += calc.vega(float(o.t[i])) + calc.theta(float(o.forward[i]), float(o.t[i]))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--quantlib-n", type=int, default=50_000)
    args = parser.parse_args()
    o = make_option_set(args.n, args.seed)
    a = (o.forward, o.strike, o.t, o.vol, o.is_call, o.discount)
    print(f"# Black-76 price + greeks benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"# machine: {machine()}")
    print(f"# {o.n:,} options (seed {args.seed}); best of {args.repeat}")

    print(f"# load average at start: {load_average()}")
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    threads = numba.get_num_threads()
    raced = race(
        {
            "base": lambda: fused_numpy(o),
            "one": lambda: greeks_kernel(*a, parallel=False),
            "par": lambda: greeks_kernel(*a, parallel=True),
        },
        args.repeat,
    )
    base = raced["base"][1]
    ours = raced["one"][1]
    rows: list[tuple[str, float, str]] = [
        ("fused NumPy closed form", o.n / raced["base"][0], "price, delta, gamma, vega, theta"),
        ("volguard (numba, 1 thread)", o.n / raced["one"][0], "+ vanna, volga"),
        (f"volguard (numba, {threads} threads)", o.n / raced["par"][0], "+ vanna, volga, prange"),
    ]
    try:
        n_ql = min(args.quantlib_n, o.n)
        sec, _ = best_of(lambda: quantlib_loop(o, n_ql), 1)
        import QuantLib as ql

        rows.append(
            (f"QuantLib {ql.__version__} BlackCalculator", n_ql / sec, f"scalar loop, {n_ql:,}")
        )
    except ImportError as exc:
        rows.append(("QuantLib", math.nan, f"not installed ({exc})"))

    print(f"# load average at end: {load_average()}")
    base_rate = rows[0][1]
    print()
    print("| implementation | options/s | vs fused NumPy | note |")
    print("|---|---:|---:|---|")
    for name, rate, note in rows:
        print(f"| {name} | {rate / 1e6:.2f} M | {rate / base_rate:.2f}x | {note} |")

    # agreement with the baseline where the closed form has no cancellation trouble
    ours_d = dict(zip(GREEK_NAMES, ours, strict=True))
    print()
    for name in ("delta", "gamma", "vega", "theta"):
        err = np.max(np.abs(ours_d[name] - base[name]) / (np.abs(base[name]) + 1e-12))
        print(f"max relative difference to the baseline, {name}: {err:.1e}")
    big = base["price"] > 1e-6 * o.forward
    rel = np.abs(ours_d["price"] - base["price"])[big] / base["price"][big]
    print(f"max relative difference of prices above 1e-6 F: {rel.max():.1e}")


if __name__ == "__main__":
    main()
