"""Heston calibration: volguard ``heston`` engine vs QuantLib Levenberg-Marquardt, same run.

The surface of ``bench_heston.py`` (10 expiries, 1 week to 2 years, x 20 strikes within +-2.5
standard deviations, forward 60,000 USD, undiscounted, out-of-the-money side) is priced from
known parameters ``PARAMS`` with QuantLib's ``AnalyticHestonEngine`` at adaptive Gauss-Lobatto,
1e-12 relative tolerance (the accuracy reference): that is the market, noise-free. Both
libraries calibrate to it from a near and a far start:

* ``volguard``: ``Heston(weighting="none", start=...)``: bounded trust-region least squares on
  vega-scaled price residuals with the analytic COS gradient as Jacobian (N from the kernel's
  automatic rule, fixed per run). Timed: the calibration (``result_.fit_ms``: start, N,
  least squares) and the whole ``fit`` (quote inversion, residuals, arbitrage diagnostics).
* ``QuantLib``: 200 ``HestonModelHelper`` (mid vols from the reference prices, default
  relative-price error) on one ``AnalyticHestonEngine`` (its default Gauss-Laguerre, order
  144), ``HestonModel.calibrate`` with ``LevenbergMarquardt`` (finite-difference Jacobian) and
  tolerances 1e-12. Timed: ``calibrate`` only (helpers built outside the clock).

Each calibration is repeated ``--rounds`` times, interleaved; the median time is reported
with the max absolute parameter error against ``PARAMS``.

Run (QuantLib lives in the bench venv)::

    make bench      # or: .venv-bench/bin/python benchmarks/bench_heston_calibration.py
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Any

import numpy as np
import pandas as pd

from bench_heston import DAYS, FORWARD, N_STRIKES, PARAMS, _QuantLibSurface, _surface
from volguard.kernels.api import implied_vol
from volguard.market import MarketSnapshot
from volguard.models.parametric.heston import Heston

STARTS = {
    "near": (0.50, 2.2, 0.55, 1.25, -0.30),  # about 10 % off
    "far": (0.10, 6.0, 1.50, 0.40, 0.50),  # every parameter far off, rho of the wrong sign
}
TS = pd.Timestamp("2025-06-01", tz="UTC")


def _snapshot(price: np.ndarray, strikes: np.ndarray, t: np.ndarray, is_call: np.ndarray) -> Any:
    rows = [
        {
            "ts": TS,
            "underlying": "BTC",
            "expiry": TS + pd.Timedelta(days=int(DAYS[i])),
            "t": float(t[i, j]),
            "strike": float(strikes[i, j]),
            "is_call": bool(is_call[i, j]),
            "forward": FORWARD,
            "bid": float(price[i, j]) * (1 - 1e-9),
            "ask": float(price[i, j]) * (1 + 1e-9),
            "bid_iv": np.nan,
            "ask_iv": np.nan,
            "open_interest": 1.0,
        }
        for i in range(len(DAYS))
        for j in range(N_STRIKES)
    ]
    return MarketSnapshot.from_quotes(pd.DataFrame(rows))


class _QuantLibCalibration:
    def __init__(self, strikes: np.ndarray, vols: np.ndarray, start: tuple[float, ...]) -> None:
        import QuantLib as ql

        self.ql = ql
        today = ql.Date(1, 6, 2025)
        ql.Settings.instance().evaluationDate = today
        dc = ql.Actual365Fixed()
        flat = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc))
        spot = ql.QuoteHandle(ql.SimpleQuote(FORWARD))
        v0, kappa, theta, sigma, rho = start
        self.model = ql.HestonModel(
            ql.HestonProcess(flat, flat, spot, v0, kappa, theta, sigma, rho)
        )
        engine = ql.AnalyticHestonEngine(self.model)  # Gauss-Laguerre 144
        self.helpers = []
        for i, days in enumerate(DAYS):
            for j in range(N_STRIKES):
                helper = ql.HestonModelHelper(
                    ql.Period(int(days), ql.Days),
                    ql.NullCalendar(),
                    FORWARD,
                    float(strikes[i, j]),
                    ql.QuoteHandle(ql.SimpleQuote(float(vols[i, j]))),
                    flat,
                    flat,
                )
                helper.setPricingEngine(engine)
                self.helpers.append(helper)

    def run(self) -> tuple[float, np.ndarray]:
        ql = self.ql
        lm = ql.LevenbergMarquardt(1e-12, 1e-12, 1e-12)
        end = ql.EndCriteria(2000, 200, 1e-12, 1e-12, 1e-12)
        start = time.perf_counter()
        self.model.calibrate(self.helpers, lm, end)
        ms = (time.perf_counter() - start) * 1e3
        theta, kappa, sigma, rho, v0 = list(self.model.params())
        return ms, np.array([v0, kappa, theta, sigma, rho])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    t, strikes, is_call = _surface()
    market = _QuantLibSurface(strikes, is_call, "adaptive").price(PARAMS)
    vols = np.asarray(implied_vol(market, FORWARD, strikes, t, is_call))
    snapshot = _snapshot(market, strikes, t, is_call)
    truth = np.asarray(PARAMS)
    Heston(weighting="none").fit(snapshot)  # warm-up (numba compilation)

    print(
        f"Heston calibration, {len(DAYS)} expiries x {N_STRIKES} strikes, true params {PARAMS}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.2f}, median of {args.rounds} rounds"
    )
    for label, start in STARTS.items():
        vg_cal: list[float] = []
        vg_fit: list[float] = []
        ql_ms: list[float] = []
        vg_err = ql_err = np.nan
        vg_ok = True
        for _ in range(args.rounds):
            engine = Heston(weighting="none", start=start)
            t0 = time.perf_counter()
            engine.fit(snapshot)
            vg_fit.append((time.perf_counter() - t0) * 1e3)
            vg_cal.append(engine.result_.fit_ms)
            vg_err = float(np.abs(engine.params_ - truth).max())
            vg_ok = engine.result_.converged and engine.result_.fallback is None
            cal = _QuantLibCalibration(strikes, vols, start)
            ms, ql_params = cal.run()
            ql_ms.append(ms)
            ql_err = float(np.abs(ql_params - truth).max())
        vg, vf, qm = (statistics.median(x) for x in (vg_cal, vg_fit, ql_ms))
        print(f"  start {label} {start}")
        print(
            f"    volguard heston  calibration {vg:9.1f} ms  (whole fit {vf:7.1f} ms)  "
            f"max |param err| {vg_err:.1e}  converged {vg_ok}"
        )
        print(f"    QuantLib LM      calibration {qm:9.1f} ms  max |param err| {ql_err:.1e}")
        print(f"    ratio QuantLib / volguard: x{qm / vg:.1f} (x{qm / vf:.1f} on the whole fit)")


if __name__ == "__main__":
    main()
