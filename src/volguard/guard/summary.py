"""Summaries of a decisions table: alarms, transitions, time to leave NORMAL, coverage."""

from __future__ import annotations

import pandas as pd


def alarms(decisions: pd.DataFrame) -> pd.DataFrame:
    """The decisions that left NORMAL (an alarm: NORMAL to any other state).

    Examples
    --------
    >>> d = pd.DataFrame({"ts": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"],
    ...                   utc=True), "previous": ["NORMAL", "NORMAL", "WATCH"],
    ...                   "state": ["NORMAL", "WATCH", "RECALIBRATE"]})
    >>> alarms(d)["ts"].dt.day.tolist()
    [2]
    """
    return decisions[(decisions["previous"] == "NORMAL") & (decisions["state"] != "NORMAL")]


def alarms_per_month(
    decisions: pd.DataFrame, start: str | pd.Timestamp, end: str | pd.Timestamp
) -> pd.Series:
    """Alarms per calendar month (``YYYY-MM``) between ``start`` and ``end`` inclusive, with
    zero for months that had none."""
    lo, hi = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    found = alarms(decisions)
    found = found[(found["ts"] >= lo) & (found["ts"] <= hi)]
    months = pd.period_range(lo.tz_localize(None), hi.tz_localize(None), freq="M").astype(str)
    counts = found["ts"].dt.tz_localize(None).dt.to_period("M").astype(str).value_counts()
    out: pd.Series = counts.reindex(months, fill_value=0).rename("alarms")
    return out


def transitions(decisions: pd.DataFrame) -> pd.DataFrame:
    """The decisions that changed the state: ``ts, previous, state, reason`` and ``z``."""
    moved = decisions[decisions["state"] != decisions["previous"]]
    return moved[["ts", "previous", "state", "reason", "z"]].reset_index(drop=True)


def snapshots_to_leave_normal(decisions: pd.DataFrame, start: str | pd.Timestamp) -> int | None:
    """How many snapshots after the first one at or after ``start`` the state first left NORMAL
    (0: at that snapshot itself); None if it never did."""
    after = decisions[decisions["ts"] >= pd.Timestamp(start, tz="UTC")].reset_index(drop=True)
    left = after.index[after["state"] != "NORMAL"]
    return int(left[0]) if len(left) else None
