"""Scorecard metrics of engine predictions, per engine x protocol x regime x scenario.

Input is a predictions table, one row per predicted quote:

==================  =================================================================
``engine``,         the cell's labels (any of them may be absent; missing labels are
``protocol``,       not grouped on)
``regime``,
``scenario``
``ts``              snapshot time of the quote
``model_iv``        the engine's implied vol (decimal)
``mid_iv``          the quote's mid implied vol (a one-sided quote: the venue's mark vol);
                    ``bid_iv``, ``ask_iv`` where quoted
``vega``            Black-76 vega at the mid vol, USD per 1.00 of vol
``model_price``,    USD per 1 underlying (``price``: the mid); ``forward`` converts to coin
``price``,
``forward``
``true_iv``,        simulator truth, where known (NaN on real data): implied vol, delta,
``true_delta``,     gamma and vega; the engine's own greeks as ``model_delta``,
``true_gamma``,     ``model_gamma``, ``model_vega``
``true_vega``
==================  =================================================================

and a cells table (one row per fitted engine and split) with ``fit_ms``, ``failed`` and
``arb_violations``. Vol errors are in vol points (1 point = 0.01 of vol).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from volguard._typing import FloatArray
from volguard.kernels.residuals import vol_residuals
from volguard.lab.splits import probability_of_backtest_overfitting

LABELS: tuple[str, ...] = ("engine", "protocol", "regime", "scenario")
"""The columns a scorecard row is keyed by."""


def _rmse(x: FloatArray) -> float:
    x = x[np.isfinite(x)]
    return float(np.sqrt(np.mean(x**2))) if x.size else np.nan


def _mae(x: FloatArray) -> float:
    x = x[np.isfinite(x)]
    return float(np.mean(np.abs(x))) if x.size else np.nan


def quote_errors(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per-quote errors (model minus market or truth) used by :func:`scorecard`.

    Returns
    -------
    DataFrame
        ``iv_err_vol_pts``, ``half_spreads`` (error over the half bid-ask spread in vol),
        ``inside`` (model vol within [bid_iv, ask_iv]; for a one-sided quote, at or above its
        bid or at or below its ask), ``price_err_usd``,
        ``price_err_coin``, ``vega_w`` (vega weight) and, where truth is known,
        ``true_iv_err_vol_pts``, ``delta_err``, ``gamma_err_rel``, ``vega_err_rel``.
    """
    p = predictions

    def col(name: str) -> FloatArray:
        if name not in p:
            return np.full(len(p), np.nan)
        return p[name].to_numpy(dtype=float, na_value=np.nan)

    err, in_spreads = vol_residuals(
        col("model_iv"), col("mid_iv"), (col("ask_iv") - col("bid_iv")) / 2.0
    )
    has_bid, has_ask = np.isfinite(col("bid_iv")), np.isfinite(col("ask_iv"))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "iv_err_vol_pts": 100.0 * err,
            "half_spreads": in_spreads,
            # a one-sided quote: the model on the right side of its one price
            "inside": np.select(
                [has_bid & has_ask, has_bid, has_ask],
                [
                    (col("model_iv") >= col("bid_iv")) & (col("model_iv") <= col("ask_iv")),
                    col("model_iv") >= col("bid_iv"),
                    col("model_iv") <= col("ask_iv"),
                ],
                np.nan,
            ),
            "price_err_usd": col("model_price") - col("price"),
            "price_err_coin": (col("model_price") - col("price")) / col("forward"),
            "vega_w": col("vega"),
            "true_iv_err_vol_pts": (col("model_iv") - col("true_iv")) * 100.0,
            "delta_err": col("model_delta") - col("true_delta"),
            "gamma_err_rel": (col("model_gamma") - col("true_gamma")) / np.abs(col("true_gamma")),
            "vega_err_rel": (col("model_vega") - col("true_vega")) / np.abs(col("true_vega")),
        }
    return pd.DataFrame(out, index=p.index)


