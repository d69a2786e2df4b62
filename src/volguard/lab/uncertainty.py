"""Engine-agnostic prediction intervals from a predictions table: split and adaptive conformal.

Any engine, including one with no uncertainty of its own, gets an interval around each predicted
implied vol from the errors it made on *earlier* snapshots. Within each group of
``(engine, protocol, scenario, underlying)``, in time order, snapshot ``t``'s interval is

.. math::

    C_t(x) = [\\hat\\sigma(x) - q_t\\, s(x),\\; \\hat\\sigma(x) + q_t\\, s(x)]

where :math:`\\hat\\sigma` is ``model_iv``, :math:`s(x)` the scale of the quote (1 for the
``abs`` score, the half bid-ask spread in vol for ``half_spread``) and :math:`q_t` a quantile of
the nonconformity scores :math:`|\\sigma_{mid} - \\hat\\sigma| / s` of the last ``window``
snapshots before ``t``. Nothing of snapshot ``t`` or later enters :math:`q_t` (a test changes a
later snapshot and finds every earlier interval unchanged), so the intervals are what a desk
would have had in real time.

* ``split`` (split conformal, Vovk et al. 2005; Lei et al. 2018): :math:`q_t` is the
  finite-sample quantile :func:`~volguard.kernels.conformal.conformal_quantile` at the
  nominal level. With exchangeable
  scores the coverage is at least ``level`` (and below ``level + 1/(n+1)`` without ties).
* ``aci`` (adaptive conformal inference, Gibbs and Candès 2021): the level itself adapts, one
  step per snapshot, by :func:`~volguard.kernels.conformal.aci_update`, so that a run of misses
  after a shift widens the intervals faster than the window can refill with the new errors.

:func:`coverage_table` adds coverage and width per regime to a scorecard; :func:`recovery_after`
counts the snapshots an interval method needs after a shift to cover at its nominal level again.

Quotes within a snapshot share the engine's fit, so their errors are correlated: coverage is
exchangeable over snapshots rather than over quotes, and a single snapshot's coverage is noisy.

:class:`volguard.guard.conformal.AdaptiveConformal` is the guard's streaming twin of ``aci``,
on the same quantile rule and update (:mod:`volguard.kernels.conformal`), so the coverage the
lab measures is the coverage of the guard's intervals; the guard only caps an infinite width
(``alpha_t`` below what its scores can certify) at the largest recent score so that its quotes
stay finite.

References
----------
Vovk, V., Gammerman, A. and Shafer, G. (2005). *Algorithmic Learning in a Random World*.
Springer. doi:10.1007/b106715.

Lei, J., G'Sell, M., Rinaldo, A., Tibshirani, R. J. and Wasserman, L. (2018). Distribution-free
predictive inference for regression. *JASA* 113(523), 1094-1111.
doi:10.1080/01621459.2017.1307116. arXiv:1604.04173.

Gibbs, I. and Candès, E. (2021). Adaptive conformal inference under distribution shift.
NeurIPS 34. arXiv:2106.00170.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from volguard._typing import FloatArray
from volguard.errors import ConfigError
from volguard.kernels.conformal import aci_update, conformal_quantile

Method = Literal["split", "aci"]
Score = Literal["abs", "half_spread"]

GROUPS: tuple[str, ...] = ("engine", "protocol", "scenario", "underlying")
"""The columns (those present) whose groups are calibrated separately, each in time order."""
COVERAGE_BY: tuple[str, ...] = ("engine", "protocol", "regime", "scenario")
"""The default rows of :func:`coverage_table`: the scorecard's labels."""


def _check(
    level: float, method: str, score: str, window: int, gamma: float, min_history: int
) -> None:
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1); got {level}")
    if method not in ("split", "aci"):
        raise ConfigError(f"method must be 'split' or 'aci'; got {method!r}")
    if score not in ("abs", "half_spread"):
        raise ConfigError(f"score must be 'abs' or 'half_spread'; got {score!r}")
    if window < 1:
        raise ConfigError(f"window must be >= 1 snapshot; got {window}")
    if not gamma > 0:
        raise ConfigError(f"gamma must be > 0; got {gamma}")
    if not 1 <= min_history <= window:
        raise ConfigError(f"min_history must be in [1, window={window}]; got {min_history}")


