"""Contracts as a newcomer gives them: Deribit names, DeribitInstruments, a date-only expiry."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tests.guard.conftest import synthetic_snapshot
from volguard.market.deribit import parse_deribit_instrument
from volguard.market.snapshot import MarketSnapshot
from volguard.models import make_engine
from volguard.models.base import as_contracts


@pytest.fixture(scope="module")
def fitted() -> tuple[object, MarketSnapshot]:
    quotes = synthetic_snapshot(
        pd.Timestamp("2026-01-20 08:00", tz="UTC"), 0.5, -0.1, np.random.default_rng(0)
    )
    snap = MarketSnapshot.from_quotes(quotes)  # expiries 7, 21, ... days on, at 08:00
    return make_engine("ssvi").fit(snap), snap


def test_names_instruments_and_date_only_expiries_price_like_the_frame(
    fitted: tuple[object, MarketSnapshot],
) -> None:
    engine, snap = fitted
    expiry = snap.expiries[1]  # 2026-02-10 08:00 UTC
    name = f"BTC-{expiry.day}{expiry.strftime('%b%y').upper()}-90000-C"
    frame = pd.DataFrame({"expiry": [expiry], "strike": [90_000.0], "is_call": [True]})
    reference = engine.price(frame, snap)  # type: ignore[attr-defined]
    for given in (
        [name],
        name,
        [parse_deribit_instrument(name)],
        pd.DataFrame({"instrument": [name]}),
        pd.DataFrame({"expiry": [expiry.date()], "strike": [90_000.0], "is_call": [True]}),
        pd.DataFrame({"expiry": [str(expiry.date())], "strike": [9e4], "is_call": [True]}),
    ):
        np.testing.assert_allclose(engine.price(given, snap), reference)  # type: ignore[attr-defined]
    greeks = engine.greeks([name], snap)  # type: ignore[attr-defined]
    assert greeks["delta"].shape == (1,) and 0 < greeks["delta"][0] < 1


def test_bad_contracts_name_the_problem() -> None:
    with pytest.raises(ValueError, match="not a Deribit option name"):
        as_contracts(["BTC-PERPETUAL"])
    with pytest.raises(ValueError, match="need columns"):
        as_contracts(pd.DataFrame({"k": [0.1]}))
    with pytest.raises(TypeError, match="must be a DataFrame"):
        as_contracts(42)  # type: ignore[arg-type]
    naive = as_contracts(
        pd.DataFrame({"expiry": [dt.datetime(2026, 2, 10, 8)], "strike": [1.0], "is_call": [1]})
    )
    assert str(naive["expiry"].iloc[0]) == "2026-02-10 08:00:00+00:00"