def _group_metrics(e: pd.DataFrame) -> dict[str, float]:
    iv = e["iv_err_vol_pts"].to_numpy()
    w = e["vega_w"].to_numpy()
    ok = np.isfinite(iv) & np.isfinite(w) & (w > 0)
    inside = e["inside"].to_numpy()
    return {
        "n": float(np.isfinite(iv).sum()),
        "iv_rmse_vol_pts": _rmse(iv),
        "iv_mae_vol_pts": _mae(iv),
        "vega_w_rmse": float(np.sqrt(np.sum(w[ok] * iv[ok] ** 2) / np.sum(w[ok])))
        if ok.any()
        else np.nan,
        "half_spread_rmse": _rmse(e["half_spreads"].to_numpy()),
        "inside_spread_pct": float(np.nanmean(inside) * 100.0)
        if np.isfinite(inside).any()
        else np.nan,
        "price_rmse_usd": _rmse(e["price_err_usd"].to_numpy()),
        "price_rmse_coin": _rmse(e["price_err_coin"].to_numpy()),
        "true_iv_rmse_vol_pts": _rmse(e["true_iv_err_vol_pts"].to_numpy()),
        "delta_rmse": _rmse(e["delta_err"].to_numpy()),
        "gamma_rel_rmse": _rmse(e["gamma_err_rel"].to_numpy()),
        "vega_rel_rmse": _rmse(e["vega_err_rel"].to_numpy()),
    }


def scorecard(
    predictions: pd.DataFrame, cells: pd.DataFrame | None = None, by: Sequence[str] = LABELS
) -> pd.DataFrame:
    """One row per group of ``by`` (those present): the error metrics, the median
    ``disagreement_vol_pts`` where ensembles report it, ``engine_coverage_pct`` and
    ``engine_width_vol_pts`` where engines give their own intervals (``engine_lower_iv``,
    ``engine_upper_iv``: gp, ensemble, conformal), and from ``cells`` the median
    ``fit_ms``, the number of ``failures`` and the sum of ``arb_violations``.

    Examples
    --------
    >>> pred = pd.DataFrame({"engine": ["a", "a"], "model_iv": [0.51, 0.49], "mid_iv": [0.5, 0.5],
    ...                      "bid_iv": [0.49, 0.49], "ask_iv": [0.51, 0.51], "vega": [1.0, 3.0]})
    >>> row = scorecard(pred).iloc[0]
    >>> [round(float(row[c]), 9) for c in ("iv_rmse_vol_pts", "inside_spread_pct", "n")]
    [1.0, 100.0, 2.0]
    """
    keys = [k for k in by if k in predictions]
    errors = quote_errors(predictions)
    frame = pd.concat([predictions[keys], errors], axis=1)
    rows = []
    grouped = frame.groupby(keys, sort=True, observed=True, dropna=False) if keys else [((), frame)]
    for key, e in grouped:
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(keys, key, strict=True)), **_group_metrics(e)})
    table = pd.DataFrame(rows)
    if "disagreement_vol_pts" in predictions and keys:  # ensembles' member spread
        spread = predictions.groupby(keys, observed=True, dropna=False)["disagreement_vol_pts"]
        table = table.merge(spread.median().reset_index(), on=keys, how="left")
    if "engine_lower_iv" in predictions and keys:  # engines' own intervals
        table = table.merge(_engine_intervals(predictions, keys), on=keys, how="left")
    if cells is not None and len(cells):
        cell_keys = [k for k in keys if k in cells]
        agg = cells.groupby(cell_keys, observed=True, dropna=False).agg(
            fit_ms=("fit_ms", "median"),
            failures=("failed", "sum"),
            arb_violations=("arb_violations", "sum"),
        )
        table = table.merge(agg.reset_index(), on=cell_keys, how="left")
    return table


