"""Error monitors: the engine's error per snapshot, summarised per expiry and moneyness bucket.

The monitor is fed the per-quote residuals of one snapshot at a time (:func:`residuals`); each
bucket keeps the mean absolute error of its last ``window`` updates (rolling) and an
exponentially weighted mean with half-life ``halflife`` updates, in vol points and in
half-spreads. :func:`error_rate` turns one snapshot's residuals into the scalar the drift
detectors watch.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd

from volguard.market.clock import DAYS_PER_YEAR

EXPIRY_EDGES_DAYS = (7.0, 30.0, 90.0)
"""Expiry bucket edges (days to expiry): ``<7d``, ``7-30d``, ``30-90d``, ``>90d``."""
MONEYNESS_EDGES = (-0.2, -0.05, 0.05, 0.2)
"""Log-moneyness bucket edges: deep puts, puts, at the money, calls, deep calls."""


EXPIRY_LABELS = ("<7d", "7-30d", "30-90d", ">90d")
MONEYNESS_LABELS = ("deep_put", "put", "atm", "call", "deep_call")


def _bucket_codes(t: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``expiry index * 5 + moneyness index`` of each quote."""
    e = np.searchsorted(EXPIRY_EDGES_DAYS, np.asarray(t) * DAYS_PER_YEAR)
    m = np.searchsorted(MONEYNESS_EDGES, np.asarray(k))
    codes: np.ndarray = e * len(MONEYNESS_LABELS) + m
    return codes


