"""Public, validated wrappers of the Black-76 and implied-volatility kernels.

Inputs broadcast against each other (NumPy rules); the result has the broadcast shape
(0-d arrays for scalar inputs). Prices are USD per unit of underlying unless a name says
``coin``; times in years (ACT/365); vols as decimals. Validation happens here, once: errors name
the parameter, the rule and the value. :func:`implied_vol` never raises for a numeric input,
finite or not; it reports a status per option instead.
"""

from __future__ import annotations

from typing import Literal, overload

import numpy as np

from volguard._typing import ArrayLike, BoolArray, FloatArray
from volguard.kernels.black76 import GREEK_NAMES, greeks_kernel, price_kernel
from volguard.kernels.lets_be_rational import Int8Array, implied_vol_kernel

PARALLEL_MIN_SIZE = 20_000
"""Arrays at least this long use the multi-threaded kernels (numba threads)."""

__all__ = [
    "black76_coin_price",
    "black76_greeks",
    "black76_price",
    "implied_vol",
    "inverse_delta",
]


def _as_is_call(is_call: ArrayLike) -> BoolArray:
    arr = np.asarray(is_call)
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind in "US":
        low = np.char.lower(arr.astype(str))
        calls = np.isin(low, ("call", "c"))
        puts = np.isin(low, ("put", "p"))
        if not np.all(calls | puts):
            bad = arr[~(calls | puts)].ravel()[0]
            raise ValueError(f"is_call must be bool or 'call'/'put'/'C'/'P'; got {bad!r}")
        return np.asarray(calls)
    if arr.dtype.kind in "iu":
        if not np.all((arr == 0) | (arr == 1)):
            bad = arr[(arr != 0) & (arr != 1)].ravel()[0]
            raise ValueError(f"is_call must be bool (or 0/1); got {bad!r}")
        return np.asarray(arr == 1)
    raise TypeError(f"is_call must be boolean or 'call'/'put' strings; got dtype {arr.dtype}")


def _as_float(name: str, value: ArrayLike) -> FloatArray:
    to_numpy = getattr(value, "to_numpy", None)  # pandas: missing values (pd.NA) become NaN
    if callable(to_numpy):
        try:
            return np.asarray(to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
        except (TypeError, ValueError):
            pass
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric (array_like of float); got {value!r}") from exc


def _broadcast(
    names: tuple[str, ...], values: tuple[ArrayLike, ...], is_call: ArrayLike
) -> tuple[tuple[int, ...], list[FloatArray], BoolArray]:
    arrays = [_as_float(n, v) for n, v in zip(names, values, strict=True)]
    flags = _as_is_call(is_call)
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays), flags.shape)
    except ValueError as exc:
        shapes = ", ".join(f"{n}{a.shape}" for n, a in zip(names, arrays, strict=True))
        raise ValueError(f"inputs do not broadcast: {shapes}, is_call{flags.shape}") from exc
    flat = [np.ascontiguousarray(np.broadcast_to(a, shape).ravel()) for a in arrays]
    return shape, flat, np.ascontiguousarray(np.broadcast_to(flags, shape).ravel())


def _require(name: str, arr: FloatArray, ok: BoolArray, rule: str) -> None:
    if not np.all(ok):
        bad = arr[~ok].ravel()[0]
        raise ValueError(f"{name} must be {rule}; got {float(bad)!r}")


def _validated_pricing_inputs(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike,
) -> tuple[tuple[int, ...], list[FloatArray], BoolArray]:
    shape, (f, k, tt, v, d), flags = _broadcast(
        ("forward", "strike", "t", "vol", "discount"), (forward, strike, t, vol, discount), is_call
    )
    with np.errstate(invalid="ignore"):
        _require("forward", f, np.isfinite(f) & (f > 0.0), "finite and > 0 (USD)")
        _require("strike", k, np.isfinite(k) & (k > 0.0), "finite and > 0 (USD)")
        _require("t", tt, np.isfinite(tt) & (tt >= 0.0), "finite and >= 0 (years)")
        _require("vol", v, np.isfinite(v) & (v >= 0.0), "finite and >= 0 (decimal)")
        _require("discount", d, np.isfinite(d) & (d > 0.0), "finite and > 0")
    return shape, [f, k, tt, v, d], flags


