"""Guard throughput and latency on the real Deribit snapshots, and ``POST /price`` under load.

1. Replay: BTC snapshots (all 304 files, loaded into memory first) through a ``Guard`` (ssvi
   primary, black76-flat fallback); per snapshot the wall time of ``guard.update``; reports
   quote updates per second (quotes in the snapshots / total update time) and the p50/p99 of
   the per-snapshot latency, with and without the snapshots that refit the engine.
2. Service: a real uvicorn on 127.0.0.1 serving the guard after the replay; ``--clients``
   threads send ``POST /price`` (10 contracts each) for ``--seconds``; reports requests per
   second and the p50/p99 latency.

Run: ``.venv/bin/python benchmarks/bench_guard.py [--store DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import uvicorn

from volguard.data.ingest import build_store
from volguard.data.store import open_store
from volguard.guard.events import ReplaySource
from volguard.guard.runtime import Guard
from volguard.guard.service import GuardService, create_app
from volguard.models import make_engine


def _store(args: argparse.Namespace) -> Path:
    if args.store is not None:
        return Path(args.store)
    root = Path(tempfile.mkdtemp()) / "store"
    files = sorted((args.data / "deribit-svcj-snapshots" / "snapshots").glob("*.csv.gz"))
    build_store(root, [("deribit-snapshot", p) for p in files])
    return root


def bench_replay(store: Path) -> GuardService:
    snapshots = list(ReplaySource(open_store(store), ["BTC"]))
    service = GuardService(Guard(make_engine("ssvi"), make_engine("black76-flat")))
    times, refits, quotes = [], [], 0
    for snap in snapshots:
        start = time.perf_counter()
        service.update(snap)
        times.append(time.perf_counter() - start)
        decision = service.guard.decision
        refits.append(decision is not None and "fit_vol_pts" in decision.metrics)
        quotes += len(snap)
    t, r = np.array(times), np.array(refits)
    print(f"replay: {len(snapshots)} snapshots, {quotes} quote updates, {t.sum():.1f} s")
    print(
        f"  {quotes / t.sum():,.0f} quote updates/s; per snapshot p50 {np.median(t) * 1e3:.1f} ms,"
        f" p99 {np.percentile(t, 99) * 1e3:.1f} ms"
    )
    if (~r).any():
        print(
            f"  without a refit ({(~r).sum()} snapshots): p50 {np.median(t[~r]) * 1e3:.1f} ms, "
            f"p99 {np.percentile(t[~r], 99) * 1e3:.1f} ms"
        )
    return service


def bench_price(service: GuardService, clients: int, seconds: float) -> None:
    server = uvicorn.Server(
        uvicorn.Config(create_app(service), host="127.0.0.1", port=0, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    ctx = service.guard.context
    assert ctx is not None
    expiry = ctx.expiries[len(ctx.expiries) // 2].isoformat()
    forward = float(ctx.forwards.iloc[len(ctx.expiries) // 2])
    body = json.dumps(
        {
            "contracts": [
                {"expiry": expiry, "strike": float(forward * m), "is_call": bool(m >= 1)}
                for m in np.linspace(0.8, 1.2, 10)
            ]
        }
    ).encode()
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < stop:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/price",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            start = time.perf_counter()
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
            latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    server.should_exit = True
    lat = np.array(latencies)
    print(
        f"POST /price, {clients} clients, {seconds:.0f} s: {lat.size / seconds:,.0f} requests/s, "
        f"p50 {np.median(lat) * 1e3:.1f} ms, p99 {np.percentile(lat, 99) * 1e3:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = Path(os.environ.get("VOLGUARD_DATA", Path(__file__).parents[2] / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores")
    service = bench_replay(_store(args))
    bench_price(service, args.clients, args.seconds)


if __name__ == "__main__":
    main()
