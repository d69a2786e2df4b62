"""Deribit-like listings: which expiries and strikes exist at each time.

Expiries (08:00 UTC) follow Deribit's calendar: the next four days, the next four Fridays,
the last Friday of the next three months and of the next four quarter months
(March, June, September, December); on 15 January 2026 this gives the twelve expiries Deribit
listed. Strikes sit on "nice" steps (1, 2, 2.5, 5 x 10^n) scaled to the spot: a fine step near
the money, coarser ones further out, each tier reaching a number of standard deviations
``sigma sqrt(t)`` from the forward. Listed strikes stay listed until expiry, and new ones are
added near the money as the forward moves, so expiries that have lived through a move carry
wide strike ranges, as on the venue.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from volguard._typing import FloatArray
from volguard.market.clock import DAYS_PER_YEAR, SECONDS_PER_YEAR

EXPIRY_HOUR = 8
NICE = np.array([1.0, 2.0, 2.5, 5.0, 10.0])


@dataclass(frozen=True)
class ListingRules:
    """Settings of :class:`Listing` (defaults reproduce Deribit's BTC chains of January 2026).

    Parameters
    ----------
    dailies : int
        Daily expiries listed.
    weeklies : int
        The next this many Fridays are listed.
    monthlies, quarterlies : int
        Month-end and quarter-end expiries listed.
    fine_step : float
        Near-the-money strike step as a fraction of the spot, rounded to a nice step (BTC
        at 90,000: 1,000; ETH at 3,100: 50).
    long_step_factor : float
        Step multiplier for expiries beyond ``long_days``.
    long_days : float
        See ``long_step_factor``.
    tiers : tuple of (step multiple, reach in standard deviations, minimum reach in k)
        Strikes on ``multiple * step`` are listed within ``max(reach * sd, min_reach)`` of the
        forward in log-moneyness, ``sd = vol sqrt(t)``.
    refresh_tiers : int
        After an expiry's first listing only its first ``refresh_tiers`` tiers follow the
        forward (new strikes near the money, as the venue adds them); the far tiers stay as
        listed, so a long-lived expiry does not pile up far strikes.
    """

    dailies: int = 4
    weeklies: int = 4
    monthlies: int = 3
    quarterlies: int = 4
    fine_step: float = 0.012
    long_step_factor: float = 5.0
    long_days: float = 120.0
    tiers: tuple[tuple[float, float, float], ...] = (
        (1.0, 0.5, 0.08),
        (2.0, 1.2, 0.0),
        (5.0, 2.5, 0.0),
        (10.0, 4.0, 0.0),
    )
    refresh_tiers: int = 4


def nice_step(x: float) -> float:
    """The step of 1, 2, 2.5, 5 x 10^n nearest to ``x`` (in ratio).

    Examples
    --------
    >>> nice_step(949.0), nice_step(32.7)
    (1000.0, 25.0)
    """
    candidates = NICE * 10.0 ** np.floor(np.log10(x))
    return float(candidates[np.argmin(np.abs(np.log(candidates / x)))])


def listed_expiries(ts: pd.Timestamp, rules: ListingRules = ListingRules()) -> list[pd.Timestamp]:
    """Expiries listed at ``ts`` (UTC), sorted.

    Examples
    --------
    >>> at = pd.Timestamp("2026-01-15 09:21", tz="UTC")
    >>> " ".join(e.strftime("%d%b") for e in listed_expiries(at))
    '16Jan 17Jan 18Jan 19Jan 23Jan 30Jan 06Feb 27Feb 27Mar 26Jun 25Sep 25Dec'
    """
    day = ts.normalize() + pd.Timedelta(hours=EXPIRY_HOUR)
    return list(_expiries_from(day if day > ts else day + pd.Timedelta(days=1), rules))


@cache
def _expiries_from(first: pd.Timestamp, rules: ListingRules) -> tuple[pd.Timestamp, ...]:
    """Expiries listed from the expiry ``first`` on (the same at every time of a listing day)."""
    out = {first + pd.Timedelta(days=i) for i in range(rules.dailies)}
    friday = first + pd.Timedelta(days=(4 - first.day_of_week) % 7)
    out.update(friday + pd.Timedelta(days=7 * i) for i in range(rules.weeklies))
    months = [m for m in _month_ends(first, 15) if m >= first]
    out.update(months[: rules.monthlies])
    out.update([m for m in months if m.month % 3 == 0][: rules.quarterlies])
    return tuple(sorted(out))


def _month_ends(ts: pd.Timestamp, n: int) -> list[pd.Timestamp]:
    """Last Fridays (08:00 UTC) of ``n`` months from ``ts``'s month on."""
    out = []
    for m in range(n):
        last = (ts.normalize().replace(day=1) + pd.DateOffset(months=m + 1)) - pd.Timedelta(days=1)
        last = pd.Timestamp(last) - pd.Timedelta(days=(last.day_of_week - 4) % 7)
        out.append(last + pd.Timedelta(hours=EXPIRY_HOUR))
    return out


class Listing:
    """The strikes listed per expiry over time: strikes are added, never removed before expiry.

    Each expiry's strike step is fixed when it is first listed, from the forward then (so a
    market that doubles lists its new expiries on doubled steps, as the venue does), and five
    times coarser while the expiry is more than ``long_days`` away.

    Parameters
    ----------
    rules : ListingRules
    """

    def __init__(self, rules: ListingRules) -> None:
        self.rules = rules
        self._strikes: dict[pd.Timestamp, set[float]] = {}
        self._steps: dict[pd.Timestamp, float] = {}

    def at(
        self, ts: pd.Timestamp, forward_of: dict[pd.Timestamp, float], vol: float
    ) -> dict[pd.Timestamp, FloatArray]:
        """Strikes listed at ``ts`` per expiry, given each expiry's forward and an ATM vol."""
        out = {}
        for expiry, forward in forward_of.items():
            t = (expiry - ts).total_seconds() / SECONDS_PER_YEAR
            sd = vol * np.sqrt(t)
            new = expiry not in self._strikes
            if new:
                self._steps[expiry] = nice_step(self.rules.fine_step * forward)
            long = t * DAYS_PER_YEAR > self.rules.long_days
            step = self._steps[expiry] * (self.rules.long_step_factor if long else 1.0)
            listed = self._strikes.setdefault(expiry, set())
            tiers = self.rules.tiers if new else self.rules.tiers[: self.rules.refresh_tiers]
            for multiple, reach, min_reach in tiers:
                s = step * multiple
                width = max(reach * sd, min_reach)
                lo = np.ceil(forward * np.exp(-width) / s)
                hi = np.floor(forward * np.exp(width) / s)
                listed.update((np.arange(lo, hi + 1) * s).tolist())
            listed.discard(0.0)
            out[expiry] = np.array(sorted(listed))
        for gone in [e for e in self._strikes if e <= ts]:
            del self._strikes[gone]
            del self._steps[gone]
        return out
