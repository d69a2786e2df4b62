"""MarketSnapshot: built from one underlying at one time, immutable, forwards per expiry."""

from __future__ import annotations

import pandas as pd
import pytest

from volguard.market import MarketSnapshot

TS = pd.Timestamp("2026-01-15 09:00", tz="UTC")
E1, E2 = pd.Timestamp("2026-01-30 08:00", tz="UTC"), pd.Timestamp("2026-03-27 08:00", tz="UTC")


def quotes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": [TS] * 4,
            "underlying": ["BTC"] * 4,
            "expiry": [E2, E1, E1, E2],
            "strike": [90e3, 100e3, 90e3, 100e3],
            "is_call": [True] * 4,
            "forward": [96e3, 95e3, 95e3, 96e3],
            "mark_iv": [0.5, 0.4, 0.45, 0.48],
        }
    )


def test_forwards_expiries_and_order() -> None:
    snap = MarketSnapshot.from_quotes(quotes())
    assert list(snap.expiries) == [E1, E2]
    assert snap.forwards.to_dict() == {E1: 95e3, E2: 96e3}
    assert snap.quotes["strike"].tolist() == [90e3, 100e3, 90e3, 100e3]
    assert "BTC" in repr(snap) and "2 expiries" in repr(snap)


def test_edits_by_a_caller_never_reach_the_snapshot() -> None:
    source = quotes()
    snap = MarketSnapshot.from_quotes(source)
    source.loc[0, "forward"] = -1.0
    view = snap.quotes
    view.loc[0, "mark_iv"] = 9.9
    assert snap.quotes["mark_iv"].iloc[0] == 0.45  # first row after sorting: E1, K 90k
    assert (snap.quotes["forward"] > 0).all()
    with pytest.raises(AttributeError):
        snap.underlying = "ETH"  # type: ignore[misc]


@pytest.mark.parametrize("column", ["underlying", "ts"])
def test_one_underlying_and_one_time_only(column: str) -> None:
    mixed = quotes()
    mixed.loc[0, column] = "ETH" if column == "underlying" else TS + pd.Timedelta(hours=1)
    with pytest.raises(ValueError, match=f"span 2 values of '{column}'"):
        MarketSnapshot.from_quotes(mixed)
    with pytest.raises(ValueError, match="empty"):
        MarketSnapshot.from_quotes(quotes().iloc[:0])