def _engine_intervals(predictions: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Coverage of the mid vol (percent) and median width (vol points) of the engines' own
    intervals, over the quotes that have one, per group of ``keys``."""
    lower, upper = predictions["engine_lower_iv"], predictions["engine_upper_iv"]
    has = lower.notna() & upper.notna() & predictions["mid_iv"].notna()
    inside = (lower <= predictions["mid_iv"]) & (predictions["mid_iv"] <= upper)
    frame = predictions.loc[has, keys].assign(
        engine_coverage_pct=100.0 * inside[has], engine_width_vol_pts=100.0 * (upper - lower)[has]
    )
    grouped = frame.groupby(keys, observed=True, dropna=False)
    return grouped.agg(
        engine_coverage_pct=("engine_coverage_pct", "mean"),
        engine_width_vol_pts=("engine_width_vol_pts", "median"),
    ).reset_index()


def generalization_gap(
    predictions: pd.DataFrame,
    in_regime: str,
    *,
    metric: str = "iv_err_vol_pts",
    n_boot: int = 500,
    seed: int = 0,
    level: float = 0.9,
) -> pd.DataFrame:
    """Out-of-regime RMSE over in-regime RMSE per engine and protocol, with bootstrap intervals.

    The gap of regime ``r`` is ``RMSE(r) / RMSE(in_regime)`` of ``metric``; its interval comes
    from resampling whole snapshots (``ts``) with replacement within each regime, ``n_boot``
    times (a snapshot's quotes share its errors, so quotes are not independent draws).

    Returns
    -------
    DataFrame
        ``engine, protocol, regime, gen_gap, gen_gap_lo, gen_gap_hi`` (``in_regime`` itself has
        gap 1).
    """
    keys = [k for k in ("engine", "protocol") if k in predictions]
    err = quote_errors(predictions)[metric].to_numpy() ** 2
    frame = predictions[[*keys, "regime", "ts"]].assign(sq=err)
    frame = frame[np.isfinite(frame["sq"])]
    # per snapshot: sum of squared errors and count, so a resample is a weighted sum
    per_snap = frame.groupby([*keys, "regime", "ts"], observed=True).agg(
        sq=("sq", "sum"), n=("sq", "size")
    )
    rng = np.random.default_rng(seed)
    rows = []
    alpha = (1 - level) / 2
    groups = per_snap.groupby(keys, observed=True) if keys else [((), per_snap)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        regimes = g.index.get_level_values("regime")
        if in_regime not in set(regimes):
            continue
        samples = {}
        for regime in pd.unique(regimes):
            sub = g[regimes == regime]
            sq, n = sub["sq"].to_numpy(), sub["n"].to_numpy()
            draws = rng.integers(0, sq.size, size=(n_boot, sq.size))
            boot = np.sqrt(sq[draws].sum(axis=1) / n[draws].sum(axis=1))
            samples[regime] = (float(np.sqrt(sq.sum() / n.sum())), boot)
        base, base_boot = samples[in_regime]
        for regime, (value, boot) in samples.items():
            ratio = boot / base_boot
            rows.append(
                {
                    **dict(zip(keys, key, strict=True)),
                    "regime": regime,
                    "gen_gap": value / base,
                    "gen_gap_lo": float(np.quantile(ratio, alpha)),
                    "gen_gap_hi": float(np.quantile(ratio, 1 - alpha)),
                }
            )
    return pd.DataFrame(rows)


def selection_overfitting(predictions: pd.DataFrame, n_splits: int = 8) -> pd.DataFrame:
    """Per protocol: the engine with the lowest IV RMSE over all snapshots and the probability
    that choosing the best engine on half the snapshots overfits
    (:func:`~volguard.lab.splits.probability_of_backtest_overfitting`, each snapshot's score
    minus its IV RMSE; snapshots where an engine has no prediction are left out).

    Returns
    -------
    DataFrame
        ``protocol, snapshots, best_engine, pbo`` (``pbo`` NaN with fewer than ``n_splits``
        snapshots or one engine).
    """
    err = quote_errors(predictions)["iv_err_vol_pts"].to_numpy() ** 2
    frame = predictions[["protocol", "engine", "ts"]].assign(sq=err)
    rows = []
    for protocol, g in frame.groupby("protocol", sort=True):
        per_snap = g.groupby(["ts", "engine"])["sq"].mean().unstack("engine").dropna()
        score = -np.sqrt(per_snap.to_numpy())
        overall = np.sqrt(g.groupby("engine")["sq"].mean())
        enough = score.shape[1] >= 2 and score.shape[0] >= n_splits
        rows.append(
            {
                "protocol": protocol,
                "snapshots": len(per_snap),
                "best_engine": str(overall.idxmin()),
                "pbo": probability_of_backtest_overfitting(score, n_splits) if enough else np.nan,
            }
        )
    return pd.DataFrame(rows)
