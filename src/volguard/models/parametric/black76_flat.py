"""``black76-flat``: one at-the-money vol per expiry, flat in strike: the naive baseline."""

from __future__ import annotations

from typing import Any

import numpy as np

from volguard._typing import FloatArray
from volguard.market.smile import slice_atm_vol
from volguard.models.base import SliceEngine
from volguard.models.quotes import FitQuotes


class Black76Flat(SliceEngine):
    """Black-76 with each expiry's at-the-money implied vol at every strike.

    Parameters
    ----------
    weighting : {'vega', 'spread', 'open_interest', 'none'}
        Quote weights (used only by the fit report here: the ATM vol is interpolated).
    """

    name = "black76-flat"

    def __init__(self, weighting: str = "vega") -> None:
        self.weighting = weighting

    def _calibrate(
        self, quotes: FitQuotes
    ) -> tuple[dict[str, Any], bool, str | None, tuple[str, ...]]:
        vols, times = [], []
        for i in range(len(quotes.expiries)):
            s = quotes.slice(i)
            vols.append(slice_atm_vol(s.k, s.mid_iv))
            times.append(float(np.median(s.t)))
        self.atm_vol_ = np.asarray(vols)
        self.slice_t_ = np.asarray(times)
        params = {str(e): {"atm_vol": v} for e, v in zip(quotes.expiries, vols, strict=True)}
        return params, True, None, ()

    def slice_variance(self, i: int, k: FloatArray) -> FloatArray:
        w: FloatArray = np.full(np.shape(k), self.atm_vol_[i] ** 2 * self.slice_t_[i])
        return w
