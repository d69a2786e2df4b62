"""Acceptance: all 304 real Deribit snapshot files, every row accounted for (about 10 s)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from volguard.data import ingest, open_store


def test_all_snapshot_files_every_row_accounted_for(
    tmp_path: Path, shared_data: Path, snapshot_files: list[Path]
) -> None:
    index = pd.read_csv(shared_data / "deribit-svcj-snapshots" / "snapshot_index.csv")
    assert len(snapshot_files) == 304
    store = open_store(tmp_path / "s")
    summary = ingest(store, snapshot_files, "deribit-snapshot", workers=2)
    assert summary.rows_read == int(index["n_options"].sum()) == 493_072
    assert summary.rows_read == summary.rows_clean + summary.rows_quarantined
    assert summary.rows_quarantined == sum(summary.quarantine_by_reason.values())
    # one-sided quotes stay; the dataset's own bid counts say how many lack a bid
    assert summary.flags["no_bid"] == int((index["n_options"] - index["n_with_bid"]).sum())
    table = store.summary()
    per_currency = index.groupby("currency")["n_options"].sum()
    stored = (
        table.groupby("underlying")["quotes"].sum()
        + table.groupby("underlying")["quarantined"].sum()
    )
    assert stored.to_dict() == per_currency.to_dict()
    assert table["snapshots"].sum() == len(index)  # one snapshot per (file, currency)
    again = ingest(open_store(tmp_path / "s"), snapshot_files, "deribit-snapshot")
    assert (again.files_skipped, again.rows_read) == (304, 0)
