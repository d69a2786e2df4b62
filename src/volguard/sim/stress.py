"""Stress transforms: arbitrage-free what-ifs on any snapshot, with the truth next to the quotes.

Real quotes carry noise and even arbitrage, so a stress is not applied to them. It is applied to
a smooth arbitrage-free *reference surface*: the ``essvi`` engine fitted to the base snapshot,
held as its slices ``(theta_i, rho_i, psi_i)`` (:class:`EssviSurface`). A scenario maps that
surface and the forwards to stressed ones; the stressed snapshot re-quotes the base snapshot's
instruments on the stressed surface (same instruments and sides, bid-ask spreads held in vol and
scaled with the vol), then quote transforms make what an engine sees worse (wider spreads,
missing wings and bids, stale prices). :func:`stress` returns the stressed snapshot, the truth
(true forward, moneyness, implied vol and price of every base instrument) and the static-
arbitrage report of the stressed surface.

Surface transforms keep the eSSVI sufficient conditions (Hendriks and Martini 2019) by
construction: per slice ``psi (1 + |rho|) <= 4`` and ``psi^2 (1 + |rho|) <= 4 theta``
(butterfly); ``theta`` and both wing slopes ``psi (1 -+ rho)`` non-decreasing in maturity
(calendar). Each transform says how. Those conditions do not exclude two slices crossing at a
finite ``k`` (Pasquazzi 2023), so every stressed surface is also checked with
:func:`volguard.arbitrage.check_static_arbitrage`; the tests run that check over the parameter
bounds of every transform.

Units: ``k = ln(K/F)``; ``t`` in years ACT/365; vols decimal; prices USD per unit of underlying.

References
----------
Gatheral, J. and Jacquier, A. (2014), Arbitrage-free SVI volatility surfaces, Quantitative Finance
14(1), 59-71, doi:10.1080/14697688.2013.819986. Hendriks, S. and Martini, C. (2019), The extended
SSVI volatility surface, J. Computational Finance 22(5), doi:10.21314/JCF.2019.369. Pasquazzi, L.
(2023), Calendar arbitrage in eSSVI, arXiv:2305.08787.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from volguard._typing import BoolArray, FloatArray
from volguard.arbitrage.static import ArbitrageReport, check_static_arbitrage
from volguard.data.schema import conform
from volguard.errors import ConfigError
from volguard.kernels.api import black76_price, implied_vol
from volguard.market.clock import DAYS_PER_YEAR
from volguard.market.snapshot import MarketSnapshot
from volguard.models.parametric.ssvi import ESSVI, THETA_MIN, slices_total_variance, ssvi_slice

T_REF = 30 / DAYS_PER_YEAR
"""Maturity (years) below which term-shaped shocks are flat: shape ``(T_REF / max(t, T_REF))^d``."""
DEFAULT_HALF_SPREAD = 0.005
"""Half bid-ask spread in vol (0.5 vol point) where the base snapshot has no two-sided quote."""
ATM_KEPT = 2
"""Strikes nearest the (stressed) forward, per expiry, that a crunch never removes or one-sides."""


# ------------------------------------------------------------------------------ the surface
@dataclass(frozen=True, eq=False)
class EssviSurface:
    """An eSSVI surface: slices ``(theta_i, rho_i, psi_i)`` at years ``t_i``, interpolated.

    Parameters
    ----------
    t : ndarray, shape (n,)
        Slice maturities, years, increasing.
    theta : ndarray, shape (n,)
        At-the-money total variance of each slice.
    rho : ndarray, shape (n,)
        Correlation (skew direction) of each slice, in (-1, 1).
    psi : ndarray, shape (n,)
        ``theta phi(theta)``: the slice's curvature scale, >= 0.

    Notes
    -----
    Interpolation as the ``essvi`` engine (Corbetta et al. 2019): ``theta`` linear in ``t``
    through 0 at ``t = 0`` and extended at its last rate; ``psi`` and ``rho psi`` linear in
    ``theta``. The engine's method is repeated here, not called, because a stressed surface is
    no fitted engine; a test holds the two equal.

    Examples
    --------
    >>> s = EssviSurface(np.array([0.25]), np.array([0.04]), np.array([-0.3]), np.array([0.2]))
    >>> round(float(s.implied_vol(np.array(0.0), np.array(0.25))), 12)
    0.4
    """

    t: FloatArray
    theta: FloatArray
    rho: FloatArray
    psi: FloatArray

    @classmethod
    def from_engine(cls, engine: ESSVI) -> EssviSurface:
        """The slices of a fitted ``essvi`` engine."""
        return cls(
            np.asarray(engine.slice_t_, dtype=float),
            np.asarray(engine.theta_, dtype=float),
            np.asarray(engine.rho_, dtype=float),
            np.asarray(engine.psi_, dtype=float),
        )

    @classmethod
    def from_wings(
        cls, t: FloatArray, theta: FloatArray, put: FloatArray, call: FloatArray
    ) -> EssviSurface:
        """Slices from the wing slopes ``put = psi (1 - rho)`` and ``call = psi (1 + rho)``."""
        psi = (put + call) / 2
        rho = np.where(psi > 0, (call - put) / np.maximum(put + call, 1e-300), 0.0)
        return cls(t, theta, rho, psi)

    @property
    def wings(self) -> tuple[FloatArray, FloatArray]:
        """``(psi (1 - rho), psi (1 + rho))``: twice the total-variance slopes of the wings."""
        return self.psi * (1 - self.rho), self.psi * (1 + self.rho)

    def total_variance(self, k: FloatArray, t: FloatArray) -> FloatArray:
        """Total implied variance at log-moneyness ``k`` and years ``t`` (broadcast), with the
        ``essvi`` engine's interpolation between slices."""
        return slices_total_variance(k, t, self.t, self.theta, self.rho, self.psi)

    def implied_vol(self, k: FloatArray, t: FloatArray) -> FloatArray:
        """Implied vol (decimal) at log-moneyness ``k`` and years ``t`` (> 0)."""
        t_arr = np.asarray(t, dtype=float)
        vol: FloatArray = np.sqrt(np.maximum(self.total_variance(k, t_arr), 0.0) / t_arr)
        return vol

    def condition_violations(self, tol: float = 1e-12) -> list[str]:
        """The eSSVI sufficient no-arbitrage conditions this surface breaks (empty: none).

        Butterfly per slice: ``psi (1 + |rho|) <= 4``, ``psi^2 (1 + |rho|) <= 4 theta``,
        ``|rho| < 1``; calendar: ``theta`` and ``psi (1 -+ rho)`` non-decreasing.

        Examples
        --------
        >>> s = EssviSurface(np.array([0.1, 0.2]), np.array([0.3, 0.2]), np.zeros(2), np.ones(2))
        >>> s.condition_violations()
        ['psi^2 (1 + |rho|) > 4 theta at slice 1', 'theta decreases at slice 1']
        """
        out = []
        m = 1 + np.abs(self.rho)
        checks = (
            ("|rho| >= 1", np.abs(self.rho) >= 1),
            ("psi (1 + |rho|) > 4", self.psi * m > 4 + tol),
            ("psi^2 (1 + |rho|) > 4 theta", self.psi**2 * m > 4 * self.theta * (1 + tol) + tol),
        )
        for what, bad in checks:
            out += [f"{what} at slice {i}" for i in np.flatnonzero(bad)]
        put, call = self.wings
        for what, seq in (("theta", self.theta), ("put wing", put), ("call wing", call)):
            drops = np.flatnonzero(np.diff(seq) < -tol * np.maximum(np.abs(seq[1:]), 1.0))
            out += [f"{what} decreases at slice {i + 1}" for i in drops]
        return out


