"""The quote store: a Parquet dataset partitioned by underlying and date, queried with DuckDB.

Layout (Hive-style, readable by DuckDB, Spark or Ray Data from a file system or object store)::

    STORE/_manifest.json                                   the commit log: sources and live parts
    STORE/quotes/underlying=BTC/date=2026-01-15/part-<tx>.parquet
    STORE/quarantine/underlying=BTC/date=2026-01-15/part-<tx>.parquet

Writes are atomic: a commit writes its parts and the next manifest under ``_staging/``, moves
the parts into place, and publishes by replacing ``_manifest.json`` in one ``os.replace``.
Readers list files from the manifest only, so a commit killed half-way leaves the store as it
was (a first commit killed half-way: an empty store); the next writer removes the orphans.
Partition columns live in the path, not in the files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from volguard.data.files import fsync_dir
from volguard.data.schema import QUARANTINE_COLUMNS, QUOTE_COLUMNS, Column, conform
from volguard.errors import ConfigError, StoreError
from volguard.market.snapshot import MarketSnapshot

MANIFEST = "_manifest.json"
STAGING = "_staging"
LOCK = "_lock"
TABLES = {"quotes": QUOTE_COLUMNS, "quarantine": QUARANTINE_COLUMNS}
MAX_DISTANCE = pd.Timedelta(days=1)
"""How far :meth:`QuoteStore.snapshot_at` may look for the nearest snapshot."""
UNKNOWN = "__unknown__"
"""Partition value for quarantined rows whose underlying or date could not be parsed."""


@dataclass(frozen=True)
class SourceRecord:
    """What one ingested source file contributed (kept in the manifest, keyed by content hash)."""

    sha256: str
    name: str
    format: str
    rows_read: int
    rows_clean: int
    rows_quarantined: int
    quarantine_by_reason: dict[str, int] = field(default_factory=dict)


class QuoteStore:
    """A quote store at ``root`` (see the module docstring for the layout).

    Use :func:`open_store` to open one; ``QuoteStore(root)`` on a missing folder is an empty store
    that the first commit creates.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._manifest = self._load_manifest()

    def _load_manifest(self) -> dict[str, Any]:
        path = self.root / MANIFEST
        if not path.exists():
            if self.root.is_file():
                raise StoreError(f"{self.root} is a file, not a store folder")
            # a first commit killed before its manifest leaves only the store's own names: an
            # empty store whose next writer removes them
            own = {LOCK, STAGING, *TABLES}
            if self.root.exists() and any(p.name not in own for p in self.root.iterdir()):
                raise StoreError(f"{self.root} is not empty and has no {MANIFEST}: not a store")
            return {"version": 1, "sources": {}, "parts": {name: [] for name in TABLES}}
        try:
            manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(manifest["sources"], dict) or set(manifest["parts"]) != set(TABLES):
                raise ValueError("keys 'sources' and 'parts' do not have the expected shape")
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{path}: unreadable store manifest ({exc})") from exc
        return manifest

    # ------------------------------------------------------------------ reading
    @property
    def sources(self) -> dict[str, SourceRecord]:
        """Ingested sources by content hash."""
        return {h: SourceRecord(**rec) for h, rec in self._manifest["sources"].items()}

    def part_files(
        self,
        table: str = "quotes",
        underlying: str | None = None,
        dates: Sequence[str] | None = None,
    ) -> list[Path]:
        """Committed Parquet files of ``table``, pruned by partition (path) where asked."""
        parts = [Path(p) for p in self._manifest["parts"][table]]
        if underlying is not None:
            parts = [p for p in parts if f"underlying={underlying}" in p.parts]
        if dates is not None:
            wanted = {f"date={d}" for d in dates}
            parts = [p for p in parts if wanted & set(p.parts)]
        return [self.root / p for p in parts]

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with views ``quotes`` and ``quarantine`` over this store."""
        con = _duckdb()
        for table, columns in TABLES.items():
            con.execute(f"CREATE VIEW {table} AS {self._select(table, columns, None, None)}")
        return con

    def read(
        self,
        table: str = "quotes",
        *,
        underlying: str | None = None,
        dates: Sequence[str] | None = None,
        where: str | None = None,
    ) -> pd.DataFrame:
        """Rows of ``table`` (``quotes`` or ``quarantine``) in the quote schema, ordered by ts."""
        sql = self._select(table, TABLES[table], underlying, dates)
        if where:
            sql = f"SELECT * FROM ({sql}) WHERE {where}"
        frame = _duckdb().execute(f"{sql} ORDER BY ts, instrument").df()
        return conform(frame, TABLES[table])

    def _select(
        self,
        table: str,
        columns: tuple[Column, ...],
        underlying: str | None,
        dates: Sequence[str] | None,
    ) -> str:
        files = self.part_files(table, underlying, dates)
        names = ", ".join(c.name for c in columns)
        if not files:
            empty = ", ".join(f"CAST(NULL AS {_duck_type(c)}) AS {c.name}" for c in columns)
            return f"SELECT {empty} WHERE FALSE"
        listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        source = f"read_parquet([{listing}], hive_partitioning = true, union_by_name = true)"
        return (
            f"SELECT {names} FROM (SELECT * REPLACE (NULLIF(underlying, '{UNKNOWN}') "
            f"AS underlying) FROM {source})"
        )

    def summary(self) -> pd.DataFrame:
        """Per underlying and UTC date: snapshots, quotes, expiries, one-sided, quarantined."""
        con = self.connect()
        clean = con.execute(
            "SELECT underlying, CAST(ts AS DATE) AS date, COUNT(DISTINCT ts) AS snapshots, "
            "COUNT(*) AS quotes, COUNT(DISTINCT expiry) AS expiries, "
            "COUNT(*) FILTER (WHERE flags LIKE '%no_bid%' OR flags LIKE '%no_ask%') AS one_sided "
            "FROM quotes GROUP BY ALL"
        ).df()
        bad = con.execute(
            "SELECT underlying, CAST(ts AS DATE) AS date, COUNT(*) AS quarantined "
            "FROM quarantine GROUP BY ALL"
        ).df()
        out = clean.merge(bad, on=["underlying", "date"], how="outer")
        counts = ["snapshots", "quotes", "expiries", "one_sided", "quarantined"]
        out[counts] = out[counts].fillna(0).astype("int64")
        out["date"] = pd.to_datetime(out["date"]).dt.strftime("%Y-%m-%d")
        return out.sort_values(["underlying", "date"], na_position="last").reset_index(drop=True)

    def timestamps(self, underlying: str) -> pd.DatetimeIndex:
        """Distinct snapshot times of ``underlying``, ascending."""
        files = self.part_files("quotes", underlying)
        if not files:
            return pd.DatetimeIndex([], tz="UTC")
        listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        stamps = (
            _duckdb()
            .execute(f"SELECT DISTINCT ts FROM read_parquet([{listing}]) ORDER BY ts")
            .df()["ts"]
        )
        return pd.DatetimeIndex(pd.to_datetime(stamps, utc=True))

    def snapshots(
        self,
        underlying: str,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
    ) -> Iterator[MarketSnapshot]:
        """Yield the :class:`MarketSnapshot` of ``underlying`` at each stored time in range."""
        stamps = self.timestamps(underlying)
        if start is not None:
            stamps = stamps[stamps >= utc(start)]
        if end is not None:
            stamps = stamps[stamps <= utc(end, end=True)]
        for day, day_stamps in pd.Series(stamps, index=stamps).groupby(stamps.date):
            rows = self.read("quotes", underlying=underlying, dates=[str(day)])
            for ts in day_stamps:
                yield MarketSnapshot.from_quotes(rows[rows["ts"] == ts])

    def snapshot_at(
        self,
        underlying: str,
        at: str | pd.Timestamp,
        within: pd.Timedelta = MAX_DISTANCE,
    ) -> MarketSnapshot:
        """The snapshot of ``underlying`` nearest to ``at``, at most ``within`` away.

        Raises
        ------
        StoreError
            If the store holds no quotes of ``underlying``, or none within ``within`` of ``at``
            (the message names the nearest snapshot and its distance).
        ConfigError
            If ``at`` is not a time.
        """
        wanted = utc(at)
        stamps = self.timestamps(underlying)
        if stamps.empty:
            raise StoreError(f"{self.root}: no quotes of underlying {underlying!r} in the store")
        nearest = stamps[int(abs((stamps - wanted).asi8).argmin())]
        if abs(nearest - wanted) > within:
            raise StoreError(
                f"{self.root}: no {underlying} snapshot within {_days(within)} of {wanted}; the "
                f"nearest is {nearest} ({_days(abs(nearest - wanted))} away; the store holds "
                f"{stamps[0]} to {stamps[-1]})"
            )
        rows = self.read("quotes", underlying=underlying, dates=[str(nearest.date())])
        return MarketSnapshot.from_quotes(rows[rows["ts"] == nearest])

    # ------------------------------------------------------------------ writing
    @contextlib.contextmanager
    def writing(self) -> Iterator[QuoteStore]:
        """Hold the store's write lock, after removing what a killed commit left behind."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK, "a+b") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise StoreError(f"{self.root} is being written by another process") from exc
            try:
                self._manifest = self._load_manifest()  # another writer may have committed
                self._remove_orphans()
                yield self
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def commit(self, tx: str, tables: dict[str, pd.DataFrame], sources: list[SourceRecord]) -> None:
        """Add ``tables`` (``quotes``/``quarantine`` rows) and ``sources`` in one atomic commit.

        Call inside :meth:`writing`. ``tx`` names the parts (unique per commit).
        """
        staging = self.root / STAGING / tx
        staging.mkdir(parents=True, exist_ok=False)
        try:
            new_parts: dict[str, list[str]] = {name: [] for name in TABLES}
            for name, frame in tables.items():
                for rel in _write_partitions(frame, name, TABLES[name], tx, staging):
                    new_parts[name].append(rel)
            manifest: dict[str, Any] = json.loads(json.dumps(self._manifest))
            for name, rels in new_parts.items():
                manifest["parts"][name].extend(rels)
            for rec in sources:
                manifest["sources"][rec.sha256] = rec.__dict__
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            for rels in new_parts.values():
                for rel in rels:
                    (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staging / rel, self.root / rel)
            os.replace(staging / MANIFEST, self.root / MANIFEST)  # the commit point
            fsync_dir(self.root)
            self._manifest = manifest
        finally:
            shutil.rmtree(self.root / STAGING, ignore_errors=True)  # we hold the lock: all ours

    def _remove_orphans(self) -> None:
        shutil.rmtree(self.root / STAGING, ignore_errors=True)
        live = {self.root / p for parts in self._manifest["parts"].values() for p in parts}
        for table in TABLES:
            for path in (self.root / table).rglob("*.parquet"):
                if path not in live:
                    path.unlink()