def _col(frame: pd.DataFrame, name: str) -> FloatArray:
    if name not in frame:
        return np.full(len(frame), np.nan)
    return frame[name].to_numpy(dtype=float, na_value=np.nan)


def _group_half_widths(
    ts: FloatArray,
    scores: FloatArray,
    level: float,
    method: str,
    window: int,
    gamma: float,
    min_history: int,
) -> FloatArray:
    """``q_t`` for every row of one group (rows in any order; NaN before ``min_history``)."""
    order = np.argsort(ts, kind="stable")
    sorted_ts = ts[order]
    starts = np.flatnonzero(np.r_[True, sorted_ts[1:] != sorted_ts[:-1]])
    ends = np.r_[starts[1:], sorted_ts.size]
    q = np.full(ts.size, np.nan)
    history: deque[FloatArray] = deque(maxlen=window)
    alpha = 1.0 - level
    alpha_t = alpha
    for start, end in zip(starts, ends, strict=True):
        rows = order[start:end]
        s = scores[rows]
        s = s[np.isfinite(s)]
        if len(history) >= min_history:
            level_t = level if method == "split" else 1.0 - alpha_t
            q_t = conformal_quantile(np.concatenate(history), level_t)
            q[rows] = q_t
            if method == "aci" and s.size:
                alpha_t = aci_update(alpha_t, alpha, gamma, float(np.mean(s > q_t)))
        if s.size:
            history.append(s)
    return q


