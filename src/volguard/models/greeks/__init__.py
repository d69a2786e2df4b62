"""Delta estimators beyond Black-76 at the quote's vol: static smile dynamics and the
regime-aware spot-vol slope (``docs/greeks.md``)."""

from volguard.models.greeks.spot_vol import SpotVolBeta
from volguard.models.greeks.static import (
    delta_with_beta,
    min_variance_delta,
    smile_slope,
    sticky_moneyness_delta,
)

__all__ = [
    "SpotVolBeta",
    "delta_with_beta",
    "min_variance_delta",
    "smile_slope",
    "sticky_moneyness_delta",
]
