"""Heston surface repricing: volguard COS against QuantLib's AnalyticHestonEngine, same run.

A BTC-like surface, 10 expiries (1 week to 2 years) x 20 strikes (+-2.5 standard deviations
of log-moneyness), forward 60,000 USD, undiscounted, is repriced after each parameter change
(what a calibration does):

* ``volguard COS``: one :func:`volguard.kernels.heston_cos.heston_price` call per surface
  (automatic N per expiry, L = 10); also the price + analytic 5-parameter gradient call,
  and the price with N fixed at ``FIXED_N`` (the smallest N tried with a vol error under
  1e-9 here; the calibration engine fixes N per run too).
* ``QuantLib``: 200 ``VanillaOption`` objects on an ``AnalyticHestonEngine``, repriced after
  ``HestonModel.setParams``; once with the engine's default (Gauss-Laguerre, order 144) and
  once with adaptive Gauss-Lobatto at 1e-12 relative tolerance, the accuracy reference.

Rounds are interleaved (fair on a shared machine); the median of the rounds is reported. Each
timed sample follows one untimed call of the same pricer, the state of a calibration loop that
reprices with one pricer back to back: without it, whichever pricer runs first in a round,
right after QuantLib's adaptive engine, pays about 0.1 ms per surface for the caches that
engine leaves (measured: the same COS call, 0.30 ms warm and 0.40 ms first in the round).
Differences are against the adaptive QuantLib prices: USD, and Black-76 implied vol on the
out-of-the-money option (vol points, from QuantLib's ``blackFormulaImpliedStdDev``).

QuantLib lives in its own venv so that the unit-test venv never imports it::

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install QuantLib==1.44 numpy==2.4.6 scipy==1.17.1
    .venv-bench/bin/pip install -e . --no-deps
    .venv-bench/bin/python benchmarks/bench_heston.py
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from volguard.kernels.heston_cos import (
    heston_price,
    heston_price_grad,
    terms_per_expiry,
    truncation_range,
)

FORWARD = 60_000.0
DAYS = np.array([7, 14, 30, 60, 90, 180, 270, 365, 540, 730])
PARAMS = (0.45, 2.5, 0.5, 1.4, -0.2)  # v0, kappa, theta, sigma, rho: BTC-like
N_STRIKES = 20
FIXED_N = 160


def _surface() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = DAYS / 365.0
    z = np.linspace(-2.5, 2.5, N_STRIKES)
    k = FORWARD * np.exp(np.outer(np.sqrt(max(PARAMS[0], PARAMS[2]) * t), z))
    strikes = np.round(k, -1)  # exchange-like strikes, 10 USD grid
    tt = np.repeat(t[:, None], N_STRIKES, axis=1)
    is_call = strikes >= FORWARD  # out-of-the-money side
    return tt, strikes, is_call


class _QuantLibSurface:
    def __init__(self, strikes: np.ndarray, is_call: np.ndarray, engine: str) -> None:
        import QuantLib as ql

        self.ql = ql
        today = ql.Date(1, 6, 2025)
        ql.Settings.instance().evaluationDate = today
        dc = ql.Actual365Fixed()
        flat = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc))
        spot = ql.QuoteHandle(ql.SimpleQuote(FORWARD))  # r = q = 0: spot = forward
        v0, kappa, theta, sigma, rho = PARAMS
        process = ql.HestonProcess(flat, flat, spot, v0, kappa, theta, sigma, rho)
        self.model = ql.HestonModel(process)
        if engine == "default":
            eng = ql.AnalyticHestonEngine(self.model)
        else:
            eng = ql.AnalyticHestonEngine(self.model, 1e-12, 1_000_000)
        self.options = []
        for i, days in enumerate(DAYS):
            exercise = ql.EuropeanExercise(today + int(days))
            for j in range(strikes.shape[1]):
                kind = ql.Option.Call if is_call[i, j] else ql.Option.Put
                opt = ql.VanillaOption(ql.PlainVanillaPayoff(kind, float(strikes[i, j])), exercise)
                opt.setPricingEngine(eng)
                self.options.append(opt)
        self.shape = strikes.shape

    def price(self, params: tuple[float, ...]) -> np.ndarray:
        # HestonModel parameter order: theta, kappa, sigma, rho, v0
        v0, kappa, theta, sigma, rho = params
        self.model.setParams(self.ql.Array([theta, kappa, sigma, rho, v0]))
        return np.array([o.NPV() for o in self.options]).reshape(self.shape)


def _implied_vol(price: np.ndarray, strikes: np.ndarray, t: np.ndarray, is_call: np.ndarray) -> Any:
    import QuantLib as ql

    out = np.empty_like(price)
    for idx in np.ndindex(price.shape):
        kind = ql.Option.Call if is_call[idx] else ql.Option.Put
        std = ql.blackFormulaImpliedStdDev(
            kind, float(strikes[idx]), FORWARD, float(price[idx]), 1.0, 0.0, 0.5, 1e-14, 200
        )
        out[idx] = std / np.sqrt(t[idx])
    return out


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--inner", type=int, default=5, help="surfaces per timed call")
    parser.add_argument(
        "--cold", action="store_true", help="no untimed call before each sample (old protocol)"
    )
    args = parser.parse_args()
    t, strikes, is_call = _surface()
    ql_default = _QuantLibSurface(strikes, is_call, "default")
    ql_adaptive = _QuantLibSurface(strikes, is_call, "adaptive")
    rng = np.random.default_rng(0)
    # small parameter moves per surface, as in a calibration; same sequence for everyone
    bumps = [tuple(np.array(PARAMS) * (1 + 1e-3 * rng.standard_normal(5))) for _ in range(64)]

    def cos_run() -> None:
        for p in bumps[: args.inner]:
            heston_price(FORWARD, strikes, t, p, is_call)

    def cos_fixed_run() -> None:
        for p in bumps[: args.inner]:
            heston_price(FORWARD, strikes, t, p, is_call, n_terms=FIXED_N)

    def cos_grad_run() -> None:
        for p in bumps[: args.inner]:
            heston_price_grad(FORWARD, strikes, t, p, is_call)

    def ql_default_run() -> None:
        for p in bumps[: args.inner]:
            ql_default.price(p)

    def ql_adaptive_run() -> None:
        for p in bumps[: args.inner]:
            ql_adaptive.price(p)

    runs = {
        "volguard COS (price)": cos_run,
        f"volguard COS (price, N = {FIXED_N} fixed)": cos_fixed_run,
        "volguard COS (price + 5-param gradient)": cos_grad_run,
        "QuantLib AnalyticHeston (Gauss-Laguerre 144)": ql_default_run,
        "QuantLib AnalyticHeston (adaptive, 1e-12)": ql_adaptive_run,
    }
    for fn in runs.values():  # warm-up
        fn()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, fn in runs.items():
            if not args.cold:
                fn()  # untimed: warm caches, as in a calibration loop
            samples[name].append(_time(fn) / args.inner)

    print(
        f"Heston surface {len(DAYS)} expiries x {N_STRIKES} strikes, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.2f}, median of {args.rounds} rounds x {args.inner} surfaces"
        f"{' (cold: no untimed call first)' if args.cold else ''}"
    )
    t_u = DAYS / 365.0
    n_auto = terms_per_expiry(t_u, *truncation_range(t_u, PARAMS), PARAMS)
    print(f"  automatic N per expiry: {n_auto.tolist()} ({int(n_auto.sum())} terms in all)")
    base = statistics.median(samples["volguard COS (price)"])
    for name, s in samples.items():
        med = statistics.median(s)
        print(f"  {name:<46} {med:9.3f} ms/surface   x{med / base:7.1f} vs COS")
    gl_med = statistics.median(samples["QuantLib AnalyticHeston (Gauss-Laguerre 144)"])
    for name in ("volguard COS (price)", f"volguard COS (price, N = {FIXED_N} fixed)"):
        ratio = gl_med / statistics.median(samples[name])
        print(f"  QuantLib Gauss-Laguerre 144 / {name}: x{ratio:.1f}")

    ref = ql_adaptive.price(PARAMS)
    cos = heston_price(FORWARD, strikes, t, PARAMS, is_call)
    cos_fixed = heston_price(FORWARD, strikes, t, PARAMS, is_call, n_terms=FIXED_N)
    gl = ql_default.price(PARAMS)
    iv_ref = _implied_vol(ref, strikes, t, is_call)
    for name, prices in (
        ("volguard COS", cos),
        (f"volguard COS N = {FIXED_N}", cos_fixed),
        ("QuantLib Gauss-Laguerre", gl),
    ):
        diff = np.abs(prices - ref)
        iv = _implied_vol(prices, strikes, t, is_call)
        print(
            f"  {name:<24} vs adaptive QuantLib: max |price diff| {diff.max():.2e} USD "
            f"({diff.max() / FORWARD:.1e} of F), max |vol diff| {np.abs(iv - iv_ref).max():.1e}"
        )


if __name__ == "__main__":
    main()