def conformal_intervals(
    predictions: pd.DataFrame,
    level: float = 0.9,
    *,
    method: Method = "split",
    window: int = 20,
    gamma: float = 0.05,
    score: Score = "abs",
    min_history: int = 1,
    by: Sequence[str] = GROUPS,
) -> pd.DataFrame:
    """Causal conformal intervals around each predicted implied vol.

    Parameters
    ----------
    predictions : DataFrame, one row per predicted quote
        Needs ``ts``, ``model_iv`` and ``mid_iv`` (decimal vols); ``bid_iv`` and ``ask_iv`` for
        ``score="half_spread"``; the columns of ``by`` that are present define the groups.
    level : float
        Nominal coverage ``1 - alpha`` (0.9: 90 % intervals).
    method : {"split", "aci"}
        ``split``: :math:`q_t` is :func:`conformal_quantile` of the window's scores at
        ``level``. ``aci``: at ``1 - alpha_t``, with ``alpha_t`` stepped after each snapshot by
        :func:`aci_update` from that snapshot's miss rate (``alpha_1 = 1 - level``).
    window : int
        Number of earlier snapshots (those with at least one finite score) whose scores form the
        calibration set.
    gamma : float
        ACI step size per snapshot (ignored by ``split``).
    score : {"abs", "half_spread"}
        Nonconformity score. ``abs``: :math:`|\\sigma_{mid} - \\hat\\sigma|` in vol, a constant
        half-width per snapshot. ``half_spread``: that over the quote's half-spread
        ``(ask_iv - bid_iv) / 2``, so each interval is a number of half-spreads wide; quotes
        without a two-sided spread get no score and no interval.
    min_history : int
        Earlier snapshots with scores needed before a group's first interval; until then
        ``lower_iv``, ``upper_iv`` and ``covered`` are NaN.
    by : sequence of str
        Grouping columns (those present are used); each group is calibrated on its own past.

    Returns
    -------
    DataFrame
        A copy of ``predictions`` (same index and order) with ``lower_iv`` and ``upper_iv``
        (decimal vol; ``-inf``/``inf`` when the window has too few scores for the level) and
        ``covered`` (1.0 when ``lower_iv <= mid_iv <= upper_iv``, 0.0 if not, NaN without an
        interval or a score). ``attrs["conformal"]`` holds the settings, read by
        :func:`coverage_table`.

    Raises
    ------
    ConfigError
        A setting outside its range, naming it and the value received.
    ValueError
        ``ts``, ``model_iv`` or ``mid_iv`` missing from ``predictions``.

    Notes
    -----
    Snapshot ``t`` of a group gets :math:`q_t = \\mathrm{Q}(S_{t-w..t-1}, \\ell_t)`, with
    :math:`S` the finite scores of the ``w`` = ``window`` previous snapshots and
    :math:`\\ell_t` = ``level`` (split) or :math:`1 - \\alpha_t` (ACI, updated by
    :math:`\\alpha_{t+1} = \\alpha_t + \\gamma(\\alpha - \\mathrm{err}_t)`, Gibbs and Candès
    2021). ``covered`` is ``score <= q_t``. Snapshot ``t``'s own scores enter only later
    intervals; a snapshot is the set of rows of a group sharing ``ts``. ``alpha_t`` is not
    clipped (the paper's choice): after a long run of misses ``alpha_t <= 0`` and the interval is
    the whole line until hits bring it back, which is how ACI keeps its long-run guarantee.

    References
    ----------
    Lei et al. (2018), doi:10.1080/01621459.2017.1307116; Gibbs and Candès (2021),
    arXiv:2106.00170; Vovk et al. (2005), doi:10.1007/b106715.

    Examples
    --------
    >>> pred = pd.DataFrame({"engine": "e", "ts": [0, 0, 1, 1],
    ...                      "model_iv": [0.50, 0.60, 0.50, 0.60],
    ...                      "mid_iv": [0.51, 0.58, 0.53, 0.61]})
    >>> out = conformal_intervals(pred, level=0.5)  # snapshot 1: q = 2nd of (0.01, 0.02)
    >>> out[["lower_iv", "upper_iv", "covered"]].round(4).to_numpy().tolist()[2:]
    [[0.48, 0.52, 0.0], [0.58, 0.62, 1.0]]
    """
    _check(level, method, score, window, gamma, min_history)
    missing = [c for c in ("ts", "model_iv", "mid_iv") if c not in predictions]
    if missing:
        raise ValueError(
            f"predictions: missing column(s) {missing}; conformal intervals need ts, model_iv and "
            "mid_iv"
        )
    model, mid = _col(predictions, "model_iv"), _col(predictions, "mid_iv")
    if score == "abs":
        scale = np.ones(len(predictions))
    else:
        half = (_col(predictions, "ask_iv") - _col(predictions, "bid_iv")) / 2.0
        scale = np.where(half > 0, half, np.nan)
    scores = np.abs(mid - model) / scale
    # snapshot order: integer codes of the sorted distinct times (datetimes or numbers)
    ts_key = pd.factorize(predictions["ts"], sort=True)[0].astype(float)
    q = np.full(len(predictions), np.nan)
    keys = [k for k in by if k in predictions]
    if keys:
        positions = predictions.groupby(keys, sort=False, observed=True, dropna=False).indices
        groups = list(positions.values())
    else:
        groups = [np.arange(len(predictions))]
    for rows in groups:
        q[rows] = _group_half_widths(
            ts_key[rows], scores[rows], level, method, window, gamma, min_history
        )
    half_width = q * scale
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(scores) & ~np.isnan(q)
        out = predictions.assign(
            lower_iv=np.where(ok, model - half_width, np.nan),
            upper_iv=np.where(ok, model + half_width, np.nan),
            covered=np.where(ok, (scores <= q).astype(float), np.nan),
        )
    out.attrs["conformal"] = {
        "level": level,
        "method": method,
        "window": window,
        "gamma": gamma,
        "score": score,
        "min_history": min_history,
    }
    return out


def _level(intervals: pd.DataFrame, level: float | None) -> float:
    if level is None:
        settings = intervals.attrs.get("conformal")
        if not settings:
            raise ConfigError(
                "level: not given and intervals.attrs has no 'conformal' settings "
                "(pass the level the intervals were built at)"
            )
        level = float(settings["level"])
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1); got {level}")
    return level


