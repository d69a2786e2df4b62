"""Deribit-like listings: the expiry calendar and strikes that persist."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volguard.sim.listing import Listing, ListingRules, listed_expiries, nice_step


def test_expiry_calendar_matches_deribit_on_a_crash_day() -> None:
    # Deribit listed these twelve BTC expiries on 5 February 2026 (deribit-svcj-snapshots)
    got = listed_expiries(pd.Timestamp("2026-02-05 09:36", tz="UTC"))
    assert [e.strftime("%d%b%y") for e in got] == [
        "06Feb26", "07Feb26", "08Feb26", "09Feb26", "13Feb26", "20Feb26", "27Feb26",
        "27Mar26", "24Apr26", "26Jun26", "25Sep26", "25Dec26",
    ]  # fmt: skip
    assert all(e.hour == 8 for e in got)


def test_expiries_roll_at_eight_utc() -> None:
    before = listed_expiries(pd.Timestamp("2026-02-05 07:59", tz="UTC"))
    after = listed_expiries(pd.Timestamp("2026-02-05 08:00", tz="UTC"))
    assert before[0] == pd.Timestamp("2026-02-05 08:00", tz="UTC")
    assert after[0] == pd.Timestamp("2026-02-06 08:00", tz="UTC")


@pytest.mark.parametrize(("x", "step"), [(949.0, 1000.0), (32.7, 25.0), (1.4, 1.0), (4e3, 5e3)])
def test_nice_steps(x: float, step: float) -> None:
    assert nice_step(x) == step


def test_strikes_sit_on_the_grid_and_persist_until_expiry() -> None:
    ts = pd.Timestamp("2026-01-15 09:00", tz="UTC")
    listing = Listing(ListingRules())
    expiry = pd.Timestamp("2026-02-27 08:00", tz="UTC")
    first = listing.at(ts, {expiry: 96_000.0}, vol=0.4)[expiry]
    assert np.all(first % 1000.0 == 0) and np.any(first % 2000.0 != 0)
    assert first.min() < 96_000 * np.exp(-0.3) and first.max() > 96_000 * np.exp(0.3)
    # the forward falls 20 %: fine strikes around the new forward, the old ones kept
    moved = listing.at(ts + pd.Timedelta(days=1), {expiry: 76_800.0}, vol=0.4)[expiry]
    assert set(first) <= set(moved)
    assert set(np.arange(72_000.0, 82_000.0, 1000.0)) <= set(moved) - set(first) | set(first)
    assert not set(np.arange(72_000.0, 82_000.0, 1000.0)) <= set(first)
    # after expiry the expiry's strikes are forgotten
    listing.at(expiry, {}, vol=0.4)
    fresh = listing.at(expiry, {expiry + pd.Timedelta(days=1): 96_000.0}, vol=0.4)
    assert expiry not in fresh
