"""The store: atomic commits, idempotent ingest, duplicates, queries, and a kill mid-commit."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from volguard.data.hygiene import classify, split
from volguard.data.ingest import ingest
from volguard.data.store import QuoteStore, SourceRecord, open_store
from volguard.errors import DataFileError, StoreError


def _files(snapshot_files: list[Path], n: int) -> list[Path]:
    return snapshot_files[:n]


def _state(root: Path) -> dict[str, bytes]:
    """Every file of a store folder and its bytes (the lock file aside)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "_lock"
    }


def test_ingest_counts_add_up_and_twice_adds_nothing(
    tmp_path: Path, snapshot_files: list[Path]
) -> None:
    files = _files(snapshot_files, 4)
    store = open_store(tmp_path / "s")
    first = ingest(store, files, "deribit-snapshot", workers=2)
    raw_rows = sum(len(pd.read_csv(f)) for f in files)
    assert first.rows_read == raw_rows == first.rows_clean + first.rows_quarantined
    assert first.files_read == 4
    before = _state(tmp_path / "s")
    second = ingest(open_store(tmp_path / "s"), files, "deribit-snapshot")
    assert (second.files_skipped, second.rows_read) == (4, 0)
    assert _state(tmp_path / "s") == before
    assert len(open_store(tmp_path / "s").read("quotes")) == first.rows_clean


def test_rows_already_stored_are_quarantined_as_duplicates(
    tmp_path: Path, snapshot_files: list[Path]
) -> None:
    original = snapshot_files[0]
    copy = tmp_path / "renamed.csv"  # same rows, different bytes (not gzipped)
    copy.write_bytes(__import__("gzip").decompress(original.read_bytes()))
    store = open_store(tmp_path / "s")
    first = ingest(store, [original], "deribit-snapshot")
    again = ingest(store, [copy], "deribit-snapshot")
    assert again.files_read == 1
    assert again.rows_clean == 0
    assert again.quarantine_by_reason == {"duplicate": first.rows_read}
    quarantine = store.read("quarantine")
    assert set(quarantine["source"]) == {"renamed.csv"}
    assert len(store.read("quotes")) == first.rows_clean


def test_round_trip_keeps_schema_and_values(
    tmp_path: Path, make_rows: Callable[..., pd.DataFrame]
) -> None:
    rows = classify(make_rows({}, {"bid": float("nan")}, {"t": -1.0}))
    clean, quarantine = split(rows)
    store = open_store(tmp_path / "s")
    with store.writing():
        store.commit(
            "tx1",
            {"quotes": clean, "quarantine": quarantine},
            [SourceRecord("abc", "test.csv", "test", 3, 2, 1, {"expired": 1})],
        )
    back = open_store(tmp_path / "s")
    pd.testing.assert_frame_equal(back.read("quotes"), clean, check_like=False)
    assert back.read("quarantine")["reason"].tolist() == ["expired"]
    assert back.sources["abc"].quarantine_by_reason == {"expired": 1}
    summary = back.summary()
    assert summary[["quotes", "one_sided", "quarantined"]].values.tolist() == [[2, 1, 1]]


def test_snapshots_and_nearest_snapshot(tmp_path: Path, snapshot_files: list[Path]) -> None:
    crash = [p for p in snapshot_files if "20260205" in p.name or "20260206" in p.name]
    store = open_store(tmp_path / "s")
    ingest(store, crash, "deribit-snapshot")
    snaps = list(store.snapshots("BTC"))
    assert len(snaps) == len(crash)
    assert [s.ts for s in snaps] == sorted(s.ts for s in snaps)
    near = store.snapshot_at("BTC", snaps[1].ts + pd.Timedelta(minutes=5))
    assert near.ts == snaps[1].ts and len(near) == len(snaps[1])
    within = list(
        store.snapshots(
            "ETH",
            start=snaps[1].ts - pd.Timedelta(hours=1),
            end=snaps[2].ts + pd.Timedelta(hours=1),
        )
    )
    assert len(within) == 2
    with pytest.raises(StoreError, match="no quotes of underlying 'SOL'"):
        store.snapshot_at("SOL", "2026-02-05")


