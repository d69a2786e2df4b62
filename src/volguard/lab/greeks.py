"""Delta estimators judged by one-step hedging errors: causal replay and the Gain table.

:func:`causal_deltas` replays hedge steps (:func:`volguard.lab.hedging.hedge_steps`) in time
order and adds the deltas that learn from past steps; a step's outcome enters an estimator only
once the replay has reached its ``next_ts``, so every delta at ``ts`` uses data up to ``ts``:

* ``delta_sm``: sticky moneyness, ``beta = -d sigma / d k`` from the step's own smile
  (:func:`~volguard.models.greeks.static.smile_slope`);
* ``delta_regime``: the regime-aware delta of :class:`~volguard.models.greeks.SpotVolBeta`;
* ``delta_mv_roll``: the naive adaptive baseline, the Hull-White minimum-variance coefficients
  refitted on the previous ``window`` steps (:func:`~volguard.lab.hedging.fit_min_variance`).

:func:`gain_table` scores deltas per regime: with ``e = dV - delta dF`` in basis points of the
forward, ``Gain = 1 - SSE(delta) / SSE(delta_bs)`` on the same rows, with a percentile
bootstrap interval that resamples whole steps (all options of one step share the forward move
and the vol shock, so options are not independent).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from volguard.lab.hedging import fit_min_variance
from volguard.market.quotes import observed_vols
from volguard.market.snapshot import MarketSnapshot
from volguard.models.greeks import SpotVolBeta, smile_slope, sticky_moneyness_delta
from volguard.models.regime import stress_probability

STEP_COLUMNS = ("ts", "next_ts", "t", "k", "forward", "d_forward", "d_value", "vega", "mid_iv")
LEARNED = ("sm", "regime", "mv_roll", "regime_guard")
"""Names of the deltas :func:`add_learned_deltas` adds (columns ``delta_<name>``; the last one
only when it is given the snapshots)."""


def in_band(steps: pd.DataFrame, lo: float = 0.05, hi: float = 0.95) -> pd.DataFrame:
    """The rows whose Black-76 ``|delta_bs|`` lies in ``[lo, hi]``."""
    d = steps["delta_bs"].abs()
    return steps[(d >= lo) & (d <= hi)]


def static_error(steps: pd.DataFrame) -> np.ndarray:
    """Hedging error of the Black-76 delta at the quote's vol, USD: ``dV - delta_bs dF``."""
    return (steps["d_value"] - steps["delta_bs"] * steps["d_forward"]).to_numpy(float)


