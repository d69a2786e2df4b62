"""Shared pieces of the benchmarks: the seeded option set and a best-of-N timer."""

from __future__ import annotations

import math
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from volguard._typing import BoolArray, FloatArray
from volguard.kernels.black76 import price_kernel


@dataclass(frozen=True)
class OptionSet:
    """``n`` options in crypto ranges; prices are volguard's Black-76 prices of ``vol``."""

    forward: FloatArray
    strike: FloatArray
    t: FloatArray
    vol: FloatArray
    is_call: BoolArray
    discount: FloatArray
    price: FloatArray

    @property
    def n(self) -> int:
        return int(self.forward.shape[0])


def make_option_set(n: int = 1_000_000, seed: int = 20261124) -> OptionSet:
    """F ~ U[30k, 100k] USD, ln(K/F) ~ U[-1.5, 1], T log-uniform in [1 day, 2 years],
    vol ~ U[0.2, 2.0], calls and puts 50/50, D = 1 (Deribit)."""
    rng = np.random.default_rng(seed)
    forward = rng.uniform(30_000.0, 100_000.0, n)
    strike = forward * np.exp(rng.uniform(-1.5, 1.0, n))
    t = np.exp(rng.uniform(math.log(1.0 / 365.0), math.log(2.0), n))
    vol = rng.uniform(0.2, 2.0, n)
    is_call = rng.random(n) < 0.5
    discount = np.ones(n)
    price = price_kernel(forward, strike, t, vol, is_call, discount, parallel=True)
    return OptionSet(forward, strike, t, vol, is_call, discount, price)


def vol_rounding_sensitivity(opts: OptionSet) -> FloatArray:
    """How far rounding the price to float64 moves the vol: ``ulp(price)/2 / vega``.

    Evaluated in logarithms (``vega = D sqrt(F K) sqrt(t) exp(-(h^2 + s^2/4)/2)/sqrt(2 pi)``,
    ``h = ln(F/K)/s``) so that it stays finite where the price underflows.
    """
    s = opts.vol * np.sqrt(opts.t)
    h = np.log(opts.forward / opts.strike) / s
    ln_vega = (
        np.log(opts.discount)
        + 0.5 * (np.log(opts.forward) + np.log(opts.strike) + np.log(opts.t))
        - 0.5 * (h * h + 0.25 * s * s)
        - 0.5 * math.log(2.0 * math.pi)
    )
    ln_half_ulp = np.log(np.spacing(np.abs(opts.price))) - math.log(2.0)
    with np.errstate(over="ignore"):
        return np.asarray(np.exp(ln_half_ulp - ln_vega), dtype=np.float64)


def best_of(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    """Smallest wall time of ``repeat`` calls (after one warm-up call) and the last result."""
    result = fn()
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def race(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, tuple[float, Any]]:
    """Best wall time per function over ``rounds`` interleaved rounds (after a warm-up each).

    Interleaving gives every library the same chances on a machine shared with other jobs:
    a burst of foreign load costs each contender a round, not one contender all of its runs.
    """
    results: dict[str, tuple[float, Any]] = {name: (math.inf, fn()) for name, fn in fns.items()}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            out = fn()
            elapsed = time.perf_counter() - start
            if elapsed < results[name][0]:
                results[name] = (elapsed, out)
    return results


def load_average() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "?"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        ncpu = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        ncpu = "?"
    return f"{cpu}, {ncpu.strip()} cores, Python {platform.python_version()}, {platform.system()}"
