"""Status codes of the implied-volatility solver, one per option (no exceptions, no silent NaN)."""

from __future__ import annotations

from enum import IntEnum


class IVStatus(IntEnum):
    """Outcome of an implied-volatility inversion; the volatility is NaN exactly where not ``OK``.

    The codes are stored as ``int8`` arrays by the kernels; compare with the members
    (``status == IVStatus.OK``) or convert with ``IVStatus(code)``.
    """

    OK = 0
    """A volatility was found (to float64 accuracy)."""
    BELOW_INTRINSIC = 1
    """The undiscounted price is below intrinsic ``max(theta*(F-K), 0)`` (negative prices too)."""
    ABOVE_UPPER_BOUND = 2
    """The undiscounted price is at or above the upper bound (``F`` for calls, ``K`` for puts)."""
    ZERO_TIME = 3
    """Time to expiry is exactly zero: the price carries no volatility information."""
    NON_FINITE_INPUT = 4
    """An input is NaN or infinite."""
    ILL_POSED = 5
    """The time value is zero to machine precision (price equal to intrinsic within 4 ulp of
    the price): no volatility is recoverable."""
    INVALID_INPUT = 6
    """A finite input outside the domain: forward, strike or discount <= 0, or time < 0."""


STATUS_NAMES: dict[int, str] = {int(s): s.name.lower() for s in IVStatus}
"""``{code: name}``, e.g. ``{0: 'ok', 1: 'below_intrinsic', ...}``, for tables and reports."""