def _with_theta(surface: EssviSurface, theta: FloatArray) -> EssviSurface:
    """New ATM total variances, made non-decreasing; ``psi`` shrunk by one factor if needed.

    Why one factor for every slice: scaling all ``psi`` by ``kappa <= 1`` keeps the wing slopes
    ordered and under the Lee bound, and ``kappa^2 <= min theta'/theta`` restores
    ``psi^2 (1 + |rho|) <= 4 theta'`` wherever ``theta`` fell.
    """
    new = np.maximum.accumulate(np.maximum(np.asarray(theta, dtype=float), THETA_MIN))
    kappa = min(1.0, float(np.sqrt(np.min(new / surface.theta))))
    return EssviSurface(surface.t, new, surface.rho, surface.psi * kappa)


def _with_wings(surface: EssviSurface, put: FloatArray, call: FloatArray) -> EssviSurface:
    """New wing slopes (each non-decreasing), scaled by one factor into the butterfly domain."""
    peak = np.maximum(put, call)  # psi (1 + |rho|)
    psi = (put + call) / 2
    with np.errstate(divide="ignore"):
        scale = min(
            1.0,
            float(np.min(4 / peak, initial=np.inf)),
            float(np.sqrt(np.min(4 * surface.theta / (psi * peak), initial=np.inf))),
        )
    return EssviSurface.from_wings(surface.t, surface.theta, put * scale, call * scale)