def test_a_bad_file_aborts_the_whole_ingest(tmp_path: Path, snapshot_files: list[Path]) -> None:
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(snapshot_files[1].read_bytes()[:5000])
    store = open_store(tmp_path / "s")
    ingest(store, snapshot_files[:1], "deribit-snapshot")
    before = _state(tmp_path / "s")
    with pytest.raises(DataFileError, match=r"broken\.csv\.gz"):
        ingest(store, [snapshot_files[2], broken], "deribit-snapshot")
    assert _state(tmp_path / "s") == before


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from volguard.data.ingest import ingest
    from volguard.data.store import open_store
    real_replace, moves = os.replace, [0]
    when, at = sys.argv[2].split(":")  # before:N, after:N (the Nth move) or after:manifest

    def replace_or_die(src, dst):
        moves[0] += 1
        hit = str(dst).endswith("_manifest.json") if at == "manifest" else moves[0] == int(at)
        if hit and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst)
        if hit:
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace_or_die
    ingest(open_store(sys.argv[1]), sys.argv[3:], "deribit-snapshot")
    """
)


@pytest.mark.parametrize("new_store", [True, False], ids=["new-store", "existing-store"])
@pytest.mark.parametrize("kill", ["before:1", "after:1", "after:3", "before:manifest"])
def test_a_kill_in_the_middle_leaves_the_store_unchanged(
    tmp_path: Path, snapshot_files: list[Path], kill: str, new_store: bool
) -> None:
    root = tmp_path / "s"
    if not new_store:
        ingest(open_store(root), snapshot_files[:1], "deribit-snapshot")
    before_rows = open_store(root).read("quotes")
    before_manifest = _state(root).get("_manifest.json")
    files = [str(p) for p in snapshot_files[5:8]]
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(root), kill, *files],
        capture_output=True,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    # the killed commit may have moved parts into place but never published them; a first
    # ingest killed leaves a folder every command still opens as the empty store it was
    assert _state(root).get("_manifest.json") == before_manifest
    pd.testing.assert_frame_equal(open_store(root).read("quotes"), before_rows)
    assert len(open_store(root).summary()) == (0 if new_store else 2)  # BTC, ETH on one day
    # the next writer cleans up and the same files then ingest completely
    summary = ingest(open_store(root), files, "deribit-snapshot")
    assert summary.files_read == 3
    assert not (root / "_staging").exists()
    live = {str(p) for p in open_store(root).part_files("quotes")}
    on_disk = {str(p) for p in (root / "quotes").rglob("*.parquet")}
    assert live == on_disk


def test_a_kill_after_the_commit_point_keeps_the_commit(
    tmp_path: Path, snapshot_files: list[Path]
) -> None:
    root = tmp_path / "s"
    files = [str(p) for p in snapshot_files[5:7]]
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(root), "after:manifest", *files],
        capture_output=True,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL
    assert len(open_store(root).sources) == 2
    assert ingest(open_store(root), files, "deribit-snapshot").files_skipped == 2
    assert not (root / "_staging").exists()


def test_not_a_store_and_corrupt_manifest(tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hello")
    with pytest.raises(StoreError, match="not a store"):
        open_store(tmp_path / "other")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "_manifest.json").write_text("{not json")
    with pytest.raises(StoreError, match="unreadable store manifest"):
        open_store(tmp_path / "bad")


def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    store = QuoteStore(tmp_path / "s")
    with (
        store.writing(),
        pytest.raises(StoreError, match="being written"),
        QuoteStore(tmp_path / "s").writing(),
    ):
        pass


def test_layout_is_readable_by_plain_duckdb(tmp_path: Path, snapshot_files: list[Path]) -> None:
    import duckdb

    root = tmp_path / "s"
    summary = ingest(open_store(root), snapshot_files[:2], "deribit-snapshot")
    [(n, underlyings)] = duckdb.sql(
        "SELECT COUNT(*), COUNT(DISTINCT underlying) FROM "
        f"read_parquet('{root}/quotes/**/*.parquet', hive_partitioning = true)"
    ).fetchall()
    assert (n, underlyings) == (summary.rows_clean, 2)
    assert json.loads((root / "_manifest.json").read_text())["version"] == 1
