"""Static no-arbitrage diagnostics for any implied-volatility surface."""

from volguard.arbitrage.static import ArbitrageReport, check_static_arbitrage, durrleman_g

__all__ = ["ArbitrageReport", "check_static_arbitrage", "durrleman_g"]
