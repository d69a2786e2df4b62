"""volguard: crypto option pricing engines that know how far they can be trusted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "black76_greeks", "black76_price", "implied_vol"]

if TYPE_CHECKING:
    from volguard.kernels.api import black76_greeks, black76_price, implied_vol


def __getattr__(name: str) -> Any:
    # the kernels load numba (seconds): only when asked, so `volguard --help` stays instant
    if name in ("black76_greeks", "black76_price", "implied_vol"):
        from volguard.kernels import api

        return getattr(api, name)
    raise AttributeError(f"module 'volguard' has no attribute {name!r}")
