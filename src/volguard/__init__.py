"""volguard: crypto option pricing engines that know how far they can be trusted."""

from __future__ import annotations

from volguard.kernels.api import black76_greeks, black76_price, implied_vol

__version__ = "0.1.0"

__all__ = ["__version__"]
__all__ += ["black76_greeks", "black76_price", "implied_vol"]
