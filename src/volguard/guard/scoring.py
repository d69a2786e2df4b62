"""The guard's hot path on plain arrays: an engine's errors at a snapshot's quotes.

The quotes come as :class:`~volguard.market.quotes.QuoteVols` (the two-sided out-of-the-money
quotes with their mid vol and half-spread in vol, as NumPy arrays built straight from the
snapshot's columns): no DataFrame is made per snapshot, so scoring costs the vectorised kernels
(Let's Be Rational inversion, the engine's surface) and little else. :func:`score` reads the
engine at each quote and returns the errors of :func:`volguard.guard.residuals.residuals`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from volguard._typing import FloatArray
from volguard.kernels.residuals import vol_residuals
from volguard.market.quotes import QuoteVols
from volguard.models.base import SurfaceEngine


@dataclass(frozen=True)
class Scores:
    """An engine's vols at some quotes and its errors: ``err_vol = model_iv - mid_iv``
    (decimal vol), ``err_hs = err_vol / half_spread_iv`` (NaN for a zero spread)."""

    model_iv: FloatArray
    err_vol: FloatArray
    err_hs: FloatArray


def score(engine: SurfaceEngine, quotes: QuoteVols) -> Scores:
    """The engine read at the quotes' own ``k`` and ``t`` (sticky moneyness), and its errors."""
    model = np.asarray(engine.implied_vol(quotes.k, quotes.t), dtype=float)
    return Scores(model, *vol_residuals(model, quotes.mid_iv, quotes.half_spread_iv))
