"""Learned hedges on real consecutive Deribit snapshots, where the option price is observed.

Between consecutive snapshots ``t -> t+1`` of one underlying, every option quoted two-sided in
both is held long and hedged with the futures (:func:`volguard.lab.hedging.hedge_steps`: the
step's error is ``e = (V_{t+1} - V_t) - delta_t (F_{t+1} - F_t)``, the mids observed, USD).
The policies of :mod:`volguard.models.hedging` set ``delta_t`` from the state they were trained
on, read off the quotes:

* ``log_moneyness``, ``sqrt_tau``, the Black-76 vol of the mid and its delta, which doubles as
  the engine delta;
* the trailing 24-hour realized vol of the perpetual's hourly closes before the snapshot;
* the log return of the forward since the option's first hedged snapshot, and the position
  held: the policy's own previous position in that option (0 at its first snapshot, which then
  pays for the whole position, as :func:`volguard.lab.hedging.hedge_summary` counts it).

Puts are hedged by parity: the policy sets the call-equivalent position and the put's is that
minus 1. Only options within ``max_days`` of expiry are kept (the policies were trained on
7-day calls). The snapshots are a day apart (4 a day in the stress windows), so these are
one-step daily hedges of a policy trained for 2-hourly ones: an out-of-distribution test of
the state-to-position map, not of the rebalancing rule. Rows are labelled with the calibration
windows of :mod:`volguard.sim` (``sim/presets/regimes.json``: calm January 2026, the crash of
29 January - 6 February, ...), ``other`` elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from volguard._typing import FloatArray
from volguard.data.loaders.deribit_snapshot import read_deribit_snapshot
from volguard.lab.hedging import fit_min_variance, hedge_steps, hedge_summary
from volguard.market.clock import DAYS_PER_YEAR, HOURS_PER_YEAR
from volguard.market.snapshot import MarketSnapshot
from volguard.models.hedging import GatedEnsemble
from volguard.sim.scenario import calibration


def load_snapshots(
    folder: str | Path,
    underlying: str = "BTC",
    start: str | None = None,
    end: str | None = None,
) -> list[MarketSnapshot]:
    """The ``deribit-svcj-snapshots`` chains of ``underlying`` in ``[start, end)`` (UTC dates),
    in time order (quarantined rows left out)."""
    out = []
    lo = None if start is None else pd.Timestamp(start, tz="UTC")
    hi = None if end is None else pd.Timestamp(end, tz="UTC")
    for path in sorted(Path(folder).glob("deribit_options_snapshot_*.csv.gz")):
        stamp = pd.Timestamp(path.name.split("_")[-1].split(".")[0], tz="UTC")
        if (lo is not None and stamp < lo) or (hi is not None and stamp >= hi):
            continue
        quotes = read_deribit_snapshot(path)
        quotes = quotes[(quotes["underlying"] == underlying) & quotes["reason"].isna()]
        if len(quotes):
            out.append(MarketSnapshot.from_quotes(quotes))
    return out


def load_perpetual_hourly(path: str | Path, asset: str = "btc") -> pd.Series:
    """Hourly closes (USD) of the Deribit perpetual from ``spot_history_hourly.csv.gz``,
    indexed by the time each close is known: the file's ``t`` is the bar's open, so one hour
    after it (indexed at the open, a snapshot would read the close of a bar still running)."""
    frame = pd.read_csv(path)
    rows = frame[frame["asset"] == asset.lower()].sort_values("t")
    opened = pd.to_datetime(rows["t"].to_numpy(), unit="s", utc=True)
    index = pd.DatetimeIndex(opened + pd.Timedelta(hours=1))
    return pd.Series(rows["close"].to_numpy(float), index=index, name="close")


def trailing_realized_vol(closes: pd.Series, at: pd.DatetimeIndex, hours: int = 24) -> FloatArray:
    """Annualised realized vol of the ``hours`` hourly log returns ending at or before each
    time of ``at`` (NaN without enough history)."""
    r2 = np.log(closes).diff() ** 2
    mean = r2.rolling(hours, min_periods=hours).mean()
    out: FloatArray = np.sqrt(mean.asof(at).to_numpy(float) * HOURS_PER_YEAR)
    return out


def regime_of(ts: pd.Series) -> np.ndarray:
    """The calibration window (regime name) of each time, ``other`` outside them."""
    label = np.full(len(ts), "other", dtype=object)
    for name, window in calibration()["windows"].items():
        lo, hi = (pd.Timestamp(d, tz="UTC") for d in window["window"])
        label[((ts >= lo) & (ts < hi + pd.Timedelta(days=1))).to_numpy()] = name
    return label


def policy_steps(
    snapshots: list[MarketSnapshot],
    hedgers: Mapping[str, GatedEnsemble],
    closes: pd.Series,
    *,
    max_days: float = 7.0,
    rv_hours: int = 24,
) -> pd.DataFrame:
    """:func:`volguard.lab.hedging.hedge_steps` rows of options within ``max_days`` of expiry,
    with ``delta_<name>`` and ``disagreement_<name>`` of every hedger and ``regime``."""
    steps = hedge_steps(snapshots, {})
    if steps.empty:
        return steps
    steps = steps[(steps["t"] <= max_days / DAYS_PER_YEAR) & (steps["t"] > 0)]
    steps = steps.sort_values(["ts", "instrument"]).reset_index(drop=True)
    call_delta = steps["delta_bs"].to_numpy(float) + (~steps["is_call"].to_numpy(bool))
    k, t = steps["k"].to_numpy(float), steps["t"].to_numpy(float)
    f = steps["forward"].to_numpy(float)
    first_f = steps.groupby("instrument")["forward"].transform("first").to_numpy(float)
    rv = trailing_realized_vol(closes, pd.DatetimeIndex(steps["ts"]), rv_hours)
    state = np.column_stack(
        [
            k,
            np.sqrt(t),
            call_delta,
            call_delta,
            steps["mid_iv"].to_numpy(float),
            rv,
            np.log(f / first_f),
        ]
    )
    ok = np.isfinite(state).all(axis=1)
    steps, state, call_delta = steps[ok].reset_index(drop=True), state[ok], call_delta[ok]
    put = (~steps["is_call"].to_numpy(bool)).astype(float)
    for name, hedger in hedgers.items():
        position, spread = np.empty(len(steps)), np.empty(len(steps))
        held: dict[str, float] = {}
        for _, rows in steps.groupby("ts", sort=True).indices.items():
            names = steps["instrument"].to_numpy()[rows]
            before = np.array([held.get(n, 0.0) for n in names])
            pos, s, _ = hedger.step(state[rows], before, call_delta[rows], call_delta[rows])
            position[rows], spread[rows] = pos, s
            held.update(zip(names, pos, strict=True))
        steps[f"delta_{name}"] = position - put
        steps[f"disagreement_{name}"] = spread
    out: pd.DataFrame = steps.assign(regime=regime_of(steps["ts"]))
    return out


def deribit_scorecard(
    steps: pd.DataFrame, names: list[str], cost_rate: float, fit_regime: str = "calm"
) -> pd.DataFrame:
    """:func:`volguard.lab.hedging.hedge_summary` per regime for ``bs``, the hedgers ``names``
    and ``mv`` (Hull-White fitted on the ``fit_regime`` rows, when there are any)."""
    deltas = ["bs", *names]
    train = steps[steps["regime"] == fit_regime]
    if len(train):
        steps = steps.assign(delta_mv=fit_min_variance(train).delta(steps))
        deltas.append("mv")
    frames = []
    for regime, group in steps.groupby("regime", sort=True):
        summary = hedge_summary(group, deltas, futures_cost=cost_rate)
        frames.append(summary.assign(regime=regime, source="deribit"))
    return pd.concat(frames, ignore_index=True)
