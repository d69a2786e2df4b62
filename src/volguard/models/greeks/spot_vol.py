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
so each bucket has one coefficient :math:`b`. With ``skew`` a second term follows the option's
own smile slope :math:`s_i = \\partial\\sigma/\\partial k`,
:math:`\\beta_i = b\\,(t_{\\text{ref}}/t_i)^{p} + r\\,s_i`, where :math:`r` is the skew
stickiness ratio minus one ([2]_ ch. 2: -1 sticky moneyness, 0 sticky strike, about +1 local
vol), so the correction flips sign with the skew as the smile reprices; :math:`r` is fitted,
shrunk and frozen like :math:`b`.

Two exponentially weighted regressions run per bucket, a fast one (half-life of a few steps: the
current regime) and a slow one (the long run). Observations within one step share one forward
move and one vol shock, so the variance of each coefficient is the cluster-robust (sandwich)
variance with steps as clusters and the small-sample factor ``n/(n-1)`` of ``n`` effective
steps (Cameron and Miller [4]_):

.. math:: \\hat b = \\frac{\\sum_s w_s S^{xy}_s}{\\sum_s w_s S^{xx}_s}, \\qquad
          \\widehat{\\operatorname{Var}}\\,\\hat b = \\frac{n}{n-1}
          \\frac{\\sum_s w_s^2 (S^{xy}_s - \\hat b S^{xx}_s)^2}{(\\sum_s w_s S^{xx}_s)^2},
          \\qquad n = \\frac{(\\sum_s w_s)^2}{\\sum_s w_s^2}

(with ``drift=True`` an intercept, and with ``skew=True`` the skew term below, join the slope
and the same sandwich is taken on all of them).

Shrinkage is positive-part James-Stein [3]_ with threshold ``c``: the long-run slope is shrunk
toward the static delta's zero, :math:`b_0 = (1 - c\\,v_s/\\hat b_s^2)_+\\,\\hat b_s`, and the
recent slope toward the long run,

.. math:: b = b_0 + w\\,(\\hat b_f - b_0), \\qquad
          w = \\Bigl(1 - \\frac{c_p}{z^2}\\Bigr)_+, \\qquad
          z^2 = \\frac{(\\hat b_f - b_0)^2}{v_f + v_0},

so the estimate moves to the recent regime only when the recent evidence differs from the long
run by more than :math:`\\sqrt{c_p}` standard errors, and by as much as the evidence allows.
``c_p = (1 - p) c + p c_s`` moves from ``threshold`` to ``stress_threshold`` with ``p``, an
optional probability that the market is under stress (e.g. the guard's regime filter;
0 when not given): the guard's view decides how much evidence the recent slope needs, and the
evidence still decides how far it moves. With fewer than ``min_steps`` effective steps a
regression has weight 0.

With ``freeze`` (the default) a step enters the long-run regression with weight ``1 - w``: while
the recent regime is found different, its steps stay out of the long run, as a change detector
keeps its reference frozen during an alarm. Otherwise a shock's large moves dominate the
long-run sums for weeks and its slope outlives it (on the 2026 data: the plateau after the
crash).

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
from volguard.market.clock import DAYS_PER_YEAR
from volguard.models.greeks.static import delta_with_beta


