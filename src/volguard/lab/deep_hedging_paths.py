"""Hedging path sets for :mod:`volguard.lab.policy_hedging`: simulated regimes and market prices.

Simulated paths (:func:`simulated_paths`)
-----------------------------------------
Each path stays in one regime of the simulator (:mod:`volguard.sim.regimes`): the log spot and
variance come from :func:`volguard.sim.simulator.simulate_assets` on its 5-minute grid (Bates
dynamics under the physical measure, full-truncation Euler), sampled at the hedge times, after
a warm-up that feeds the trailing realized vol. The starting variance is the regime's long-run
variance times a log-normal factor (``v0_dispersion``), so that a regime is not one point. The
call is priced under the regime's pricing measure at the current variance, as the simulator's
truth table does (Bates by COS, delta ``dV/dF`` with the variance fixed); to price every path at
every hedge time, price and delta are tabulated once per regime on a grid of variance and
standardised moneyness ``z = k / sqrt(v tau)`` at each time to expiry of the grid, then
interpolated (linear in ``z``, then in ``ln v``). The implied vol is that of the tabulated price.
The hedge instrument is the futures of the option's expiry, ``F = S exp(basis tau)``.

Market paths (:func:`binance_paths`)
------------------------------------
Non-overlapping windows of the Binance USDT-M perpetual's hourly closes; the option is priced
by Black-76 at the trailing realized vol of the last ``vol_hours`` hours (the calibrated engine
of a market without option quotes; the engine delta is then the Black-76 delta), the premium
at the window's start. Windows are labelled by their realised move (``down``, ``flat``,
``up``), for evaluation only.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from volguard._typing import FloatArray
from volguard.kernels.api import black76_greeks, implied_vol
from volguard.kernels.heston_cos import bates_greeks
from volguard.market.clock import HOURS_PER_YEAR
from volguard.models.hedging.paths import HedgePaths
from volguard.sim.regimes import REGIME_CODES, Regime
from volguard.sim.scenario import Scenario
from volguard.sim.simulator import MIN_PRICING_VARIANCE, simulate_assets

Z_GRID = np.linspace(-6.0, 6.0, 121)
"""Standardised moneyness ``k / sqrt(v tau)`` of the pricing table."""
V_LEVELS = 32
V_RANGE = (MIN_PRICING_VARIANCE * 10, 8.0)
"""Variance range of the pricing table (1/year); the state is clipped into it."""


@dataclass(frozen=True)
class BatesTable:
    """Call price and delta of one regime, forward 1, on a ``(v, tau, z)`` grid.

    Attributes
    ----------
    v : ndarray, shape (nv,)
    tau : ndarray, shape (nt,)
        Years to expiry (> 0).
    price, delta : ndarray, shape (nv, nt, nz)
        Price in units of the forward and ``dV/dF`` at ``k = z sqrt(v tau)``.
    """

    v: FloatArray
    tau: FloatArray
    price: FloatArray
    delta: FloatArray

    def lookup(self, k: FloatArray, v: FloatArray, step: int) -> tuple[FloatArray, FloatArray]:
        """Price (units of the forward) and delta at log-moneyness ``k`` and variance ``v``
        (arrays of one shape) at time to expiry ``tau[step]``."""
        lv = np.log(np.clip(v, self.v[0], self.v[-1]))
        grid = np.log(self.v)
        hi = np.clip(np.searchsorted(grid, lv), 1, grid.size - 1)
        w = (lv - grid[hi - 1]) / (grid[hi] - grid[hi - 1])
        tau = self.tau[step]
        outs = []
        for table in (self.price, self.delta):
            values = []
            for level in (hi - 1, hi):
                z = k / np.sqrt(self.v[level] * tau)
                values.append(_interp_rows(z, table[level, step]))
            outs.append((1 - w) * values[0] + w * values[1])
        # beyond the grid's z the time value is negligible: the intrinsic part carries the price
        intrinsic = np.maximum(1.0 - np.exp(k), 0.0)
        return np.maximum(outs[0], intrinsic), np.clip(outs[1], 0.0, 1.0)


def _interp_rows(z: FloatArray, rows: FloatArray) -> FloatArray:
    """``rows[i]`` (values on :data:`Z_GRID`) interpolated at ``z[i]``, clipped to the grid."""
    pos = np.clip((z - Z_GRID[0]) / (Z_GRID[1] - Z_GRID[0]), 0.0, Z_GRID.size - 1.0)
    lo = np.minimum(pos.astype(np.int64), Z_GRID.size - 2)
    frac = pos - lo
    at = np.arange(z.size)
    out: FloatArray = (1 - frac) * rows[at, lo] + frac * rows[at, lo + 1]
    return out


def bates_table(regime: Regime, tau: FloatArray, levels: int = V_LEVELS) -> BatesTable:
    """Tabulate the regime's Bates call (pricing measure) at the times to expiry ``tau``."""
    v = np.geomspace(*V_RANGE, levels)
    t = np.repeat(tau, Z_GRID.size)
    z = np.tile(Z_GRID, tau.size)

    def one(level: float) -> tuple[FloatArray, FloatArray]:
        strike = np.exp(z * np.sqrt(level * t))
        otm = strike >= 1.0
        g = bates_greeks(1.0, strike, t, regime.pricing_params(level), otm, vega=False)
        call = np.where(otm, g.price, g.price + 1.0 - strike)
        delta = np.where(otm, g.delta, g.delta + 1.0)
        shape = (tau.size, Z_GRID.size)
        return call.reshape(shape), delta.reshape(shape)

    # COS pricing releases the GIL for most of its time
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(one, v))
    return BatesTable(v, tau, np.stack([r[0] for r in results]), np.stack([r[1] for r in results]))


