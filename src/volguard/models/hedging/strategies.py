"""Hedging strategies over :class:`~volguard.models.hedging.paths.HedgePaths`: the baselines.

Every strategy answers ``positions(paths)``, the futures held over each step, shape (n, m);
:func:`volguard.models.hedging.risk.outcome` turns them into P&L. The baselines:

* :class:`NoHedge`: zero;
* :class:`BlackDelta`: Black-76 delta at the path's implied vol (the practitioner hedge);
* :class:`EngineDelta`: the pricing engine's own delta (on simulated paths the true Bates
  delta with the variance fixed);
* :class:`WhalleyWilmott`: the asymptotic no-transaction band of Whalley and Wilmott (1997)
  around the Black-76 delta;
* :class:`MinVarianceHedge`: the minimum-variance delta of Hull and White (2017) with fitted
  coefficients (the lab fits them with :func:`volguard.lab.hedging.fit_min_variance`).

References
----------
.. [1] Whalley, A. E. and Wilmott, P. (1997). An asymptotic analysis of an optimal hedging
   model for option pricing with transaction costs. Mathematical Finance 7(3), 307-324.
   doi:10.1111/1467-9965.00034
.. [2] Hull, J. and White, A. (2017). Optimal delta hedging for options. Journal of Banking and
   Finance 82, 180-190. doi:10.1016/j.jbankfin.2017.05.006
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from volguard._typing import FloatArray
from volguard.models.greeks import min_variance_delta
from volguard.models.hedging.paths import HedgePaths


class Strategy(Protocol):
    """Anything that maps a path set to positions of shape (n, m)."""

    def positions(self, paths: HedgePaths) -> FloatArray: ...


@dataclass(frozen=True)
class NoHedge:
    """Hold nothing: the unhedged short call."""

    def positions(self, paths: HedgePaths) -> FloatArray:
        return np.zeros_like(paths.iv)


@dataclass(frozen=True)
class BlackDelta:
    """Black-76 delta at the path's implied vol, rebalanced at every hedge time."""

    def positions(self, paths: HedgePaths) -> FloatArray:
        return paths.delta_bs.copy()


@dataclass(frozen=True)
class EngineDelta:
    """The pricing engine's delta, rebalanced at every hedge time."""

    def positions(self, paths: HedgePaths) -> FloatArray:
        return paths.delta_engine.copy()


@dataclass(frozen=True)
class WhalleyWilmott:
    """No-transaction band ``delta_bs +- H`` ([1]_): trade only to the band's nearer edge.

    Parameters
    ----------
    cost_rate : float
        Proportional cost ``c`` (fraction of traded notional).
    risk_aversion : float
        Absolute risk aversion ``gamma`` per unit of the initial notional ``F_0`` (the P&L unit
        of :mod:`volguard.models.hedging.risk` divided by 1e4).

    Notes
    -----
    With the forward and gamma in units of ``F_0`` (``F' = F / F_0``, ``Gamma' = Gamma F_0``),
    the half-width is ``H = (3 c F' Gamma'^2 / (2 gamma))^(1/3)`` (zero rates), [1]_ eq. (4.9).
    """

    cost_rate: float
    risk_aversion: float

    def __post_init__(self) -> None:
        if not self.cost_rate >= 0:
            raise ValueError(f"cost_rate must be >= 0, got {self.cost_rate!r}")
        if not self.risk_aversion > 0:
            raise ValueError(f"risk_aversion must be > 0, got {self.risk_aversion!r}")

    def half_width(self, paths: HedgePaths) -> FloatArray:
        """``H`` at every hedge time, shape (n, m)."""
        f0 = paths.forward[:, :1]
        f = paths.forward[:, :-1] / f0
        gamma = paths.gamma_bs * f0
        out: FloatArray = np.cbrt(1.5 * self.cost_rate * f * gamma**2 / self.risk_aversion)
        return out

    def positions(self, paths: HedgePaths) -> FloatArray:
        center, h = paths.delta_bs, self.half_width(paths)
        out = np.empty_like(center)
        prev = np.zeros(paths.n_paths)
        for i in range(paths.n_steps):
            prev = np.clip(prev, center[:, i] - h[:, i], center[:, i] + h[:, i])
            out[:, i] = prev
        return out


@dataclass(frozen=True)
class MinVarianceHedge:
    """Hull-White minimum-variance delta of a call ([2]_):
    ``delta_bs + vega / (F sqrt(T)) (a + b delta_bs + c delta_bs^2)``.

    Parameters
    ----------
    coefficients : tuple of float
        ``(a, b, c)``, fitted by regression of the delta-hedged option value change on the
        forward's return scaled by vega ([2]_ eq. 4).
    """

    coefficients: tuple[float, float, float]

    def positions(self, paths: HedgePaths) -> FloatArray:
        return min_variance_delta(
            paths.delta_bs,
            paths.vega_bs,
            paths.forward[:, :-1],
            paths.tau[None, :-1],
            self.coefficients,
        )
