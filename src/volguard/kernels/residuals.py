"""The one definition of an engine's error at a quote.

``err_vol = model_iv - mid_iv`` (decimal vol: positive where the model is above the market)
and ``err_hs = err_vol / half_spread`` (in half bid-ask spreads; NaN where the spread is not
positive). The engines' calibration reports, the lab's scorecard and the guard's monitors all
call :func:`vol_residuals`, so an error means the same thing everywhere. Inputs are assumed
validated (a kernel).
"""

from __future__ import annotations

import numpy as np

from volguard._typing import ArrayLike, FloatArray


def vol_residuals(
    model_iv: ArrayLike, mid_iv: ArrayLike, half_spread: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Errors of model vols at quotes, in vol and in half-spreads (broadcast).

    Parameters
    ----------
    model_iv, mid_iv : array_like
        The engine's and the quote's mid implied vols (decimal).
    half_spread : array_like
        Half the quote's bid-ask spread in vol, ``(ask_iv - bid_iv) / 2`` (decimal).

    Returns
    -------
    err_vol, err_hs : ndarray
        ``model_iv - mid_iv`` and ``err_vol / half_spread`` (NaN where ``half_spread <= 0``).

    Examples
    --------
    >>> err, hs = vol_residuals([0.52, 0.50], [0.50, 0.50], [0.01, 0.0])
    >>> err.round(4).tolist(), hs.round(4).tolist()
    ([0.02, 0.0], [2.0, nan])
    """
    err: FloatArray = np.subtract(np.asarray(model_iv, dtype=float), np.asarray(mid_iv, float))
    half = np.asarray(half_spread, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        err_hs: FloatArray = np.where(half > 0, err / half, np.nan)
    return err, err_hs
