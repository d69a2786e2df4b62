"""Feature selection by stability: which state features of a learned engine help out of regime.

A learned engine (``gbm``, ``nn``) is trained across snapshots on the inputs ``k``, ``t`` and the
snapshot's state features (:data:`volguard.models.learned.features.FEATURES`). A feature that
helps within the training regimes may hurt, or do nothing, in a regime the model has not seen.
:func:`feature_importance` measures, for each leave-one-regime-out fold, how much the held-out
regime's IV RMSE grows when a feature's values are permuted (permutation importance, Breiman
2001; model reliance, Fisher, Rudin and Dominici 2019); :func:`stability_report` keeps the
features whose importance is positive in every fold (or a share of them);
:func:`select_stable_features` does both.

A state feature is constant within a snapshot (one value per snapshot, read from its own fit
quotes), so permuting it across the held-out quotes would be meaningless: the per-snapshot
values are permuted between the held-out snapshots instead, by a derangement (a permutation
without a fixed point), so each snapshot's quotes are predicted with another snapshot's value
(with the few snapshots of a short regime a plain permutation often leaves a snapshot its own
value: for two snapshots, half the time). ``k`` and ``t`` vary within a snapshot and are
permuted across all held-out quotes (reported for reference: they are inputs, not selectable).

References
----------
Breiman, L. (2001). Random forests. Machine Learning 45(1), 5-32.
doi:10.1023/A:1010933404324

Fisher, A., Rudin, C. and Dominici, F. (2019). All models are wrong, but many are useful:
learning a variable's importance by studying an entire class of prediction models
simultaneously. Journal of Machine Learning Research 20(177), 1-81. arXiv:1801.01489
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from volguard._typing import FloatArray, IntArray
from volguard.lab.splits import LeaveOneRegimeOut
from volguard.market.snapshot import MarketSnapshot
from volguard.models.learned.features import DEFAULT_FEATURES, FEATURES, state_features
from volguard.models.learned.gbm import INPUTS, NORMALISER
from volguard.models.quotes import fit_quotes
from volguard.models.registry import ENGINES, resolve

PERMUTABLE: tuple[str, ...] = ("gbm", "nn")
"""Learned engines whose trained model answers ``predict(k, t, state)`` (total variance) for
any state: the ones whose state inputs can be permuted. ``hybrid`` is not among them (its
answer needs a prior fitted to each snapshot)."""
COLUMNS: tuple[str, ...] = (
    "fold",
    "feature",
    "importance",
    "importance_std",
    "rank",
    "rmse_vol_pts",
    "test_snapshots",
    "test_quotes",
)
"""Columns of :func:`feature_importance`."""
ROUNDING = 1e-12
"""Relative difference of a permuted prediction from the unpermuted one taken as rounding (the
de-normalisation divides and multiplies by the 30-day ATM vol): such predictions count as equal,
so an input the model ignores has importance exactly 0."""


@dataclass(frozen=True)
class _Held:
    """The fit quotes of held-out snapshots, concatenated; ``states`` one row per snapshot
    (columns :data:`FEATURES`); ``rows[i]`` the slice of snapshot ``i``."""

    k: FloatArray
    t: FloatArray
    mid_iv: FloatArray
    rows: tuple[slice, ...]
    states: FloatArray
    atm: FloatArray


def _held_out(snapshots: Sequence[MarketSnapshot]) -> _Held | None:
    """The held-out quotes of ``snapshots`` (those without a fit quote left out); None if
    fewer than two snapshots have one (nothing to permute between)."""
    blocks = [fit_quotes(s, "none") for s in snapshots]
    blocks = [q for q in blocks if len(q)]
    if len(blocks) < 2:
        return None
    states = [state_features(q) for q in blocks]
    stops = np.cumsum([len(q) for q in blocks])
    starts = stops - np.array([len(q) for q in blocks])
    return _Held(
        k=np.concatenate([q.k for q in blocks]),
        t=np.concatenate([q.t for q in blocks]),
        mid_iv=np.concatenate([q.mid_iv for q in blocks]),
        rows=tuple(slice(int(a), int(b)) for a, b in zip(starts, stops, strict=True)),
        states=np.array([[s[f] for f in FEATURES] for s in states]),
        atm=np.array([s[NORMALISER] for s in states]),
    )


def _model_vol(
    model: Any, held: _Held, k: FloatArray, t: FloatArray, states: FloatArray
) -> FloatArray:
    """The model's implied vol (decimal) at inputs ``k``, ``t`` (per quote) and ``states`` (per
    snapshot), de-normalised by each snapshot's own 30-day ATM vol."""
    out = np.empty(k.size)
    clip = getattr(model, "clip_state", None)
    for i, rows in enumerate(held.rows):
        state: Mapping[str, float] = dict(zip(FEATURES, states[i].tolist(), strict=True))
        if clip is not None:  # as the nn engine does with its state inputs
            state = clip(state)
        w = model.predict(k[rows], t[rows], state)
        # predict de-normalises by state[NORMALISER]; the target's own scale is the snapshot's
        out[rows] = np.sqrt(w / t[rows]) * (held.atm[i] / state[NORMALISER])
    return out


