"""Market regimes: the Bates dynamics of each, and how the market moves between them.

Within a regime the forward and its variance follow Bates (1996): Heston variance with
log-normal Merton jumps in price. Options are priced under the current regime's model with
the current variance (the pricing measure); the simulated path runs under the physical
measure, which shares the variance dynamics and differs in drift and in the jump law (jump
risk premium). Regimes switch as a continuous-time Markov chain: a stay of mean
``mean_days`` ends with probability ``1 - exp(-dt / mean_days)`` per step, and the next
regime is drawn from ``switch_to``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

REGIME_NAMES: tuple[str, ...] = ("calm", "trending", "crash", "plateau", "rally")
"""The regimes the simulator knows; :data:`REGIME_CODES` numbers them in this order."""

REGIME_CODES: dict[str, int] = {name: i for i, name in enumerate(REGIME_NAMES)}


@dataclass(frozen=True)
class Regime:
    """One regime's dynamics (all rates per year, vols and jumps in log terms).

    Parameters
    ----------
    name : str
        One of :data:`REGIME_NAMES`.
    kappa, theta, sigma, rho : float
        Heston variance: mean-reversion speed, long-run variance, vol of variance and the
        spot-variance correlation (the sign can differ between regimes: crypto rallies show the
        inverse leverage effect).
    lam, mu_j, sigma_j : float
        Pricing-measure price jumps: intensity (per year), mean and volatility of the log jump.
    lam_p, mu_jp, sigma_jp : float
        Physical-measure price jumps (from realised returns).
    drift : float
        Physical drift of the log forward beyond its martingale part, per year.
    basis : float
        Annualised log basis of the futures over the spot: ``F(T) = S exp(basis (T - t))``.
    mean_days : float
        Mean stay in the regime, days.
    switch_to : mapping of str to float
        Probabilities of the next regime when the stay ends (normalised on use).
    """

    name: str
    kappa: float
    theta: float
    sigma: float
    rho: float
    lam: float = 0.0
    mu_j: float = 0.0
    sigma_j: float = 0.0
    lam_p: float = 0.0
    mu_jp: float = 0.0
    sigma_jp: float = 0.0
    drift: float = 0.0
    basis: float = 0.0
    mean_days: float = 30.0
    switch_to: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = {
            "name": self.name in REGIME_NAMES,
            "kappa": self.kappa > 0,
            "theta": self.theta > 0,
            "sigma": self.sigma > 0,
            "rho": -1 < self.rho < 1,
            "lam": self.lam >= 0,
            "sigma_j": self.sigma_j >= 0,
            "lam_p": self.lam_p >= 0,
            "sigma_jp": self.sigma_jp >= 0,
            "mean_days": self.mean_days > 0,
        }
        rules = {
            "name": f"one of {REGIME_NAMES}",
            "rho": "in (-1, 1)",
            "lam": ">= 0",
            "sigma_j": ">= 0",
            "lam_p": ">= 0",
            "sigma_jp": ">= 0",
        }
        for key, ok in checks.items():
            if not ok:
                raise ValueError(
                    f"regime {self.name!r}: {key} must be {rules.get(key, '> 0')}, "
                    f"got {getattr(self, key)!r}"
                )
        for target, p in self.switch_to.items():
            if target not in REGIME_NAMES or p < 0:
                raise ValueError(
                    f"regime {self.name!r}: switch_to needs regimes of {REGIME_NAMES} with "
                    f"probabilities >= 0, got {target!r}: {p!r}"
                )

    def pricing_params(self, v: float) -> tuple[float, ...]:
        """The Bates parameter vector of :mod:`volguard.kernels.heston_cos` at variance ``v``."""
        return (v, self.kappa, self.theta, self.sigma, self.rho, self.lam, self.mu_j, self.sigma_j)

    def scaled(self, vol_scale: float, rho_scale: float) -> Regime:
        """The regime of an asset whose variance is ``vol_scale**2`` times this one's.

        With ``V' = s^2 V`` the variance SDE keeps ``kappa`` and scales ``theta`` by ``s^2``
        and ``sigma`` by ``s``; log jumps scale by ``s``. A price Brownian motion correlated
        ``c`` with this asset's has correlation ``c rho`` with the variance (``rho_scale = c``).
        """
        s = vol_scale
        return replace(
            self,
            theta=self.theta * s**2,
            sigma=self.sigma * s,
            rho=self.rho * rho_scale,
            mu_j=self.mu_j * s,
            sigma_j=self.sigma_j * s,
            mu_jp=self.mu_jp * s,
            sigma_jp=self.sigma_jp * s,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        out = asdict(self)
        out["switch_to"] = dict(self.switch_to)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Regime:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown regime setting(s) {unknown}; expected some of {sorted(known)}"
            )
        settings: dict[str, Any] = {
            k: (dict(v) if k == "switch_to" else v) for k, v in data.items()
        }
        return cls(**settings)
