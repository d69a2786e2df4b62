"""Calibrate the simulator's regimes to real Deribit chains and real Binance returns.

Run by ``volguard sim calibrate``; its output, ``sim/presets/regimes.json`` in the package, is
what the simulator reads, so simulating never needs ``../shared``. Per regime window of the
Deribit snapshots (:data:`WINDOWS`):

* one Bates parameter set is fitted to the pooled quotes of up to ``per_window`` BTC snapshots
  spread over the window (:func:`fit_regime_bates`); its ``v0`` becomes the preset's starting
  variance;
* the drift is the window's log return of the BTC index per year and the basis the median
  annualised log basis of the futures over the index (expiries beyond 7 days);
* ETH's variance scale is the median ratio of its 30-day ATM vol to BTC's, and the regime's
  BTC/ETH return correlation comes from the Binance hourly data;
* the real surface facts (:mod:`volguard.sim.surface_facts`) and quote counts are kept, the
  yardstick of the presets' tests.

Physical jumps come from Binance hourly BTC returns (:func:`jump_statistics`): calm-market
statistics for ``calm``, ``trending`` and ``rally``, stressed-market ones for ``crash`` and
``plateau`` (:data:`STRESSED`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from volguard._typing import FloatArray
from volguard.data.store import QuoteStore
from volguard.kernels.api import implied_vol
from volguard.kernels.heston_cos import BATES_PARAMS, bates_price
from volguard.market.clock import DAYS_PER_YEAR, HOURS_PER_YEAR, SECONDS_PER_YEAR
from volguard.market.snapshot import MarketSnapshot
from volguard.models.quotes import fit_quotes
from volguard.sim.liquidity import liquidity_stats
from volguard.sim.liquidity_presets import WINDOWS as LIQUIDITY_WINDOWS
from volguard.sim.regimes import REGIME_NAMES, Regime
from volguard.sim.surface_facts import surface_facts

WINDOWS: dict[str, tuple[str, str]] = {
    name: (start, end)
    for name, (start, end, _) in LIQUIDITY_WINDOWS.items()
    if name in REGIME_NAMES
}
"""Regime -> [start, end) dates (UTC) of its real Deribit window, those of the liquidity model."""

STRESSED = ("crash", "plateau")
"""Regimes that take the stressed-market Binance statistics."""

MEAN_DAYS: dict[str, float] = {
    "calm": 45.0,
    "trending": 20.0,
    "crash": 6.0,
    "plateau": 15.0,
    "rally": 7.0,
}
"""Mean stays (days): settings, not calibrated (a few windows cannot measure them)."""

SWITCH_TO: dict[str, dict[str, float]] = {
    "calm": {"trending": 0.5, "crash": 0.2, "rally": 0.3},
    "trending": {"calm": 0.5, "crash": 0.3, "rally": 0.2},
    "crash": {"plateau": 0.8, "calm": 0.2},
    "plateau": {"calm": 0.7, "crash": 0.2, "trending": 0.1},
    "rally": {"calm": 0.6, "plateau": 0.2, "trending": 0.2},
}
"""Next-regime probabilities when a stay ends: settings, documented in docs/simulator.md."""

JUMP_THRESHOLD = 5.0
"""An hourly return is a jump when beyond this many local bipower standard deviations."""

STRESS_QUANTILE = 0.8
"""Hours whose trailing 30-day realised vol is above this quantile count as stressed."""


def window_snapshots(
    store: QuoteStore, underlying: str, window: tuple[str, str], per_window: int
) -> list[MarketSnapshot]:
    """Up to ``per_window`` snapshots of ``underlying`` evenly spread over ``[start, end)``."""
    stamps = store.timestamps(underlying)
    start, end = (pd.Timestamp(d, tz="UTC") for d in window)
    inside = stamps[(stamps >= start) & (stamps < end)]
    if len(inside) == 0:
        raise ValueError(f"the store has no {underlying} snapshot in {window[0]} .. {window[1]}")
    picks = np.unique(np.linspace(0, len(inside) - 1, min(per_window, len(inside))).round())
    return [store.snapshot_at(underlying, inside[int(i)]) for i in picks]


def window_quotes(store: QuoteStore, underlying: str, window: tuple[str, str]) -> pd.DataFrame:
    """Every quote of ``underlying`` in ``[start, end)`` (all the window's snapshots)."""
    days = pd.date_range(window[0], window[1], freq="D", inclusive="left")
    quotes = store.read(underlying=underlying, dates=[d.strftime("%Y-%m-%d") for d in days])
    start, end = (pd.Timestamp(d, tz="UTC") for d in window)
    return quotes[(quotes["ts"] >= start) & (quotes["ts"] < end)]


def fit_regime_bates(
    snapshots: Sequence[MarketSnapshot], min_days: float = 2.0
) -> dict[str, float]:
    """One Bates parameter set fitted to the pooled quotes of several snapshots.

    The out-of-the-money two-sided mids of every snapshot (expiries beyond ``min_days``) are
    fitted together in implied vol (soft-L1 loss, scale 2 vol points, vega weights), so the
    parameters describe the window rather than one day's noise. The vol of variance is
    parametrised as ``sigma = s sqrt(2 kappa theta)`` with ``0 < s <= 1``, which keeps the
    Feller condition ``2 kappa theta >= sigma^2``: unconstrained fits to single crypto chains
    put the ratio near 0.1, and a simulated variance with such parameters sits at zero much of
    the time (a 1 % BTC vol), far from the market the chains came from.

    Returns
    -------
    dict
        ``BATES_PARAMS`` -> value, plus ``median_abs_vol``, the median absolute error of the
        pooled fit (vol units; it includes the day-to-day moves of the level within the window).
    """
    pooled = [fit_quotes(s) for s in snapshots]
    k = np.concatenate([q.k for q in pooled])
    t = np.concatenate([q.t for q in pooled])
    iv = np.concatenate([q.mid_iv for q in pooled])
    w = np.concatenate([q.weight for q in pooled])
    keep = (t * DAYS_PER_YEAR > min_days) & (np.abs(k) < 3.0 * iv * np.sqrt(t))
    k, t, iv, w = k[keep], t[keep], iv[keep], np.sqrt(w[keep] / w[keep].mean())
    strike, is_call = np.exp(k), k >= 0.0
    atm = float(np.median(iv[np.abs(k) < 0.05]) ** 2)

    def params(x: FloatArray) -> tuple[float, ...]:
        v0, kappa, theta, s, rho, lam, mu_j, sigma_j = x
        return (v0, kappa, theta, s * np.sqrt(2 * kappa * theta), rho, lam, mu_j, sigma_j)

    def residuals(x: FloatArray) -> FloatArray:
        price = bates_price(1.0, strike, t, params(x), is_call)
        model = np.asarray(implied_vol(price, 1.0, strike, t, is_call))
        out: FloatArray = np.where(np.isfinite(model), model - iv, 0.5) * w
        return out

    x0 = np.array([atm, 3.0, atm, 0.7, -0.2, 2.0, -0.05, 0.1])
    lower = np.array([1e-3, 0.1, 1e-3, 0.05, -0.95, 0.0, -0.5, 1e-3])
    upper = np.array([4.0, 30.0, 4.0, 1.0, 0.95, 50.0, 0.5, 0.5])
    sol = least_squares(residuals, x0, bounds=(lower, upper), loss="soft_l1", f_scale=0.02)
    out = dict(zip(BATES_PARAMS, params(sol.x), strict=True))
    out["median_abs_vol"] = float(np.median(np.abs(residuals(sol.x) / w)))
    return {name: float(v) for name, v in out.items()}


def annual_basis(snapshot: MarketSnapshot, min_days: float = 7.0) -> float:
    """Median annualised log basis ``ln(F / index) / t`` of the expiries beyond ``min_days``."""
    q = snapshot.quotes.drop_duplicates("expiry")
    q = q[q["t"] * DAYS_PER_YEAR > min_days]
    return float(np.median(np.log(q["forward"] / q["index_price"]) / q["t"]))


def jump_statistics(close: pd.Series, window_hours: int = 24 * 30) -> dict[str, dict[str, float]]:
    """Realised vol and jumps of hourly closes, for calm and for stressed hours.

    A return is a jump when ``|r| > JUMP_THRESHOLD * s``, ``s^2`` the trailing one-week bipower
    variation ``pi/2 mean(|r_t| |r_t-1|)``, which jumps barely move (Barndorff-Nielsen and
    Shephard 2004, doi:10.1093/jjfinec/nbh001; the test of Lee and Mykland 2008,
    doi:10.1093/rfs/hhm056, in its simplest form). Hours are
    stressed when their trailing ``window_hours`` realised vol is above its
    :data:`STRESS_QUANTILE` quantile.

    Returns
    -------
    dict
        ``{"calm": {...}, "stressed": {...}}`` with ``realised_vol`` (annualised, jumps
        included), ``lam`` (jumps per year), ``mu_j`` and ``sigma_j`` (mean and standard
        deviation of the log jump).
    """
    r = np.log(close).diff().dropna()
    bipower = np.pi / 2 * (r.abs() * r.abs().shift(1)).rolling(24 * 7, min_periods=48).mean()
    local = np.sqrt(bipower).shift(1)
    rv = (r**2).rolling(window_hours, min_periods=window_hours // 2).mean().shift(1)
    stressed = rv > rv.quantile(STRESS_QUANTILE)
    jump = r.abs() > JUMP_THRESHOLD * local
    out = {}
    for label, mask in (("calm", ~stressed & rv.notna()), ("stressed", stressed)):
        jumps = r[mask & jump]
        out[label] = {
            "realised_vol": float(np.sqrt((r[mask] ** 2).mean() * HOURS_PER_YEAR)),
            "lam": float(len(jumps) / mask.sum() * HOURS_PER_YEAR),
            "mu_j": float(jumps.mean()),
            "sigma_j": float(jumps.std()),
            "hours": int(mask.sum()),
        }
    return out


def read_binance_closes(path: Path) -> pd.Series:
    """Hourly closes of a Binance OHLCV CSV (``Date,Open,High,Low,Close,Volume``)."""
    frame = pd.read_csv(path, usecols=["Date", "Close"])
    return pd.Series(frame["Close"].to_numpy(float), index=pd.to_datetime(frame["Date"], utc=True))


def calibrate(
    store: QuoteStore,
    binance_dir: Path,
    *,
    per_window: int = 10,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """The calibrated regimes and the real-window facts, as written to ``regimes.json``.

    Parameters
    ----------
    store : QuoteStore
        Holding the Deribit snapshots of :data:`WINDOWS` (BTC and ETH).
    binance_dir : Path
        ``binance-btc-eth-hourly-2020-2024`` (``BTCUSDT_1h.csv.gz``, ``ETHUSDT_1h.csv.gz``).
    per_window : int
        Snapshots fitted per window.
    progress : callable
        Called with a line of text per step.
    """
    btc = read_binance_closes(binance_dir / "BTCUSDT_1h.csv.gz")
    eth = read_binance_closes(binance_dir / "ETHUSDT_1h.csv.gz")
    jumps = jump_statistics(btc)
    prices = pd.concat({"btc": btc, "eth": eth}, axis=1)
    returns = prices.apply(np.log).diff().dropna()
    rv = (returns["btc"] ** 2).rolling(24 * 30, min_periods=24 * 15).mean().shift(1)
    stressed = rv > rv.quantile(STRESS_QUANTILE)
    corr = {
        "calm": float(np.corrcoef(returns[~stressed & rv.notna()].to_numpy().T)[0, 1]),
        "stressed": float(np.corrcoef(returns[stressed].to_numpy().T)[0, 1]),
    }
    regimes: dict[str, dict[str, Any]] = {}
    windows: dict[str, dict[str, Any]] = {}
    for name, window in WINDOWS.items():
        progress(f"{name}: fitting Bates on {window[0]} .. {window[1]}")
        snaps = window_snapshots(store, "BTC", window, per_window)
        eth_snaps = [store.snapshot_at("ETH", s.ts) for s in snaps]
        bates = fit_regime_bates(snaps)
        spots = [float(s.quotes["index_price"].median()) for s in snaps]
        years = (snaps[-1].ts - snaps[0].ts).total_seconds() / SECONDS_PER_YEAR
        eth_ratio = [
            surface_facts(e.quotes)["atm_30d"] / surface_facts(b.quotes)["atm_30d"]
            for b, e in zip(snaps, eth_snaps, strict=True)
        ]
        stats = "stressed" if name in STRESSED else "calm"
        regimes[name] = Regime(
            name=name,
            kappa=bates["kappa"],
            theta=bates["theta"],
            sigma=bates["sigma"],
            rho=bates["rho"],
            lam=bates["lam"],
            mu_j=bates["mu_j"],
            sigma_j=bates["sigma_j"],
            lam_p=jumps[stats]["lam"],
            mu_jp=jumps[stats]["mu_j"],
            sigma_jp=jumps[stats]["sigma_j"],
            drift=float(np.log(spots[-1] / spots[0]) / years) if years > 0 else 0.0,
            basis=float(np.median([annual_basis(s) for s in snaps])),
            mean_days=MEAN_DAYS[name],
            switch_to=SWITCH_TO[name],
        ).to_dict()
        facts = pd.DataFrame([surface_facts(s.quotes) for s in snaps])
        windows[name] = {
            "window": list(window),
            "snapshots": [str(s.ts) for s in snaps],
            "v0": bates["v0"],
            "spot": float(np.median(spots)),
            "eth_spot": float(np.median([e.quotes["index_price"].median() for e in eth_snaps])),
            "eth_vol_scale": float(np.nanmedian(eth_ratio)),
            "eth_corr": corr[stats],
            "facts": {k: float(v) for k, v in facts.median().items()},
            "fit_median_abs_vol": bates["median_abs_vol"],
            "expiries_per_snapshot": float(np.median([len(s.expiries) for s in snaps])),
            "liquidity": liquidity_stats(window_quotes(store, "BTC", window)),
        }
    return {
        "about": (
            "volguard sim calibrate: one Bates fit per real Deribit window (pooled snapshots), "
            "Binance hourly jump statistics; see volguard.sim.calibrate"
        ),
        "regimes": regimes,
        "windows": windows,
        "binance_jumps": jumps,
    }


def calibration_json(calibration: dict[str, Any]) -> str:
    """The calibration as stable, human-diffable JSON text (keys sorted, 6 significant digits)."""

    def rounded(x: Any) -> Any:
        if isinstance(x, float):
            return float(f"{x:.6g}")
        if isinstance(x, dict):
            return {k: rounded(v) for k, v in x.items()}
        if isinstance(x, list):
            return [rounded(v) for v in x]
        return x

    return json.dumps(rounded(calibration), indent=2, sort_keys=True) + "\n"
