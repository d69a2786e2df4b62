"""Contracts, premium conversions and immutable market snapshots."""

from volguard.market.clock import year_fraction
from volguard.market.contracts import (
    DeribitInstrument,
    coin_to_usd,
    parse_deribit_instrument,
    premium_to_usd,
    usd_to_coin,
)
from volguard.market.snapshot import MarketSnapshot

__all__ = [
    "DeribitInstrument",
    "MarketSnapshot",
    "coin_to_usd",
    "parse_deribit_instrument",
    "premium_to_usd",
    "usd_to_coin",
    "year_fraction",
]