def _term_shape(t: FloatArray, decay: float) -> FloatArray:
    shape: FloatArray = (T_REF / np.maximum(t, T_REF)) ** decay
    return shape


# ------------------------------------------------------------------------------ the state
@dataclass(frozen=True, eq=False)
class StressState:
    """What surface transforms act on: the true surface and forwards, the quoted forwards.

    ``forwards`` and ``quoted_forwards`` are USD per expiry (index: expiry); ``quoted_forwards``
    is the ``forward`` column the stressed quotes carry (it lags the true one in a basis
    dislocation); ``expiry_t`` is years to each expiry; ``spot_factor`` multiplies the index
    price.
    """

    surface: EssviSurface
    forwards: pd.Series
    quoted_forwards: pd.Series
    expiry_t: pd.Series
    spot_factor: float = 1.0


@dataclass(frozen=True, eq=False)
class QuoteBook:
    """What quote transforms act on, one entry per base quote row (arrays, shape (n,)).

    ``half_vol`` is the half bid-ask spread in vol; ``visible`` rows appear in the stressed
    snapshot; ``has_bid``/``has_ask`` say which sides are quoted; ``stale`` rows keep their
    pre-stress prices; ``k`` (at the true stressed forward), ``t`` and ``protected`` (the
    :data:`ATM_KEPT` strikes nearest that forward in each expiry) are read-only context.
    """

    k: FloatArray
    t: FloatArray
    protected: BoolArray
    half_vol: FloatArray
    visible: BoolArray
    has_bid: BoolArray
    has_ask: BoolArray
    stale: BoolArray


def _check(kind: str, name: str, value: float, lo: float, hi: float, unit: str) -> None:
    if not (isinstance(value, int | float) and not isinstance(value, bool)):
        raise ConfigError(f"{kind}.{name} must be a number ({unit}); got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{kind}.{name} must be in [{lo}, {hi}] ({unit}); got {value!r}")


