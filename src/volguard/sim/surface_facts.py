"""The few surface figures a simulated regime must reproduce: ATM term structure and 25-delta skew.

Computed the same way on real and simulated chains (from the venue mark vols), so a preset is
judged against its real window with one ruler.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from volguard._typing import FloatArray
from volguard.kernels.api import black76_greeks

TENORS_DAYS: tuple[int, ...] = (7, 14, 30, 60, 90, 180)
"""Tenors (calendar days) at which the ATM vol is interpolated."""

SKEW_DAYS = (20.0, 45.0)
"""Expiries (days) whose 25-delta risk reversal is averaged into the skew figure."""


def atm_vols(quotes: pd.DataFrame) -> pd.DataFrame:
    """ATM mark vol of each expiry: the out-of-the-money smile interpolated at ``k = 0``.

    Parameters
    ----------
    quotes : DataFrame
        One snapshot in the quote schema (``expiry``, ``t``, ``strike``, ``forward``,
        ``is_call``, ``mark_iv``).

    Returns
    -------
    DataFrame
        ``expiry, t, atm_iv`` (years, decimal), one row per expiry with quotes on both sides
        of the forward.
    """
    rows = []
    for expiry, g in _otm(quotes).groupby("expiry", sort=True):
        k, iv = g["k"].to_numpy(), g["mark_iv"].to_numpy()
        if k.min() < 0.0 < k.max():
            rows.append((expiry, float(g["t"].iloc[0]), float(np.interp(0.0, k, iv))))
    return pd.DataFrame(rows, columns=["expiry", "t", "atm_iv"])


def atm_term_structure(quotes: pd.DataFrame) -> dict[str, float]:
    """ATM vol at :data:`TENORS_DAYS`, interpolated linearly in total variance over expiries.

    Returns
    -------
    dict
        ``atm_<days>d`` for each tenor (decimal); NaN outside the quoted expiries.
    """
    atm = atm_vols(quotes)
    t, w = atm["t"].to_numpy(), atm["atm_iv"].to_numpy() ** 2 * atm["t"].to_numpy()
    out = {}
    for days in TENORS_DAYS:
        tenor = days / 365.0
        inside = t.size > 1 and t[0] <= tenor <= t[-1]
        out[f"atm_{days}d"] = float(np.sqrt(np.interp(tenor, t, w) / tenor)) if inside else np.nan
    return out


def risk_reversal_25d(quotes: pd.DataFrame) -> float:
    """Mean 25-delta risk reversal (call vol minus put vol) over expiries of 20-45 days.

    The smile of each expiry is read at the strikes where the Black-76 forward delta at the
    mark vol is +0.25 (calls) and -0.25 (puts). Negative: puts richer (crash fear).

    Returns
    -------
    float
        Vol units (decimal); NaN if no expiry qualifies.
    """
    rr = []
    for _, g in _otm(quotes).groupby("expiry", sort=True):
        days = float(g["t"].iloc[0]) * 365.0
        if not SKEW_DAYS[0] <= days <= SKEW_DAYS[1]:
            continue
        call, put = _vol_at_delta(g[g["is_call"]], 0.25), _vol_at_delta(g[~g["is_call"]], -0.25)
        if np.isfinite(call) and np.isfinite(put):
            rr.append(call - put)
    return float(np.mean(rr)) if rr else np.nan


def surface_facts(quotes: pd.DataFrame) -> dict[str, float]:
    """:func:`atm_term_structure` plus ``rr_25d`` (:func:`risk_reversal_25d`) of one snapshot."""
    return {**atm_term_structure(quotes), "rr_25d": risk_reversal_25d(quotes)}


def _otm(quotes: pd.DataFrame) -> pd.DataFrame:
    q = quotes[np.isfinite(quotes["mark_iv"]) & (quotes["mark_iv"] > 0)]
    k = np.log(q["strike"].to_numpy(dtype=float) / q["forward"].to_numpy(dtype=float))
    otm = np.where(q["is_call"].to_numpy(dtype=bool), k >= 0.0, k < 0.0)
    out: pd.DataFrame = q.assign(k=k)[otm].sort_values(["expiry", "k"])
    return out


def _vol_at_delta(side: pd.DataFrame, target: float) -> float:
    if len(side) < 2:
        return np.nan
    delta: FloatArray = black76_greeks(
        side["forward"].to_numpy(dtype=float),
        side["strike"].to_numpy(dtype=float),
        side["t"].to_numpy(dtype=float),
        side["mark_iv"].to_numpy(dtype=float),
        side["is_call"].to_numpy(dtype=bool),
    )["delta"]
    order = np.argsort(delta)
    d, iv = delta[order], side["mark_iv"].to_numpy(dtype=float)[order]
    if not d[0] <= target <= d[-1]:
        return np.nan
    return float(np.interp(target, d, iv))