def black76_price(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike = 1.0,
) -> FloatArray:
    """Black-76 option price, USD per unit of underlying.

    Parameters
    ----------
    forward : array_like
        Forward ``F`` of the expiry, USD, finite and > 0.
    strike : array_like
        Strike ``K``, USD, finite and > 0.
    t : array_like
        Time to expiry, years (ACT/365), finite and >= 0.
    vol : array_like
        Black volatility, decimal per sqrt(year) (0.6 = 60 %), finite and >= 0.
    is_call : array_like of bool or {'call', 'put', 'C', 'P'}
        True for calls, False for puts.
    discount : array_like, default 1.0
        Discount factor ``D`` of the premium (1.0 on Deribit, where premiums are forward).

    Returns
    -------
    ndarray
        ``D * (theta (F Phi(theta d1) - K Phi(theta d2)))`` in USD, broadcast shape.

    Raises
    ------
    ValueError
        If an input breaks its rule (the message names it) or the inputs do not broadcast.

    Notes
    -----
    ``d1,2 = ln(F/K)/(vol sqrt(t)) +- vol sqrt(t)/2``, ``theta = +1`` for calls, ``-1`` for puts.
    Evaluated as intrinsic plus ``sqrt(F K) b(-|ln(F/K)|, vol sqrt(t))`` with Jaeckel's
    normalised Black function ``b``, so deep out-of-the-money prices keep their relative
    accuracy (no cancellation) down to about 1e-300.

    References
    ----------
    Black, F. (1976), The pricing of commodity contracts, J. Financial Economics 3, 167-179.
    Jaeckel, P. (2015), Let's be rational, Wilmott 2015(75), 40-53, doi:10.1002/wilm.10395.

    Examples
    --------
    >>> round(float(black76_price(100.0, 100.0, 1.0, 0.2, True)), 10)
    7.9655674554
    """
    shape, (f, k, tt, v, d), flags = _validated_pricing_inputs(
        forward, strike, t, vol, is_call, discount
    )
    out = price_kernel(f, k, tt, v, flags, d, parallel=f.size >= PARALLEL_MIN_SIZE)
    return out.reshape(shape)


def black76_greeks(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike = 1.0,
) -> dict[str, FloatArray]:
    """Black-76 price and forward greeks in one pass.

    Parameters are those of :func:`black76_price`.

    Returns
    -------
    dict of str to ndarray
        Arrays of the broadcast shape:

        * ``price``: USD per unit of underlying;
        * ``delta``: ``dV/dF``, USD per USD of forward (``D Phi(d1)`` for calls,
          ``-D Phi(-d1)`` for puts);
        * ``gamma``: ``d2V/dF2``, per USD (``D phi(d1) / (F vol sqrt(t))``);
        * ``vega``: ``dV/dvol``, USD per 1.00 of vol (``D F phi(d1) sqrt(t)``; divide by 100
          for one vol point);
        * ``theta``: ``-dV/dt`` at fixed ``F`` and ``D``, USD per year
          (``-D F phi(d1) vol / (2 sqrt(t))``; divide by 365 for one day);
        * ``vanna``: ``d2V/(dF dvol)``, per 1.00 of vol (``-D phi(d1) d2 / vol``);
        * ``volga``: ``d2V/dvol2``, USD per (1.00 of vol)^2 (``vega d1 d2 / vol``).

        At ``vol * sqrt(t) == 0`` the greeks are those of the intrinsic value (delta ``+-D`` in
        the money, 0 otherwise; the others 0).

    Notes
    -----
    Forward greeks: ``F`` is the state variable and ``D`` is held fixed, so ``theta`` has no
    discounting carry (zero on Deribit, where ``D = 1``). ``phi`` is the normal density.

    References
    ----------
    Haug, E. G. (2007), The Complete Guide to Option Pricing Formulas, 2nd ed., McGraw-Hill,
    chapters 1 (Black 1976) and 2 (greeks).

    Examples
    --------
    >>> g = black76_greeks(100.0, 100.0, 1.0, 0.2, True)
    >>> round(float(g["delta"]), 6), round(float(g["vega"]), 6)
    (0.539828, 39.695255)
    """
    shape, (f, k, tt, v, d), flags = _validated_pricing_inputs(
        forward, strike, t, vol, is_call, discount
    )
    out = greeks_kernel(f, k, tt, v, flags, d, parallel=f.size >= PARALLEL_MIN_SIZE)
    return {name: out[i].reshape(shape) for i, name in enumerate(GREEK_NAMES)}


@overload
def implied_vol(
    price: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike = ...,
    *,
    return_status: Literal[False] = ...,
) -> FloatArray: ...


@overload
def implied_vol(
    price: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike = ...,
    *,
    return_status: Literal[True],
) -> tuple[FloatArray, Int8Array]: ...


