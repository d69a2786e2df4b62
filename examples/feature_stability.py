"""Which state features of a learned engine help out of regime, on the real Deribit BTC chains.

Permutation importance of ``gbm``'s inputs across leave-one-regime-out folds
(:func:`volguard.lab.features.feature_importance`) over seven date-range regimes of the
``deribit-svcj-snapshots`` data set (every third snapshot, ingested into a temporary store), then
the stability report (:func:`volguard.lab.features.stability_report`) as the Markdown table of
``docs/lab.md``::

    PYTHONPATH=src .venv/bin/python examples/feature_stability.py [--every 3] [--engine gbm]

Reads ``VOLGUARD_DATA`` (default ``../shared/data``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
from _svcj import REGIMES

from volguard.data.ingest import build_store
from volguard.data.store import open_store
from volguard.lab.features import feature_importance, stability_report
from volguard.lab.regimes import range_labels
from volguard.market.history import with_realized_vol
from volguard.models.learned.features import FEATURES


def _stamp(path: Path) -> pd.Timestamp:
    """The snapshot time in a file name ``deribit_options_snapshot_20260101T091835Z.csv.gz``."""
    return pd.Timestamp(path.name.split("_")[-1].split(".")[0])


def _markdown(frame: pd.DataFrame) -> str:
    """A Markdown table; numbers right-aligned, ``-0.0`` written ``0.0``."""
    numeric = [pd.api.types.is_float_dtype(frame[c]) for c in frame.columns]
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---:" if n else "---" for n in numeric) + " |"
    body = [
        "| "
        + " | ".join(str(v + 0.0) if n else str(v) for v, n in zip(row, numeric, strict=True))
        + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([head, rule, *body])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("VOLGUARD_DATA", Path(__file__).parents[2] / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--every", type=int, default=3, help="keep every n-th snapshot file")
    parser.add_argument("--engine", default="gbm")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-share", type=float, default=1.0)
    args = parser.parse_args()

    files = sorted((args.data / "deribit-svcj-snapshots" / "snapshots").glob("*.csv.gz"))
    stamps = pd.Series([_stamp(f) for f in files])
    labelled = (range_labels(stamps, REGIMES) != "other").to_numpy()
    chosen = [f for f, keep in zip(files, labelled, strict=True) if keep][:: args.every]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        build_store(Path(tmp) / "store", [("deribit-snapshot", f) for f in chosen])
        store = open_store(Path(tmp) / "store")
        snaps = with_realized_vol([store.snapshot_at("BTC", ts) for ts in store.timestamps("BTC")])
    labels = range_labels(pd.Series([s.ts for s in snaps]), REGIMES)
    snaps = [s for s, lab in zip(snaps, labels, strict=True) if lab != "other"]
    labels = labels[labels != "other"].tolist()
    counts = pd.Series(labels).value_counts().reindex(list(REGIMES)).fillna(0).astype(int)
    print(f"{len(snaps)} BTC snapshots (one file in {args.every}):", counts.to_dict())

    table = feature_importance(
        snaps, labels, engine=args.engine, features=FEATURES, n_repeats=args.repeats, seed=args.seed
    )
    elapsed = time.perf_counter() - start
    print(f"\n{args.engine}, {args.repeats} permutations, seed {args.seed} ({elapsed:.0f} s)")
    folds = table.drop_duplicates("fold").set_index("fold")
    print(
        "held-out IV RMSE (vol points):",
        folds["rmse_vol_pts"].round(2).to_dict(),
    )
    wide = table.pivot(index="feature", columns="fold", values="importance")
    wide = wide.reindex(index=table["feature"].unique(), columns=folds.index)
    print("\nimportance (vol points) by held-out regime:\n")
    print(_markdown(wide.round(2).reset_index()))

    report = stability_report(table, min_share=args.min_share)
    out = report.table.assign(
        mean=report.table["mean"].round(2),
        std=report.table["std"].round(2),
        share_positive=report.table["share_positive"].round(2),
        worst=report.table["worst"].round(2),
    ).drop(columns=["folds"])
    print(f"\nstability (min_share {args.min_share:g}):\n")
    print(_markdown(out))
    print("\nsuggested features:", report.features)


if __name__ == "__main__":
    main()