def buckets(t: np.ndarray, k: np.ndarray) -> pd.MultiIndex:
    """The (expiry, moneyness) bucket labels of quotes at years ``t`` and log-moneyness ``k``.

    Examples
    --------
    >>> list(buckets(np.array([0.01, 0.5]), np.array([0.0, -0.3])))
    [('<7d', 'atm'), ('>90d', 'deep_put')]
    """
    codes = _bucket_codes(t, k)
    n = len(MONEYNESS_LABELS)
    return pd.MultiIndex.from_arrays(
        [np.array(EXPIRY_LABELS)[codes // n], np.array(MONEYNESS_LABELS)[codes % n]],
        names=["expiry_bucket", "moneyness_bucket"],
    )


@dataclass
class _Bucket:
    vol: deque[float]
    hs: deque[float]
    ewma_vol: float = float("nan")
    ewma_hs: float = float("nan")
    quotes: int = 0


class ErrorMonitor:
    """Rolling and EWMA summaries of absolute engine error per expiry x moneyness bucket.

    Parameters
    ----------
    window : int
        Updates (snapshots) in the rolling mean.
    halflife : float
        Half-life of the EWMA, in updates.

    Examples
    --------
    >>> res = pd.DataFrame({"t": [0.1, 0.1], "k": [0.0, 0.01], "err_vol": [0.01, -0.03],
    ...                     "err_hs": [1.0, -3.0]})
    >>> mon = ErrorMonitor(window=5, halflife=2.0)
    >>> mon.update(res)
    >>> mon.summary.loc[("30-90d", "atm"), ["rolling_vol_pts", "ewma_hs"]].tolist()
    [2.0, 2.0]
    """

    def __init__(self, window: int = 20, halflife: float = 5.0) -> None:
        if window < 1 or halflife <= 0:
            raise ValueError(f"window must be >= 1 and halflife > 0; got {window}, {halflife}")
        self.window = window
        self.halflife = halflife
        self.reset()

    def reset(self) -> None:
        """Forget every bucket."""
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._updates = 0

    def update(self, x: pd.DataFrame) -> None:
        """Add one snapshot's residuals (columns ``t``, ``k``, ``err_vol``, ``err_hs``)."""
        self.update_arrays(*(x[c].to_numpy(dtype=float) for c in ("t", "k", "err_vol", "err_hs")))

    def update_arrays(
        self, t: np.ndarray, k: np.ndarray, err_vol: np.ndarray, err_hs: np.ndarray
    ) -> None:
        """:meth:`update` on arrays: years to expiry, log-moneyness, errors (decimal vol and
        half-spreads) of one snapshot's quotes (the guard's hot path; no DataFrame)."""
        self._updates += 1
        if len(t) == 0:
            return
        codes = _bucket_codes(t, k)
        size = len(EXPIRY_LABELS) * len(MONEYNESS_LABELS)
        sums = {}
        for name, values in (
            ("vol", np.abs(np.asarray(err_vol, dtype=float)) * 100),
            ("hs", np.abs(np.asarray(err_hs, dtype=float))),
        ):
            ok = np.isfinite(values)
            sums[name] = (
                np.bincount(codes[ok], weights=values[ok], minlength=size),
                np.bincount(codes[ok], minlength=size),
            )
        quotes = np.bincount(codes, minlength=size)
        decay = 0.5 ** (1.0 / self.halflife)
        n = len(MONEYNESS_LABELS)
        for code in np.flatnonzero(quotes):  # vectorised sums, a short loop over live buckets
            b = self._buckets.setdefault(
                (EXPIRY_LABELS[code // n], MONEYNESS_LABELS[code % n]),
                _Bucket(deque(maxlen=self.window), deque(maxlen=self.window)),
            )
            total, count = sums["vol"][0][code], sums["vol"][1][code]
            vol = total / count if count else np.nan
            total, count = sums["hs"][0][code], sums["hs"][1][code]
            hs = total / count if count else np.nan
            b.vol.append(vol)
            b.hs.append(hs)
            b.ewma_vol = vol if np.isnan(b.ewma_vol) else decay * b.ewma_vol + (1 - decay) * vol
            b.ewma_hs = hs if np.isnan(b.ewma_hs) else decay * b.ewma_hs + (1 - decay) * hs
            b.quotes += int(quotes[code])

    @property
    def n_updates(self) -> int:
        """Snapshots seen since the last reset."""
        return self._updates

    @property
    def summary(self) -> pd.DataFrame:
        """Per bucket: ``rolling_vol_pts``, ``ewma_vol_pts`` (mean |error|, vol points),
        ``rolling_hs``, ``ewma_hs`` (in half-spreads) and ``quotes`` seen."""
        rows = {
            key: {
                "rolling_vol_pts": float(np.nanmean(b.vol)) if np.isfinite(b.vol).any() else np.nan,
                "ewma_vol_pts": b.ewma_vol,
                "rolling_hs": float(np.nanmean(b.hs)) if np.isfinite(b.hs).any() else np.nan,
                "ewma_hs": b.ewma_hs,
                "quotes": b.quotes,
            }
            for key, b in sorted(self._buckets.items())
        }
        out = pd.DataFrame.from_dict(rows, orient="index")
        if not out.empty:
            out.index = pd.MultiIndex.from_tuples(
                list(out.index), names=["expiry_bucket", "moneyness_bucket"]
            )
        return out


def error_rate(abs_err_vol_pts: float, floor_vol_pts: float, age_days: float) -> float:
    """The engine's out-of-sample error beyond its own fit error, per square root of a day.

    ``sqrt(max(e^2 - f^2, 0) / age)`` with ``e`` the snapshot's median absolute error, ``f`` the
    engine's in-sample median absolute error when it was fitted (both vol points) and ``age``
    the days since that fit. Implied vols diffuse, so the part of the error that comes from the
    market moving grows like ``sqrt(age)``; dividing by it makes a 6-hour and a 24-hour gap
    comparable, and removing ``f`` keeps the smile-shape misfit (which does not grow) out.

    Examples
    --------
    >>> round(error_rate(2.57, 0.47, 0.26), 2)
    4.96
    """
    excess = max(abs_err_vol_pts**2 - floor_vol_pts**2, 0.0)
    return float(np.sqrt(excess / max(age_days, 1.0 / 24.0)))
