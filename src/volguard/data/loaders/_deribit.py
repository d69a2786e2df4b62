"""Deribit conventions shared by the Deribit-sourced loaders (Tardis, OptionsDX, Deribit API).

"No quote" prices and percent vols (instrument names: :mod:`volguard.market.deribit`). Pure column
helpers: text or numbers in, columns out; they never raise on a bad cell (missing in, missing out).
"""

from __future__ import annotations

import numpy as np

from volguard._typing import FloatArray


def no_quote_to_nan(price: FloatArray) -> FloatArray:
    """Deribit-style ``0`` (no order on that side) becomes NaN; other values are unchanged."""
    values = np.asarray(price, dtype=float)
    return np.where(values == 0.0, np.nan, values)


def percent_to_decimal(vol_percent: FloatArray) -> FloatArray:
    """Implied vol in percent (58.78) to a decimal (0.5878)."""
    return np.asarray(vol_percent, dtype=float) / 100.0
