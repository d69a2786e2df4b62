"""A synthetic quote store for the guard tests: a smile that drifts calmly, then breaks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from volguard.data.schema import QUOTE_COLUMNS, conform
from volguard.data.store import QuoteStore, open_store
from volguard.kernels.api import black76_price

START = pd.Timestamp("2026-01-01 09:00", tz="UTC")
TENORS_DAYS = (7, 21, 45, 90, 180)
K_GRID = np.linspace(-0.3, 0.3, 13)


def synthetic_snapshot(
    ts: pd.Timestamp,
    level: float,
    skew: float,
    rng: np.random.Generator,
    underlying: str = "BTC",
    forward: float = 90_000.0,
    noise: float = 0.002,
    half_spread: float = 0.006,
) -> pd.DataFrame:
    """Quote-schema rows of one snapshot: vol = level + skew k + 0.4 k^2 (+ mid noise)."""
    rows = []
    for days in TENORS_DAYS:
        expiry = ts + pd.Timedelta(days=days)
        t = days / 365.0
        strike = forward * np.exp(K_GRID)
        vol = level + skew * K_GRID + 0.4 * K_GRID**2 + rng.normal(0.0, noise, K_GRID.size)
        for is_call in (True, False):
            bid = black76_price(forward, strike, t, vol - half_spread, is_call)
            ask = black76_price(forward, strike, t, vol + half_spread, is_call)
            for i in range(K_GRID.size):
                kind = "C" if is_call else "P"
                rows.append(
                    {
                        "ts": ts,
                        "venue": "deribit",
                        "underlying": underlying,
                        "instrument": f"{underlying}-{days}D-{strike[i]:.0f}-{kind}",
                        "expiry": expiry,
                        "t": t,
                        "strike": strike[i],
                        "is_call": is_call,
                        "settlement": "inverse",
                        "forward": forward,
                        "bid": float(bid[i]),
                        "ask": float(ask[i]),
                        "source": "synthetic",
                        "source_row": len(rows) + 2,
                        "flags": "",
                    }
                )
    return conform(pd.DataFrame(rows), QUOTE_COLUMNS)


DAY = pd.Timedelta(days=1)


def synthetic_market(
    n: int, shift_at: int | None, seed: int = 0, step: pd.Timedelta = DAY
) -> pd.DataFrame:
    """``n`` snapshots ``step`` apart; from ``shift_at`` on the level jumps 15 vol points and
    the skew steepens (a crash)."""
    rng = np.random.default_rng(seed)
    frames = []
    level = 0.45
    for i in range(n):
        level += rng.normal(0.0, 0.004)
        crash = shift_at is not None and i >= shift_at
        frames.append(
            synthetic_snapshot(
                START + i * step,
                level + (0.15 if crash else 0.0),
                -0.6 if crash else -0.1,
                rng,
            )
        )
    return pd.concat(frames, ignore_index=True)


def write_store(root: Path, quotes: pd.DataFrame) -> QuoteStore:
    store = open_store(root)
    with store.writing():
        store.commit("synthetic", {"quotes": quotes}, [])
    return open_store(root)


@pytest.fixture
def make_store(tmp_path: Path) -> Callable[..., QuoteStore]:
    """``make_store(n, shift_at, seed=0)``: a store of :func:`synthetic_market`."""

    def make(n: int, shift_at: int | None, seed: int = 0) -> QuoteStore:
        return write_store(
            tmp_path / f"store-{n}-{shift_at}-{seed}", synthetic_market(n, shift_at, seed)
        )

    return make
