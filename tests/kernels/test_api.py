"""Public wrappers: validation messages, broadcasting, flags, inverse-option helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest

import volguard
from volguard.kernels.api import (
    black76_coin_price,
    black76_greeks,
    black76_price,
    implied_vol,
    inverse_delta,
)
from volguard.kernels.normal import norm_cdf


def test_reexported_from_package() -> None:
    assert volguard.black76_price is black76_price
    assert volguard.black76_greeks is black76_greeks
    assert volguard.implied_vol is implied_vol


def test_broadcasting_shapes() -> None:
    strikes = np.linspace(50_000.0, 70_000.0, 5)[:, None]
    vols = np.array([0.4, 0.6, 0.8])[None, :]
    p = black76_price(60_000.0, strikes, 0.1, vols, True)
    assert p.shape == (5, 3)
    g = black76_greeks(60_000.0, strikes, 0.1, vols, "put")
    assert set(g) == {"price", "delta", "gamma", "vega", "theta", "vanna", "volga"}
    assert all(v.shape == (5, 3) for v in g.values())
    vol = implied_vol(p, 60_000.0, strikes, 0.1, True)
    np.testing.assert_allclose(vol, np.broadcast_to(vols, (5, 3)), rtol=1e-13)
    assert black76_price(100.0, 100.0, 1.0, 0.2, True).shape == ()


def test_flag_spellings() -> None:
    a = black76_price(100.0, 110.0, 1.0, 0.2, ["call", "PUT", "C", "p"])
    b = black76_price(100.0, 110.0, 1.0, 0.2, [True, False, True, False])
    c = black76_price(100.0, 110.0, 1.0, 0.2, [1, 0, 1, 0])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    with pytest.raises(ValueError, match="is_call"):
        black76_price(100.0, 110.0, 1.0, 0.2, ["straddle"])
    with pytest.raises(ValueError, match="is_call"):
        black76_price(100.0, 110.0, 1.0, 0.2, [2])
    with pytest.raises(TypeError, match="is_call"):
        black76_price(100.0, 110.0, 1.0, 0.2, [0.5])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"forward": -1.0}, r"forward must be finite and > 0 \(USD\); got -1.0"),
        ({"strike": 0.0}, r"strike must be finite and > 0 \(USD\); got 0.0"),
        ({"t": -0.5}, r"t must be finite and >= 0 \(years\); got -0.5"),
        ({"vol": math.nan}, r"vol must be finite and >= 0 \(decimal\); got nan"),
        ({"discount": 0.0}, r"discount must be finite and > 0; got 0.0"),
    ],
)
def test_pricing_validation_names_parameter_rule_and_value(kwargs: dict, message: str) -> None:
    args = {"forward": 100.0, "strike": 100.0, "t": 1.0, "vol": 0.2, "is_call": True}
    args.update(kwargs)
    for fn in (black76_price, black76_greeks, black76_coin_price, inverse_delta):
        with pytest.raises(ValueError, match=message):
            fn(**args)


def test_shape_mismatch_and_non_numeric() -> None:
    with pytest.raises(ValueError, match="do not broadcast"):
        black76_price([1.0, 2.0], [1.0, 2.0, 3.0], 1.0, 0.2, True)
    with pytest.raises(TypeError, match="price must be numeric"):
        implied_vol("abc", 1.0, 1.0, 1.0, True)


def test_implied_vol_status_and_plain_return() -> None:
    vol, status = implied_vol(
        [8.0, -1.0, math.nan, 8.0], 100.0, 100.0, [1.0, 1.0, 1.0, 0.0], True, return_status=True
    )
    assert status.dtype == np.int8
    assert status.tolist() == [0, 1, 4, 3]
    assert np.isnan(vol[1:]).all()
    assert implied_vol(8.0, 100.0, 100.0, 1.0, True).shape == ()


def test_discount_is_applied_to_price_and_greeks() -> None:
    d = 0.97
    g1 = black76_greeks(100.0, 95.0, 0.5, 0.3, True)
    g2 = black76_greeks(100.0, 95.0, 0.5, 0.3, True, d)
    for name in g1:
        assert float(g2[name]) == pytest.approx(d * float(g1[name]), rel=1e-14)
    assert float(implied_vol(g2["price"], 100.0, 95.0, 0.5, True, d)) == pytest.approx(0.3)


def test_inverse_option_helpers() -> None:
    f, k, t, v = 90_000.0, 100_000.0, 0.25, 0.55
    for call in (True, False):
        g = black76_greeks(f, k, t, v, call)
        coin = black76_coin_price(f, k, t, v, call)
        assert float(coin) == pytest.approx(float(g["price"]) / f, rel=1e-15)
        # premium-adjusted delta: dV/dF - V/F = theta D (K/F) Phi(theta d2)
        s = v * math.sqrt(t)
        d2 = math.log(f / k) / s - 0.5 * s
        theta = 1.0 if call else -1.0
        expected = theta * (k / f) * norm_cdf(theta * d2)
        assert float(inverse_delta(f, k, t, v, call)) == pytest.approx(expected, rel=1e-12)
        # it is F times the derivative of the coin premium in F
        h = 1e-5 * f
        dcoin = (
            black76_coin_price(f + h, k, t, v, call) - black76_coin_price(f - h, k, t, v, call)
        ) / (2 * h)
        assert float(inverse_delta(f, k, t, v, call)) == pytest.approx(f * float(dcoin), rel=1e-6)


def test_pandas_missing_values_become_non_finite_status() -> None:
    import pandas as pd

    price = pd.Series([8.0, None], dtype="Float64")
    vol, status = implied_vol(price, 100.0, 100.0, 1.0, True, return_status=True)
    assert status.tolist() == [0, 4]
    assert np.isnan(vol[1])
