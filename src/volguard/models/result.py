"""``CalibrationResult``: what a fit did, like the result objects of arch and statsmodels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from volguard._typing import FloatArray
from volguard.arbitrage.static import ArbitrageReport


@dataclass(frozen=True)
class CalibrationResult:
    """The outcome of one calibration.

    Attributes
    ----------
    engine : str
        Registered name of the engine.
    params : dict
        Fitted parameters (per expiry for slice engines), plain Python numbers.
    converged : bool
        Whether the optimiser met its tolerance on every part of the fit.
    fallback : str or None
        The simpler fit used where the primary one failed (documented per engine), else None.
    residuals_vol : ndarray
        Model minus mid implied vol per fit quote, decimal vol (0.01 = 1 vol point).
    residuals_half_spread : ndarray
        The same residuals in units of the quote's half bid-ask spread (NaN where no spread).
    arbitrage : ArbitrageReport
        Static-arbitrage check of the fitted surface on the dense mesh and the quoted points.
    fit_ms : float
        Wall time of the calibration, milliseconds.
    warnings : tuple of str
        What went wrong but was recovered from.
    """

    engine: str
    params: dict[str, Any]
    converged: bool
    fallback: str | None
    residuals_vol: FloatArray
    residuals_half_spread: FloatArray
    arbitrage: ArbitrageReport
    fit_ms: float
    warnings: tuple[str, ...] = field(default=())

    @property
    def n_quotes(self) -> int:
        return int(self.residuals_vol.size)

    @property
    def rmse_vol_pts(self) -> float:
        """Root-mean-square error against the mid, in vol points."""
        r = self.residuals_vol
        return float(np.sqrt(np.mean(r**2)) * 100) if r.size else float("nan")

    @property
    def mae_half_spreads(self) -> float:
        """Mean absolute error in half-spreads (quotes with a spread)."""
        r = self.residuals_half_spread[np.isfinite(self.residuals_half_spread)]
        return float(np.mean(np.abs(r))) if r.size else float("nan")

    @property
    def inside_spread_pct(self) -> float:
        """Share of fitted vols inside the quote's bid-ask, percent."""
        r = self.residuals_half_spread[np.isfinite(self.residuals_half_spread)]
        return float(np.mean(np.abs(r) <= 1.0) * 100) if r.size else float("nan")

    def summary(self) -> dict[str, Any]:
        """The headline figures as a JSON-ready mapping (``fit.json`` of the CLI)."""
        return {
            "engine": self.engine,
            "n_quotes": self.n_quotes,
            "rmse_vol_pts": self.rmse_vol_pts,
            "mae_half_spreads": self.mae_half_spreads,
            "inside_spread_pct": self.inside_spread_pct,
            "fit_ms": self.fit_ms,
            "converged": self.converged,
            "fallback": self.fallback,
            "arbitrage": self.arbitrage.to_dict(),
            "warnings": list(self.warnings),
        }
