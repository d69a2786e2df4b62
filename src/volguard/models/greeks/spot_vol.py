"""Regime-aware spot-vol slope: an online, causal, shrunk estimate of ``d sigma / d ln F``.

The hedging error of a static delta over one step is, to first order in the vol move,

.. math:: e_i = \\delta V_i - \\Delta^{BS}_i\\,\\delta F \\approx \\mathcal{V}_i\\,\\delta\\sigma_i
          = \\mathcal{V}_i\\,\\beta_i\\,\\delta\\ln F + \\varepsilon_i ,

so the slope :math:`\\beta` that minimises the squared error of the delta
:math:`\\Delta^{BS} + \\mathcal{V}\\beta/F` is the least-squares coefficient of :math:`e` on
:math:`x = \\mathcal{V}\\,\\delta\\ln F` (Hull and White [1]_ fit the same regression with a
quadratic in the delta instead of buckets). Options are pooled in buckets of standardised
moneyness :math:`z = k/(\\sigma\\sqrt{t})` and the slope scales with expiry as
:math:`\\beta_i = b_{\\text{bucket}}\\,(t_{\\text{ref}}/t_i)^{p}` (short expiries' vols move
more; :math:`p = 1/2` is the square-root rule of the ATM skew term structure, Bergomi [2]_ ch. 2),
so each bucket has one coefficient :math:`b`.

Two exponentially weighted regressions run per bucket, a fast one (half-life of a few steps: the
current regime) and a slow one (the long run). Observations within one step share one forward
move and one vol shock, so the variance of each coefficient is the cluster-robust (sandwich)
variance with steps as clusters and the small-sample factor ``n/(n-1)`` of ``n`` effective
steps (Cameron and Miller [4]_):

.. math:: \\hat b = \\frac{\\sum_s w_s S^{xy}_s}{\\sum_s w_s S^{xx}_s}, \\qquad
          \\widehat{\\operatorname{Var}}\\,\\hat b = \\frac{n}{n-1}
          \\frac{\\sum_s w_s^2 (S^{xy}_s - \\hat b S^{xx}_s)^2}{(\\sum_s w_s S^{xx}_s)^2},
          \\qquad n = \\frac{(\\sum_s w_s)^2}{\\sum_s w_s^2}.

Shrinkage is positive-part James-Stein [3]_ with threshold ``c``: the long-run slope is shrunk
toward the static delta's zero, :math:`b_0 = (1 - c\\,v_s/\\hat b_s^2)_+\\,\\hat b_s`, and the
recent slope toward the long run,

.. math:: b = b_0 + w\\,(\\hat b_f - b_0), \\qquad
          w = \\Bigl(1 - \\frac{c}{z^2}\\Bigr)_+ \\, p, \\qquad
          z^2 = \\frac{(\\hat b_f - b_0)^2}{v_f + v_0},

so the estimate moves to the recent regime only when the recent evidence differs from the long
run by more than :math:`\\sqrt{c}` standard errors, and by as much as the evidence allows;
``p`` is an optional probability that the market is in a changed regime (e.g. the guard's
regime filter; 1 when not given), which can only hold the estimate back further. With fewer
than ``min_steps`` effective steps a regression has weight 0.

References
----------
.. [1] Hull, J. and White, A. (2017). Optimal delta hedging for options. Journal of Banking and
   Finance 82, 180-190. doi:10.1016/j.jbankfin.2017.05.006
.. [2] Bergomi, L. (2016). Stochastic Volatility Modeling. Chapman and Hall/CRC.
   doi:10.1201/b19649
.. [3] Efron, B. and Morris, C. (1973). Stein's estimation rule and its competitors - an
   empirical Bayes approach. JASA 68(341), 117-130. doi:10.1080/01621459.1973.10481350
.. [4] Cameron, A. C. and Miller, D. L. (2015). A practitioner's guide to cluster-robust
   inference. Journal of Human Resources 50(2), 317-372. doi:10.3368/jhr.50.2.317
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from volguard._typing import ArrayLike, FloatArray, IntArray
from volguard.models.greeks.static import delta_with_beta


class _EWRegression:
    """Exponentially weighted regression through the origin, one coefficient per bucket."""

    def __init__(self, half_life: float, n: int) -> None:
        self.decay = 0.5 ** (1.0 / half_life)
        self.sxy = np.zeros(n)
        self.sxx = np.zeros(n)
        # sums of w^2 (S^xy)^2, w^2 S^xy S^xx, w^2 (S^xx)^2: the sandwich at any coefficient
        self.qyy = np.zeros(n)
        self.qxy = np.zeros(n)
        self.qxx = np.zeros(n)
        self.w = np.zeros(n)
        self.w2 = np.zeros(n)

    def coef(self) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            out: FloatArray = np.where(self.sxx > 0, self.sxy / self.sxx, 0.0)
        return out

    def var(self) -> FloatArray:
        b, n = self.coef(), self.n_eff()
        meat = np.maximum(self.qyy - 2 * b * self.qxy + b**2 * self.qxx, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            # n/(n-1): the small-sample correction of a sandwich over n clusters
            out: FloatArray = np.where(
                (self.sxx > 0) & (n > 1), meat / self.sxx**2 * n / (n - 1), np.inf
            )
        return out

    def n_eff(self) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            out: FloatArray = np.where(self.w2 > 0, self.w**2 / self.w2, 0.0)
        return out

    def update(self, sxy: FloatArray, sxx: FloatArray) -> None:
        seen = sxx > 0
        d = self.decay
        self.qyy = d**2 * self.qyy + sxy**2
        self.qxy = d**2 * self.qxy + sxy * sxx
        self.qxx = d**2 * self.qxx + sxx**2
        self.sxy = d * self.sxy + sxy
        self.sxx = d * self.sxx + sxx
        self.w = d * self.w + seen
        self.w2 = d**2 * self.w2 + seen


class SpotVolBeta:
    """Online regime-aware estimate of the implied-vol move per unit of ``ln F``.

    See the module docstring for the model and the shrinkage. Streaming in the river style:
    :meth:`update` takes one step's realised hedge errors and returns None; :meth:`beta` and
    :meth:`delta` read the state, which only holds steps already passed to :meth:`update`.

    Parameters
    ----------
    fast_half_life : float
        Half-life of the recent regression, in steps (> 0).
    slow_half_life : float
        Half-life of the long-run regression, in steps (> ``fast_half_life``).
    threshold : float
        James-Stein threshold ``c`` on the squared z-score (>= 0; 0: no shrinkage).
    min_steps : float
        Effective number of steps a regression needs before it gets any weight (>= 1).
    moneyness_edges : sequence of float
        Increasing edges of the buckets of ``z = k / (vol sqrt(t))``.
    term_power : float
        ``p`` of the expiry scaling ``(ref_years / t) ** p`` (>= 0).
    ref_years : float
        Reference expiry of the bucket coefficients, years (> 0).

    Examples
    --------
    >>> est = SpotVolBeta(fast_half_life=2, slow_half_life=20, min_steps=1)
    >>> rng = np.random.default_rng(0)
    >>> k, t, vol = np.zeros(50), np.full(50, 30 / 365), np.full(50, 0.5)
    >>> vega = np.full(50, 5000.0)
    >>> for _ in range(10):  # vols rise 1.5 points per -1 % of the forward
    ...     dlnf = rng.normal(0, 0.03)
    ...     err = vega * (-1.5 * dlnf + rng.normal(0, 0.002, 50))
    ...     est.update(k=k, t=t, vol=vol, vega=vega, d_ln_forward=dlnf, error=err)
    >>> round(float(est.beta([0.0], [30 / 365], [0.5])[0]), 1)
    -1.5
    """

    def __init__(
        self,
        fast_half_life: float = 3.0,
        slow_half_life: float = 60.0,
        threshold: float = 4.0,
        min_steps: float = 2.0,
        moneyness_edges: Sequence[float] = (-0.5, 0.5),
        term_power: float = 0.5,
        ref_years: float = 30 / 365,
    ) -> None:
        self.fast_half_life = fast_half_life
        self.slow_half_life = slow_half_life
        self.threshold = threshold
        self.min_steps = min_steps
        self.moneyness_edges = tuple(moneyness_edges)
        self.term_power = term_power
        self.ref_years = ref_years
        self._validate()
        self.reset()

    def _validate(self) -> None:
        if not self.fast_half_life > 0:
            raise ValueError(f"fast_half_life must be > 0; got {self.fast_half_life}")
        if not self.slow_half_life > self.fast_half_life:
            raise ValueError(
                f"slow_half_life must be > fast_half_life ({self.fast_half_life}); "
                f"got {self.slow_half_life}"
            )
        if not self.threshold >= 0:
            raise ValueError(f"threshold must be >= 0; got {self.threshold}")
        if not self.min_steps >= 1:
            raise ValueError(f"min_steps must be >= 1; got {self.min_steps}")
        if np.any(np.diff(self.moneyness_edges) <= 0):
            raise ValueError(f"moneyness_edges must increase; got {self.moneyness_edges}")
        if not self.term_power >= 0:
            raise ValueError(f"term_power must be >= 0; got {self.term_power}")
        if not self.ref_years > 0:
            raise ValueError(f"ref_years must be > 0; got {self.ref_years}")

    def reset(self) -> None:
        """Forget every step."""
        n = len(self.moneyness_edges) + 1
        self._fast = _EWRegression(self.fast_half_life, n)
        self._slow = _EWRegression(self.slow_half_life, n)
        self._n_updates = 0

    # ----------------------------------------------------------------------------- state
    @property
    def n_updates(self) -> int:
        """Steps seen."""
        return self._n_updates

    @property
    def beta_fast(self) -> FloatArray:
        """Recent (unshrunk) bucket coefficients ``b_f``."""
        return self._fast.coef()

    @property
    def beta_slow(self) -> FloatArray:
        """Long-run (unshrunk) bucket coefficients ``b_s``."""
        return self._slow.coef()

    def weights(self, regime_prob: float | None = None) -> tuple[FloatArray, FloatArray]:
        """Shrinkage weights per bucket: on the long run (vs 0) and on the recent (vs long run).

        Raises
        ------
        ValueError
            If ``regime_prob`` is outside [0, 1].
        """
        if regime_prob is not None and not 0.0 <= regime_prob <= 1.0:
            raise ValueError(f"regime_prob must be in [0, 1]; got {regime_prob}")
        c = self.threshold
        b_s, v_s = self._slow.coef(), self._slow.var()
        b_f, v_f = self._fast.coef(), self._fast.var()
        with np.errstate(divide="ignore", invalid="ignore"):
            w_s = np.clip(1.0 - c * v_s / b_s**2, 0.0, 1.0)
            w_s = np.where((self._slow.n_eff() >= self.min_steps) & np.isfinite(w_s), w_s, 0.0)
            base = w_s * b_s
            z2 = (b_f - base) ** 2 / (v_f + w_s**2 * v_s)
            w_f = np.clip(1.0 - c / z2, 0.0, 1.0)
        w_f = np.where((self._fast.n_eff() >= self.min_steps) & np.isfinite(w_f), w_f, 0.0)
        return w_s, w_f * (1.0 if regime_prob is None else regime_prob)

    def bucket_beta(self, regime_prob: float | None = None) -> FloatArray:
        """The shrunk coefficient ``b`` of each bucket (vol per unit of ``ln F`` at
        ``ref_years``)."""
        w_s, w_f = self.weights(regime_prob)
        base = w_s * self._slow.coef()
        out: FloatArray = base + w_f * (self._fast.coef() - base)
        return out

    # ----------------------------------------------------------------------------- use
    def _bucket(self, k: ArrayLike, t: ArrayLike, vol: ArrayLike) -> tuple[IntArray, FloatArray]:
        k_arr, t_arr, vol_arr = (np.asarray(a, dtype=float) for a in (k, t, vol))
        z = k_arr / (vol_arr * np.sqrt(t_arr))
        bucket: IntArray = np.digitize(z, self.moneyness_edges).astype(np.int64)
        scale: FloatArray = (self.ref_years / t_arr) ** self.term_power
        return bucket, scale

    def beta(
        self, k: ArrayLike, t: ArrayLike, vol: ArrayLike, regime_prob: float | None = None
    ) -> FloatArray:
        """``d sigma / d ln F`` of options at log-moneyness ``k``, years ``t`` (> 0), implied
        vol ``vol`` (> 0), from the steps seen so far."""
        bucket, scale = self._bucket(k, t, vol)
        out: FloatArray = self.bucket_beta(regime_prob)[bucket] * scale
        return out

    def delta(
        self,
        delta_bs: ArrayLike,
        vega: ArrayLike,
        forward: ArrayLike,
        k: ArrayLike,
        t: ArrayLike,
        vol: ArrayLike,
        regime_prob: float | None = None,
    ) -> FloatArray:
        """The regime-aware delta ``delta_bs + vega * beta / forward`` (see
        :func:`~volguard.models.greeks.static.delta_with_beta`)."""
        return delta_with_beta(delta_bs, vega, forward, self.beta(k, t, vol, regime_prob))

    def update(
        self,
        *,
        k: ArrayLike,
        t: ArrayLike,
        vol: ArrayLike,
        vega: ArrayLike,
        d_ln_forward: ArrayLike,
        error: ArrayLike,
    ) -> None:
        """Learn from one step's outcome: the options' state at the step's start (``k``,
        ``t``, ``vol``, ``vega`` USD per 1.00 of vol), the move of the log forward over the
        step (scalar or per option), and the hedging error of the static (sticky-strike)
        delta ``error = dV - delta_bs dF`` (USD). Non-finite rows are ignored."""
        bucket, scale = self._bucket(k, t, vol)
        x = np.asarray(vega, dtype=float) * scale * np.asarray(d_ln_forward, dtype=float)
        x, e = np.broadcast_arrays(x, np.asarray(error, dtype=float))
        bucket = np.broadcast_to(bucket, x.shape)
        ok = np.isfinite(x) & np.isfinite(e)
        n = len(self.moneyness_edges) + 1
        sxy = np.bincount(bucket[ok], weights=(x * e)[ok], minlength=n)
        sxx = np.bincount(bucket[ok], weights=(x * x)[ok], minlength=n)
        self._fast.update(sxy, sxx)
        self._slow.update(sxy, sxx)
        self._n_updates += 1
