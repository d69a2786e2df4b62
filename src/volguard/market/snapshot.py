"""``MarketSnapshot``: observed quotes of one underlying at one time, immutable."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from volguard._typing import FloatArray
from volguard.market.clock import years_to


@dataclass(frozen=True, eq=False)
class MarketSnapshot:
    """One underlying at one timestamp: its forwards per expiry and its option quotes.

    Built from rows of the quote schema (``docs/data.md``). The snapshot is immutable: ``quotes``
    and ``forwards`` hand out copy-on-write views, so a caller's edits never reach the snapshot.

    The snapshot holds the one definition of two market facts that every fit, price and score
    reads (``docs/data.md``): the **forward** of an expiry is the median of its rows' forwards
    (rows captured a few milliseconds apart differ by up to about 2 bp), and **t** is ACT/365
    years from ``ts`` to the expiry (:func:`volguard.market.clock.years_to`). The rows'
    ``forward`` and ``t`` columns are set from them, so ``k = ln(K / forward)`` of a row is the
    ``k`` at which engines are fitted, priced and scored.

    Parameters
    ----------
    underlying : str
        ``BTC``, ``ETH``, ...
    ts : pandas.Timestamp
        Snapshot time, UTC.
    quotes : DataFrame
        Quote-schema rows of this underlying at ``ts`` (USD premiums, decimal vols).

    Examples
    --------
    >>> rows = pd.DataFrame({
    ...     "ts": pd.to_datetime(["2026-01-15 09:00"] * 2, utc=True), "underlying": ["BTC"] * 2,
    ...     "expiry": pd.to_datetime(["2026-01-30 08:00"] * 2, utc=True), "strike": [90e3, 100e3],
    ...     "forward": [95e3, 95e3], "is_call": [True, True]})
    >>> snap = MarketSnapshot.from_quotes(rows)
    >>> snap.underlying, len(snap), float(snap.forwards.iloc[0])
    ('BTC', 2, 95000.0)
    >>> round(float(snap.quotes["t"].iloc[0]) * 365, 4)  # days, from ts to the expiry
    14.9583
    """

    underlying: str
    ts: pd.Timestamp
    _quotes: pd.DataFrame = field(repr=False)

    @classmethod
    def from_quotes(cls, quotes: pd.DataFrame) -> MarketSnapshot:
        """Build a snapshot from quote rows that share one underlying and one ``ts``.

        Raises
        ------
        ValueError
            If the rows are empty or span several underlyings or timestamps.
        """
        if quotes.empty:
            raise ValueError("quotes is empty; a snapshot needs at least one quote row")
        for column in ("underlying", "ts"):
            values = quotes[column].unique()
            if len(values) != 1:
                raise ValueError(
                    f"quotes span {len(values)} values of {column!r}; a snapshot needs exactly one"
                )
        ts = pd.Timestamp(quotes["ts"].iloc[0])
        ordered = quotes.sort_values(["expiry", "strike", "is_call"], kind="stable")
        ordered = ordered.assign(
            forward=ordered.groupby("expiry", sort=False)["forward"].transform("median"),
            t=years_to(ordered["expiry"], ts),
        )
        return cls(str(quotes["underlying"].iloc[0]), ts, ordered.reset_index(drop=True))

    @property
    def quotes(self) -> pd.DataFrame:
        """The quote rows (a copy-on-write view; editing it leaves the snapshot unchanged)."""
        return self._quotes.copy(deep=False)

    @property
    def forwards(self) -> pd.Series:
        """Forward (USD) per expiry: the median of the rows' forwards, indexed by expiry (a
        copy-on-write view of a table computed once)."""
        return self._forwards.copy(deep=False)

    @cached_property
    def _forwards(self) -> pd.Series:
        return self._quotes.groupby("expiry")["forward"].median().rename("forward")

    def forward_at(self, expiry: pd.DatetimeIndex | pd.Series) -> FloatArray:
        """The forward (USD) of each ``expiry``: the snapshot's forward of that expiry.

        Raises
        ------
        ValueError
            If an expiry has no forward in the snapshot (the message lists them).
        """
        index = pd.DatetimeIndex(expiry)
        forward: FloatArray = self._forwards.reindex(index).to_numpy(dtype=float)
        if np.isnan(forward).any():
            missing = sorted({str(e) for e, f in zip(index, forward, strict=True) if np.isnan(f)})
            raise ValueError(
                f"{self!r} has no forward for expiries {missing}; it quotes {self._expiry_names}"
            )
        return forward

    def years_to(self, expiry: pd.DatetimeIndex | pd.Series) -> FloatArray:
        """ACT/365 years from the snapshot's time to each ``expiry``."""
        return years_to(expiry, self.ts)

    @property
    def _expiry_names(self) -> list[str]:
        return [e.strftime("%Y-%m-%d %H:%M") for e in self.expiries]

    @property
    def expiries(self) -> pd.DatetimeIndex:
        """The distinct expiries, ascending."""
        return pd.DatetimeIndex(np.unique(self._quotes["expiry"]))

    def __len__(self) -> int:
        return len(self._quotes)

    def __repr__(self) -> str:
        return (
            f"MarketSnapshot({self.underlying} at {self.ts.isoformat()}: {len(self)} quotes, "
            f"{len(self.expiries)} expiries)"
        )