def open_store(path: str | Path) -> QuoteStore:
    """Open the quote store at ``path`` (a missing folder is an empty store).

    Examples
    --------
    >>> import tempfile
    >>> store = open_store(tempfile.mkdtemp())
    >>> len(store.summary())
    0
    """
    return QuoteStore(path)


def _write_partitions(
    frame: pd.DataFrame, table: str, columns: tuple[Column, ...], tx: str, staging: Path
) -> list[str]:
    if frame.empty:
        return []
    frame = conform(frame, columns)
    underlying = frame["underlying"].fillna(UNKNOWN).to_numpy(dtype=str)
    date = utc_dates(frame["ts"])
    order = np.lexsort((date, underlying))  # stable: rows keep their order within a partition
    keys = np.char.add(np.char.add(underlying[order], "/"), date[order])
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    schema = pa.schema(
        [pa.field(c.name, _arrow_type(c)) for c in columns if c.name != "underlying"]
    )
    arrow = pa.Table.from_pandas(
        frame.drop(columns="underlying").iloc[order], schema=schema, preserve_index=False
    )  # one conversion, sliced per partition
    rels = []
    for start, stop in zip(starts, [*starts[1:], len(keys)], strict=True):
        und, day = keys[start].split("/")
        rel = f"{table}/underlying={und}/date={day}/part-{tx}.parquet"
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(arrow.slice(start, stop - start), staging / rel, compression="zstd")
        rels.append(rel)
    return rels


