"""Input events of the guard and the replay source that plays a quote store in time order.

Quote updates are rows of the quote schema (``volguard.data.schema``); trades carry the traded
premium and, where the venue gives it, the trade's implied vol. The runtime consumes whole
snapshots (one underlying at one time), so :class:`ReplaySource` yields
:class:`~volguard.market.snapshot.MarketSnapshot` objects and :func:`quote_updates` splits one
into its per-quote events for consumers that want them one at a time.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pandas as pd

from volguard.data.store import QuoteStore
from volguard.market.snapshot import MarketSnapshot


@dataclass(frozen=True, slots=True)
class QuoteUpdate:
    """One option quote at ``ts`` (USD premiums per unit of underlying, decimal vols).

    Examples
    --------
    >>> q = QuoteUpdate(pd.Timestamp("2026-01-15 09:00", tz="UTC"), "BTC", "BTC-30JAN26-95000-C",
    ...                 pd.Timestamp("2026-01-30 08:00", tz="UTC"), 95e3, True, 95e3, 2e3, 2.1e3)
    >>> q.mid
    2050.0
    """

    ts: pd.Timestamp
    underlying: str
    instrument: str
    expiry: pd.Timestamp
    strike: float
    is_call: bool
    forward: float
    bid: float
    ask: float

    @property
    def mid(self) -> float:
        """The mid premium (USD); NaN for a one-sided quote."""
        return (self.bid + self.ask) / 2


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade: premium in USD per unit of underlying, ``iv`` the venue's trade vol or NaN."""

    ts: pd.Timestamp
    underlying: str
    instrument: str
    price: float
    size: float
    iv: float = float("nan")


def quote_updates(snapshot: MarketSnapshot) -> Iterator[QuoteUpdate]:
    """The quotes of ``snapshot`` as events, in the snapshot's (expiry, strike, call) order.

    Examples
    --------
    >>> rows = pd.DataFrame({
    ...     "ts": pd.to_datetime(["2026-01-15 09:00"], utc=True), "underlying": ["BTC"],
    ...     "instrument": ["BTC-30JAN26-95000-C"], "expiry": pd.to_datetime(["2026-01-30 08:00"],
    ...     utc=True), "strike": [95e3], "is_call": [True], "forward": [95e3], "bid": [2e3],
    ...     "ask": [2.1e3]})
    >>> [u.instrument for u in quote_updates(MarketSnapshot.from_quotes(rows))]
    ['BTC-30JAN26-95000-C']
    """
    q = snapshot.quotes
    columns = ("instrument", "expiry", "strike", "is_call", "forward", "bid", "ask")
    values = [q[c].tolist() for c in columns]
    for instrument, expiry, strike, is_call, forward, bid, ask in zip(*values, strict=True):
        yield QuoteUpdate(
            snapshot.ts,
            snapshot.underlying,
            str(instrument),
            pd.Timestamp(expiry),
            float(strike),
            bool(is_call),
            float(forward),
            float("nan") if pd.isna(bid) else float(bid),
            float("nan") if pd.isna(ask) else float(ask),
        )


class ReplaySource:
    """Snapshots of one or more underlyings from a store, merged in time order.

    Parameters
    ----------
    store : QuoteStore
        The quote store.
    underlyings : sequence of str
        Underlyings to replay; at equal times the order given here breaks the tie.
    start, end : str or Timestamp, optional
        Inclusive UTC bounds.
    speed : float, optional
        ``None`` replays as fast as possible; ``speed = 3600`` plays an hour of market time per
        second of wall time (sleeping between snapshots).
    """

    def __init__(
        self,
        store: QuoteStore,
        underlyings: Sequence[str],
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
        speed: float | None = None,
    ) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be positive or None; got {speed!r}")
        self.store = store
        self.underlyings = tuple(underlyings)
        self.start = start
        self.end = end
        self.speed = speed

    def __iter__(self) -> Iterator[MarketSnapshot]:
        streams = [
            ((s.ts, i, s) for s in self.store.snapshots(u, self.start, self.end))
            for i, u in enumerate(self.underlyings)
        ]
        previous: pd.Timestamp | None = None
        for ts, _, snapshot in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
            if self.speed is not None and previous is not None:
                time.sleep(max((ts - previous).total_seconds(), 0.0) / self.speed)
            previous = ts
            yield snapshot
