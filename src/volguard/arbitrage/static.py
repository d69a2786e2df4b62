"""Static arbitrage on a total-variance surface ``w(k, t) = sigma(k, t)^2 t``.

Three checks, on a dense (k, t) mesh and, where given, on the quoted points:

- butterfly: Durrleman's condition ``g(k) >= 0`` per slice (a non-negative risk-neutral density);
- calendar: ``w(k, t)`` non-decreasing in ``t`` at fixed forward log-moneyness ``k``;
- bounds: ``w`` finite and ``>= 0`` (then Black-76 call prices lie within ``[(F-K)+, F]``).

The surface is any callable, so every engine (parametric, learned, hybrid) is checked the same
way; derivatives in ``k`` are central differences unless the caller passes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from volguard._typing import FloatArray

TotalVariance = Callable[[FloatArray, FloatArray], FloatArray]
"""``w(k, t)``: forward log-moneyness and years (broadcasting) -> total implied variance."""

DEFAULT_K = np.round(np.arange(-1.5, 1.0 + 1e-9, 0.01), 10)
"""The dense log-moneyness mesh, -1.5 .. 1.0 step 0.01 (as the ``fit`` CLI's surface grid)."""

BUTTERFLY_TOL = 1e-8
CALENDAR_TOL = 1e-10


@dataclass(frozen=True)
class ArbitrageReport:
    """Counts, worst magnitudes and locations of static-arbitrage violations.

    ``butterfly_worst`` is the most negative ``g`` (0 when none), ``calendar_worst`` the largest
    drop of total variance between consecutive expiries (0 when none); locations are ``(k, t)``
    pairs, at most ``max_locations`` of each kind, worst first.
    """

    n_points: int
    butterfly_count: int
    butterfly_worst: float
    calendar_count: int
    calendar_worst: float
    bounds_count: int
    butterfly_at: tuple[tuple[float, float], ...] = field(default=())
    calendar_at: tuple[tuple[float, float], ...] = field(default=())

    @property
    def total(self) -> int:
        """Number of violations of any kind."""
        return self.butterfly_count + self.calendar_count + self.bounds_count

    def to_dict(self) -> dict[str, object]:
        return {
            "n_points": self.n_points,
            "butterfly_count": self.butterfly_count,
            "butterfly_worst": self.butterfly_worst,
            "calendar_count": self.calendar_count,
            "calendar_worst": self.calendar_worst,
            "bounds_count": self.bounds_count,
            "butterfly_at": [list(p) for p in self.butterfly_at],
            "calendar_at": [list(p) for p in self.calendar_at],
        }


def durrleman_g(w: FloatArray, dw: FloatArray, d2w: FloatArray, k: FloatArray) -> FloatArray:
    """Durrleman's density function ``g(k)`` of a total-variance slice.

    Notes
    -----
    ``g(k) = (1 - k w'/(2w))^2 - (w'^2/4) (1/w + 1/4) + w''/2``; the slice is free of butterfly
    arbitrage iff ``g >= 0`` (and call prices tend to 0 as k -> inf).

    References
    ----------
    Gatheral, J. and Jacquier, A. (2014), Arbitrage-free SVI volatility surfaces, Quantitative
    Finance 14(1), 59-71, doi:10.1080/14697688.2013.819986 (Lemma 2.2).

    Examples
    --------
    >>> float(durrleman_g(np.array(0.04), np.array(0.0), np.array(0.0), np.array(0.0)))
    1.0
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        g: FloatArray = (1.0 - k * dw / (2.0 * w)) ** 2 - dw**2 / 4.0 * (1.0 / w + 0.25) + d2w / 2.0
    return g


def check_static_arbitrage(
    total_variance: TotalVariance,
    t: FloatArray,
    k: FloatArray = DEFAULT_K,
    *,
    quoted: tuple[FloatArray, FloatArray] | None = None,
    h: float = 1e-4,
    max_locations: int = 10,
) -> ArbitrageReport:
    """Check a surface for butterfly, calendar and bound violations.

    Parameters
    ----------
    total_variance : callable
        ``w(k, t)``, broadcasting over arrays of forward log-moneyness and years.
    t : array of float, shape (n_t,)
        Expiries (years) of the mesh, e.g. every quoted expiry.
    k : array of float, shape (n_k,)
        Log-moneyness mesh; default -1.5 .. 1.0 step 0.01.
    quoted : (k, t) arrays, optional
        Quoted points, checked for butterfly and bounds in addition to the mesh.
    h : float
        Step of the central differences in ``k``.
    max_locations : int
        How many violation locations of each kind to keep.

    Returns
    -------
    ArbitrageReport
    """
    t_sorted = np.unique(np.asarray(t, dtype=float))
    kk, tt = np.meshgrid(np.asarray(k, dtype=float), t_sorted, indexing="xy")
    points_k, points_t = kk.ravel(), tt.ravel()
    if quoted is not None:
        points_k = np.concatenate([points_k, np.asarray(quoted[0], dtype=float)])
        points_t = np.concatenate([points_t, np.asarray(quoted[1], dtype=float)])
    w = np.asarray(total_variance(points_k, points_t), dtype=float)
    w_up = np.asarray(total_variance(points_k + h, points_t), dtype=float)
    w_dn = np.asarray(total_variance(points_k - h, points_t), dtype=float)
    bad_bounds = ~np.isfinite(w) | (w < 0.0)
    g = durrleman_g(w, (w_up - w_dn) / (2 * h), (w_up - 2 * w + w_dn) / h**2, points_k)
    g = np.where(bad_bounds, np.nan, g)
    butterfly = np.isfinite(g) & (g < -BUTTERFLY_TOL)
    worst_b = np.argsort(g[butterfly])[:max_locations]
    fly_at = tuple(
        (float(a), float(b))
        for a, b in zip(points_k[butterfly][worst_b], points_t[butterfly][worst_b], strict=True)
    )

    w_mesh = np.asarray(total_variance(kk, tt), dtype=float)  # (n_t, n_k)
    drops = w_mesh[:-1] - w_mesh[1:]  # > 0 where variance falls with maturity
    calendar = np.isfinite(drops) & (drops > CALENDAR_TOL)
    rows, cols = np.nonzero(calendar)
    order = np.argsort(-drops[calendar])[:max_locations]
    cal_at = tuple(
        (float(kk[0, c]), float(t_sorted[r + 1]))
        for r, c in zip(rows[order], cols[order], strict=True)
    )
    return ArbitrageReport(
        n_points=int(points_k.size),
        butterfly_count=int(butterfly.sum()),
        butterfly_worst=float(min(0.0, np.nanmin(g, initial=0.0))),
        calendar_count=int(calendar.sum()),
        calendar_worst=float(max(0.0, np.max(drops, initial=0.0, where=np.isfinite(drops)))),
        bounds_count=int(bad_bounds.sum()),
        butterfly_at=fly_at,
        calendar_at=cal_at,
    )