def tau_grid(days: float, hedge_hours: float) -> FloatArray:
    m = round(days * 24 / hedge_hours)
    if m < 2 or not np.isclose(m * hedge_hours, days * 24):
        raise ValueError(
            f"days * 24 must be a multiple (>= 2) of hedge_hours, got days={days}, "
            f"hedge_hours={hedge_hours}"
        )
    out: FloatArray = (m - np.arange(m + 1)).astype(float) * (hedge_hours / HOURS_PER_YEAR)
    return out


def _trailing_vol(
    log_price: FloatArray, window: int, at: np.ndarray, per_year: float
) -> FloatArray:
    """Annualised root mean square of the ``window`` hourly log returns before each ``at``."""
    r2 = np.diff(log_price, axis=1) ** 2
    c = np.concatenate([np.zeros((r2.shape[0], 1)), np.cumsum(r2, axis=1)], axis=1)
    idx = at.astype(np.int64)
    out: FloatArray = np.sqrt((c[:, idx] - c[:, idx - window]) / window * per_year)
    return out


def simulated_paths(
    scenario: Scenario,
    regime: str,
    n_paths: int,
    *,
    days: float = 7.0,
    hedge_hours: float = 1.0,
    strikes: Sequence[float] = (-0.05, 0.0, 0.05),
    warmup_hours: int = 24,
    v0_dispersion: float = 0.3,
    table: BatesTable | None = None,
    seed: int = 0,
) -> HedgePaths:
    """``n_paths`` hedging paths of a call in one regime of ``scenario`` (module docstring).

    Parameters
    ----------
    scenario : Scenario
        Its regimes, spot, underlying and step are used (the second asset is not).
    regime : str
        A regime name of :data:`volguard.sim.regimes.REGIME_NAMES`.
    n_paths : int
    days, hedge_hours : float
        Option life and rebalancing interval (hours; a multiple of the simulator's step).
    strikes : sequence of float
        Log-moneyness ``ln(K / F_0)`` of the calls, assigned to the paths in turn.
    warmup_hours : int
        Simulated history before the sale (the trailing realized vol's window).
    v0_dispersion : float
        Standard deviation of ``ln(v0 / theta)``.
    table : BatesTable, optional
        The regime's pricing table on this tau grid (:func:`bates_table`; built if None).
    seed : int

    Returns
    -------
    HedgePaths
    """
    if regime not in REGIME_CODES:
        raise ValueError(f"regime must be one of {tuple(REGIME_CODES)}, got {regime!r}")
    if n_paths < 1 or warmup_hours < 1 or not v0_dispersion >= 0 or not strikes:
        raise ValueError(
            "n_paths and warmup_hours must be >= 1, v0_dispersion >= 0 and strikes non-empty, "
            f"got {n_paths}, {warmup_hours}, {v0_dispersion}, {tuple(strikes)}"
        )
    tau = tau_grid(days, hedge_hours)
    per_hour = 60.0 / scenario.step_minutes
    per_hedge = hedge_hours * per_hour
    if not (per_hour.is_integer() and float(hedge_hours).is_integer()):
        raise ValueError(
            f"hedge_hours must be whole hours and an hour a whole number of simulator steps, "
            f"got hedge_hours={hedge_hours}, step_minutes={scenario.step_minutes}"
        )
    m = tau.size - 1
    hours = warmup_hours + m * int(hedge_hours)
    n_steps = int(hours * per_hour)
    dt = scenario.step_minutes / (60.0 * HOURS_PER_YEAR)
    reg = scenario.regimes[regime]
    codes = np.full(n_steps, REGIME_CODES[regime], dtype=np.int64)
    rng = np.random.default_rng(np.random.SeedSequence([seed, REGIME_CODES[regime]]))
    v0 = reg.theta * np.exp(v0_dispersion * rng.standard_normal(n_paths) - v0_dispersion**2 / 2)
    base = replace(scenario, second_asset=None, initial_regime=regime, script=())
    hourly_x = np.empty((n_paths, hours + 1))
    hedge_v = np.empty((n_paths, m))
    hedge_at = (warmup_hours * per_hour + np.arange(m + 1) * per_hedge).astype(np.int64)
    for j in range(n_paths):
        run = simulate_assets(replace(base, v0=float(v0[j])), codes, dt, rng)
        _, x, v = run[scenario.underlying]
        hourly_x[j] = x[:: int(per_hour)]
        hedge_v[j] = np.maximum(v[hedge_at[:-1]], MIN_PRICING_VARIANCE)
    at_hours = warmup_hours + np.arange(m + 1) * hedge_hours
    spot = np.exp(hourly_x[:, at_hours.astype(np.int64)])
    forward = spot * np.exp(reg.basis * tau[None, :])
    k0 = np.resize(np.asarray(strikes, dtype=float), n_paths)
    strike = forward[:, 0] * np.exp(k0)
    rv = _trailing_vol(hourly_x, warmup_hours, at_hours[:-1], HOURS_PER_YEAR)
    tab = table if table is not None else bates_table(reg, tau[:-1])
    price, delta = np.empty((n_paths, m)), np.empty((n_paths, m))
    for i in range(m):
        k = np.log(strike / forward[:, i])
        p, d = tab.lookup(k, hedge_v[:, i], i)
        price[:, i], delta[:, i] = p * forward[:, i], d
    t = np.broadcast_to(tau[None, :-1], price.shape)
    kk = np.broadcast_to(strike[:, None], price.shape)
    iv = np.asarray(implied_vol(price, forward[:, :-1], kk, t, True))
    # a price at its intrinsic bound (far in the money near expiry) has no implied vol: the
    # variance's own vol stands in, which gives the same, saturated, Black-76 delta
    iv = np.where(np.isfinite(iv), iv, np.sqrt(hedge_v))
    return HedgePaths(
        forward=forward,
        strike=strike,
        tau=tau,
        premium=price[:, 0].copy(),
        iv=iv,
        delta_engine=delta,
        realized_vol=rv,
        regime=np.full(n_paths, regime, dtype=object),
    )


