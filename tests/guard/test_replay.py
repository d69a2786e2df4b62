"""Crash-safe replay: the audit log survives kill -9 and a restart resumes from it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.guard.conftest import synthetic_market, write_store
from volguard.guard.audit import AuditLog, read_log
from volguard.guard.policy import Decision
from volguard.guard.replay import (
    LOG,
    SETTINGS,
    ReplayMismatch,
    decisions_frame,
    guarded_frame,
    replay,
    run_settings,
)
from volguard.guard.runtime import Guard, GuardSettings
from volguard.models import make_engine

N, SHIFT = 24, 16
REPO = Path(__file__).resolve().parents[2]


def make_guard() -> Guard:
    return Guard(make_engine("ssvi"), make_engine("black76-flat"), GuardSettings(warmup=6))


RUNNER = textwrap.dedent(
    """
    import sys
    from volguard.data.store import open_store
    from volguard.guard.replay import replay
    from tests.guard.test_replay import make_guard
    replay(open_store(sys.argv[1]), "BTC", make_guard, sys.argv[2], speed=float(sys.argv[3]))
    """
)


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("guard-replay") / "store"
    write_store(root, synthetic_market(N, SHIFT))
    return root


def test_replay_writes_one_decision_per_snapshot(store_root: Path, tmp_path: Path) -> None:
    from volguard.data.store import open_store

    summary = replay(open_store(store_root), "BTC", make_guard, tmp_path)
    assert (summary.snapshots, summary.appended, summary.already_logged) == (N, N, 0)
    frame = decisions_frame(tmp_path)
    assert frame["seq"].tolist() == list(range(N))
    assert frame["ts"].is_monotonic_increasing
    assert {"z", "p_stress", "error_rate"} <= set(frame.columns)
    guarded = guarded_frame(tmp_path)
    # the first fit starts at the first snapshot and serves from the second (deferred swap)
    assert guarded["ts"].nunique() == N - 1
    assert guarded["ts"].min() == frame["ts"].iloc[1]
    # a second call over a complete run adds nothing
    again = replay(open_store(store_root), "BTC", make_guard, tmp_path)
    assert again.appended == 0 and len(read_log(tmp_path / LOG)) == N


def test_kill_9_mid_replay_then_restart_resumes_and_matches_a_clean_run(
    store_root: Path, tmp_path: Path
) -> None:
    from volguard.data.store import open_store

    clean = tmp_path / "clean"
    replay(open_store(store_root), "BTC", make_guard, clean)
    killed = tmp_path / "killed"
    # this checkout's sources first, whatever volguard the interpreter has installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    # market time is a day per snapshot; speed 86400 * 5 plays five snapshots a second
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(store_root), str(killed), str(86_400 * 5)], env=env
    )
    log = killed / LOG
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(read_log(log)) < N // 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = read_log(log)
    assert N // 2 <= len(before) < N  # killed mid-replay
    assert [d.seq for d in before] == list(range(len(before)))  # intact: no gap, no torn line
    summary = replay(open_store(store_root), "BTC", make_guard, killed)
    assert summary.resumed_from is not None
    after = read_log(log)
    assert [d.to_json() for d in after] == [d.to_json() for d in read_log(clean / LOG)]
    pd.testing.assert_frame_equal(guarded_frame(killed), guarded_frame(clean))


def test_a_torn_last_line_is_cut_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / LOG
    d = Decision(0, pd.Timestamp("2026-01-29", tz="UTC"), "BTC", "NORMAL", "NORMAL", "hold", "calm")
    with AuditLog(path) as log:
        log.append(d)
    with open(path, "ab") as handle:
        handle.write(b'{"seq": 1, "ts": "2026-01-30T00:0')  # killed while writing
    assert read_log(path) == [d]
    with AuditLog(path) as log:
        assert log.last_seq == 0
        log.append(Decision(1, d.ts, "BTC", "WATCH", "NORMAL", "escalate", "error_rate"))
    assert [r.seq for r in read_log(path)] == [0, 1]


def test_a_resume_with_other_settings_is_refused(store_root: Path, tmp_path: Path) -> None:
    from volguard.data.store import open_store

    store = open_store(store_root)
    replay(store, "BTC", make_guard, tmp_path, end=pd.Timestamp("2026-01-10", tz="UTC"))
    (tmp_path / "checkpoint.pkl").unlink()  # forces re-processing against the log

    def other() -> Guard:
        return Guard(make_engine("svi"), make_engine("black76-flat"), GuardSettings(warmup=2))

    with pytest.raises(ReplayMismatch, match="made with engine = SSVI"):
        replay(store, "BTC", other, tmp_path)
    # settings that claim to match but decide otherwise (a store changed under the folder)
    settings = run_settings(other(), "BTC", None)
    (tmp_path / SETTINGS).write_text(json.dumps(settings), encoding="utf-8")
    with pytest.raises(ReplayMismatch, match="differs from the logged one"):
        replay(store, "BTC", other, tmp_path)
