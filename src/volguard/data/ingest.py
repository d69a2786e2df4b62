"""Ingestion: files -> loader -> hygiene -> one atomic store commit, with counts that add up.

Every row read ends in exactly one table: ``quotes`` (clean, maybe flagged) or ``quarantine``
(with a reason code and its source file and line). A file-level problem in any input aborts the
whole ingest before anything is written. A file whose bytes are already in the store is skipped,
and a row whose (underlying, ts, instrument) is already stored is quarantined as ``duplicate``,
so ingesting the same data twice adds nothing.
"""

from __future__ import annotations

import hashlib
import pickle
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from volguard.data.files import replacing_dir
from volguard.data.hygiene import HygieneRules, classify, split
from volguard.data.loaders import LOADERS, Loader
from volguard.data.store import QuoteStore, SourceRecord, utc_dates
from volguard.errors import ConfigError, DataFileError


@dataclass
class IngestSummary:
    """Counts of one ingest; ``rows_read == rows_clean + rows_quarantined`` always."""

    files_read: int = 0
    files_skipped: int = 0
    rows_read: int = 0
    rows_clean: int = 0
    rows_quarantined: int = 0
    quarantine_by_reason: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def ingest(
    store: QuoteStore,
    paths: Iterable[str | Path],
    fmt: str,
    *,
    loader: Loader | None = None,
    rules: HygieneRules | None = None,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> IngestSummary:
    """Ingest ``paths`` of format ``fmt`` into ``store`` atomically.

    Parameters
    ----------
    store : QuoteStore
        The destination (see :func:`volguard.data.store.open_store`).
    paths : iterable of path
        Input files; order does not matter (rows keep their source file and line).
    fmt : str
        A name in :data:`volguard.data.loaders.LOADERS`; recorded in the store.
    loader : callable, optional
        Overrides the registry (the ``csv`` format needs one built from its mapping file).
    rules : HygieneRules, optional
        Bound-check tolerances.
    workers : int
        Processes that parse files in parallel (1 = in this process).
    progress : callable, optional
        Called with the number of files just finished, for progress bars.

    Raises
    ------
    volguard.errors.DataFileError
        If any file cannot be read as ``fmt``; nothing is written then.
    """
    if loader is None:
        if fmt not in LOADERS:
            raise ConfigError(f"format {fmt!r} is unknown; expected one of {sorted(LOADERS)}")
        loader = LOADERS[fmt]
    rules = rules or HygieneRules()
    summary = IngestSummary()
    with store.writing():
        known = set(store.sources)
        todo: dict[str, Path] = {}
        for path in map(Path, paths):
            digest = _sha256(path)
            if digest in known or digest in todo:
                summary.files_skipped += 1
                if progress:
                    progress(1)
            else:
                todo[digest] = path
        frames = _load_all(loader, list(todo.values()), workers, progress)
        if not frames:
            return summary
        rows = classify(pd.concat(frames, ignore_index=True), rules)
        _mark_stored_duplicates(store, rows)
        file_of_row = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
        records = [
            _record(digest, path, fmt, rows["reason"][file_of_row == i])
            for i, (digest, path) in enumerate(todo.items())
        ]
        clean, quarantine = split(rows)
        store.commit(_tx_name(todo), {"quotes": clean, "quarantine": quarantine}, records)
    summary.files_read = len(todo)
    summary.rows_read = len(rows)
    summary.rows_clean = len(clean)
    summary.rows_quarantined = len(quarantine)
    summary.quarantine_by_reason = dict(Counter(quarantine["reason"].tolist()).most_common())
    flags = clean["flags"].value_counts()  # count distinct combinations, then split them
    per_flag: Counter[str] = Counter()
    for combination, n in flags.items():
        per_flag.update({f: int(n) for f in str(combination).split(",") if f})
    summary.flags = dict(per_flag.most_common())
    return summary


def _load_all(
    loader: Loader, paths: list[Path], workers: int, progress: Callable[[int], None] | None
) -> list[pd.DataFrame]:
    if workers > 1 and len(paths) > 1 and _picklable(loader):
        with ProcessPoolExecutor(max_workers=workers) as pool:
            frames = []
            for frame in pool.map(loader, paths, chunksize=8):
                frames.append(frame)
                if progress:
                    progress(1)
            return frames
    frames = []
    for path in paths:
        frames.append(loader(path))
        if progress:
            progress(1)
    return frames


def _mark_stored_duplicates(store: QuoteStore, rows: pd.DataFrame) -> None:
    """Quarantine rows whose (underlying, ts, instrument) is already in the store."""
    open_rows = rows["reason"].isna() & rows["ts"].notna() & rows["underlying"].notna()
    if not open_rows.any():
        return
    candidates = rows.loc[open_rows, ["underlying", "ts", "instrument"]]
    dates = pd.Series(utc_dates(candidates["ts"]), index=candidates.index)
    stored = []
    for underlying, days in dates.groupby(candidates["underlying"]):
        files_exist = store.part_files("quotes", str(underlying), sorted(set(days)))
        if files_exist:
            keys = store.read("quotes", underlying=str(underlying), dates=sorted(set(days)))
            stored.append(keys[["underlying", "ts", "instrument"]])
    if not stored:
        return
    existing = pd.MultiIndex.from_frame(pd.concat(stored, ignore_index=True))
    hit = pd.MultiIndex.from_frame(candidates).isin(existing)
    index = candidates.index[np.asarray(hit)]
    rows.loc[index, "reason"] = "duplicate"


def _record(digest: str, path: Path, fmt: str, reason: pd.Series) -> SourceRecord:
    bad = reason.dropna()
    return SourceRecord(
        sha256=digest,
        name=path.name,
        format=fmt,
        rows_read=len(reason),
        rows_clean=len(reason) - len(bad),
        rows_quarantined=len(bad),
        quarantine_by_reason=dict(Counter(bad.tolist())),
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise DataFileError(
            path, f"cannot be read ({exc.strerror})", "an existing readable file"
        ) from exc
    return digest.hexdigest()


def _tx_name(todo: dict[str, Path]) -> str:
    return hashlib.sha256("".join(sorted(todo)).encode()).hexdigest()[:16]


def _picklable(obj: object) -> bool:
    try:
        pickle.dumps(obj)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


def build_store(
    dest: str | Path, sources: Iterable[tuple[str, Path]], *, workers: int = 1
) -> dict[str, IngestSummary]:
    """Build a new store at ``dest`` from ``(format, path)`` pairs, all or nothing.

    The store is built in a sibling temporary folder and renamed into place at the end, so a
    failure leaves ``dest`` as it was (an existing store there is replaced only on success).

    Returns
    -------
    dict
        The ingest summary per format.
    """
    by_format: dict[str, list[Path]] = {}
    for fmt, path in sources:
        by_format.setdefault(fmt, []).append(Path(path))
    with replacing_dir(dest) as building:
        store = QuoteStore(building)
        return {fmt: ingest(store, paths, fmt, workers=workers) for fmt, paths in by_format.items()}
