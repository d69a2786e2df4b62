"""Delta-hedging backtests: an engine's greeks judged by the hedging error they leave.

Between consecutive snapshots ``t -> t+1`` of one underlying, every option quoted two-sided in
both (the same instrument) is held long and hedged with ``-delta_t`` of its expiry's forward.
The step's hedging error is the change of the option's mid minus the hedge's gain,
``e = (V_{t+1} - V_t) - delta_t (F_{t+1} - F_t)``, USD per unit of underlying. On real data this
is observed, so greeks are scored without knowing the truth. The hedge trades the forward only,
paying ``futures_cost`` (a fraction of the forward) per unit of turnover ``|delta_t -
delta_{t-1}|`` (the first step pays for the whole delta).

Deltas compared (columns of :func:`hedge_steps`):

* ``bs``: Black-76 delta at the quote's own mid vol (the practitioner baseline);
* each engine's delta (fitted on snapshot ``t`` only, sticky-strike or sticky-moneyness);
* ``mv``: the minimum-variance delta of Hull and White (2017),
  ``delta_bs + vega / (F sqrt(T)) (a + b delta_bs + c delta_bs^2)``, with ``a, b, c`` fitted by
  least squares on the training steps (:func:`fit_min_variance`), calls and puts apart.

References
----------
.. [1] Hull, J. and White, A. (2017). Optimal delta hedging for options. Journal of Banking and
   Finance 82, 180-190. doi:10.1016/j.jbankfin.2017.05.006
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import clone

from volguard._typing import FloatArray
from volguard.kernels.api import black76_greeks, implied_vol
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import FIT_ERRORS, DeltaConvention, SurfaceEngine
from volguard.models.greeks import min_variance_delta

KEY = ["instrument"]
PriceSource = Literal["mid", "mark"]
"""What the option is marked at: the mid of the bid and ask, or the venue's mark price."""


def _two_sided(snapshot: MarketSnapshot, price: PriceSource = "mid") -> pd.DataFrame:
    """Quotes with a bid and an ask; ``mid`` is the value the hedge is marked at (the mid or
    the venue's mark) and ``mid_iv`` its implied vol."""
    q = snapshot.quotes
    q = q[q["bid"].notna() & q["ask"].notna() & (q["bid"] > 0)].copy()
    q["mid"] = (q["bid"] + q["ask"]) / 2 if price == "mid" else q["mark"]
    q["mid_iv"] = implied_vol(
        q["mid"].to_numpy(float),
        q["forward"].to_numpy(float),
        q["strike"].to_numpy(float),
        q["t"].to_numpy(float),
        q["is_call"].to_numpy(bool),
    )
    quoted: pd.DataFrame = q[np.isfinite(q["mid_iv"])]
    return quoted


def hedge_steps(
    snapshots: Sequence[MarketSnapshot],
    engines: Mapping[str, SurfaceEngine],
    *,
    delta: DeltaConvention = "sticky-strike",
    price: PriceSource = "mid",
) -> pd.DataFrame:
    """One row per option and step ``t -> t+1`` with the market move and every delta.

    Each engine is a fresh clone fitted on snapshot ``t`` only. ``price`` is what the option
    is marked at (``mid`` or ``mark``); either way only options quoted two-sided in both
    snapshots are held. The venue's mark is a model value without the bid-ask bounce, so its
    errors isolate the delta.

    Returns
    -------
    DataFrame
        ``ts, next_ts, instrument, is_call, t, k, forward, d_forward, d_value`` (USD),
        ``vega`` (Black at the mid vol, per 1.00), ``gamma`` (per USD), ``mid_iv`` and its
        change to the next snapshot ``d_iv`` (decimal vol), ``delta_bs`` and ``delta_<engine>`` (NaN
        where the engine failed to fit), ``fit_failed_<engine>``.
    """
    rows = []
    for now, nxt in pairwise(snapshots):
        fitted: dict[str, SurfaceEngine | None] = {}
        for name, engine in engines.items():
            try:
                fitted[name] = clone(engine).fit(now)
            except FIT_ERRORS:
                fitted[name] = None
        rows.append(hedge_step(now, nxt, fitted, delta=delta, price=price))
    rows = [r for r in rows if len(r)]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def hedge_step(
    now: MarketSnapshot,
    nxt: MarketSnapshot,
    fitted: Mapping[str, SurfaceEngine | None],
    *,
    delta: DeltaConvention = "sticky-strike",
    price: PriceSource = "mid",
) -> pd.DataFrame:
    """The rows of :func:`hedge_steps` for one step, given engines already fitted on ``now``
    (None: failed)."""
    if price not in ("mid", "mark"):
        raise ValueError(f"price {price!r} is unknown; expected mid or mark")
    a, b = _two_sided(now, price), _two_sided(nxt, price)
    both = a.merge(b[[*KEY, "mid", "forward", "mid_iv"]], on=KEY, suffixes=("", "_next"))
    if both.empty:
        return pd.DataFrame()
    f, strike = both["forward"].to_numpy(float), both["strike"].to_numpy(float)
    t, call = both["t"].to_numpy(float), both["is_call"].to_numpy(bool)
    g = black76_greeks(f, strike, t, both["mid_iv"].to_numpy(float), call)
    step = pd.DataFrame(
        {
            "ts": now.ts,
            "next_ts": nxt.ts,
            "instrument": both["instrument"].to_numpy(),
            "is_call": call,
            "expiry": both["expiry"].to_numpy(),
            "t": t,
            "k": np.log(strike / f),
            "forward": f,
            "d_forward": both["forward_next"].to_numpy(float) - f,
            "d_value": both["mid_next"].to_numpy(float) - both["mid"].to_numpy(float),
            "vega": g["vega"],
            "gamma": g["gamma"],
            "mid_iv": both["mid_iv"].to_numpy(float),
            "d_iv": both["mid_iv_next"].to_numpy(float) - both["mid_iv"].to_numpy(float),
            "delta_bs": g["delta"],
        }
    )
    contracts = both[["expiry", "strike", "is_call"]]
    for name, engine in fitted.items():
        step[f"delta_{name}"] = (
            np.nan if engine is None else engine.greeks(contracts, now, delta=delta)["delta"]
        )
        step[f"fit_failed_{name}"] = engine is None
    return step