def derangement(n: int, rng: np.random.Generator) -> IntArray:
    """A uniform random permutation of ``range(n)`` without a fixed point (``n >= 2``), by
    rejection (about ``e`` draws on average).

    Examples
    --------
    >>> derangement(2, np.random.default_rng(0)).tolist()
    [1, 0]
    >>> p = derangement(5, np.random.default_rng(1)); bool((p != np.arange(5)).all())
    True
    """
    if n < 2:
        raise ValueError(f"a derangement needs n >= 2; received {n}")
    while True:
        p: IntArray = rng.permutation(n)
        if (p != np.arange(n)).all():
            return p


def _rmse_vol_pts(vol: FloatArray, mid_iv: FloatArray) -> float:
    err = vol - mid_iv
    err = err[np.isfinite(err)]
    return float(100.0 * np.sqrt(np.mean(err**2))) if err.size else float("nan")


def _fold_importance(
    model: Any, held: _Held, names: Sequence[str], n_repeats: int, seed: int, fold_no: int
) -> tuple[float, list[tuple[str, float, float]]]:
    """The unpermuted RMSE, and per input the mean and std of the RMSE increase (vol points)."""
    base_vol = _model_vol(model, held, held.k, held.t, held.states)
    base = _rmse_vol_pts(base_vol, held.mid_iv)
    out = []
    for column, name in enumerate(names):
        rng = np.random.default_rng([seed, fold_no, column])
        increases = np.empty(n_repeats)
        for r in range(n_repeats):
            k, t, states = held.k, held.t, held.states
            if name == "k":
                k = k[rng.permutation(k.size)]
            elif name == "t":
                t = t[rng.permutation(t.size)]
            else:
                j = FEATURES.index(name)
                states = states.copy()
                states[:, j] = states[derangement(len(held.rows), rng), j]
            vol = _model_vol(model, held, k, t, states)
            # the de-normalisation of a permuted atm_vol_30d rounds: same answer, same vol
            vol = np.where(np.isclose(vol, base_vol, rtol=ROUNDING, atol=0.0), base_vol, vol)
            increases[r] = _rmse_vol_pts(vol, held.mid_iv) - base
        out.append((name, float(increases.mean()), float(increases.std())))
    return base, out


def _check_engine(engine: str, train_settings: Mapping[str, Any]) -> None:
    if engine not in PERMUTABLE:
        raise ValueError(
            f"engine {engine!r} has no permutable state inputs; expected one of {PERMUTABLE}"
        )
    taken = sorted({"features", "seed"} & set(train_settings))
    if taken:
        raise ValueError(
            f"train_settings must not set {taken}: they are arguments of feature_importance"
        )


