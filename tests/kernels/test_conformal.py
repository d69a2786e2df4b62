"""The conformal core: the finite-sample quantile rule and the ACI update."""

from __future__ import annotations

import numpy as np
import pytest

from volguard.guard.conformal import AdaptiveConformal
from volguard.kernels.conformal import aci_update, conformal_quantile


def test_conformal_quantile_is_the_finite_sample_order_statistic() -> None:
    s = np.array([0.3, 0.1, 0.2, 0.5, 0.4])  # n = 5, sorted 0.1..0.5
    assert conformal_quantile(s, 0.5) == 0.3  # k = ceil(6 * 0.5) = 3
    assert conformal_quantile(s, 0.8) == 0.5  # k = ceil(4.8) = 5
    assert conformal_quantile(s, 0.9) == np.inf  # k = ceil(5.4) = 6 > n
    assert conformal_quantile(s, -0.1) == 0.0  # ACI's level below 0: the point
    assert conformal_quantile(np.arange(1.0, 10.0), 0.9) == 9.0  # k = 9 exactly, no float slip
    assert np.isnan(conformal_quantile(np.array([np.nan]), 0.9))


def test_aci_update_is_gibbs_candes_eq_2() -> None:
    # alpha_{t+1} = alpha_t + gamma (alpha - err_t)
    assert aci_update(0.1, 0.1, 0.05, 0.1) == 0.1
    assert aci_update(0.1, 0.1, 0.05, 1.0) == pytest.approx(0.055)
    assert aci_update(0.1, 0.1, 0.05, 0.0) == pytest.approx(0.105)


# --- hand-checked intervals ------------------------------------------------------------------


def test_the_guard_and_the_lab_share_the_quantile_and_the_update() -> None:
    rng = np.random.default_rng(0)
    aci = AdaptiveConformal(alpha=0.1, gamma=0.05, window=2)
    batches = [rng.normal(0.0, 1.0, 50) for _ in range(4)]
    alpha_t, history = 0.1, []
    for y in batches:
        if history:
            q = conformal_quantile(np.concatenate(history[-2:]), 1 - alpha_t)
            alpha_t = aci_update(alpha_t, 0.1, 0.05, float(np.mean(np.abs(y) > q)))
        history.append(np.abs(y))
        aci.update(np.zeros(50), y)
    assert aci.alpha_t == pytest.approx(alpha_t)
    assert aci.half_width == conformal_quantile(np.concatenate(history[-2:]), 1 - alpha_t)