def utc_dates(ts: pd.Series) -> np.ndarray:
    """``YYYY-MM-DD`` of each UTC timestamp (the date partition), ``__unknown__`` for NaT."""
    days = ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[D]")
    return np.where(np.isnat(days), UNKNOWN, days.astype(str))


def _arrow_type(column: Column) -> pa.DataType:
    return {
        "float64": pa.float64(),
        "int64": pa.int64(),
        "boolean": pa.bool_(),
        "string": pa.string(),
    }.get(column.dtype, pa.timestamp("ns", tz="UTC"))


def _duck_type(column: Column) -> str:
    return {"float64": "DOUBLE", "int64": "BIGINT", "boolean": "BOOLEAN", "string": "VARCHAR"}.get(
        column.dtype, "TIMESTAMPTZ"
    )


def _days(span: pd.Timedelta) -> str:
    days = span / pd.Timedelta(days=1)
    return f"{days:,.0f} days" if days >= 10 else f"{days:.2f} days"


def _duckdb() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def utc(value: str | pd.Timestamp, *, end: bool = False) -> pd.Timestamp:
    """A UTC time from ISO 8601 text or a Timestamp (naive means UTC).

    With ``end=True`` a date alone means the last instant of that day, so that an inclusive
    upper bound ``2026-01-14`` keeps the snapshots of the 14th.

    Raises
    ------
    ConfigError
        If ``value`` is not a time.

    Examples
    --------
    >>> str(utc("2026-01-14", end=True))
    '2026-01-14 23:59:59.999999999+00:00'
    >>> utc("2026-13-45")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    volguard.errors.ConfigError: '2026-13-45' is not a time; expected ISO 8601 such as ...
    """
    problem = ConfigError(f"{value!r} is not a time; expected ISO 8601 such as 2026-01-15T09:00")
    if isinstance(value, str) and value.strip().lower() in ("now", "today"):
        raise problem  # relative words are not reproducible
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise problem from exc
    if pd.isna(ts):
        raise problem
    if end and isinstance(value, str) and len(value.strip()) == len("YYYY-MM-DD"):
        ts = ts + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
