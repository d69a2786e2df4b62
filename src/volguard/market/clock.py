"""The one clock of volguard: ACT/365 years from exchange timestamps (UTC).

Every time to expiry, every annualisation and every ``days -> years`` conversion in volguard
goes through these constants and functions, so a fit and a price of the same quote always
read the same ``t``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from volguard._typing import ArrayLike, FloatArray

DAYS_PER_YEAR = 365.0
"""ACT/365: calendar days in a year."""
HOURS_PER_YEAR = DAYS_PER_YEAR * 24.0
SECONDS_PER_YEAR = DAYS_PER_YEAR * 86_400.0
NS_PER_YEAR = SECONDS_PER_YEAR * 1e9


def year_fraction(start_ns: ArrayLike, end_ns: ArrayLike) -> FloatArray:
    """ACT/365 year fraction between UTC instants given as int64 nanoseconds since the epoch.

    Examples
    --------
    >>> start = pd.Timestamp("2026-01-01", tz="UTC").value
    >>> float(year_fraction(start, pd.Timestamp("2027-01-01", tz="UTC").value))
    1.0
    """
    elapsed_ns = np.subtract(
        np.asarray(end_ns, dtype=np.int64), np.asarray(start_ns, dtype=np.int64)
    )
    return np.asarray(elapsed_ns, dtype=float) / NS_PER_YEAR


def years_to(expiry: pd.DatetimeIndex | pd.Series | pd.Timestamp, ts: pd.Timestamp) -> FloatArray:
    """Years (ACT/365) from ``ts`` to each ``expiry``, at whatever resolution they are stored
    (negative for an expiry before ``ts``; NaN for a missing expiry).

    Examples
    --------
    >>> ts = pd.Timestamp("2026-01-01 08:00", tz="UTC")
    >>> years_to(pd.DatetimeIndex(["2026-01-02 08:00", "2027-01-01 08:00"], tz="UTC"), ts)
    array([0.00273973, 1.        ])
    """
    index = pd.DatetimeIndex([expiry] if isinstance(expiry, pd.Timestamp) else expiry)
    ns = index.as_unit("ns")
    out = year_fraction(pd.Timestamp(ts).as_unit("ns").value, ns.asi8)
    out[np.asarray(ns.isna())] = np.nan
    return out


def days_to_years(days: ArrayLike) -> FloatArray:
    """Calendar days as ACT/365 years.

    Examples
    --------
    >>> float(days_to_years(73))
    0.2
    """
    years: FloatArray = np.asarray(days, dtype=float) / DAYS_PER_YEAR
    return years
