"""The desk's protocol: per-snapshot errors on a stated universe, beside the naive baselines.

A desk reads an engine's accuracy snapshot by snapshot, on the quotes it trades, and against
what it would have had for free. This module scores prediction rows (the
:mod:`volguard.lab.metrics` input) that way:

* **universe and buckets** (:func:`quote_buckets`): the two-sided out-of-the-money quotes
  (:class:`~volguard.market.quotes.QuoteVols`) fall in ``core`` (expiry at least
  :data:`MIN_CORE_DAYS` days and forward delta within :data:`CORE_DELTA`), ``short`` (expiry
  under :data:`MIN_CORE_DAYS` days) or ``wing`` (the rest: ``|delta|`` under 0.1 or over 0.9),
  each scored apart so one-day wings never dominate a headline figure;
* **per snapshot** (:func:`snapshot_errors`): RMSE of the vol error (vol points), the share of
  quotes whose model vol lies inside ``[bid_iv, ask_iv]``, the RMSE in half-spreads and the
  vega-weighted RMSE;
* **aggregation** (:func:`desk_scorecard`): the median and the quartiles ``[q25, q75]`` over
  snapshots of each per-snapshot figure;
* **skill** (:func:`skill_table`): ``1 - RMSE / RMSE_best`` of each row against the best naive
  baseline of its group (lowest median per-snapshot RMSE), with a Diebold-Mariano test over
  the snapshots both scored (:func:`diebold_mariano`). A negative skill is an engine losing to
  doing nothing, and is reported as such.

References
----------
Diebold, F. X. and Mariano, R. S. (1995). Comparing predictive accuracy. *Journal of Business
& Economic Statistics* 13(3), 253-263. doi:10.1080/07350015.1995.10524599.

Harvey, D., Leybourne, S. and Newbold, P. (1997). Testing the equality of prediction mean
squared errors. *International Journal of Forecasting* 13(2), 281-291.
doi:10.1016/S0169-2070(96)00719-4.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from volguard._typing import ArrayLike
from volguard.kernels.residuals import vol_residuals
from volguard.market.clock import DAYS_PER_YEAR
from volguard.market.smile import forward_delta

MIN_CORE_DAYS = 2.0
"""Expiries shorter than this (calendar days) are the ``short`` bucket."""
CORE_DELTA = (0.1, 0.9)
"""``|forward delta|`` at the mid vol of the ``core`` bucket; outside it, the ``wing``."""
BUCKETS: tuple[str, ...] = ("core", "short", "wing")
BASELINES: tuple[str, ...] = (
    "persist-strike",
    "persist-moneyness",
    "svi-plain",
    "svi-plain-strike",
    "venue-mark",
)
"""The naive baselines a scorecard row is judged against (the rows whose engine is one of
them): persistence of the last snapshot's mid vols per strike and per moneyness, a plain
least-squares SVI per expiry (:class:`~volguard.models.parametric.svi_plain.PlainSVI`; in the
forecast read sticky moneyness, and sticky strike as ``svi-plain-strike``) and the venue's mark
vol."""
NAIVE_BASELINES: tuple[str, ...] = tuple(b for b in BASELINES if b != "venue-mark")
"""The baselines that need nothing but the quotes (the venue's mark is a surface of its own)."""
STATS: tuple[str, ...] = ("iv_rmse_vol_pts", "inside_pct", "half_spread_rmse", "vega_w_rmse")
"""The per-snapshot figures of :func:`snapshot_errors`."""


def quote_buckets(t: ArrayLike, k: ArrayLike, vol: ArrayLike, is_call: ArrayLike) -> np.ndarray:
    """The bucket of each quote: ``short``, ``wing`` or ``core`` (see the module docstring).

    Examples
    --------
    >>> quote_buckets([1 / 365, 30 / 365, 30 / 365], [0.0, 0.0, 0.6], [0.5] * 3, [True] * 3)
    array(['short', 'core', 'wing'], dtype='<U5')
    """
    t_arr = np.asarray(t, dtype=float)
    delta = np.abs(forward_delta(k, t_arr, vol, is_call))
    core = (delta >= CORE_DELTA[0]) & (delta <= CORE_DELTA[1])
    short = t_arr * DAYS_PER_YEAR < MIN_CORE_DAYS
    return np.where(short, "short", np.where(core, "core", "wing"))


def with_buckets(predictions: pd.DataFrame) -> pd.DataFrame:
    """``predictions`` with a ``bucket`` column (:func:`quote_buckets` at the mid vol)."""
    return predictions.assign(
        bucket=quote_buckets(
            predictions["t"].to_numpy(float),
            predictions["k"].to_numpy(float),
            predictions["mid_iv"].to_numpy(float),
            predictions["is_call"].to_numpy(bool),
        )
    )


def snapshot_errors(predictions: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """One row per group of ``by`` and snapshot (``underlying`` and ``ts``): :data:`STATS` and
    the quote count
    ``n``. Needs ``model_iv``, ``mid_iv``, ``bid_iv``, ``ask_iv`` and ``vega``; rows without
    a model vol are left out."""
    p = predictions[np.isfinite(predictions["model_iv"].to_numpy(float))]
    model, mid = p["model_iv"].to_numpy(float), p["mid_iv"].to_numpy(float)
    bid, ask = p["bid_iv"].to_numpy(float), p["ask_iv"].to_numpy(float)
    err, in_spreads = vol_residuals(model, mid, (ask - bid) / 2)
    w = p["vega"].to_numpy(float)
    w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
    snap = [c for c in _snapshot_keys(p) if c not in by]
    frame = p[[*by, *snap]].assign(
        sq=(100 * err) ** 2,
        inside=((model >= bid) & (model <= ask)).astype(float),
        hs2=in_spreads**2,
        wsq=w * (100 * err) ** 2,
        w=w,
    )
    g = frame.groupby([*by, *snap], observed=True, sort=True)
    out = g.agg(n=("sq", "size"), sq=("sq", "mean"), inside=("inside", "mean"), hs2=("hs2", "mean"))
    sums = g[["wsq", "w"]].sum()
    return pd.DataFrame(
        {
            "n": out["n"],
            "iv_rmse_vol_pts": np.sqrt(out["sq"]),
            "inside_pct": 100 * out["inside"],
            "half_spread_rmse": np.sqrt(out["hs2"]),
            "vega_w_rmse": np.sqrt(sums["wsq"] / sums["w"].where(sums["w"] > 0)),
        }
    ).reset_index()


def desk_scorecard(predictions: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per group of ``by`` (which should include ``bucket``): the number of snapshots, and for
    each of :data:`STATS` its median over snapshots (``<stat>``) and quartiles (``<stat>_q25``,
    ``<stat>_q75``).

    Examples
    --------
    >>> ts = pd.to_datetime(["2026-01-01", "2026-01-01", "2026-01-02"], utc=True)
    >>> p = pd.DataFrame({"engine": "a", "ts": ts, "model_iv": [0.51, 0.49, 0.53],
    ...                   "mid_iv": 0.5, "bid_iv": 0.49, "ask_iv": 0.51, "vega": 1.0})
    >>> row = desk_scorecard(p, ["engine"]).iloc[0]
    >>> [round(float(row[c]), 6) for c in ("snapshots", "iv_rmse_vol_pts", "inside_pct")]
    [2.0, 2.0, 50.0]
    """
    return _aggregate(snapshot_errors(predictions, by), by)


def _aggregate(per: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """:func:`desk_scorecard` from the per-snapshot rows of :func:`snapshot_errors`."""
    g = per.groupby(list(by), observed=True, sort=True)
    table = g.size().rename("snapshots").astype(float).to_frame()
    for stat in STATS:
        table[stat] = g[stat].median()
        table[f"{stat}_q25"] = g[stat].quantile(0.25)
        table[f"{stat}_q75"] = g[stat].quantile(0.75)
    return table.reset_index()


def diebold_mariano(loss_a: ArrayLike, loss_b: ArrayLike, horizon: int = 1) -> tuple[float, float]:
    """Diebold-Mariano test of equal expected loss, with the Harvey-Leybourne-Newbold small
    sample correction: ``d = loss_a - loss_b`` (paired, non-finite pairs dropped), the
    long-run variance from the autocovariances of ``d`` up to lag ``horizon - 1``, the
    statistic compared with Student's t on ``n - 1`` degrees of freedom.

    Returns
    -------
    stat, p_value : float
        Negative ``stat``: ``a`` has the lower loss. Two-sided p-value. NaN for fewer than 3
        pairs or a constant ``d``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(0, 1, 200) ** 2, rng.normal(0, 1.5, 200) ** 2
    >>> stat, p = diebold_mariano(a, b)
    >>> bool(stat < 0 and p < 0.01)
    True
    """
    d = np.asarray(loss_a, dtype=float) - np.asarray(loss_b, dtype=float)
    d = d[np.isfinite(d)]
    n = d.size
    if n < 3:
        return float("nan"), float("nan")
    dc = d - d.mean()
    gamma = [float(dc[lag:] @ dc[: n - lag]) / n for lag in range(max(horizon, 1))]
    lrv = gamma[0] + 2 * sum(gamma[1:])
    if lrv <= 0:
        return float("nan"), float("nan")
    h = max(horizon, 1)
    correction = np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    stat = correction * d.mean() / np.sqrt(lrv / n)
    return float(stat), float(2 * stats.t.sf(abs(stat), df=n - 1))


def skill_table(
    predictions: pd.DataFrame,
    by: Sequence[str] = ("protocol", "regime", "scenario", "bucket"),
    baselines: Sequence[str] = BASELINES,
) -> pd.DataFrame:
    """Each engine's skill against the best baseline of its group of ``by``.

    Per group, the best baseline is the :data:`BASELINES` row with the lowest median
    per-snapshot RMSE. ``skill = 1 - RMSE / RMSE_best`` with both RMSEs the medians over the
    snapshots both scored; ``dm_stat``, ``dm_p`` compare their per-snapshot mean squared errors
    (:func:`diebold_mariano`; negative: the engine's loss is lower; the forecast ``forecast-h``
    uses lags up to ``h - 1``). The baselines get a row too (the best one has skill 0).

    Returns
    -------
    DataFrame
        ``*by, engine, best_baseline, snapshots, skill, dm_stat, dm_p``.
    """
    keys = [k for k in by if k in predictions]
    return _skill(snapshot_errors(predictions, [*keys, "engine"]), keys, baselines)


def _skill(per: pd.DataFrame, keys: Sequence[str], baselines: Sequence[str]) -> pd.DataFrame:
    """:func:`skill_table` from the per-snapshot rows of :func:`snapshot_errors` (keyed by
    ``keys`` and ``engine``)."""
    keys = list(keys)
    per = per.assign(mse=per["iv_rmse_vol_pts"] ** 2)
    rows = []
    groups = per.groupby(keys, observed=True, sort=True) if keys else [((), per)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        labels = dict(zip(keys, key, strict=True))
        horizon = _horizon(str(labels.get("protocol", "")))
        snap = [c for c in _snapshot_keys(g) if c not in keys]
        wide = g.pivot_table(index=snap, columns="engine", values="mse", observed=True)
        present = [b for b in baselines if b in wide]
        if not present:
            continue
        best = min(present, key=lambda b: float(np.nanmedian(np.sqrt(wide[b].to_numpy(float)))))
        for engine in wide.columns:
            both = wide[[engine, best]].dropna()
            if both.empty:
                continue
            rmse = np.sqrt(both.to_numpy(float))
            stat, p = diebold_mariano(both[engine], both[best], horizon)
            rows.append(
                {
                    **labels,
                    "engine": engine,
                    "best_baseline": best,
                    "snapshots": len(both),
                    "skill": 1 - float(np.median(rmse[:, 0]) / np.median(rmse[:, 1])),
                    "dm_stat": stat,
                    "dm_p": p,
                }
            )
    return pd.DataFrame(rows)


def _horizon(protocol: str) -> int:
    """Snapshots ahead of a ``forecast-<h>`` protocol (1 otherwise)."""
    head, _, tail = protocol.partition("-")
    return int(tail) if head == "forecast" and tail.isdigit() else 1


def desk_table(predictions: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """:func:`desk_scorecard` of ``predictions`` per group of ``by`` and ``bucket``
    (:func:`with_buckets`), with each row's ``baseline`` flag and its :func:`skill_table`
    columns within its group: against every baseline (``best_baseline``, ``skill``,
    ``dm_stat``, ``dm_p``) and against the :data:`NAIVE_BASELINES` only (``best_naive``,
    ``skill_naive``, ``dm_stat_naive``, ``dm_p_naive``)."""
    keys = [k for k in (*by, "bucket") if k in predictions or k == "bucket"]
    per = snapshot_errors(with_buckets(predictions), keys)  # once, for the table and both skills
    table = _aggregate(per, keys)
    table["baseline"] = table["engine"].isin(BASELINES) if "engine" in table else False
    groups = [k for k in keys if k != "engine"]
    naive = {"best_baseline": "best_naive", "skill": "skill_naive", "dm_stat": "dm_stat_naive"}
    for baselines, names in ((BASELINES, {}), (NAIVE_BASELINES, naive | {"dm_p": "dm_p_naive"})):
        skill = _skill(per, groups, baselines) if "engine" in keys else pd.DataFrame()
        if len(skill):
            on = [k for k in keys if k in skill]
            skill = skill.drop(columns="snapshots").rename(columns=names)
            table = table.merge(skill, on=on, how="left")
    return table


def _snapshot_keys(frame: pd.DataFrame) -> list[str]:
    """The columns that name a snapshot: its ``ts``, and its ``underlying`` where there are
    several (BTC and ETH chains share their times)."""
    return ["underlying", "ts"] if "underlying" in frame else ["ts"]