def causal_deltas(
    steps: pd.DataFrame,
    estimator: SpotVolBeta | None = None,
    *,
    window: int = 20,
    regime_prob: Mapping[pd.Timestamp, float] | None = None,
) -> pd.DataFrame:
    """``steps`` with ``smile_slope`` (``d sigma / d k`` of each option on its step's own
    smile), ``delta_sm``, ``delta_regime`` and ``delta_mv_roll`` added (see the module
    docstring), replayed strictly causally.

    Parameters
    ----------
    steps : DataFrame
        Hedge steps with :data:`STEP_COLUMNS`, ``expiry``, ``is_call`` and ``delta_bs``.
    estimator : SpotVolBeta, optional
        The regime-aware estimator (default settings if None); it is reset first.
    window : int
        Steps of the rolling minimum-variance refit (>= 1).
    regime_prob : mapping ts -> float, optional
        Probability that the market is under stress at ``ts`` (e.g.
        :func:`volguard.models.regime.stress_probability`), passed to
        :meth:`SpotVolBeta.beta`; steps without one use none.

    Raises
    ------
    ValueError
        If ``window`` < 1 or a column is missing.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1; got {window}")
    missing = sorted({*STEP_COLUMNS, "expiry", "is_call", "delta_bs"} - set(steps.columns))
    if missing:
        raise ValueError(f"steps lack the columns {missing}")
    est = estimator if estimator is not None else SpotVolBeta()
    est.reset()
    out = steps.sort_values("ts", kind="stable").reset_index(drop=True)
    out["smile_slope"] = 0.0
    for _, rows in out.groupby("ts", sort=True):  # each step's own smile: no look-ahead
        otm = (rows["k"] >= 0) == rows["is_call"]
        out.loc[rows.index, "smile_slope"] = smile_slope(
            rows["k"], rows["mid_iv"], rows["expiry"].astype("int64"), otm
        )
    regime = np.full(len(out), np.nan)
    roll = np.full(len(out), np.nan)
    pending: deque[tuple[pd.Timestamp, pd.DataFrame, float | None]] = deque()
    history: deque[pd.DataFrame] = deque(maxlen=window)
    for _, rows in out.groupby("ts", sort=True):
        ts = rows["ts"].iloc[0]
        # outcomes known by now: steps that ended at or before this step's start
        while pending and pending[0][0] <= ts:
            _, done, p_done = pending.popleft()
            _learn(est, done, p_done)
            history.append(done)
        at = rows.index.to_numpy()
        p = None if regime_prob is None else regime_prob.get(ts)
        regime[at] = est.delta(
            rows["delta_bs"],
            rows["vega"],
            rows["forward"],
            rows["k"],
            rows["t"],
            rows["mid_iv"],
            regime_prob=p,
            slope=rows["smile_slope"],
        )
        if history:
            roll[at] = fit_min_variance(pd.concat(history, ignore_index=True)).delta(rows)
        else:
            roll[at] = rows["delta_bs"].to_numpy(float)
        pending.append((rows["next_ts"].max(), rows, p))
    out["delta_sm"] = sticky_moneyness_delta(
        out["delta_bs"], out["vega"], out["forward"], out["smile_slope"]
    )
    out["delta_regime"] = regime
    out["delta_mv_roll"] = roll
    return out


def add_learned_deltas(
    steps: pd.DataFrame,
    settings: Mapping[str, Any] | None = None,
    *,
    window: int = 20,
    market: str = "market",
    snapshots: Mapping[str, Sequence[MarketSnapshot]] | None = None,
) -> pd.DataFrame:
    """``steps`` of a study (many underlyings, stressed scenarios) with the :data:`LEARNED`
    deltas: each underlying's market steps are replayed by :func:`causal_deltas` with a fresh
    ``SpotVolBeta(**settings)``; stressed rows (``scenario != market``) get NaN, since a
    stressed snapshot is not part of the history the estimators learn from.

    With ``snapshots`` (underlying -> its snapshots in time order), ``delta_regime_guard`` is
    the regime-aware delta replayed again with the guard's stress probability at each step
    (:func:`volguard.models.regime.stress_probability` of each whole snapshot's quotes, the way
    the guard's runtime reads it), which sets the estimator's evidence threshold.

    Examples
    --------
    >>> from volguard.lab.greeks import LEARNED
    >>> [f"delta_{name}" for name in LEARNED]
    ['delta_sm', 'delta_regime', 'delta_mv_roll', 'delta_regime_guard']
    """
    out = steps.copy()
    names = LEARNED if snapshots is not None else LEARNED[:-1]
    for name in names:
        out[f"delta_{name}"] = np.nan
    live = out["scenario"] == market if "scenario" in out else pd.Series(True, index=out.index)
    groups = out[live].groupby("underlying") if "underlying" in out else [(None, out[live])]
    for underlying, group in groups:
        rows = group.index.to_numpy()
        replayed = causal_deltas(
            group.assign(_row=rows), SpotVolBeta(**(settings or {})), window=window
        )
        at = replayed["_row"].to_numpy()
        for name in LEARNED[:-1]:
            out.loc[at, f"delta_{name}"] = replayed[f"delta_{name}"].to_numpy()
        if snapshots is not None:
            quotes = [observed_vols(s).assign(ts=s.ts) for s in snapshots[str(underlying)]]
            guarded = causal_deltas(
                group.assign(_row=rows),
                SpotVolBeta(**(settings or {})),
                window=1,
                regime_prob=stress_probability(pd.concat(quotes, ignore_index=True)),
            )
            out.loc[guarded["_row"].to_numpy(), "delta_regime_guard"] = guarded[
                "delta_regime"
            ].to_numpy()
    return out


def _learn(est: SpotVolBeta, rows: pd.DataFrame, regime_prob: float | None = None) -> None:
    est.update(
        k=rows["k"],
        t=rows["t"],
        vol=rows["mid_iv"],
        vega=rows["vega"],
        d_ln_forward=np.log1p(rows["d_forward"] / rows["forward"]),
        error=static_error(rows),
        slope=rows["smile_slope"],
        regime_prob=regime_prob,
    )


def gain_table(
    steps: pd.DataFrame,
    deltas: Sequence[str],
    regime: pd.Series,
    *,
    n_boot: int = 500,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Gain of each delta column against ``delta_bs`` per regime, with a bootstrap interval.

    Parameters
    ----------
    steps : DataFrame
        Hedge steps with ``ts``, ``next_ts``, ``forward``, ``d_forward``, ``d_value``,
        ``delta_bs`` and ``delta_<name>`` for each name of ``deltas``.
    deltas : sequence of str
        Names (``bs`` allowed: its Gain is 0).
    regime : Series
        A label per row of ``steps`` (same index).
    n_boot : int
        Bootstrap resamples of the regime's steps (>= 1).
    seed : int
        Seed of the bootstrap.
    level : float
        Coverage of the interval, in (0, 1).

    Returns
    -------
    DataFrame
        ``regime, delta, n_steps, n_options, bs_rms_bp`` (RMS error of Black-76 per step, bp of
        the forward), ``bs_rms_bp_day`` (the same per square root of a day of step length),
        ``rms_bp`` (this delta's), ``gain, gain_lo, gain_hi``.

    Notes
    -----
    With ``S_s(d) = sum_i e_{s,i}(d)^2`` the squared errors of step ``s``, a resample draws
    ``n`` steps with replacement (counts ``c_s``) and takes ``1 - sum c_s S_s(d) / sum c_s
    S_s(bs)``; the interval is its ``(1 - level)/2`` and ``(1 + level)/2`` quantiles.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level}")
    rng = np.random.default_rng(seed)
    bp = 1e4 / steps["forward"].to_numpy(float)
    move = steps["d_forward"].to_numpy(float)
    value = steps["d_value"].to_numpy(float)
    errors = {
        name: (value - steps[f"delta_{name}"].to_numpy(float) * move) * bp
        for name in ("bs", *deltas)
    }
    days = (steps["next_ts"] - steps["ts"]).dt.total_seconds().to_numpy(float) / 86400.0
    ok = np.logical_and.reduce([np.isfinite(e) for e in errors.values()])
    rows = []
    labels = regime.to_numpy()
    for name in pd.unique(labels[ok]):
        mask = ok & (labels == name)
        ts = steps["ts"].to_numpy()[mask]
        _, step = np.unique(ts, return_inverse=True)
        n = int(step.max()) + 1
        sse = {d: np.bincount(step, weights=e[mask] ** 2, minlength=n) for d, e in errors.items()}
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)
        boot_bs = counts @ sse["bs"]
        for d in deltas:
            boot = 1.0 - (counts @ sse[d]) / boot_bs
            lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
            rows.append(
                {
                    "regime": name,
                    "delta": d,
                    "n_steps": n,
                    "n_options": int(mask.sum()),
                    "bs_rms_bp": float(np.sqrt(np.mean(errors["bs"][mask] ** 2))),
                    "bs_rms_bp_day": float(
                        np.sqrt(np.sum(errors["bs"][mask] ** 2) / np.sum(days[mask]))
                    ),
                    "rms_bp": float(np.sqrt(np.mean(errors[d][mask] ** 2))),
                    "gain": float(1.0 - sse[d].sum() / sse["bs"].sum()),
                    "gain_lo": float(lo),
                    "gain_hi": float(hi),
                }
            )
    return pd.DataFrame(rows)


def hindsight_gain(
    steps: pd.DataFrame, regime: pd.Series, estimator: SpotVolBeta | None = None
) -> pd.DataFrame:
    """An upper bound on the Gain of the deltas ``delta_bs + vega beta / F`` with one
    ``beta`` per step and moneyness bucket: each step's own least-squares slope, known in
    advance (LOOK-AHEAD by design).

    The slope is fitted per step and bucket of ``estimator`` (default settings if None) on
    ``x = vega (t_ref/t)^p d ln F``, as :class:`~volguard.models.greeks.SpotVolBeta` pools
    them. A causal delta cannot know the move of the step that opens a shock, so the bound
    is also given without the regime's largest step (its gain set to 0).

    Returns
    -------
    DataFrame
        ``regime, n_steps, gain`` (the bound), ``top_step`` (start of the step with the largest
        Black-76 SSE), ``top_share`` (its share of the regime's SSE), ``gain_without_top``.
    """
    est = estimator if estimator is not None else SpotVolBeta()
    bucket, scale = est.buckets(steps["k"], steps["t"], steps["mid_iv"])
    bp = 1e4 / steps["forward"].to_numpy(float)
    frame = pd.DataFrame(
        {
            "regime": regime.to_numpy(),
            "ts": steps["ts"].to_numpy(),
            "bucket": bucket,
            "e": static_error(steps) * bp,
            "x": steps["vega"].to_numpy(float)
            * scale
            * np.log1p((steps["d_forward"] / steps["forward"]).to_numpy(float))
            * bp,
        }
    )
    frame = frame[np.isfinite(frame["e"]) & np.isfinite(frame["x"])]
    sums = frame.assign(ee=frame["e"] ** 2, xe=frame["x"] * frame["e"], xx=frame["x"] ** 2)
    cell = sums.groupby(["regime", "ts", "bucket"])[["ee", "xe", "xx"]].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        cell["captured"] = np.where(cell["xx"] > 0, cell["xe"] ** 2 / cell["xx"], 0.0)
    step = cell.groupby(["regime", "ts"])[["ee", "captured"]].sum().reset_index()
    rows = []
    for name, g in step.groupby("regime", sort=False):
        top = g.loc[g["ee"].idxmax()]
        total = g["ee"].sum()
        rows.append(
            {
                "regime": name,
                "n_steps": len(g),
                "gain": g["captured"].sum() / total,
                "top_step": top["ts"],
                "top_share": top["ee"] / total,
                "gain_without_top": (g["captured"].sum() - top["captured"]) / total,
            }
        )
    return pd.DataFrame(rows)