def feature_importance(
    snapshots: Sequence[MarketSnapshot],
    regimes: Sequence[str] | pd.Series | np.ndarray,
    *,
    engine: str = "gbm",
    features: Sequence[str] = DEFAULT_FEATURES,
    n_repeats: int = 3,
    seed: int = 0,
    min_snapshots: int = 2,
    train_settings: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Permutation importance of a learned engine's inputs, per leave-one-regime-out fold.

    For each regime with at least ``min_snapshots`` snapshots (a fold), the engine's model is
    trained on the snapshots of every other regime
    (``ENGINES[engine].train(train, seed=seed, features=features, **train_settings)``) and
    scored on the held-out regime's fit quotes (out-of-the-money, two-sided); the importance of
    an input is the increase of that held-out IV RMSE when the input is permuted, averaged over
    ``n_repeats`` seeded permutations.

    Parameters
    ----------
    snapshots : sequence of MarketSnapshot, length n
        Snapshots of one underlying (any order).
    regimes : sequence of str, length n
        The regime label of each snapshot, in the order of ``snapshots`` (e.g.
        :func:`volguard.lab.regimes.range_labels` of their ``ts``).
    engine : {'gbm', 'nn'}
        Learned engine (:data:`PERMUTABLE`).
    features : sequence of str
        State features the model is trained on (names of :data:`FEATURES`); their importance
        is reported with that of ``k`` and ``t``.
    n_repeats : int
        Permutations per input (``>= 1``).
    seed : int
        Seeds the training and the permutations (input ``j`` of fold ``i`` draws from
        ``numpy.random.default_rng([seed, i, j])``, so the draws do not depend on the other
        inputs).
    min_snapshots : int
        Smallest regime held out, in snapshots with a fit quote (``>= 2``: one snapshot has
        nothing to permute with).
        Smaller regimes are still trained on when another regime is held out.
    train_settings : mapping, optional
        Further training settings (e.g. ``{"half_life_days": 7}``, ``{"epochs": 100}``);
        ``features`` and ``seed`` are this function's.

    Returns
    -------
    DataFrame
        One row per fold and input (``k``, ``t``, then ``features``): ``fold`` (the held-out
        regime), ``feature``, ``importance`` (mean RMSE increase, vol points; negative: the
        permuted feature predicted better), ``importance_std`` (its standard deviation over the
        repeats), ``rank`` (1 = the largest importance in the fold, ties share the smallest
        rank), ``rmse_vol_pts`` (the fold's unpermuted held-out IV RMSE), ``test_snapshots``,
        ``test_quotes``.

    Raises
    ------
    ValueError
        If the lengths differ, ``engine`` is not permutable, a feature is unknown,
        ``n_repeats < 1``, ``min_snapshots < 2``, ``train_settings`` sets ``features`` or
        ``seed``, or no regime has ``min_snapshots`` snapshots and another regime to train on.

    Notes
    -----
    With ``e(.)`` the held-out RMSE (vol points, unweighted over the held-out quotes) of the
    model's implied vol ``sigma(k, t, s) = sqrt(w(k, t, s) / t)`` against the mid vols, and
    ``pi_r`` the ``r``-th random permutation of input ``j`` (a derangement for a state feature),

        importance_j = (1 / R) sum_r [ e(x with column j permuted by pi_r) - e(x) ]

    the permutation importance of Breiman (2001), the empirical model reliance of Fisher et al.
    (2019) in difference form. The state features are permuted between the held-out snapshots
    (a state feature is one number per snapshot) by uniform random derangements: snapshot
    ``i`` then gets the value of each other snapshot with the same probability ``1 / (n - 1)``,
    so each draw estimates Fisher et al.'s switched error ``e_switch`` (every snapshot paired
    with every other) without its ``n (n - 1)`` predictions. ``k`` and ``t`` are permuted across
    all held-out quotes. A
    feature constant across the held-out snapshots, or one the model never splits on, has
    importance exactly 0 (predictions within a relative ``ROUNDING`` of the unpermuted ones
    count as equal).

    The model is the raw trained surface, not the fitted engine (no smoothing, no wing
    continuation): the importance is the model's reliance on its inputs. The learned target is
    the total variance in units of the snapshot's 30-day ATM variance (the module docstring of
    :mod:`volguard.models.learned.gbm`), so each snapshot's prediction is de-normalised by its
    own ``atm_vol_30d`` even when that feature's input column is permuted: the permutation
    tests the feature as an input, not the target's scale. For ``nn`` the state is clipped to
    the trained range as the engine does.

    Examples
    --------
    >>> from dataclasses import replace
    >>> from volguard.sim import preset, simulate
    >>> scenario = replace(preset("calm-2026-01"), script=(("calm", 1.5), ("crash", 1.5)))
    >>> run = simulate(scenario, days=3, freq="12h", seed=1)
    >>> snaps = list(run.snapshots("BTC"))
    >>> labels = run.truth.groupby("ts")["regime"].first().astype(str).tolist()
    >>> table = feature_importance(snaps, labels, features=("atm_vol_30d", "term_slope"),
    ...                            n_repeats=2, train_settings={"n_estimators": 50})
    >>> table.shape, sorted(set(table["fold"]))
    ((8, 8), ['calm', 'crash'])
    """
    labels = np.asarray(regimes, dtype=object)
    snaps = list(snapshots)
    if labels.shape != (len(snaps),):
        raise ValueError(
            f"regimes must hold one label per snapshot ({len(snaps)}); received shape "
            f"{labels.shape}"
        )
    settings = dict(train_settings or {})
    _check_engine(engine, settings)
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ValueError(f"features {unknown} are unknown; expected names of {FEATURES}")
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1; received {n_repeats}")
    if min_snapshots < 2:
        raise ValueError(
            f"min_snapshots must be >= 2 (a permutation needs two); received {min_snapshots}"
        )
    names = (*INPUTS, *features)
    rows = []
    fold_no = 0
    for train, test in LeaveOneRegimeOut().split(None, groups=labels):
        if test.size < min_snapshots or train.size == 0:
            continue
        held = _held_out([snaps[i] for i in test])
        if held is None or len(held.rows) < min_snapshots:
            continue
        fold = str(labels[test[0]])
        model = ENGINES[engine].train(
            [snaps[i] for i in train], seed=seed, features=tuple(features), **resolve(settings)
        )
        base, inputs = _fold_importance(model, held, names, n_repeats, seed, fold_no)
        for name, mean, std in inputs:
            rows.append((fold, name, mean, std, base, len(held.rows), held.k.size))
        fold_no += 1
    if not rows:
        raise ValueError(
            f"no fold: no regime has >= {min_snapshots} snapshots (min_snapshots) and another "
            f"regime to train on; regimes {sorted(set(labels.tolist()))}"
        )
    out = pd.DataFrame(
        rows,
        columns=[
            "fold",
            "feature",
            "importance",
            "importance_std",
            "rmse_vol_pts",
            "test_snapshots",
            "test_quotes",
        ],
    )
    out["rank"] = out.groupby("fold")["importance"].rank(ascending=False, method="min").astype(int)
    return out[list(COLUMNS)]


@dataclass(frozen=True)
class StabilityReport:
    """Stability of permutation importance across folds (:func:`stability_report`).

    Attributes
    ----------
    table : DataFrame
        One row per input, sorted by mean importance (largest first): ``feature``, ``mean``
        and ``std`` (across folds, vol points; ``std`` NaN with one fold), ``share_positive``
        (share of folds with importance above ``min_importance``), ``worst_fold`` and ``worst``
        (the fold of the smallest importance and that importance), ``folds``, ``stable``
        (``share_positive >= min_share``) and ``selectable`` (False for ``k`` and ``t``: inputs
        of every learned engine, not state features).
    features : tuple of str
        The suggested state features: stable and selectable, in the order of
        :data:`FEATURES` (may be empty: an engine trains on ``k`` and ``t`` alone).
    min_share, min_importance : float
        The rule's settings.
    """

    table: pd.DataFrame
    features: tuple[str, ...]
    min_share: float
    min_importance: float


def stability_report(
    importance: pd.DataFrame, *, min_share: float = 1.0, min_importance: float = 0.0
) -> StabilityReport:
    """Per input: importance across folds, and whether it helps in (nearly) every fold.

    Parameters
    ----------
    importance : DataFrame
        :func:`feature_importance`'s table (columns ``fold``, ``feature``, ``importance`` at
        least; one row per fold and input).
    min_share : float in (0, 1]
        A feature is stable when its importance exceeds ``min_importance`` in at least this
        share of the folds (1: every fold).
    min_importance : float
        Vol points; the default 0 asks for a positive increase of the held-out RMSE (a feature
        the model ignores, importance exactly 0, is not stable).

    Returns
    -------
    StabilityReport

    Raises
    ------
    ValueError
        If a column is missing, ``importance`` is empty or has a fold/feature twice, or
        ``min_share`` is not in (0, 1].

    Examples
    --------
    >>> table = pd.DataFrame({"fold": ["calm", "calm", "crash", "crash"],
    ...                       "feature": ["atm_vol_30d", "put_share"] * 2,
    ...                       "importance": [1.5, 0.2, 0.5, -0.1]})
    >>> report = stability_report(table)
    >>> report.features
    ('atm_vol_30d',)
    >>> print(report.table[["feature", "share_positive", "worst_fold", "stable"]])
           feature  share_positive worst_fold  stable
    0  atm_vol_30d             1.0      crash    True
    1    put_share             0.5      crash   False
    """
    missing = sorted({"fold", "feature", "importance"} - set(importance.columns))
    if missing:
        raise ValueError(f"importance lacks columns {missing}")
    if importance.empty:
        raise ValueError("importance is empty")
    if importance.duplicated(["fold", "feature"]).any():
        raise ValueError("importance has a (fold, feature) pair twice")
    if not 0 < min_share <= 1:
        raise ValueError(f"min_share must be in (0, 1]; received {min_share}")
    rows = []
    for name, g in importance.groupby("feature", sort=False):
        values = g["importance"].to_numpy(dtype=float)
        worst = int(np.argmin(values))
        share = float(np.mean(values > min_importance))
        rows.append(
            {
                "feature": str(name),
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if values.size > 1 else float("nan"),
                "share_positive": share,
                "worst_fold": str(g["fold"].iloc[worst]),
                "worst": float(values[worst]),
                "folds": int(values.size),
                "stable": bool(share >= min_share),
                "selectable": str(name) in FEATURES,
            }
        )
    table = pd.DataFrame(rows).sort_values("mean", ascending=False, kind="stable")
    table = table.reset_index(drop=True)
    chosen = set(table.loc[table["stable"] & table["selectable"], "feature"])
    return StabilityReport(
        table=table,
        features=tuple(f for f in FEATURES if f in chosen),
        min_share=min_share,
        min_importance=min_importance,
    )


def select_stable_features(
    snapshots: Sequence[MarketSnapshot],
    regimes: Sequence[str] | pd.Series | np.ndarray,
    *,
    engine: str = "gbm",
    features: Sequence[str] = DEFAULT_FEATURES,
    n_repeats: int = 3,
    seed: int = 0,
    min_snapshots: int = 2,
    train_settings: Mapping[str, Any] | None = None,
    min_share: float = 1.0,
    min_importance: float = 0.0,
) -> tuple[str, ...]:
    """The state features stable across leave-one-regime-out folds, ready for ``features=``.

    :func:`feature_importance` then :func:`stability_report` (same parameters). ``k`` and ``t``
    are never in the answer (every learned engine takes them); nothing else is forced in: the
    engines need no state feature as an input (the 30-day ATM vol that scales their target is
    computed from the snapshot whether or not it is an input), so the answer may be empty.

    Returns
    -------
    tuple of str
        Stable state features, in the order of :data:`FEATURES`.
    """
    table = feature_importance(
        snapshots,
        regimes,
        engine=engine,
        features=features,
        n_repeats=n_repeats,
        seed=seed,
        min_snapshots=min_snapshots,
        train_settings=train_settings,
    )
    report = stability_report(table, min_share=min_share, min_importance=min_importance)
    return report.features


__all__ = [
    "COLUMNS",
    "PERMUTABLE",
    "StabilityReport",
    "derangement",
    "feature_importance",
    "select_stable_features",
    "stability_report",
]