def load_binance_hourly(path: str | Path) -> pd.Series:
    """Hourly closes (USD) of a Binance ``*_1h.csv.gz`` file of the shared data, by UTC time."""
    frame = pd.read_csv(path, usecols=["Date", "Close"])
    ts = pd.to_datetime(frame["Date"], utc=True)
    return pd.Series(frame["Close"].to_numpy(float), index=pd.DatetimeIndex(ts), name="close")


def binance_paths(
    closes: pd.Series,
    *,
    days: float = 7.0,
    hedge_hours: float = 1.0,
    strikes: Sequence[float] = (-0.05, 0.0, 0.05),
    vol_hours: int = 720,
    rv_hours: int = 24,
    move: float = 0.10,
) -> HedgePaths:
    """Hedging paths on market prices: one call per non-overlapping window (module docstring).

    Parameters
    ----------
    closes : pandas.Series
        Hourly closes on a gap-free hourly index (:func:`load_binance_hourly`).
    days, hedge_hours : float
        Option life and rebalancing interval (whole hours).
    strikes : sequence of float
        Log-moneyness of the calls, assigned to the windows in turn.
    vol_hours : int
        Window of the trailing realized vol that prices the call (the engine's vol).
    rv_hours : int
        Window of the trailing realized vol fed to the policies (as on simulated paths).
    move : float
        Absolute log move over the window that labels it ``down`` or ``up`` (else ``flat``).

    Raises
    ------
    ValueError
        If the index is not hourly without gaps, or the series is shorter than one window.
    """
    tau = tau_grid(days, hedge_hours)
    step = int(hedge_hours)
    if step != hedge_hours:
        raise ValueError(f"hedge_hours must be whole hours on hourly data, got {hedge_hours}")
    gaps = np.diff(pd.DatetimeIndex(closes.index).to_numpy())
    if closes.size < 2 or np.any(gaps != np.timedelta64(1, "h")):
        raise ValueError("closes must be hourly without gaps (one row per UTC hour)")
    life = (tau.size - 1) * step
    lead = max(vol_hours, rv_hours)
    starts = np.arange(lead, closes.size - life, life)
    if starts.size == 0:
        raise ValueError(
            f"closes has {closes.size} hours, fewer than one window ({lead} + {life} + 1)"
        )
    x = np.log(closes.to_numpy(float))
    idx = starts[:, None] + np.arange(-lead, life + 1)[None, :]
    window = x[idx]
    at = lead + np.arange(tau.size) * step
    forward = np.exp(window[:, at])
    n = starts.size
    k0 = np.resize(np.asarray(strikes, dtype=float), n)
    strike = forward[:, 0] * np.exp(k0)
    vol = _trailing_vol(window, vol_hours, at[:-1], HOURS_PER_YEAR)
    rv = _trailing_vol(window, rv_hours, at[:-1], HOURS_PER_YEAR)
    t = np.broadcast_to(tau[None, :-1], vol.shape)
    g = black76_greeks(forward[:, :-1], np.broadcast_to(strike[:, None], vol.shape), t, vol, True)
    ret = np.log(forward[:, -1] / forward[:, 0])
    label = np.where(ret < -move, "down", np.where(ret > move, "up", "flat")).astype(object)
    return HedgePaths(
        forward=forward,
        strike=strike,
        tau=tau,
        premium=g["price"][:, 0].copy(),
        iv=vol,
        delta_engine=g["delta"],
        realized_vol=rv,
        regime=label,
    )