class Transform:
    """Base of the stress transforms: frozen dataclasses whose fields are their parameters.

    ``kind`` names the transform in scenarios and TOML files; ``bounds`` gives each parameter's
    allowed interval and ``units`` its unit; ``stage`` is ``surface`` (acts on the
    :class:`StressState`) or ``quotes`` (acts on the :class:`QuoteBook`).
    """

    kind: ClassVar[str]
    stage: ClassVar[str]
    bounds: ClassVar[dict[str, tuple[float, float]]]
    units: ClassVar[dict[str, str]]

    def __post_init__(self) -> None:
        for name, (lo, hi) in self.bounds.items():
            _check(self.kind, name, getattr(self, name), lo, hi, self.units[name])

    @property
    def params(self) -> dict[str, float]:
        """The parameters as ``{name: value}``."""
        return {name: float(getattr(self, name)) for name in self.bounds}

    def apply(self, state: StressState) -> StressState:
        """Surface stage: the stressed state."""
        raise NotImplementedError

    def apply_quotes(self, book: QuoteBook, rng: np.random.Generator) -> QuoteBook:
        """Quote stage: the degraded book (``rng`` draws the same numbers whatever the params)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Jump(Transform):
    """Spot and every forward jump by ``exp(size)``; the vol responds per ``beta``.

    Parameters
    ----------
    size : float
        Log move of spot and forwards, in [-0.5, 0.5] (-0.15: a 14 % drop).
    beta : float
        Vol response in [0, 1]: 0 sticky-moneyness (the smile moves with the forward), 1 sticky-
        strike at the money (the new ATM vol is the old vol at the new forward's strike,
        ``theta' = w(size)``), linear in between.

    Notes
    -----
    ``w(size)`` is non-decreasing across slices (the reference has no calendar arbitrage), and
    ``psi`` is shrunk by one factor where ``theta`` fell (:func:`_with_theta`).
    """

    kind: ClassVar[str] = "jump"
    stage: ClassVar[str] = "surface"
    bounds: ClassVar[dict[str, tuple[float, float]]] = {"size": (-0.5, 0.5), "beta": (0.0, 1.0)}
    units: ClassVar[dict[str, str]] = {"size": "log move", "beta": "fraction"}
    size: float = 0.0
    beta: float = 0.0

    def apply(self, state: StressState) -> StressState:
        s = state.surface
        sticky = ssvi_slice(np.full(s.t.size, self.size), s.theta, s.rho, s.psi)
        move = math.exp(self.size)
        return dataclasses.replace(
            state,
            surface=_with_theta(s, s.theta + self.beta * (sticky - s.theta)),
            forwards=state.forwards * move,
            quoted_forwards=state.quoted_forwards * move,
            spot_factor=state.spot_factor * move,
        )


@dataclass(frozen=True)
class VolShock(Transform):
    """Forward vols scaled by ``1 + level (T_REF / max(t, T_REF))^term_decay``.

    Parameters
    ----------
    level : float
        Relative change of the short-end forward vol, in [-0.6, 2.0] (0.2: +20 %).
    term_decay : float
        In [0, 1]: 0 a parallel shock (every ATM vol times ``1 + level``); larger values confine
        it to the short end (forward variance between ``t_{i-1}`` and ``t_i`` is scaled at the
        interval's mid-point).

    Notes
    -----
    ``theta'_i = sum_{j <= i} m_j^2 (theta_j - theta_{j-1})`` with ``m_j >= 0.4``: forward
    variances stay non-negative, so ``theta'`` is non-decreasing; wings are kept, or shrunk by
    one factor where ``theta`` fell (:func:`_with_theta`).
    """

    kind: ClassVar[str] = "vol_shock"
    stage: ClassVar[str] = "surface"
    bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "level": (-0.6, 2.0),
        "term_decay": (0.0, 1.0),
    }
    units: ClassVar[dict[str, str]] = {"level": "relative vol change", "term_decay": "exponent"}
    level: float = 0.0
    term_decay: float = 0.0

    def apply(self, state: StressState) -> StressState:
        s = state.surface
        t_prev = np.concatenate([[0.0], s.t[:-1]])
        mult = 1 + self.level * _term_shape((s.t + t_prev) / 2, self.term_decay)
        forward_var = np.diff(np.concatenate([[0.0], s.theta]))
        return dataclasses.replace(state, surface=_with_theta(s, np.cumsum(mult**2 * forward_var)))


@dataclass(frozen=True)
class SkewTwist(Transform):
    """Put wing steeper and call wing flatter (or the reverse), every expiry alike.

    Parameters
    ----------
    amount : float
        In [-0.9, 0.9]: wing slopes become ``put (1 + amount)``, ``call (1 - amount)``;
        positive steepens the put skew.

    Notes
    -----
    Both wing sequences are scaled by constants, so they stay non-decreasing; then one factor
    for all slices brings the steeper wing back into the butterfly domain (:func:`_with_wings`).
    """

    kind: ClassVar[str] = "skew_twist"
    stage: ClassVar[str] = "surface"
    bounds: ClassVar[dict[str, tuple[float, float]]] = {"amount": (-0.9, 0.9)}
    units: ClassVar[dict[str, str]] = {"amount": "relative wing-slope change"}
    amount: float = 0.0

    def apply(self, state: StressState) -> StressState:
        put, call = state.surface.wings
        twisted = _with_wings(state.surface, put * (1 + self.amount), call * (1 - self.amount))
        return dataclasses.replace(state, surface=twisted)


@dataclass(frozen=True)
class CorrelationFlip(Transform):
    """Spot-vol correlation turned toward its opposite: ``rho -> (1 - 2 strength) rho``.

    Parameters
    ----------
    strength : float
        In [0, 1]; 1 mirrors every smile (``rho -> -rho``: put and call wings swap).

    Notes
    -----
    New wings are ``(1 - s) put + s call`` and ``(1 - s) call + s put``: convex combinations of
    non-decreasing sequences, with ``psi`` and ``max(put, call)`` never larger, so every
    sufficient condition is kept.
    """

    kind: ClassVar[str] = "corr_flip"
    stage: ClassVar[str] = "surface"
    bounds: ClassVar[dict[str, tuple[float, float]]] = {"strength": (0.0, 1.0)}
    units: ClassVar[dict[str, str]] = {"strength": "fraction"}
    strength: float = 0.0

    def apply(self, state: StressState) -> StressState:
        s, put, call = self.strength, *state.surface.wings
        flipped = EssviSurface.from_wings(
            state.surface.t, state.surface.theta, (1 - s) * put + s * call, (1 - s) * call + s * put
        )
        return dataclasses.replace(state, surface=flipped)


@dataclass(frozen=True)
class BasisDislocation(Transform):
    """Forwards of the short expiries moved against spot; the quoted forwards lag the move.

    Parameters
    ----------
    shift : float
        Log move of the forward at ``t <= T_REF``, in [-0.1, 0.1]; at ``t`` it is
        ``shift (T_REF / max(t, T_REF))^term_decay``.
    term_decay : float
        In [0, 2]: 0 moves every forward alike, larger values only the front.
    lag : float
        In [0, 1]: fraction of the move missing from the quotes' ``forward`` column (the
        futures the venue quotes against have not caught up); 0 quotes the true forward.

    Notes
    -----
    The surface in ``k`` is unchanged (each smile moves with its own forward), so it keeps its
    no-arbitrage; option prices are re-expressed at the new forwards.
    """

    kind: ClassVar[str] = "basis"
    stage: ClassVar[str] = "surface"
    bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "shift": (-0.1, 0.1),
        "term_decay": (0.0, 2.0),
        "lag": (0.0, 1.0),
    }
    units: ClassVar[dict[str, str]] = {
        "shift": "log move",
        "term_decay": "exponent",
        "lag": "fraction",
    }
    shift: float = 0.0
    term_decay: float = 1.0
    lag: float = 0.0

    def apply(self, state: StressState) -> StressState:
        move = self.shift * _term_shape(state.expiry_t.to_numpy(dtype=float), self.term_decay)
        return dataclasses.replace(
            state,
            forwards=state.forwards * np.exp(move),
            quoted_forwards=state.quoted_forwards * np.exp(move * (1 - self.lag)),
        )


@dataclass(frozen=True)
class LiquidityCrunch(Transform):
    """Spreads widened, far wings withdrawn, bids pulled; the surface (the truth) unchanged.

    Parameters
    ----------
    spread_mult : float
        Bid-ask spreads (in vol) times this, in [1, 20].
    wing_cut : float
        Quotes with ``|k| / sqrt(t) > wing_cut`` (per sqrt-year) are removed, in [0.1, inf].
    bid_drop : float
        Probability in [0, 1) that a quote loses its bid (seeded draws).

    Notes
    -----
    The :data:`ATM_KEPT` strikes nearest each forward are never removed or one-sided, so every
    expiry keeps something to fit.
    """

    kind: ClassVar[str] = "crunch"
    stage: ClassVar[str] = "quotes"
    bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "spread_mult": (1.0, 20.0),
        "wing_cut": (0.1, math.inf),
        "bid_drop": (0.0, 0.99),
    }
    units: ClassVar[dict[str, str]] = {
        "spread_mult": "multiplier",
        "wing_cut": "|k| per sqrt-year",
        "bid_drop": "probability",
    }
    spread_mult: float = 1.0
    wing_cut: float = math.inf
    bid_drop: float = 0.0

    def apply_quotes(self, book: QuoteBook, rng: np.random.Generator) -> QuoteBook:
        draws = rng.random(book.k.size)
        wing = np.abs(book.k) / np.sqrt(book.t) > self.wing_cut
        return dataclasses.replace(
            book,
            half_vol=book.half_vol * self.spread_mult,
            visible=book.visible & (book.protected | ~wing),
            has_bid=book.has_bid & (book.protected | (draws >= self.bid_drop)),
        )


@dataclass(frozen=True)
class StaleQuotes(Transform):
    """A random fraction of the quotes keeps its pre-stress prices (seeded draws).

    Parameters
    ----------
    fraction : float
        Probability in [0, 1] that a quote is stale.
    """

    kind: ClassVar[str] = "stale"
    stage: ClassVar[str] = "quotes"
    bounds: ClassVar[dict[str, tuple[float, float]]] = {"fraction": (0.0, 1.0)}
    units: ClassVar[dict[str, str]] = {"fraction": "probability"}
    fraction: float = 0.0

    def apply_quotes(self, book: QuoteBook, rng: np.random.Generator) -> QuoteBook:
        draws = rng.random(book.k.size)
        return dataclasses.replace(book, stale=book.stale | (draws < self.fraction))


TRANSFORMS: dict[str, type[Transform]] = {
    cls.kind: cls
    for cls in (
        BasisDislocation,
        Jump,
        VolShock,
        SkewTwist,
        CorrelationFlip,
        LiquidityCrunch,
        StaleQuotes,
    )
}
"""Transform kinds in the order :func:`compose` applies them."""


# ------------------------------------------------------------------------------ scenarios
@dataclass(frozen=True)
class StressScenario:
    """A named composition of transforms, applied in order (surface ones, then quote ones).

    Examples
    --------
    >>> s = StressScenario("demo", (VolShock(level=0.2), LiquidityCrunch(spread_mult=2.0)))
    >>> s.params["vol_shock.level"], s.params["crunch.spread_mult"]
    (0.2, 2.0)
    """

    name: str
    transforms: tuple[Transform, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        kinds = [t.kind for t in self.transforms]
        if len(set(kinds)) != len(kinds):
            raise ConfigError(f"scenario {self.name!r} repeats a transform kind: {kinds}")

    @property
    def params(self) -> dict[str, float]:
        """Every parameter as ``{"kind.name": value}``."""
        return {f"{t.kind}.{n}": v for t in self.transforms for n, v in t.params.items()}


def compose(params: Mapping[str, float], name: str = "composed") -> StressScenario:
    """A scenario from flat parameters ``{"kind.name": value}``, kinds in :data:`TRANSFORMS` order.

    Kinds not named are left out; a named kind's other parameters keep their defaults.

    Raises
    ------
    ConfigError
        If a key is not ``kind.name`` of a known transform parameter, or a value is out of bounds.

    Examples
    --------
    >>> compose({"jump.size": -0.1, "vol_shock.level": 0.3}).transforms
    (Jump(size=-0.1, beta=0.0), VolShock(level=0.3, term_decay=0.0))
    """
    grouped: dict[str, dict[str, float]] = {}
    for key, value in params.items():
        kind, _, pname = key.partition(".")
        cls = TRANSFORMS.get(kind)
        if cls is None or pname not in cls.bounds:
            known = sorted(f"{k}.{p}" for k, c in TRANSFORMS.items() for p in c.bounds)
            raise ConfigError(f"scenario parameter {key!r} is unknown; expected one of {known}")
        grouped.setdefault(kind, {})[pname] = float(value)
    return StressScenario(
        name, tuple(TRANSFORMS[k](**grouped[k]) for k in TRANSFORMS if k in grouped)
    )


# ------------------------------------------------------------------------------ stressing
@dataclass(frozen=True, eq=False)
class Reference:
    """A base snapshot prepared for stressing: its eSSVI reference surface and vol spreads.

    Build with :meth:`fit`; reuse it to stress one snapshot many times (adversarial search).
    """

    snapshot: MarketSnapshot
    surface: EssviSurface
    half_vol: FloatArray = field(repr=False)

    @classmethod
    def fit(cls, snapshot: MarketSnapshot) -> Reference:
        """Fit ``essvi`` to ``snapshot`` and measure each quote's half-spread in vol.

        Raises
        ------
        ValueError
            If the snapshot has nothing to fit.
        """
        engine = ESSVI().fit(snapshot)
        q = snapshot.quotes
        f, strike, t, is_call = _contract_arrays(q)
        vols = []
        for side in ("bid", "ask"):
            price = q[side].to_numpy(dtype=float, na_value=np.nan)
            ok = np.isfinite(price)
            vol = q[f"{side}_iv"].to_numpy(dtype=float, na_value=np.nan).copy()
            if ok.any():
                inverted = implied_vol(price[ok], f[ok], strike[ok], t[ok], is_call[ok])
                vol[ok] = np.where(np.isfinite(inverted), inverted, vol[ok])
            vols.append(vol)
        half = pd.Series((vols[1] - vols[0]) / 2).where(lambda h: h > 0)
        by_expiry = half.groupby(q["expiry"].to_numpy()).transform("median")
        typical = half.median() if half.notna().any() else DEFAULT_HALF_SPREAD
        half = half.fillna(by_expiry).fillna(typical)
        return cls(snapshot, EssviSurface.from_engine(engine), half.to_numpy(dtype=float))


def _contract_arrays(q: pd.DataFrame) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray]:
    return (
        q["forward"].to_numpy(dtype=float),
        q["strike"].to_numpy(dtype=float),
        q["t"].to_numpy(dtype=float),
        q["is_call"].to_numpy(dtype=bool, na_value=False),
    )


@dataclass(frozen=True, eq=False)
class StressResult:
    """A stressed snapshot with its truth.

    Attributes
    ----------
    scenario : StressScenario
    snapshot : MarketSnapshot
        What an engine sees: the base instruments re-quoted on the stressed surface, less what
        quote transforms removed.
    truth : DataFrame
        One row per base instrument: ``instrument`` (where the base has it), ``expiry``,
        ``strike`` (USD), ``is_call``, ``t`` (years), ``forward`` (true, USD), ``k``
        (``ln(K/F)`` at the true forward), ``iv`` (true, decimal), ``price`` (true, USD per unit),
        ``visible`` (quoted in ``snapshot``), ``stale`` (quoted at its pre-stress prices).
    surface : EssviSurface
        The stressed (true) surface.
    arbitrage : ArbitrageReport
        Static-arbitrage check of ``surface`` at every quoted expiry (dense mesh plus the truth
        points).
    """

    scenario: StressScenario
    snapshot: MarketSnapshot
    truth: pd.DataFrame
    surface: EssviSurface
    arbitrage: ArbitrageReport


def stress(
    base: MarketSnapshot | Reference,
    scenario: StressScenario | Sequence[Transform],
    *,
    seed: int = 0,
) -> StressResult:
    """Apply ``scenario`` to a snapshot (or a prepared :class:`Reference`).

    Parameters
    ----------
    base : MarketSnapshot or Reference
        The base market; a snapshot is first fitted (:meth:`Reference.fit`).
    scenario : StressScenario or sequence of Transform
        Surface transforms apply in their order, then quote transforms in theirs.
    seed : int
        Seeds the random draws of quote transforms (same seed, same quotes).

    Returns
    -------
    StressResult

    Examples
    --------
    >>> ref = Reference.fit(synthetic_snapshot())
    >>> res = stress(ref, [VolShock(level=0.5), LiquidityCrunch(spread_mult=3.0, wing_cut=1.0)])
    >>> res.arbitrage.total, len(res.truth), len(res.snapshot)
    (0, 184, 120)
    >>> atm = stress(ref, []).surface.theta
    >>> bool(np.allclose(res.surface.theta, 1.5**2 * atm))
    True
    """
    ref = base if isinstance(base, Reference) else Reference.fit(base)
    scen = (
        scenario
        if isinstance(scenario, StressScenario)
        else StressScenario("custom", tuple(scenario))
    )
    q = ref.snapshot.quotes
    f0, strike, t, is_call = _contract_arrays(q)
    forwards = ref.snapshot.forwards
    expiry_t = q.groupby("expiry")["t"].median()
    state = StressState(ref.surface, forwards, forwards, expiry_t)
    for tr in scen.transforms:
        if tr.stage == "surface":
            state = tr.apply(state)
    expiry = pd.DatetimeIndex(q["expiry"])
    f_true = state.forwards.reindex(expiry).to_numpy(dtype=float)
    f_quoted = state.quoted_forwards.reindex(expiry).to_numpy(dtype=float)
    k = np.log(strike / f_true)
    iv = state.surface.implied_vol(k, t)
    iv_base = ref.surface.implied_vol(np.log(strike / f0), t)
    distance = pd.Series(np.abs(k)).groupby(expiry.to_numpy())
    book = QuoteBook(
        k=k,
        t=t,
        protected=(distance.rank(method="dense") <= ATM_KEPT).to_numpy(dtype=bool),
        half_vol=ref.half_vol * iv / iv_base,  # spreads held in vol, scaled with the vol
        visible=np.ones(k.size, dtype=bool),
        has_bid=q["bid"].notna().to_numpy(dtype=bool),
        has_ask=q["ask"].notna().to_numpy(dtype=bool),
        stale=np.zeros(k.size, dtype=bool),
    )
    rng = np.random.default_rng(seed)
    for tr in scen.transforms:
        if tr.stage == "quotes":
            book = tr.apply_quotes(book, rng)

    price = black76_price(f_true, strike, t, iv, is_call)
    bid_iv = np.where(book.has_bid & (iv - book.half_vol > 0), iv - book.half_vol, np.nan)
    ask_iv = np.where(book.has_ask, iv + book.half_vol, np.nan)
    fresh = {
        "bid": _price_or_nan(f_true, strike, t, bid_iv, is_call),
        "ask": _price_or_nan(f_true, strike, t, ask_iv, is_call),
        "mark": price,
        "bid_iv": bid_iv,
        "ask_iv": ask_iv,
        "mark_iv": iv,
    }
    columns: dict[str, FloatArray | pd.Series] = {"forward": f_quoted}
    for name, values in fresh.items():
        old = q[name].to_numpy(dtype=float, na_value=np.nan) if name in q else values
        columns[name] = np.where(book.stale, old, values)
    if "bid_size" in q:
        fresh["bid_size"] = q["bid_size"].to_numpy(dtype=float, na_value=np.nan)
    for name in ("bid", "bid_iv", "bid_size"):
        if name in fresh:
            columns[name] = np.where(book.has_bid, columns.get(name, fresh[name]), np.nan)
    if "index_price" in q:
        columns["index_price"] = q["index_price"] * state.spot_factor
    out = q.assign(**columns)
    truth = pd.DataFrame(
        {
            **({"instrument": q["instrument"]} if "instrument" in q else {}),
            "expiry": q["expiry"],
            "strike": strike,
            "is_call": is_call,
            "t": t,
            "forward": f_true,
            "k": k,
            "iv": iv,
            "price": price,
            "visible": book.visible,
            "stale": book.stale,
        }
    )
    t_check = np.unique(np.concatenate([t, state.surface.t]))
    report = check_static_arbitrage(state.surface.total_variance, t_check, quoted=(k, t))
    snapshot = MarketSnapshot.from_quotes(out[book.visible])
    return StressResult(scen, snapshot, truth, state.surface, report)


SYNTHETIC_SLICES = {
    "days": (7, 30, 91, 182),
    "atm_vol": (0.50, 0.52, 0.55, 0.57),
    "rho": (-0.25, -0.25, -0.22, -0.20),
    "psi": (0.10, 0.21, 0.39, 0.57),
}
"""The eSSVI market of :func:`synthetic_snapshot` (free of static arbitrage)."""


def synthetic_snapshot(forward: float = 95_000.0) -> MarketSnapshot:
    """A small synthetic BTC market to try scenarios on: 4 expiries, 23 strikes, calls and puts.

    Prices are Black-76 on the eSSVI surface :data:`SYNTHETIC_SLICES`, at strikes
    ``F exp(z 0.55 sqrt(t))`` for ``z`` in -3 .. 2.5; half-spreads 1 vol point plus 0.5 per unit
    of ``|z|``; every forward ``forward`` USD. Quote schema (``docs/data.md``), no noise.

    Examples
    --------
    >>> snap = synthetic_snapshot()
    >>> len(snap), len(snap.expiries)
    (184, 4)
    """
    ts = pd.Timestamp("2026-01-15 08:00", tz="UTC")
    days = np.asarray(SYNTHETIC_SLICES["days"], dtype=float)
    t_slices = days / DAYS_PER_YEAR
    atm = np.asarray(SYNTHETIC_SLICES["atm_vol"])
    surface = EssviSurface(
        t_slices,
        atm**2 * t_slices,
        np.asarray(SYNTHETIC_SLICES["rho"]),
        np.asarray(SYNTHETIC_SLICES["psi"]),
    )
    z = np.linspace(-3.0, 2.5, 23)
    t = np.repeat(t_slices, 2 * z.size)
    zz = np.tile(np.repeat(z, 2), days.size)
    strike = np.round(forward * np.exp(zz * 0.55 * np.sqrt(t)), -2)
    is_call = np.tile([False, True], days.size * z.size)
    vol = surface.implied_vol(np.log(strike / forward), t)
    half = 0.01 + 0.005 * np.abs(zz)
    expiry = ts + pd.to_timedelta(np.repeat(days, 2 * z.size), unit="D")
    rows = pd.DataFrame(
        {
            "ts": ts,
            "venue": "synthetic",
            "underlying": "BTC",
            "instrument": [
                f"BTC-{e:%d%b%y}-{k:.0f}-{'C' if c else 'P'}".upper()
                for e, k, c in zip(expiry, strike, is_call, strict=True)
            ],
            "expiry": expiry,
            "t": t,
            "strike": strike,
            "is_call": is_call,
            "settlement": "inverse",
            "forward": forward,
            "index_price": forward,
            "bid": black76_price(forward, strike, t, np.maximum(vol - half, 0.0), is_call),
            "ask": black76_price(forward, strike, t, vol + half, is_call),
            "mark": black76_price(forward, strike, t, vol, is_call),
            "bid_iv": vol - half,
            "ask_iv": vol + half,
            "mark_iv": vol,
        }
    )
    return MarketSnapshot.from_quotes(conform(rows))


def _price_or_nan(
    f: FloatArray, strike: FloatArray, t: FloatArray, vol: FloatArray, is_call: BoolArray
) -> FloatArray:
    ok = np.isfinite(vol)
    out = np.full(vol.shape, np.nan)
    out[ok] = black76_price(f[ok], strike[ok], t[ok], vol[ok], is_call[ok])
    return out
