"""Splitters of option panels, with the scikit-learn protocol (``split``, ``get_n_splits``).

A panel is a quote table of many snapshots (quote schema: ``ts``, ``expiry``, ``k`` or
``strike``/``forward``, ``bid``, ``ask``, ...); every splitter yields ``(train, test)`` arrays of
row positions. Three families:

* nowcast, within one snapshot: :class:`NowcastSplit` (random, wings, illiquid, whole expiries);
* forecast: :class:`ForecastSplit` (fit at snapshot ``i``, predict snapshot ``i + h``);
* cross-regime and time-series: :class:`LeaveOneRegimeOut`, :class:`WalkForward` (with a gap),
  :class:`PurgedKFold` and :class:`CombinatorialPurgedCV` (Lopez de Prado 2018, ch. 7 and 12),
  adapted to option panels: an option quoted at ``ts`` carries information until its
  ``expiry``, so a training row whose ``[ts, expiry]`` interval overlaps a test fold's time span
  is purged, and training rows quoted within ``embargo`` after a test fold are dropped too.

References
----------
.. [1] Lopez de Prado, M. (2018). Advances in Financial Machine Learning. Wiley, chapters 7
   (purged k-fold, embargo) and 12 (combinatorial purged cross-validation).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from math import comb
from typing import Literal

import numpy as np
import pandas as pd

from volguard._typing import FloatArray, IntArray

Split = tuple[IntArray, IntArray]

NowcastMode = Literal["random", "wings", "illiquid", "expiry"]


def _positions(mask: np.ndarray) -> IntArray:
    return np.flatnonzero(mask).astype(np.int64)


def _log_moneyness(panel: pd.DataFrame) -> FloatArray:
    if "k" in panel:
        return panel["k"].to_numpy(dtype=float)
    k: FloatArray = np.log(panel["strike"].to_numpy(dtype=float) / panel["forward"].to_numpy(float))
    return k


@dataclass(frozen=True)
class NowcastSplit:
    """Hold out part of each snapshot and predict it from the rest of the same snapshot.

    Parameters
    ----------
    mode : {'random', 'wings', 'illiquid', 'expiry'}
        ``random``: a ``test_size`` share of each snapshot's two-sided quotes, ``n_splits``
        times. ``wings``: per expiry, the two-sided quotes beyond the ``1 - test_size`` central
        range of ``k`` (extrapolation). ``illiquid``: train on the two-sided quotes, test on the
        one-sided ones (scored against their mark). ``expiry``: leave one whole expiry out at a
        time (interpolation across the term structure), the first and last excepted.
    test_size : float
        Share held out (``random``, ``wings``).
    n_splits : int
        Repetitions of ``random``.
    seed : int
        Seed of ``random``.

    Examples
    --------
    >>> panel = pd.DataFrame({"ts": [0] * 6, "expiry": [1, 1, 1, 2, 2, 2],
    ...                       "k": [-0.2, 0.0, 0.2, -0.3, 0.0, 0.3],
    ...                       "bid": [1.0] * 6, "ask": [2.0] * 6})
    >>> [(tr.tolist(), te.tolist()) for tr, te in NowcastSplit("wings", 0.5).split(panel)]
    [([1, 4], [0, 2, 3, 5])]
    """

    mode: NowcastMode = "random"
    test_size: float = 0.2
    n_splits: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("random", "wings", "illiquid", "expiry"):
            raise ValueError(
                f"mode {self.mode!r} is unknown; expected random, wings, illiquid or expiry"
            )
        if not 0 < self.test_size < 1:
            raise ValueError(f"test_size must be in (0, 1), got {self.test_size}")
        if self.n_splits < 1:
            raise ValueError(f"n_splits must be >= 1, got {self.n_splits}")

    def get_n_splits(self, panel: pd.DataFrame | None = None) -> int:
        """Splits per panel (for ``expiry``: the interior expiries of the panel's snapshots)."""
        if self.mode == "random":
            return self.n_splits
        if self.mode == "expiry":
            if panel is None:
                raise ValueError("mode 'expiry' needs the panel to count its splits")
            return sum(max(g["expiry"].nunique() - 2, 0) for _, g in panel.groupby("ts"))
        return 1

    def split(self, panel: pd.DataFrame) -> Iterator[Split]:
        """Yield ``(train, test)`` row positions; every split stays within one snapshot set."""
        side = ("bid", "ask") if "bid" in panel else ("bid_iv", "ask_iv")  # prices, else vols
        bid = panel[side[0]].to_numpy(dtype=float, na_value=np.nan)
        ask = panel[side[1]].to_numpy(dtype=float, na_value=np.nan)
        two_sided = np.isfinite(bid) & np.isfinite(ask)
        if self.mode == "illiquid":
            yield _positions(two_sided), _positions(~two_sided)
        elif self.mode == "random":
            rng = np.random.default_rng(self.seed)
            for _ in range(self.n_splits):
                test = two_sided & (rng.random(len(panel)) < self.test_size)
                yield _positions(two_sided & ~test), _positions(test)
        elif self.mode == "wings":
            k = _log_moneyness(panel)
            wing = np.zeros(len(panel), dtype=bool)
            for rows in panel.groupby(["ts", "expiry"], sort=False).indices.values():
                rows = rows[two_sided[rows]]
                if rows.size < 3:
                    continue
                lo, hi = np.quantile(k[rows], [self.test_size / 2, 1 - self.test_size / 2])
                wing[rows[(k[rows] < lo) | (k[rows] > hi)]] = True
            yield _positions(two_sided & ~wing), _positions(wing)
        else:
            for ts, g in panel.groupby("ts", sort=True):
                expiries = np.sort(g["expiry"].unique())
                in_snapshot = (panel["ts"] == ts).to_numpy()
                for expiry in expiries[1:-1]:
                    held = in_snapshot & (panel["expiry"] == expiry).to_numpy()
                    yield _positions(in_snapshot & ~held & two_sided), _positions(held & two_sided)


@dataclass(frozen=True)
class ForecastSplit:
    """Fit on snapshot ``i``, predict snapshot ``i + horizon`` (given only its forwards).

    Examples
    --------
    >>> panel = pd.DataFrame({"ts": [0, 0, 1, 1, 2]})
    >>> [(a.tolist(), b.tolist()) for a, b in ForecastSplit(horizon=1).split(panel)]
    [([0, 1], [2, 3]), ([2, 3], [4])]
    """

    horizon: int = 1

    def get_n_splits(self, panel: pd.DataFrame) -> int:
        return max(panel["ts"].nunique() - self.horizon, 0)

    def split(self, panel: pd.DataFrame) -> Iterator[Split]:
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1 snapshot, got {self.horizon}")
        stamps = np.sort(panel["ts"].unique())
        ts = panel["ts"].to_numpy()
        for i in range(len(stamps) - self.horizon):
            yield _positions(ts == stamps[i]), _positions(ts == stamps[i + self.horizon])


@dataclass(frozen=True)
class LeaveOneRegimeOut:
    """Train on every regime but one, test on that one (``groups``: the regime of each row).

    Examples
    --------
    >>> groups = np.array(["calm", "calm", "crash", "rally"])
    >>> [(a.tolist(), b.tolist()) for a, b in LeaveOneRegimeOut().split(None, groups=groups)]
    [([2, 3], [0, 1]), ([0, 1, 3], [2]), ([0, 1, 2], [3])]
    """

    def get_n_splits(self, panel: object = None, groups: np.ndarray | None = None) -> int:
        if groups is None:
            raise ValueError("groups (the regime of each row) is required")
        return len(pd.unique(np.asarray(groups)))

    def split(
        self, panel: object, y: object = None, groups: np.ndarray | None = None
    ) -> Iterator[Split]:
        if groups is None:
            raise ValueError("groups (the regime of each row) is required")
        labels = np.asarray(groups)
        for label in pd.unique(labels):
            held = labels == label
            yield _positions(~held), _positions(held)


def _times(panel: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Quote times and label end times (the expiry) as int64 nanoseconds."""
    ts = pd.DatetimeIndex(panel["ts"]).as_unit("ns").asi8
    end = pd.DatetimeIndex(panel["expiry"]).as_unit("ns").asi8 if "expiry" in panel else ts
    return ts, end


def _purged_train(
    ts: np.ndarray, end: np.ndarray, test: np.ndarray, embargo_ns: int, candidates: np.ndarray
) -> np.ndarray:
    """Candidates minus rows whose [ts, end] overlaps a test block or falls in its embargo."""
    keep = candidates.copy()
    stamps = np.unique(ts[test])
    # contiguous blocks of test snapshot times: purge and embargo each block on its own
    all_stamps = np.unique(ts)
    position = np.searchsorted(all_stamps, stamps)
    breaks = np.flatnonzero(np.diff(position) > 1)
    for block in np.split(np.arange(stamps.size), breaks + 1):
        start, stop = stamps[block[0]], stamps[block[-1]]
        overlaps = (ts <= stop) & (end >= start)
        embargoed = (ts > stop) & (ts <= stop + embargo_ns)
        keep &= ~(overlaps | embargoed)
    return keep


@dataclass(frozen=True)
class PurgedKFold:
    """K-fold over snapshot times with purging and an embargo ([1]_, ch. 7).

    The snapshots are cut into ``n_splits`` contiguous folds. For each test fold, a training
    row is purged when its ``[ts, expiry]`` interval overlaps the fold's time span (its label
    is still alive during the test), and rows quoted within ``embargo`` after the fold are
    dropped.

    Parameters
    ----------
    n_splits : int
    embargo : str or Timedelta
        For example ``"1D"``; ``"0s"`` for none.

    Examples
    --------
    >>> day = pd.Timestamp("2026-01-01", tz="UTC")
    >>> panel = pd.DataFrame({"ts": [day + pd.Timedelta(days=i) for i in range(6)]})
    >>> panel["expiry"] = panel["ts"] + pd.Timedelta(hours=36)
    >>> [(a.tolist(), b.tolist()) for a, b in PurgedKFold(3, "1D").split(panel)]
    [([3, 4, 5], [0, 1]), ([0, 5], [2, 3]), ([0, 1, 2], [4, 5])]
    """

    n_splits: int = 5
    embargo: str | pd.Timedelta = "0s"

    def get_n_splits(self, panel: object = None) -> int:
        return self.n_splits

    def split(self, panel: pd.DataFrame) -> Iterator[Split]:
        ts, end = _times(panel)
        stamps = np.unique(ts)
        if self.n_splits < 2 or self.n_splits > stamps.size:
            raise ValueError(
                f"n_splits must be in [2, {stamps.size}] (the panel's snapshots), "
                f"got {self.n_splits}"
            )
        embargo_ns = pd.Timedelta(self.embargo).value
        everything = np.ones(ts.size, dtype=bool)
        for fold in np.array_split(stamps, self.n_splits):
            test = np.isin(ts, fold)
            train = _purged_train(ts, end, test, embargo_ns, everything & ~test)
            yield _positions(train), _positions(test)


@dataclass(frozen=True)
class CombinatorialPurgedCV:
    """Combinatorial purged cross-validation ([1]_, ch. 12): every choice of ``n_test_groups``
    of ``n_groups`` contiguous snapshot groups is a test set, purged and embargoed as in
    :class:`PurgedKFold`. ``C(n_groups, n_test_groups)`` splits; each group is tested in
    ``C(n_groups - 1, n_test_groups - 1)`` of them, which yields that many backtest paths.

    Examples
    --------
    >>> CombinatorialPurgedCV(6, 2).get_n_splits(), CombinatorialPurgedCV(6, 2).n_paths
    (15, 5)
    """

    n_groups: int = 6
    n_test_groups: int = 2
    embargo: str | pd.Timedelta = "0s"

    @property
    def n_paths(self) -> int:
        """Backtest paths: the number of splits in which each group is tested."""
        return comb(self.n_groups - 1, self.n_test_groups - 1)

    def get_n_splits(self, panel: object = None) -> int:
        return comb(self.n_groups, self.n_test_groups)

    def split(self, panel: pd.DataFrame) -> Iterator[Split]:
        ts, end = _times(panel)
        stamps = np.unique(ts)
        if not 1 <= self.n_test_groups < self.n_groups <= stamps.size:
            raise ValueError(
                f"need 1 <= n_test_groups < n_groups <= {stamps.size} snapshots, got "
                f"{self.n_test_groups} and {self.n_groups}"
            )
        groups = np.array_split(stamps, self.n_groups)
        embargo_ns = pd.Timedelta(self.embargo).value
        everything = np.ones(ts.size, dtype=bool)
        for chosen in combinations(range(self.n_groups), self.n_test_groups):
            test = np.isin(ts, np.concatenate([groups[g] for g in chosen]))
            train = _purged_train(ts, end, test, embargo_ns, everything & ~test)
            yield _positions(train), _positions(test)


@dataclass(frozen=True)
class WalkForward:
    """Expanding-window walk forward over snapshot times with a gap before each test fold.

    The snapshots are cut into ``n_splits + 1`` contiguous blocks; split ``i`` trains on blocks
    ``0..i`` minus the last ``gap`` snapshots before the test block, and tests on block
    ``i + 1``.

    Examples
    --------
    >>> panel = pd.DataFrame({"ts": np.arange(6)})
    >>> [(a.tolist(), b.tolist()) for a, b in WalkForward(n_splits=2, gap=1).split(panel)]
    [([0], [2, 3]), ([0, 1, 2], [4, 5])]
    """

    n_splits: int = 4
    gap: int = 0

    def get_n_splits(self, panel: object = None) -> int:
        return self.n_splits

    def split(self, panel: pd.DataFrame) -> Iterator[Split]:
        ts = panel["ts"].to_numpy()
        stamps = np.unique(ts)
        if self.n_splits < 1 or self.n_splits + 1 > stamps.size:
            raise ValueError(f"n_splits must be in [1, {stamps.size - 1}], got {self.n_splits}")
        blocks = np.array_split(stamps, self.n_splits + 1)
        for i in range(self.n_splits):
            seen = np.concatenate(blocks[: i + 1])
            seen = seen[: max(seen.size - self.gap, 0)]
            yield _positions(np.isin(ts, seen)), _positions(np.isin(ts, blocks[i + 1]))


def probability_of_backtest_overfitting(performance: np.ndarray, n_splits: int = 8) -> float:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    Parameters
    ----------
    performance : ndarray, shape (n_periods, n_candidates)
        A score per period (higher is better, e.g. minus the IV RMSE of each snapshot) of each
        candidate engine or setting.
    n_splits : int
        Even number of contiguous period blocks ``S``; every half of them is an in-sample set.

    Returns
    -------
    float
        The share of the ``C(S, S/2)`` in-sample/out-of-sample splits in which the in-sample
        best candidate ranks below the median out of sample (logit <= 0).

    References
    ----------
    Bailey, D. H., Borwein, J., Lopez de Prado, M. and Zhu, Q. J. (2017). The probability of
    backtest overfitting. Journal of Computational Finance 20(4), 39-69.
    doi:10.21314/JCF.2016.322

    Examples
    --------
    A candidate better in every period is never overfitted:

    >>> perf = np.column_stack([np.ones(16), np.zeros(16), -np.ones(16)])
    >>> probability_of_backtest_overfitting(perf, n_splits=4)
    0.0
    """
    perf = np.asarray(performance, dtype=float)
    if perf.ndim != 2 or perf.shape[1] < 2:
        raise ValueError("performance must be (n_periods, n_candidates) with >= 2 candidates")
    if n_splits < 2 or n_splits % 2 or n_splits > perf.shape[0]:
        raise ValueError(f"n_splits must be even and in [2, {perf.shape[0]}], got {n_splits}")
    blocks = np.array_split(np.arange(perf.shape[0]), n_splits)
    n_candidates = perf.shape[1]
    below = 0
    total = 0
    for chosen in combinations(range(n_splits), n_splits // 2):
        inside = np.concatenate([blocks[b] for b in chosen])
        outside = np.concatenate([blocks[b] for b in range(n_splits) if b not in chosen])
        best = int(np.argmax(perf[inside].mean(axis=0)))
        oos = perf[outside].mean(axis=0)
        rank = (np.argsort(np.argsort(oos))[best] + 1) / (n_candidates + 1)  # in (0, 1)
        below += int(np.log(rank / (1 - rank)) <= 0)
        total += 1
    return below / total
