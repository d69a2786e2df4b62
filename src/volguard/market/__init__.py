"""Contracts, premium conversions and immutable market snapshots."""

from volguard.market.clock import year_fraction
from volguard.market.contracts import coin_to_usd, premium_to_usd, usd_to_coin
from volguard.market.deribit import DeribitInstrument, parse_deribit_instrument
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
