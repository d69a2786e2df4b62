"""The hedging problem as arrays: paths of the hedge instrument and the option's state on them.

A short European call struck at ``K`` and expiring at the end of the grid is hedged with a
long position ``delta_i`` in the futures of the same expiry, rebalanced at the ``m`` hedge
times ``t_0 < ... < t_{m-1}``; the futures settles to the payoff's underlying at ``t_m``, so
the last position is not traded back. The terminal P&L of path ``j``, in units of its initial
forward (multiply by 1e4 for basis points of notional)::

    X = [ p_0 - (F_m - K)^+ + sum_i delta_i (F_{i+1} - F_i)
          - c sum_i |delta_i - delta_{i-1}| F_i ] / F_0,      delta_{-1} = 0,

with ``p_0`` the premium received and ``c`` the proportional cost (fraction of the traded
notional). The container knows nothing of where the paths come from (simulator or market
data); :mod:`volguard.lab.policy_hedging` builds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from volguard._typing import FloatArray
from volguard.kernels.api import black76_greeks


@dataclass(frozen=True, eq=False)
class HedgePaths:
    """``n`` paths of ``m`` hedge steps.

    Attributes
    ----------
    forward : ndarray, shape (n, m + 1)
        Futures price at each hedge time and at expiry (last column), USD.
    strike : ndarray, shape (n,)
        Strike of the call, USD.
    tau : ndarray, shape (m + 1,)
        Years to expiry at each hedge time (last entry 0).
    premium : ndarray, shape (n,)
        Price received for the call at ``t_0``, USD (the engine's or the market's).
    iv : ndarray, shape (n, m)
        Implied vol of the call at each hedge time (decimal): the truth on simulated paths,
        the quote or the pricing engine's on market paths.
    delta_engine : ndarray, shape (n, m)
        The pricing engine's delta ``dV/dF`` at each hedge time.
    realized_vol : ndarray, shape (n, m)
        Trailing realized vol of the futures (annualised, decimal) known at each hedge time.
    regime : ndarray of str, shape (n,)
        Label of each path (evaluation groups).
    """

    forward: FloatArray
    strike: FloatArray
    tau: FloatArray
    premium: FloatArray
    iv: FloatArray
    delta_engine: FloatArray
    realized_vol: FloatArray
    regime: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        n, m1 = self.forward.shape
        m = m1 - 1
        shapes = {
            "strike": (self.strike, (n,)),
            "tau": (self.tau, (m1,)),
            "premium": (self.premium, (n,)),
            "iv": (self.iv, (n, m)),
            "delta_engine": (self.delta_engine, (n, m)),
            "realized_vol": (self.realized_vol, (n, m)),
            "regime": (self.regime, (n,)),
        }
        for name, (arr, shape) in shapes.items():
            if np.shape(arr) != shape:
                raise ValueError(
                    f"HedgePaths.{name} must have shape {shape} (forward is {(n, m1)}), "
                    f"got {np.shape(arr)}"
                )
        if m < 1 or not np.all(np.diff(self.tau) < 0) or self.tau[-1] != 0.0:
            raise ValueError(
                "HedgePaths.tau must decrease strictly to 0 over at least two times, "
                f"got {self.tau[:3]}...{self.tau[-2:]}"
            )
        if not (np.all(self.forward > 0) and np.all(self.strike > 0)):
            raise ValueError(
                "HedgePaths.forward and strike must be > 0, got minima "
                f"{np.nanmin(self.forward)} and {np.nanmin(self.strike)}"
            )

    @property
    def n_paths(self) -> int:
        return int(self.forward.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.forward.shape[1] - 1)

    @cached_property
    def _black(self) -> dict[str, FloatArray]:
        f = self.forward[:, :-1]
        k = np.broadcast_to(self.strike[:, None], f.shape)
        t = np.broadcast_to(self.tau[None, :-1], f.shape)
        return black76_greeks(f, k, t, self.iv, True)

    @property
    def delta_bs(self) -> FloatArray:
        """Black-76 delta at ``iv``, shape (n, m)."""
        return self._black["delta"]

    @property
    def gamma_bs(self) -> FloatArray:
        """Black-76 gamma at ``iv`` (per USD), shape (n, m)."""
        return self._black["gamma"]

    @property
    def vega_bs(self) -> FloatArray:
        """Black-76 vega at ``iv`` (USD per 1.00 of vol), shape (n, m)."""
        return self._black["vega"]

    @property
    def payoff(self) -> FloatArray:
        """``(F_m - K)^+``, USD, shape (n,)."""
        out: FloatArray = np.maximum(self.forward[:, -1] - self.strike, 0.0)
        return out

    def subset(self, rows: np.ndarray) -> HedgePaths:
        """The paths at ``rows`` (a boolean mask or integer index)."""
        return HedgePaths(
            forward=self.forward[rows],
            strike=self.strike[rows],
            tau=self.tau,
            premium=self.premium[rows],
            iv=self.iv[rows],
            delta_engine=self.delta_engine[rows],
            realized_vol=self.realized_vol[rows],
            regime=self.regime[rows],
        )

    @staticmethod
    def concat(parts: list[HedgePaths]) -> HedgePaths:
        """Paths of several sets on the same time grid, stacked."""
        tau = parts[0].tau
        for p in parts[1:]:
            if p.tau.shape != tau.shape or not np.allclose(p.tau, tau):
                raise ValueError("HedgePaths.concat needs the same tau grid in every part")
        return HedgePaths(
            forward=np.concatenate([p.forward for p in parts]),
            strike=np.concatenate([p.strike for p in parts]),
            tau=tau,
            premium=np.concatenate([p.premium for p in parts]),
            iv=np.concatenate([p.iv for p in parts]),
            delta_engine=np.concatenate([p.delta_engine for p in parts]),
            realized_vol=np.concatenate([p.realized_vol for p in parts]),
            regime=np.concatenate([p.regime for p in parts]),
        )