def coverage_table(
    intervals: pd.DataFrame,
    by: Sequence[str] = COVERAGE_BY,
    *,
    level: float | None = None,
) -> pd.DataFrame:
    """Coverage and width of conformal intervals, one row per group of ``by``.

    Parameters
    ----------
    intervals : DataFrame
        The output of :func:`conformal_intervals` (``lower_iv``, ``upper_iv``, ``covered``).
    by : sequence of str
        Grouping columns, those present (default: the scorecard's labels, so coverage is per
        regime).
    level : float, optional
        Nominal coverage; default the level in ``intervals.attrs["conformal"]``.

    Returns
    -------
    DataFrame
        ``by`` columns, ``n_intervals`` (quotes with an interval and a score),
        ``coverage_pct``, ``coverage_gap_pts`` (``coverage_pct - 100 * level``, percentage
        points) and ``median_width_vol_pts`` (median of ``upper_iv - lower_iv``, vol points; inf
        where more than half the intervals are the whole line). Groups with no interval have
        ``n_intervals`` 0 and NaN figures.

    Examples
    --------
    >>> iv = pd.DataFrame({"regime": ["calm", "calm", "crash"], "covered": [1.0, 1.0, 0.0],
    ...                    "lower_iv": [0.49, 0.48, 0.50], "upper_iv": [0.51, 0.52, 0.52]})
    >>> coverage_table(iv, level=0.9)[["regime", "coverage_pct", "coverage_gap_pts"]]
      regime  coverage_pct  coverage_gap_pts
    0   calm         100.0              10.0
    1  crash           0.0             -90.0
    """
    nominal = _level(intervals, level) * 100.0
    keys = [k for k in by if k in intervals]
    covered = _col(intervals, "covered")
    width = (_col(intervals, "upper_iv") - _col(intervals, "lower_iv")) * 100.0
    frame = pd.DataFrame({"covered": covered, "width": width}, index=intervals.index)
    frame[keys] = intervals[keys]
    rows = []
    grouped = frame.groupby(keys, sort=True, observed=True, dropna=False) if keys else [((), frame)]
    for key, g in grouped:
        key = key if isinstance(key, tuple) else (key,)
        ok = np.isfinite(g["covered"].to_numpy())
        n = int(ok.sum())
        cov = float(g["covered"].to_numpy()[ok].mean() * 100.0) if n else np.nan
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "n_intervals": n,
                "coverage_pct": cov,
                "coverage_gap_pts": cov - nominal,
                "median_width_vol_pts": float(np.median(g["width"].to_numpy()[ok]))
                if n
                else np.nan,
            }
        )
    return pd.DataFrame(rows)