@dataclass(frozen=True)
class MinVarianceDelta:
    """Fitted ``(a, b, c)`` of the Hull-White minimum-variance delta, for calls and for puts."""

    calls: tuple[float, float, float]
    puts: tuple[float, float, float]

    def delta(self, steps: pd.DataFrame) -> FloatArray:
        """The minimum-variance delta of each step row."""
        d, vega, f, t = (steps[c].to_numpy(float) for c in ("delta_bs", "vega", "forward", "t"))
        call = steps["is_call"].to_numpy(bool)
        out = d.copy()
        for mask, coefficients in ((call, self.calls), (~call, self.puts)):
            out[mask] = min_variance_delta(d[mask], vega[mask], f[mask], t[mask], coefficients)
        return out


def fit_min_variance(steps: pd.DataFrame) -> MinVarianceDelta:
    """Least squares of ``d_value - delta_bs d_forward`` on
    ``vega / sqrt(T) (d_forward / F) (1, delta_bs, delta_bs^2)`` ([1]_, eq. 4), per option side.
    """
    coefs = {}
    for side, mask in (("calls", steps["is_call"]), ("puts", ~steps["is_call"])):
        s = steps[mask.to_numpy(bool)]
        d = s["delta_bs"].to_numpy(float)
        move = s["d_forward"].to_numpy(float)
        base = s["vega"].to_numpy(float) / np.sqrt(s["t"].to_numpy(float)) * move
        base = base / s["forward"].to_numpy(float)
        x = np.column_stack([base, base * d, base * d**2])
        y = s["d_value"].to_numpy(float) - d * move
        ok = np.isfinite(x).all(axis=1) & np.isfinite(y)
        if ok.sum() < 3:
            coefs[side] = (0.0, 0.0, 0.0)
            continue
        solution = np.linalg.lstsq(x[ok], y[ok], rcond=None)[0]
        coefs[side] = (float(solution[0]), float(solution[1]), float(solution[2]))
    return MinVarianceDelta(coefs["calls"], coefs["puts"])


def hedge_summary(
    steps: pd.DataFrame, deltas: Sequence[str], futures_cost: float = 1e-4
) -> pd.DataFrame:
    """Hedging error statistics per delta column name (``bs``, engine names, ``mv``).

    Returns
    -------
    DataFrame
        ``delta, n, hedge_err_std`` (USD), ``hedge_err_cvar95`` (mean of the worst 5 % of
        ``e`` minus cost, as a loss, USD), ``hedge_err_std_bp`` and ``hedge_err_cvar95_bp``
        (the same in basis points of the forward, comparable across underlyings and prices),
        ``mean_cost`` (USD per option-step), ``turnover`` (mean ``|delta change|`` per step),
        ``reduction_vs_bs`` (``1 - var(e) / var(e_bs)`` of the errors in basis points, on the
        same rows).
    """
    rows = []
    ordered = steps.sort_values(["instrument", "ts"])
    first = ~ordered["instrument"].duplicated()
    forward = ordered["forward"].to_numpy(float)
    move = ordered["d_forward"].to_numpy(float)
    value = ordered["d_value"].to_numpy(float)
    base_bp = (value - ordered["delta_bs"].to_numpy(float) * move) / forward * 1e4
    for name in deltas:
        delta = ordered[f"delta_{name}"].to_numpy(float)
        err = value - delta * move
        prev = np.where(first.to_numpy(), 0.0, np.roll(delta, 1))
        turnover = np.abs(delta - prev)
        cost = turnover * forward * futures_cost
        ok = np.isfinite(err) & np.isfinite(base_bp)
        err_bp = err / forward * 1e4
        rows.append(
            {
                "delta": name,
                "n": int(ok.sum()),
                "hedge_err_std": float(np.std(err[ok])),
                "hedge_err_cvar95": _cvar95(err[ok] - cost[ok]),
                "hedge_err_std_bp": float(np.std(err_bp[ok])),
                "hedge_err_cvar95_bp": _cvar95((err[ok] - cost[ok]) / forward[ok] * 1e4),
                "mean_cost": float(np.mean(cost[ok])),
                "turnover": float(np.mean(turnover[ok])),
                "reduction_vs_bs": float(1 - np.var(err_bp[ok]) / np.var(base_bp[ok])),
            }
        )
    return pd.DataFrame(rows)


def _cvar95(pnl: FloatArray) -> float:
    """Mean of the worst 5 % of ``pnl``, as a loss."""
    worst = np.sort(pnl)[: max(1, int(np.ceil(0.05 * pnl.size)))]
    return float(-np.mean(worst))