def implied_vol(
    price: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike = 1.0,
    *,
    return_status: bool = False,
) -> FloatArray | tuple[FloatArray, Int8Array]:
    """Black-76 implied volatility to float64 accuracy (Jaeckel's "Let's Be Rational").

    Parameters
    ----------
    price : array_like
        Option premium, USD per unit of underlying, discounted with ``discount``. For Deribit
        coin premiums multiply by the forward first (:func:`volguard.market.coin_to_usd`).
    forward, strike : array_like
        Forward and strike, USD.
    t : array_like
        Time to expiry, years (ACT/365).
    is_call : array_like of bool or {'call', 'put', 'C', 'P'}
    discount : array_like, default 1.0
        Discount factor of the premium.
    return_status : bool, default False
        Also return the status code of each option.

    Returns
    -------
    vol : ndarray
        Implied volatility, decimal per sqrt(year), broadcast shape; NaN exactly where the
        status is not ``ok``.
    status : ndarray of int8, only with ``return_status=True``
        :class:`~volguard.kernels.status.IVStatus` codes: 0 ok, 1 below_intrinsic,
        2 above_upper_bound, 3 zero_time, 4 non_finite_input, 5 ill_posed, 6 invalid_input.

    Raises
    ------
    TypeError
        If an input is not numeric or ``is_call`` is not boolean / 'call' / 'put'.
    ValueError
        If the inputs do not broadcast. Numeric values never raise: NaN, inf, negative or
        out-of-bounds inputs get a status instead.

    Notes
    -----
    The price is reduced to the out-of-the-money normalised time value
    ``beta = (price/D - max(theta (F-K), 0)) / sqrt(F K)`` at ``x = -|ln(F/K)|``; a
    rational-cubic initial guess on one of four branches is refined by two Householder steps
    of third order (quartic convergence), which reach the attainable float64 accuracy
    (Jaeckel 2017). A time value of at
    most 4 ulp of the price is ``ill_posed``: the volatility is not determined by the price.

    References
    ----------
    Jaeckel, P. (2015), Let's be rational, Wilmott 2015(75), 40-53, doi:10.1002/wilm.10395.
    Jaeckel, P. (2017), Let's be rational, http://www.jaeckel.org/LetsBeRational.7z.

    Examples
    --------
    >>> round(float(implied_vol(7.965567455405796, 100.0, 100.0, 1.0, True)), 15)
    0.2
    >>> vol, status = implied_vol([1.0, -1.0], 100.0, 100.0, 1.0, True, return_status=True)
    >>> status.tolist()
    [0, 1]
    """
    shape, (p, f, k, tt, d), flags = _broadcast(
        ("price", "forward", "strike", "t", "discount"),
        (price, forward, strike, t, discount),
        is_call,
    )
    vol, status = implied_vol_kernel(p, f, k, tt, flags, d, parallel=p.size >= PARALLEL_MIN_SIZE)
    vol = vol.reshape(shape)
    if return_status:
        return vol, status.reshape(shape)
    return vol


def black76_coin_price(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike = 1.0,
) -> FloatArray:
    """Premium of an inverse (coin-settled) option in coin per coin of notional: ``V / F``.

    Deribit BTC/ETH options pay ``max(S_T - K, 0) / S_T`` coin per coin; their value in coin
    is the Black-76 USD price divided by the forward (Deribit marks use ``F`` = the expiry's
    ``underlying_price`` and ``D = 1``). Parameters as in :func:`black76_price`.

    Examples
    --------
    >>> round(float(black76_coin_price(100.0, 100.0, 1.0, 0.2, True)), 12)
    0.079655674554
    """
    usd = black76_price(forward, strike, t, vol, is_call, discount)
    coin: FloatArray = usd / np.asarray(forward, dtype=np.float64)
    return coin


def inverse_delta(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike = 1.0,
) -> FloatArray:
    """Premium-adjusted (coin) delta of an inverse option: ``dV/dF - V/F``, coins per coin.

    The coin value of the option is ``c = V/F``; its USD value is ``c F``, so the number of
    coins of underlying that hedges it, with the premium held in coin, is
    ``F dc/dF = dV/dF - V/F``: ``D (K/F) Phi(d2)`` for calls and ``-D (K/F) Phi(-d2)`` for
    puts. It is the Black delta minus the coin premium. Parameters as in :func:`black76_price`.

    Examples
    --------
    >>> round(float(inverse_delta(100.0, 100.0, 1.0, 0.2, True)), 6)
    0.460172
    """
    shape, (f, k, tt, v, d), flags = _validated_pricing_inputs(
        forward, strike, t, vol, is_call, discount
    )
    out = greeks_kernel(f, k, tt, v, flags, d, parallel=f.size >= PARALLEL_MIN_SIZE)
    coin_delta: FloatArray = (out[1] - out[0] / f).reshape(shape)
    return coin_delta
