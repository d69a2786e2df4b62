"""Smile fits per expiry slice: volguard's compiled SVI against scipy and QuantLib, same run.

Data: noisy 30-strike slices, seeds 0..N-1: a BTC-like raw SVI smile (``a = 0.02``,
``b = 0.12``, ``rho = -0.3``, ``m = 0.02``, ``sigma = 0.15`` at ``t = 91/365``), log-moneyness
``k = -0.6 .. 0.5``, plus Gaussian noise of 0.5 vol points on each vol; unit weights.

SVI contenders, all on the same slices:

* ``volguard fast``: :func:`volguard.models.parametric.svi.fit_svi_slice` (numba variable
  projection: exact 27-face inner solve, Nelder-Mead over ``(m, ln sigma)``).
* ``volguard VP reference``: :func:`fit_svi_slice_reference` (scipy SLSQP over the five raw
  parameters with the constraints written out, the NumPy twin).
* ``scipy least_squares FD``: the 5 raw parameters directly, trust-region reflective with the
  default 2-point finite-difference Jacobian, box bounds, start from the smile's shape.
* ``QuantLib SviInterpolatedSmileSection`` (1.44): unweighted vol errors, all five parameters
  free, the same start; its own optimiser (Levenberg-Marquardt with random restarts).

Objective (for every contender, evaluated on its fitted parameters):
``sum_i ((w_i - w(k_i)) / (2 vol_i t))^2`` (the first-order vol error of the variance fit,
vol^2) and the RMSE of the fitted vols (vol points). SABR: the volguard slice fit
(:func:`volguard.models.parametric.sabr.fit_sabr_slice`, beta = 1, analytic Jacobian) against
QuantLib's ``SABRInterpolation`` (beta fixed at 1, unweighted) on noisy SABR smiles.

Rounds are interleaved (fair on a shared machine); the best round counts. Run::

    make bench                                   # or, with .venv-bench built:
    .venv-bench/bin/python benchmarks/bench_svi.py
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from volguard.kernels.sabr import sabr_vol
from volguard.models.parametric.sabr import fit_sabr_slice
from volguard.models.parametric.svi import (
    fit_svi_slice,
    fit_svi_slice_reference,
    svi_raw,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, machine, race

DAYS = 91
T = DAYS / 365.0
FORWARD = 60_000.0
K = np.linspace(-0.6, 0.5, 30)
TRUE_SVI = {"a": 0.02, "b": 0.12, "rho": -0.3, "m": 0.02, "sigma": 0.15}
TRUE_SABR = {"alpha": 0.55, "rho": -0.35, "nu": 2.0}
NOISE = 0.005

Slice = tuple[np.ndarray, np.ndarray]


def svi_slices(n: int) -> list[Slice]:
    clean = np.sqrt(svi_raw(K, **TRUE_SVI) / T)
    return [(K, clean + NOISE * np.random.default_rng(s).standard_normal(K.size)) for s in range(n)]


def sabr_slices(n: int) -> list[Slice]:
    clean = sabr_vol(FORWARD, FORWARD * np.exp(K), T, TRUE_SABR["alpha"], 1.0, -0.35, 2.0)
    return [(K, clean + NOISE * np.random.default_rng(s).standard_normal(K.size)) for s in range(n)]


def svi_objective(vol: np.ndarray, p: np.ndarray | dict[str, float]) -> tuple[float, float]:
    """``sum ((w - w_fit) / (2 vol t))^2`` (vol^2) and the RMSE of the fitted vols (vol pts);
    ``p`` the raw parameters in order, or by name (the peers' fits)."""
    w = vol**2 * T
    x = [p[n] for n in ("a", "b", "rho", "m", "sigma")] if isinstance(p, dict) else p
    fit = svi_raw(K, *x)
    obj = float(np.sum(((fit - w) / (2 * vol * T)) ** 2))
    rmse = float(np.sqrt(np.mean((np.sqrt(np.maximum(fit, 0) / T) - vol) ** 2))) * 100
    return obj, rmse


def svi_start(vol: np.ndarray) -> list[float]:
    """A sensible raw start from the smile's shape: ``m`` at the lowest variance, ``sigma = 0.1``,
    ``b`` from the mean wing slope, ``rho`` from the wing asymmetry, ``a`` from the minimum."""
    w = vol**2 * T
    left = (w[0] - w[3]) / (K[3] - K[0])
    right = (w[-1] - w[-4]) / (K[-1] - K[-4])
    b = max((left + right) / 2, 1e-3)
    rho = float(np.clip((right - left) / (right + left), -0.9, 0.9))
    sigma = 0.1
    a = max(float(w.min()) - b * sigma * math.sqrt(1 - rho * rho), 1e-4)
    return [a, b, rho, float(K[np.argmin(w)]), sigma]


def fit_scipy_fd(vol: np.ndarray) -> dict[str, float]:
    w = vol**2 * T
    scale = 1 / (2 * vol * T)
    span = float(K.max() - K.min())
    lo = [0.0, 0.0, -0.999, float(K.min()) - span, 1e-3]
    hi = [2 * float(w.max()), 2.0, 0.999, float(K.max()) + span, 2 * span + 1]
    x0 = np.clip(svi_start(vol), lo, hi)
    sol = least_squares(
        lambda p: (svi_raw(K, *p) - w) * scale,
        x0=x0,
        bounds=(lo, hi),
        method="trf",
        xtol=1e-10,
        ftol=1e-12,
    )
    return dict(zip(("a", "b", "rho", "m", "sigma"), (float(x) for x in sol.x), strict=True))


def quantlib_fitters() -> dict[str, Callable[[np.ndarray], dict[str, float]]]:
    try:
        import QuantLib as ql
    except ImportError:
        print("QuantLib not importable in this interpreter: its rows are skipped")
        return {}
    today = ql.Date(1, 6, 2025)
    ql.Settings.instance().evaluationDate = today
    expiry = today + DAYS
    strikes = list(FORWARD * np.exp(K))

    def svi(vol: np.ndarray) -> dict[str, float]:
        a, b, rho, m, sigma = svi_start(vol)
        atm = float(np.interp(0.0, K, vol))
        sec = ql.SviInterpolatedSmileSection(
            expiry, FORWARD, strikes, False, atm, list(map(float, vol)),
            a, b, sigma, rho, m, False, False, False, False, False, False,
        )  # fmt: skip
        return {"a": sec.a(), "b": sec.b(), "rho": sec.rho(), "m": sec.m(), "sigma": sec.sigma()}

    def sabr(vol: np.ndarray) -> dict[str, float]:
        interp = ql.SABRInterpolation(
            ql.Array(strikes), ql.Array(list(map(float, vol))), T, FORWARD,
            float(np.interp(0.0, K, vol)), 1.0, 1.0, 0.0,
            False, True, False, False, False,
        )  # fmt: skip
        return {"alpha": interp.alpha(), "rho": interp.rho(), "nu": interp.nu()}

    return {"svi": svi, "sabr": sabr}


def run_all(fit: Callable[[np.ndarray], Any], slices: list[Slice]) -> list[Any]:
    return [fit(vol) for _, vol in slices]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine()}; load average {load_average()}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    ones = np.ones(K.size)
    ql_fit = quantlib_fitters()

    slices = svi_slices(args.slices)
    start = time.perf_counter()
    fit_svi_slice(K, T, slices[0][1], ones)
    print(f"first fast-SVI call (numba compile or cache load): {time.perf_counter() - start:.2f} s")
    fns: dict[str, Callable[[], Any]] = {
        "volguard fast (numba VP)": lambda: run_all(
            lambda v: fit_svi_slice(K, T, v, ones)[0], slices
        ),
        "volguard VP reference (scipy)": lambda: run_all(
            lambda v: fit_svi_slice_reference(K, T, v, ones)[0], slices
        ),
        "scipy least_squares FD, 5 params": lambda: run_all(fit_scipy_fd, slices),
    }
    if "svi" in ql_fit:
        fns["QuantLib SviInterpolatedSmileSection"] = lambda: run_all(ql_fit["svi"], slices)
    results = race(fns, args.rounds)
    fast_ms = results["volguard fast (numba VP)"][0] * 1e3 / len(slices)
    fast_fits = results["volguard fast (numba VP)"][1]
    fast_obj = [svi_objective(v, p)[0] for (_, v), p in zip(slices, fast_fits, strict=True)]
    print(f"\nSVI: {len(slices)} noisy 30-strike slices, {NOISE * 100:.1f} vol-pt noise")
    print(
        "| fit | ms/slice | vs fast | median objective | obj / fast - 1, min..max | RMSE vol pts |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, (best, fitted) in results.items():
        ms = best * 1e3 / len(slices)
        objs = [svi_objective(v, p) for (_, v), p in zip(slices, fitted, strict=True)]
        obj = np.array([o for o, _ in objs])
        ratios = obj / np.array(fast_obj)
        rmse = float(np.median([r for _, r in objs]))
        print(
            f"| {name} | {ms:.3f} | {ms / fast_ms:.1f}x | {np.median(obj):.6e} | "
            f"{ratios.min() - 1:+.1e} .. {ratios.max() - 1:+.1e} | {rmse:.3f} |"
        )

    sabr = sabr_slices(args.slices)
    sabr_fns: dict[str, Callable[[], Any]] = {
        "volguard sabr (analytic Jacobian)": lambda: run_all(
            lambda v: fit_sabr_slice(K, T, FORWARD, v, ones, 1.0)[0], sabr
        )
    }
    if "sabr" in ql_fit:
        sabr_fns["QuantLib SABRInterpolation"] = lambda: run_all(ql_fit["sabr"], sabr)
    sabr_results = race(sabr_fns, args.rounds)
    print(f"\nSABR (beta = 1): {len(sabr)} noisy 30-strike slices, truth {TRUE_SABR}")
    print("| fit | ms/slice | median sum sq vol err | median alpha, rho, nu |")
    print("|---|---:|---:|---|")
    for name, (best, fitted) in sabr_results.items():
        sse = [
            float(np.sum((sabr_vol(FORWARD, FORWARD * np.exp(K), T, p["alpha"], 1.0, p["rho"],
                                   p["nu"]) - v) ** 2))
            for (_, v), p in zip(sabr, fitted, strict=True)
        ]  # fmt: skip
        med = [float(np.median([p[key] for p in fitted])) for key in ("alpha", "rho", "nu")]
        print(
            f"| {name} | {best * 1e3 / len(sabr):.3f} | {np.median(sse):.6e} | "
            f"{med[0]:.4f}, {med[1]:.4f}, {med[2]:.4f} |"
        )

    crash_chain(args.rounds)


def crash_chain(rounds: int) -> None:
    """The BTC crash snapshot (2026-02-05 09:36 UTC) from ``VOLGUARD_DATA``, where present."""
    root = Path(
        os.environ.get("VOLGUARD_DATA", Path(__file__).resolve().parents[2] / "shared/data")
    )
    files = sorted((root / "deribit-svcj-snapshots" / "snapshots").glob("*20260205T093647Z*"))
    if not files:
        print(f"\nreal data not found under {root}: crash-chain rows skipped")
        return
    from volguard.data.hygiene import classify, split
    from volguard.data.loaders import read_deribit_snapshot
    from volguard.market import MarketSnapshot
    from volguard.models import make_engine
    from volguard.models.quotes import fit_quotes

    clean, _ = split(classify(read_deribit_snapshot(files[0])))
    snapshot = MarketSnapshot.from_quotes(clean[clean["underlying"] == "BTC"])
    quotes = fit_quotes(snapshot, "vega")
    parts = [quotes.slice(i) for i in range(len(quotes.expiries))]
    args = [(q.k, float(np.median(q.t)), q.mid_iv, q.weight) for q in parts if len(q) >= 5]
    per_slice = race(
        {
            "fast": lambda: [fit_svi_slice(*a)[2] for a in args],
            "reference": lambda: [fit_svi_slice_reference(*a)[2] for a in args],
        },
        rounds,
    )
    obj_fast = np.array(per_slice["fast"][1])
    obj_ref = np.array(per_slice["reference"][1])
    rel = obj_fast / obj_ref - 1
    print(
        f"\nBTC crash chain, {len(args)} slices, {sum(a[0].size for a in args)} quotes (vega "
        f"weights): SVI fast {per_slice['fast'][0] * 1e3:.2f} ms, VP reference "
        f"{per_slice['reference'][0] * 1e3:.2f} ms for all slices "
        f"({per_slice['reference'][0] / per_slice['fast'][0]:.1f}x); objective fast / reference "
        f"- 1 per slice: {rel.min():+.1e} .. {rel.max():+.1e}"
    )
    print("| engine | fit ms | RMSE vol pts | inside spread % | butterfly | calendar | bounds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, settings in (("svi", {}), ("sabr", {}), ("sabr", {"beta": None})):
        fits = [make_engine(name, **settings).fit(snapshot).result_ for _ in range(rounds)]
        r = fits[-1]
        a = r.arbitrage
        label = name + (f" beta={settings['beta']}" if settings else "")
        print(
            f"| {label} | {min(f.fit_ms for f in fits):.1f} | {r.rmse_vol_pts:.2f} | "
            f"{r.inside_spread_pct:.0f} | {a.butterfly_count} | {a.calendar_count} | "
            f"{a.bounds_count} |"
        )


if __name__ == "__main__":
    main()