class _EWRegression:
    """Exponentially weighted least squares per bucket, with the cluster-robust variance.

    ``k`` regressors (in :class:`SpotVolBeta`: the drift, the slope, the skew term). Each step
    adds its sums ``c_s = X_s' y_s`` (k) and ``A_s = X_s' X_s`` (k x k); the sandwich needs the
    weighted sum of ``u_s u_s'`` with ``u_s = (c_s, vec A_s)``, since the step's score
    ``c_s - A_s b`` is linear in ``u_s`` for any coefficient ``b``.
    """

    def __init__(self, half_life: float, n: int, k: int) -> None:
        self.decay = 0.5 ** (1.0 / half_life)
        self.k = k
        self.c = np.zeros((n, k))
        self.a = np.zeros((n, k, k))
        self.q = np.zeros((n, k + k * k, k + k * k))
        self.w = np.zeros(n)
        self.w2 = np.zeros(n)

    def estimate(self) -> tuple[FloatArray, FloatArray]:
        """Coefficients of each bucket, shape (buckets, k), and their cluster-robust variances
        with the small-sample factor n/(n-1) (inf where a regressor has no data yet)."""
        inv: FloatArray = np.linalg.pinv(self.a, hermitian=True).astype(float)
        theta: FloatArray = np.einsum("bij,bj->bi", inv, self.c)
        k, n_b = self.k, self.c.shape[0]
        lin = np.zeros((n_b, k, k + k * k))
        for j in range(k):
            lin[:, j, j] = 1.0
            lin[:, j, k + j * k : k + (j + 1) * k] = -theta
        meat = np.einsum("bim,bmn,bjn->bij", lin, self.q, lin)
        cov = np.einsum("bij,bjl,bml->bim", inv, meat, inv)
        n = self.n_eff()[:, None]
        seen = np.diagonal(self.a, axis1=1, axis2=2) > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            var: FloatArray = np.where(
                seen & (n > 1),
                np.maximum(np.diagonal(cov, axis1=1, axis2=2), 0.0) * n / (n - 1),
                np.inf,
            )
        return theta, var

    def n_eff(self) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            out: FloatArray = np.where(self.w2 > 0, self.w**2 / self.w2, 0.0)
        return out

    def update(self, c: FloatArray, a: FloatArray, weight: FloatArray | float = 1.0) -> None:
        """Add one step's sums, each bucket's step weighted by ``weight`` (in [0, 1])."""
        seen = (np.trace(a, axis1=1, axis2=2) > 0) * np.asarray(weight, dtype=float)
        d = self.decay
        u = np.concatenate([c, a.reshape(a.shape[0], -1)], axis=1) * seen[:, None]
        self.q = d**2 * self.q + u[:, :, None] * u[:, None, :]
        self.c = d * self.c + c * seen[:, None]
        self.a = d * self.a + a * seen[:, None, None]
        self.w = d * self.w + seen
        self.w2 = d**2 * self.w2 + seen**2


