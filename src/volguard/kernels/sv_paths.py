"""One path of a stochastic-variance log price, stepped with full-truncation Euler.

A sequential recursion, so a compiled loop (numba) with the same function run by the
interpreter as its twin (``sv_path.py_func``), tested equal. The kernel draws nothing: every
random number comes in as an array, so the caller's seeded generator fixes the path, compiled
or not. Input is assumed validated (equal lengths, ``dt > 0``, ``sigma, kappa >= 0``,
``|rho| < 1``).

References
----------
.. [1] Lord, R., Koekkoek, R. and van Dijk, D. (2010). A comparison of biased simulation schemes
   for stochastic volatility models. Quantitative Finance 10(2), 177-194.
   doi:10.1080/14697680802392496
"""

from __future__ import annotations

import math

import numpy as np

from volguard._typing import FloatArray
from volguard.kernels._jit import jit


@jit
def sv_path(
    x0: float,
    v0: float,
    dt: float,
    kappa: FloatArray,
    theta: FloatArray,
    sigma: FloatArray,
    rho: FloatArray,
    drift: FloatArray,
    jump: FloatArray,
    z_v: FloatArray,
    z_x: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Log price and variance after each of ``n`` steps (arrays of length ``n + 1``, start first).

    Parameters
    ----------
    x0, v0 : float
        Starting log price and variance (1/year).
    dt : float
        Step, years.
    kappa, theta, sigma, rho : ndarray, shape (n,)
        Heston parameters in force during each step (they change with the regime).
    drift : ndarray, shape (n,)
        Deterministic log-price increment of each step besides ``-v dt / 2`` (drift times
        ``dt``, jump compensation included).
    jump : ndarray, shape (n,)
        Sum of the log jumps in each step (0 where none).
    z_v, z_x : ndarray, shape (n,)
        Independent standard normals: the variance shock and the price's own shock.

    Returns
    -------
    x, v : ndarray, shape (n + 1,)

    Notes
    -----
    Full truncation ([1]_): with ``v+ = max(v, 0)``::

        v' = v + kappa (theta - v+) dt + sigma sqrt(v+ dt) z_v
        x' = x + drift - v+ dt / 2 + sqrt(v+ dt) (rho z_v + sqrt(1 - rho^2) z_x) + jump
    """
    n = z_v.size
    x = np.empty(n + 1)
    v = np.empty(n + 1)
    x[0] = x0
    v[0] = v0
    sqrt_dt = math.sqrt(dt)
    for i in range(n):
        vp = max(v[i], 0.0)
        root = math.sqrt(vp) * sqrt_dt
        v[i + 1] = v[i] + kappa[i] * (theta[i] - vp) * dt + sigma[i] * root * z_v[i]
        shock = rho[i] * z_v[i] + math.sqrt(1.0 - rho[i] * rho[i]) * z_x[i]
        x[i + 1] = x[i] + drift[i] - 0.5 * vp * dt + root * shock + jump[i]
    return x, v