def recovery_after(
    intervals: pd.DataFrame,
    shift_ts: object,
    level: float | None = None,
    *,
    tolerance: float = 0.02,
    window: int = 5,
    until: object = None,
    by: Sequence[str] = ("engine", "protocol", "scenario"),
) -> pd.DataFrame:
    """Snapshots after a shift until the rolling coverage is back near nominal for good.

    Parameters
    ----------
    intervals : DataFrame
        The output of :func:`conformal_intervals`.
    shift_ts : timestamp-like (or a number when ``ts`` is numeric)
        The first moment of the new regime; snapshots with ``ts >= shift_ts`` are after it.
    level : float, optional
        Nominal coverage; default the level in ``intervals.attrs["conformal"]``.
    tolerance : float
        Allowed ``|coverage - level|`` (0.02: two percentage points).
    window : int
        Rolling window, in snapshots after the shift.
    until : timestamp-like, optional
        Last snapshot time considered (e.g. the end of the shifted regime); default all.
    by : sequence of str
        Grouping columns, those present. A snapshot is a ``ts`` within a group (quotes of
        several underlyings at one ``ts`` are pooled).

    Returns
    -------
    DataFrame
        ``by`` columns, ``snapshots_after`` (snapshots with intervals in ``[shift_ts, until]``),
        ``recovery_snapshots``, ``first_within_snapshots``, ``coverage_after_pct`` (all quotes
        after the shift), ``min_rolling_pct`` and ``last_rolling_pct`` (the rolling coverage,
        %).

    Notes
    -----
    Number the group's snapshots after the shift ``1..m`` and let ``c_j`` be the coverage of
    the quotes of snapshots ``max(1, j - window + 1)..j`` (only post-shift snapshots, so the
    calm past cannot mask the shift; the first ``window - 1`` values use fewer snapshots).
    ``recovery_snapshots`` is the smallest ``r`` in ``0..m-1`` with
    ``|c_j - level| <= tolerance`` for every ``j > r``: the coverage is within tolerance from
    snapshot ``r + 1`` to the last one considered and never leaves it again. ``0`` means it was
    never outside; NaN means it is outside at snapshot ``m`` (not recovered by ``until``).
    ``first_within_snapshots`` is the smallest ``r`` with ``c_{r+1}`` within tolerance (entering
    the band, perhaps to leave it again). The two differ for ACI, an integral controller:
    ``alpha_t - alpha_1 = gamma * sum(alpha - err)``, so once its window holds the new scores
    and ``alpha_t`` must return near ``alpha``, the misses of the transient are repaid by over-
    coverage for about ``1 / gamma`` snapshots.
    A window of ``n`` quotes has a sampling error of about ``sqrt(level (1 - level) / n)``, so
    a tolerance of 2 points needs several hundred quotes per window to be met by a calibrated
    method.

    Examples
    --------
    >>> iv = pd.DataFrame({"ts": [0, 1, 2, 3, 4], "covered": [1.0, 0.0, 0.0, 1.0, 1.0],
    ...                    "lower_iv": 0.4, "upper_iv": 0.6})
    >>> r = recovery_after(iv, 1, 0.9, window=2, tolerance=0.1)  # rolling: 0, 0, 50, 100 %
    >>> r[["recovery_snapshots", "first_within_snapshots", "last_rolling_pct"]]
       recovery_snapshots  first_within_snapshots  last_rolling_pct
    0                 3.0                     3.0             100.0
    """
    nominal = _level(intervals, level)
    if not 0 <= tolerance < 1 or window < 1:
        raise ConfigError(f"need 0 <= tolerance < 1 and window >= 1; got {tolerance}, {window}")
    keys = [k for k in by if k in intervals]
    covered = _col(intervals, "covered")
    ts = intervals["ts"]
    after = (ts >= _as_ts(shift_ts, ts)).to_numpy()
    if until is not None:
        after = after & (ts <= _as_ts(until, ts)).to_numpy()
    ok = after & np.isfinite(covered)
    frame = intervals.loc[ok, keys].assign(ts=ts[ok], hit=covered[ok], n=1.0)
    rows = []
    grouped = frame.groupby(keys, sort=True, observed=True, dropna=False) if keys else [((), frame)]
    for key, g in grouped:
        key = key if isinstance(key, tuple) else (key,)
        snap = g.groupby("ts", sort=True)[["hit", "n"]].sum()
        hits = snap["hit"].rolling(window, min_periods=1).sum().to_numpy()
        ns = snap["n"].rolling(window, min_periods=1).sum().to_numpy()
        rolling = hits / ns
        outside = np.abs(rolling - nominal) > tolerance + 1e-12
        first = np.flatnonzero(~outside)
        outside = np.flatnonzero(outside)
        m = rolling.size
        if outside.size == 0:
            recovery = 0.0
        elif outside[-1] == m - 1:
            recovery = np.nan
        else:
            recovery = float(outside[-1] + 1)
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "snapshots_after": m,
                "recovery_snapshots": recovery,
                "first_within_snapshots": float(first[0]) if first.size else np.nan,
                "coverage_after_pct": float(snap["hit"].sum() / snap["n"].sum() * 100.0),
                "min_rolling_pct": float(rolling.min() * 100.0),
                "last_rolling_pct": float(rolling[-1] * 100.0),
            }
        )
    return pd.DataFrame(rows)


def _as_ts(value: object, column: pd.Series) -> object:
    """``value`` comparable with ``column``: a UTC timestamp for a tz-aware time column."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    if pd.api.types.is_datetime64_any_dtype(column):
        return pd.Timestamp(value)  # type: ignore[arg-type]
    return value
