"""The stochastic-variance path kernel: compiled against interpreted, and the scheme's limits."""

from __future__ import annotations

import numpy as np

from volguard.kernels.sv_paths import sv_path


def _inputs(n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    const = np.ones(n)
    jump = np.where(rng.random(n) < 0.01, rng.normal(-0.05, 0.1, n), 0.0)
    return (
        2.0 * const,
        0.2 * const,
        1.5 * const,
        -0.6 * const,
        1e-4 * const,
        jump,
        rng.standard_normal(n),
        rng.standard_normal(n),
    )


def test_compiled_kernel_equals_its_interpreted_twin() -> None:
    args = _inputs(5_000, seed=3)
    x, v = sv_path(np.log(90_000.0), 0.3, 1 / 8760, *args)
    x_py, v_py = sv_path.py_func(np.log(90_000.0), 0.3, 1 / 8760, *args)  # type: ignore[attr-defined]
    np.testing.assert_allclose(x, x_py, rtol=0, atol=1e-12)
    np.testing.assert_allclose(v, v_py, rtol=0, atol=1e-12)


def test_zero_vol_of_variance_relaxes_to_theta_exactly_like_the_ode() -> None:
    # sigma = 0: v' = v + kappa (theta - v) dt, the Euler solution of the ODE
    n, dt = 1_000, 1 / 365
    zeros, ones = np.zeros(n), np.ones(n)
    _, v = sv_path(0.0, 0.5, dt, 2.0 * ones, 0.1 * ones, zeros, zeros, zeros, zeros, zeros, zeros)
    expected = 0.1 + (0.5 - 0.1) * (1 - 2.0 * dt) ** np.arange(n + 1)
    np.testing.assert_allclose(v, expected, rtol=1e-12)


def test_log_price_is_a_martingale_in_the_mean() -> None:
    # E[exp(x_T)] = exp(x_0) when the drift is zero: mean of many short paths, 4 standard errors
    n_paths, n = 4_000, 50
    dt = 1 / 365
    finals = []
    rng = np.random.default_rng(11)
    ones = np.ones(n)
    for _ in range(n_paths):
        z_v, z_x = rng.standard_normal(n), rng.standard_normal(n)
        x, _ = sv_path(
            0.0, 0.25, dt, 3 * ones, 0.25 * ones, ones, -0.5 * ones, 0 * ones, 0 * ones, z_v, z_x
        )
        finals.append(np.exp(x[-1]))
    finals_arr = np.array(finals)
    assert abs(finals_arr.mean() - 1.0) < 4 * finals_arr.std() / np.sqrt(n_paths)
