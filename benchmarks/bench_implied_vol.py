"""Implied-vol benchmark: volguard against its peers on one seeded 1,000,000-option set.

Run ``make bench`` (or ``.venv-bench/bin/python benchmarks/bench_implied_vol.py``). Every
library inverts the same prices (volguard's Black-76 prices of known vols, see
``_common.make_option_set``) in the same process, one after the other; throughput is the best
of ``--repeat`` runs. Accuracy is measured on the well-posed inputs: those where rounding the
price to float64 moves the vol by less than 1e-10 (``_common.vol_rounding_sensitivity``).
Peers that are not installed or fail to run are reported as such, never silently dropped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

from _common import (
    OptionSet,
    best_of,
    load_average,
    machine,
    make_option_set,
    race,
    vol_rounding_sensitivity,
)
from volguard._typing import FloatArray
from volguard.kernels.lets_be_rational import implied_vol_kernel
from volguard.kernels.lets_be_rational_numpy import implied_vol_np
from volguard.kernels.status import IVStatus

WELL_POSED = 1e-10


@dataclass
class Row:
    name: str
    note: str
    seconds: float | None  # per option set of size n_timed
    n_timed: int
    vols: FloatArray | None  # on the full set (or the timed subset, see `subset`)
    subset: np.ndarray | None = None  # indices the vols refer to (None = all)
    error: str = ""


def newton_baseline(opts: OptionSet, iterations: int = 20) -> FloatArray:
    """Vectorised Newton on the Black-76 price from the Brenner-Subrahmanyam guess."""
    from scipy.special import ndtr

    f, k, t, p = opts.forward, opts.strike, opts.t, opts.price / opts.discount
    sign = np.where(opts.is_call, 1.0, -1.0)
    sqrt_t = np.sqrt(t)
    vol = np.full(f.shape, 0.5)
    with np.errstate(all="ignore"):
        vol = np.clip(np.sqrt(2.0 * np.pi / t) * p / f, 0.05, 3.0)
        for _ in range(iterations):
            s = vol * sqrt_t
            d1 = np.log(f / k) / s + 0.5 * s
            d2 = d1 - s
            model = sign * (f * ndtr(sign * d1) - k * ndtr(sign * d2))
            vega = f * np.exp(-0.5 * d1 * d1) / np.sqrt(2.0 * np.pi) * sqrt_t
            vol = vol - (model - p) / vega
        vol = np.where((vol > 0.0) & np.isfinite(vol), vol, np.nan)
    return np.asarray(vol, dtype=np.float64)


def volguard_solvers(opts: OptionSet) -> dict[str, Callable[[], FloatArray]]:
    args = (opts.price, opts.forward, opts.strike, opts.t, opts.is_call, opts.discount)
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    threads = numba.get_num_threads()
    return {
        "volguard (numba, 1 thread)": lambda: implied_vol_kernel(*args, parallel=False)[0],
        f"volguard (numba, {threads} threads)": lambda: implied_vol_kernel(*args, parallel=True)[0],
    }


def lbriv_solver(opts: OptionSet) -> Callable[[], FloatArray] | str:
    try:
        import lbriv
    except ImportError as exc:
        return f"not installed ({exc})"
    # lbriv inverts undiscounted prices at one forward, T = 1 (total vol): Black-76 is
    # homogeneous, so price/F at forward 1 and strike K/F gives s = vol sqrt(T).
    calls = np.flatnonzero(opts.is_call)
    puts = np.flatnonzero(~opts.is_call)
    norm_p = opts.price / opts.discount / opts.forward
    moneyness = opts.strike / opts.forward
    sqrt_t = np.sqrt(opts.t)

    def solve() -> FloatArray:
        out = np.empty(opts.n)
        for idx, q in ((calls, 1), (puts, -1)):
            out[idx] = lbriv.vectorized_implied_vol_strikes(norm_p[idx], 1.0, moneyness[idx], q)
        return out / sqrt_t

    return solve


def pyvolr_solver(opts: OptionSet) -> Callable[[], FloatArray] | str:
    try:
        import pyvolr.black76 as b76
    except ImportError as exc:
        return f"not installed ({exc})"
    flags = np.where(opts.is_call, "c", "p")
    rate = -np.log(opts.discount) / opts.t

    def solve() -> FloatArray:
        out = b76.implied_vol(
            opts.price, flags, opts.forward, opts.strike, opts.t, rate, return_as="numpy"
        )
        return np.asarray(out, dtype=np.float64)

    try:
        solve()
    except Exception as exc:  # a peer failing is a result, not a crash of the benchmark
        return f"{type(exc).__name__}: {exc}"
    return solve


def run_py_vollib_vectorized(opts: OptionSet, repeat: int) -> Row:
    name = "py_vollib_vectorized 0.1.1"
    os.environ.setdefault("PY_LETS_BE_RATIONAL_ENABLE_NUMBA", "1")
    try:
        import py_vollib_vectorized as pvv

        flags = np.where(opts.is_call, "c", "p")
        rate = np.zeros(opts.n)
        pvv.vectorized_implied_volatility_black(
            opts.price[:2],
            opts.forward[:2],
            opts.strike[:2],
            rate[:2],
            opts.t[:2],
            flags[:2],
            return_as="numpy",
        )
    except Exception as exc:
        first = str(exc).strip().splitlines()
        msg = next((ln for ln in first if "attribute" in ln or "name" in ln), first[0])
        msg = msg.split(" of type Module")[0][:110]
        return Row(name, "", None, 0, None, error=f"fails to run: {type(exc).__name__}: {msg}")

    def solve() -> FloatArray:
        out = pvv.vectorized_implied_volatility_black(
            opts.price, opts.forward, opts.strike, rate, opts.t, flags, return_as="numpy"
        )
        return np.asarray(out, dtype=np.float64)

    sec, vols = best_of(solve, repeat)
    return Row(name, "numba LBR", sec, opts.n, vols)


def run_quantlib(opts: OptionSet, n_sub: int) -> Row:
    try:
        import QuantLib as ql
    except ImportError as exc:
        return Row("QuantLib", "", None, 0, None, error=f"not installed ({exc})")
    idx = np.arange(min(n_sub, opts.n))
    call, put = ql.Option.Call, ql.Option.Put

    def solve() -> FloatArray:
        out = np.full(idx.shape[0], np.nan)
        for j, i in enumerate(idx):
            try:
                s = ql.blackFormulaImpliedStdDev(
                    call if opts.is_call[i] else put,
                    float(opts.strike[i]),
                    float(opts.forward[i]),
                    float(opts.price[i]),
                    float(opts.discount[i]),
                )
                out[j] = s / math.sqrt(opts.t[i])
            except RuntimeError:
                pass
        return out

    sec, vols = best_of(solve, 1)
    note = f"scalar loop, default accuracy, first {idx.shape[0]:,} options"
    return Row(f"QuantLib {ql.__version__}", note, sec, idx.shape[0], vols, subset=idx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--quantlib-n", type=int, default=100_000)
    args = parser.parse_args()

    opts = make_option_set(args.n, args.seed)
    sens = vol_rounding_sensitivity(opts)
    well_posed = sens < WELL_POSED
    print(f"# Implied vol benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"# machine: {machine()}; numba threads available {numba.config.NUMBA_NUM_THREADS}")
    print(
        f"# {opts.n:,} options (seed {args.seed}), well-posed {well_posed.sum():,}; "
        f"best of {args.repeat}"
    )

    print(f"# load average at start: {load_average()}")
    contenders: dict[str, Callable[[], FloatArray]] = dict(volguard_solvers(opts))
    notes = {
        "lbriv 1.0.0": "Cython LBR, 1 thread",
        "pyvolr 0.1.7": "Rust LBR, its default threads (2)",
    }
    errors: dict[str, str] = {}
    for name, solver in (
        ("lbriv 1.0.0", lbriv_solver(opts)),
        ("pyvolr 0.1.7", pyvolr_solver(opts)),
    ):
        if isinstance(solver, str):
            errors[name] = solver
        else:
            contenders[name] = solver
    raced = race(contenders, args.repeat)
    rows = []
    for name, (sec, vols) in raced.items():
        note = notes.get(name, "LBR, own code" if "1 thread" in name else "LBR, prange")
        rows.append(Row(name, note, sec, opts.n, vols))
    rows.extend(Row(name, "", None, 0, None, error=err) for name, err in errors.items())
    args_np = (opts.price, opts.forward, opts.strike, opts.t, opts.is_call, opts.discount)
    sec, (vols, _) = best_of(lambda: implied_vol_np(*args_np), 2)
    rows.append(Row("volguard NumPy twin", "plain NumPy, 1 thread", sec, opts.n, vols))
    sec, vols = best_of(lambda: newton_baseline(opts), 2)
    rows.append(Row("NumPy Newton baseline", "20 steps", sec, opts.n, vols))
    rows.append(run_py_vollib_vectorized(opts, args.repeat))
    rows.append(run_quantlib(opts, args.quantlib_n))
    print(f"# load average at end: {load_average()}")

    lbriv_rate = next(
        (r.n_timed / r.seconds for r in rows if r.name.startswith("lbriv") and r.seconds), None
    )
    header = (
        "| library | options/s | vs lbriv | failures (well-posed) | max abs err | "
        "median abs err | note |"
    )
    print()
    print(header)
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        if r.seconds is None or r.vols is None:
            print(f"| {r.name} | - | - | - | - | - | {r.error} |")
            continue
        rate = r.n_timed / r.seconds
        sub = r.subset if r.subset is not None else np.arange(opts.n)
        wp = well_posed[sub]
        err = np.abs(r.vols - opts.vol[sub])[wp]
        fails = int(np.sum(~np.isfinite(r.vols[wp])))
        finite = err[np.isfinite(err)]
        ratio = f"{rate / lbriv_rate:.2f}x" if lbriv_rate else "-"
        print(
            f"| {r.name} | {rate / 1e6:.2f} M | {ratio} | {fails:,} / {wp.sum():,} "
            f"| {finite.max():.1e} | {np.median(finite):.1e} | {r.note} |"
        )

    # status check on crafted invalid inputs (each row must get exactly its status)
    nan, inf = math.nan, math.inf
    cases = [
        (0.5, 100.0, 100.0, 1.0, True, IVStatus.OK),
        (-1.0, 100.0, 90.0, 1.0, True, IVStatus.BELOW_INTRINSIC),
        (5.0, 100.0, 90.0, 1.0, True, IVStatus.BELOW_INTRINSIC),
        (100.0, 100.0, 90.0, 1.0, True, IVStatus.ABOVE_UPPER_BOUND),
        (95.0, 100.0, 95.0, 1.0, False, IVStatus.ABOVE_UPPER_BOUND),
        (1.0, 100.0, 100.0, 0.0, True, IVStatus.ZERO_TIME),
        (nan, 100.0, 100.0, 1.0, True, IVStatus.NON_FINITE_INPUT),
        (1.0, inf, 100.0, 1.0, True, IVStatus.NON_FINITE_INPUT),
        (10.0, 100.0, 90.0, 1.0, True, IVStatus.ILL_POSED),
        (0.0, 100.0, 120.0, 1.0, True, IVStatus.ILL_POSED),
        (1.0, -100.0, 100.0, 1.0, True, IVStatus.INVALID_INPUT),
        (1.0, 100.0, 100.0, -1.0, True, IVStatus.INVALID_INPUT),
    ]
    arr = [np.array([c[j] for c in cases]) for j in range(5)]
    vols, status = implied_vol_kernel(
        arr[0].astype(float),
        arr[1].astype(float),
        arr[2].astype(float),
        arr[3].astype(float),
        arr[4].astype(bool),
        np.ones(len(cases)),
        parallel=False,
    )
    expected = np.array([int(c[5]) for c in cases])
    nan_ok = bool(np.all(np.isnan(vols) == (status != 0)))
    print()
    print(
        f"invalid-input statuses: {int(np.sum(status == expected))}/{len(cases)} correct; "
        f"vol NaN exactly where status != ok: {nan_ok}"
    )


if __name__ == "__main__":
    main()