class SpotVolBeta:
    """Online regime-aware estimate of the implied-vol move per unit of ``ln F``.

    See the module docstring for the model and the shrinkage. Streaming in the river style:
    :meth:`update` takes one step's realised hedge errors and returns None; :meth:`beta` and
    :meth:`delta` read the state, which only holds steps already passed to :meth:`update`.

    The defaults are the settings chosen on the 2026 Deribit BTC snapshots (docs/greeks.md:
    every setting with a half-life of 2 to 2.5 steps and a threshold of 12 to 16 meets the
    issue's calm bound there; the choice is in-sample).

    Parameters
    ----------
    fast_half_life : float
        Half-life of the recent regression, in steps (> 0).
    slow_half_life : float
        Half-life of the long-run regression, in steps (> ``fast_half_life``).
    threshold : float
        James-Stein threshold ``c`` on the squared z-score (>= 0; 0: no shrinkage).
    stress_threshold : float
        The threshold when the regime probability ``regime_prob`` is 1 (>= 0); in between, the
        threshold is interpolated linearly.
    min_steps : float
        Effective number of steps a regression needs before it gets any weight (>= 1).
    moneyness_edges : sequence of float
        Increasing edges of the buckets of ``z = k / (vol sqrt(t))``.
    term_power : float
        ``p`` of the expiry scaling ``(ref_years / t) ** p`` (>= 0).
    ref_years : float
        Reference expiry of the bucket coefficients, years (> 0).
    drift : bool
        Also fit an intercept ``a`` per bucket, ``e = vega (ref/t)^p (a + b dlnF)``: a drift
        of the vols over a step (mean reversion after a spike) that would otherwise load on the
        slope when the forward trends. The intercept is not part of the delta.
    skew : bool
        Also fit a coefficient ``r`` on the option's own smile slope ``s = d sigma / d k``:
        ``beta = b (ref/t)^p + r s``. ``r`` is the skew stickiness ratio minus one (Bergomi
        [2]_ ch. 2: ``r = -1`` is sticky moneyness, 0 sticky strike, about +1 local or
        stochastic vol), so the delta follows the smile as it reprices at every step, and the
        correction flips sign with the skew. :meth:`update`, :meth:`beta` and :meth:`delta`
        then need ``slope`` (:func:`~volguard.models.greeks.static.smile_slope`).
    freeze : bool
        Keep the steps of a detected change out of the long-run regression (weight ``1 - w``,
        ``w`` the largest recent weight of the bucket's terms).

    Examples
    --------
    >>> est = SpotVolBeta(skew=False, slow_half_life=20, min_steps=1)
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
        fast_half_life: float = 2.0,
        slow_half_life: float = 60.0,
        threshold: float = 12.0,
        stress_threshold: float = 2.0,
        min_steps: float = 2.0,
        moneyness_edges: Sequence[float] = (-0.5, 0.5),
        term_power: float = 0.5,
        ref_years: float = 30 / DAYS_PER_YEAR,
        drift: bool = True,
        skew: bool = True,
        freeze: bool = True,
    ) -> None:
        self.fast_half_life = fast_half_life
        self.slow_half_life = slow_half_life
        self.threshold = threshold
        self.stress_threshold = stress_threshold
        self.min_steps = min_steps
        self.moneyness_edges = tuple(moneyness_edges)
        self.term_power = term_power
        self.ref_years = ref_years
        self.drift = drift
        self.skew = skew
        self.freeze = freeze
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
        if not self.stress_threshold >= 0:
            raise ValueError(f"stress_threshold must be >= 0; got {self.stress_threshold}")
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
        k = int(self.drift) + 1 + int(self.skew)
        self._fast = _EWRegression(self.fast_half_life, n, k)
        self._slow = _EWRegression(self.slow_half_life, n, k)
        self._n_updates = 0

    # ----------------------------------------------------------------------------- state
    @property
    def n_updates(self) -> int:
        """Steps seen."""
        return self._n_updates

    @property
    def terms(self) -> tuple[str, ...]:
        """Names of the coefficients the delta uses: ``slope`` (``b``) and, with ``skew``,
        ``skew`` (``r``); the columns of :meth:`coefficients` and :meth:`weights`."""
        return ("slope", "skew") if self.skew else ("slope",)

    @property
    def coefficients_fast(self) -> FloatArray:
        """Recent (unshrunk) coefficients of each bucket, shape (buckets, terms)."""
        return self._fast.estimate()[0][:, int(self.drift) :]

    @property
    def coefficients_slow(self) -> FloatArray:
        """Long-run (unshrunk) coefficients of each bucket, shape (buckets, terms)."""
        return self._slow.estimate()[0][:, int(self.drift) :]

    def weights(self, regime_prob: float | None = None) -> tuple[FloatArray, FloatArray]:
        """Shrinkage weights of each bucket and term, shape (buckets, terms): on the long run
        (vs 0) and on the recent (vs the long run).

        Raises
        ------
        ValueError
            If ``regime_prob`` is outside [0, 1].
        """
        return self._shrink(regime_prob)[:2]

    def coefficients(self, regime_prob: float | None = None) -> FloatArray:
        """The shrunk coefficients of each bucket, shape (buckets, terms): ``b`` (vol per unit
        of ``ln F`` at ``ref_years``) and, with ``skew``, ``r``."""
        return self._shrink(regime_prob)[2]

    def _shrink(self, regime_prob: float | None) -> tuple[FloatArray, FloatArray, FloatArray]:
        if regime_prob is not None and not 0.0 <= regime_prob <= 1.0:
            raise ValueError(f"regime_prob must be in [0, 1]; got {regime_prob}")
        used = slice(int(self.drift), None)
        c = self.threshold
        (b_s, v_s), (b_f, v_f) = (
            (t[:, used], v[:, used]) for t, v in (self._slow.estimate(), self._fast.estimate())
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            w_s = np.clip(1.0 - c * v_s / b_s**2, 0.0, 1.0)
            w_s = np.where(
                (self._slow.n_eff() >= self.min_steps)[:, None] & np.isfinite(w_s), w_s, 0.0
            )
            base = w_s * b_s
            z2 = (b_f - base) ** 2 / (v_f + w_s**2 * v_s)
            p = 0.0 if regime_prob is None else regime_prob
            w_f = np.clip(1.0 - ((1.0 - p) * c + p * self.stress_threshold) / z2, 0.0, 1.0)
        w_f = np.where((self._fast.n_eff() >= self.min_steps)[:, None] & np.isfinite(w_f), w_f, 0.0)
        out: FloatArray = base + w_f * (b_f - base)
        return w_s, w_f, out

    # ----------------------------------------------------------------------------- use
    def buckets(self, k: ArrayLike, t: ArrayLike, vol: ArrayLike) -> tuple[IntArray, FloatArray]:
        """Bucket index of each option and its expiry scaling ``(ref_years / t) ** term_power``."""
        k_arr, t_arr, vol_arr = (np.asarray(a, dtype=float) for a in (k, t, vol))
        z = k_arr / (vol_arr * np.sqrt(t_arr))
        bucket: IntArray = np.digitize(z, self.moneyness_edges).astype(np.int64)
        scale: FloatArray = (self.ref_years / t_arr) ** self.term_power
        return bucket, scale

    def _slope(self, slope: ArrayLike | None, shape: tuple[int, ...]) -> FloatArray:
        if not self.skew:
            return np.zeros(shape)
        if slope is None:
            raise ValueError("skew=True needs the smile slope of each option (slope=...)")
        return np.broadcast_to(np.asarray(slope, dtype=float), shape)

    def beta(
        self,
        k: ArrayLike,
        t: ArrayLike,
        vol: ArrayLike,
        regime_prob: float | None = None,
        slope: ArrayLike | None = None,
    ) -> FloatArray:
        """``d sigma / d ln F`` of options at log-moneyness ``k``, years ``t`` (> 0), implied
        vol ``vol`` (> 0) and smile slope ``slope`` (with ``skew``), from the steps seen so
        far."""
        bucket, scale = self.buckets(k, t, vol)
        coef = self.coefficients(regime_prob)[bucket]
        out: FloatArray = coef[..., 0] * scale
        if self.skew:
            out = out + coef[..., 1] * self._slope(slope, scale.shape)
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
        slope: ArrayLike | None = None,
    ) -> FloatArray:
        """The regime-aware delta ``delta_bs + vega * beta / forward`` (see
        :func:`~volguard.models.greeks.static.delta_with_beta`)."""
        beta = self.beta(k, t, vol, regime_prob, slope)
        return delta_with_beta(delta_bs, vega, forward, beta)

    def update(
        self,
        *,
        k: ArrayLike,
        t: ArrayLike,
        vol: ArrayLike,
        vega: ArrayLike,
        d_ln_forward: ArrayLike,
        error: ArrayLike,
        slope: ArrayLike | None = None,
        regime_prob: float | None = None,
    ) -> None:
        """Learn from one step's outcome: the options' state at the step's start (``k``,
        ``t``, ``vol``, ``vega`` USD per 1.00 of vol, and with ``skew`` the smile ``slope``),
        the move of the log forward over the step (scalar or per option), and the hedging
        error of the static (sticky-strike) delta ``error = dV - delta_bs dF`` (USD).
        ``regime_prob``, the stress probability at the step's start, sets the threshold of the
        freeze as it set the delta's. Non-finite rows are ignored."""
        bucket, scale = self.buckets(k, t, vol)
        vega_arr = np.asarray(vega, dtype=float)
        move = np.asarray(d_ln_forward, dtype=float)
        x, e = np.broadcast_arrays(vega_arr * scale * move, np.asarray(error, dtype=float))
        cols = [x]
        if self.drift:
            cols.insert(0, np.broadcast_to(vega_arr * scale, x.shape))
        if self.skew:
            cols.append(np.broadcast_to(vega_arr * move, x.shape) * self._slope(slope, x.shape))
        vol_ok = np.broadcast_to(np.isfinite(np.asarray(vol, dtype=float)), x.shape)
        ok = np.logical_and.reduce([np.isfinite(e), vol_ok, *(np.isfinite(z) for z in cols)])
        b = np.broadcast_to(bucket, x.shape)[ok]
        n = len(self.moneyness_edges) + 1
        c: FloatArray = np.stack(
            [np.bincount(b, weights=(z * e)[ok], minlength=n) for z in cols], axis=1
        ).astype(float)
        a: FloatArray = np.stack(
            [
                np.stack([np.bincount(b, weights=(z1 * z2)[ok], minlength=n) for z2 in cols], 1)
                for z1 in cols
            ],
            axis=1,
        ).astype(float)
        # while the recent regime differs from the long run, its steps stay out of the long run
        hold = self.weights(regime_prob)[1].max(axis=1) if self.freeze else 0.0
        self._fast.update(c, a)
        self._slow.update(c, a, 1.0 - hold)
        self._n_updates += 1
