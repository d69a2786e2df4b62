"""What a snapshot's own quotes cannot tell: the realised volatility of its index history.

The realised vol at ``ts`` is the annualised root mean square of the index's log returns
between consecutive observations in the trailing window ``(ts - window, ts]``, each return's
square divided by the years it spans, so irregular spacing (daily snapshots, then 6-hourly ones)
is handled: ``RV = sqrt(sum r_i^2 / sum dt_i)``. It uses observations up to ``ts`` only.

:func:`with_realized_vol` attaches it to snapshots as the in-memory column
:data:`REALIZED_VOL` (decimal, the same in every row of a snapshot). It is not a stored quote
column: it is a function of the other snapshots, computed where the history is at hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from volguard.market.clock import SECONDS_PER_YEAR
from volguard.market.snapshot import MarketSnapshot

REALIZED_VOL = "realized_vol_7d"
"""Column name of the attached realised vol (decimal, annualised, trailing 7 days)."""


def realized_vol(index_price: pd.Series, window: str = "7D") -> pd.Series:
    """Trailing realised vol of an index sampled at (possibly irregular) times.

    Parameters
    ----------
    index_price : Series
        Index level (USD), indexed by increasing UTC timestamps.
    window : str
        Trailing window, a pandas offset (``"7D"``).

    Returns
    -------
    Series
        ``sqrt(sum r^2 / sum dt)`` over the returns ending in ``(ts - window, ts]`` (decimal,
        annualised, ACT/365); NaN at the first time (no return yet).

    Examples
    --------
    >>> ts = pd.date_range("2026-01-01", periods=4, freq="D", tz="UTC")
    >>> rv = realized_vol(pd.Series([100.0, 101.0, 100.0, 101.0], index=ts))
    >>> [round(v, 4) for v in rv.fillna(-1)]  # about 1 % a day: sqrt(365) * 0.01
    [-1.0, 0.1901, 0.1901, 0.1901]
    """
    r2 = index_price.astype(float).apply(np.log).diff() ** 2
    dt = index_price.index.to_series().diff().dt.total_seconds() / SECONDS_PER_YEAR
    out: pd.Series = np.sqrt(r2.rolling(window).sum() / dt.rolling(window).sum())
    return out.rename(REALIZED_VOL)


def with_realized_vol(
    snapshots: Sequence[MarketSnapshot], window: str = "7D"
) -> list[MarketSnapshot]:
    """The snapshots with :data:`REALIZED_VOL` attached, from their own index prices.

    Per underlying, each snapshot's index level is the median of its rows' ``index_price``;
    :func:`realized_vol` of that history in time order gives each snapshot's value. The first
    snapshot of each underlying has none (NaN), and so does any snapshot without an index price.

    Parameters
    ----------
    snapshots : sequence of MarketSnapshot
        Any underlyings, any order; returned in the same order.
    window : str
        Trailing window of the realised vol.

    Returns
    -------
    list of MarketSnapshot
    """
    level = pd.DataFrame(
        {
            "underlying": [s.underlying for s in snapshots],
            "ts": [s.ts for s in snapshots],
            "index": [
                float(s.quotes["index_price"].median()) if "index_price" in s.quotes else np.nan
                for s in snapshots
            ],
        }
    )
    rv = pd.Series(np.nan, index=level.index)
    for _, group in level.dropna(subset=["index"]).groupby("underlying"):
        ordered = group.sort_values("ts")
        values = realized_vol(ordered.set_index("ts")["index"], window).to_numpy()
        rv[ordered.index] = values
    return [
        MarketSnapshot.from_quotes(s.quotes.assign(**{REALIZED_VOL: rv[i]}))
        for i, s in enumerate(snapshots)
    ]
