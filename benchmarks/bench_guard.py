"""Guard throughput and latency on the real Deribit snapshots, and ``POST /price`` under load.

1. Replay: BTC snapshots (all 304 files, loaded into memory first) through a ``Guard`` (ssvi
   primary, black76-flat fallback), as fast as possible. Refits run on the guard's background
   worker. With ``deferred`` refits (the default, deterministic) each update waits at its start
   for the refit the previous snapshot started; the update path is ``guard.update``'s wall time
   less that wait: quote updates per second = quotes / total update-path time, with p50/p99
   per snapshot and per quote. Reported beside it: the refits' own cost, the wait, the time to
   build the guarded-quotes table, the end-to-end time with the waits, and a run with
   ``async`` refits (never waited for; the fit competes for the interpreter lock).
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

from volguard.data.events import ReplaySource
from volguard.data.ingest import build_store
from volguard.data.store import open_store
from volguard.guard.runtime import Guard, GuardSettings
from volguard.guard.service import GuardService, create_app
from volguard.market.snapshot import MarketSnapshot
from volguard.models import make_engine


def _store(args: argparse.Namespace) -> Path:
    if args.store is not None:
        return Path(args.store)
    root = Path(tempfile.mkdtemp()) / "store"
    files = sorted((args.data / "deribit-svcj-snapshots" / "snapshots").glob("*.csv.gz"))
    build_store(root, [("deribit-snapshot", p) for p in files])
    return root


def _replay(snapshots: list[MarketSnapshot], guard: Guard) -> dict[str, np.ndarray]:
    """Per snapshot: the wall time of ``guard.update``, the part of it spent waiting for the
    background refit, the time to build the guarded-quotes table, and whether a refit was
    swapped in."""
    out: dict[str, list[float]] = {"wall": [], "wait": [], "table": [], "refit": []}
    for snap in snapshots:
        waited = guard.refitter.wait_seconds
        start = time.perf_counter()
        guard.update(snap)
        out["wall"].append(time.perf_counter() - start)
        out["wait"].append(guard.refitter.wait_seconds - waited)
        start = time.perf_counter()
        guard.guarded  # noqa: B018 - the table the replay and the service write
        out["table"].append(time.perf_counter() - start)
        decision = guard.decision
        out["refit"].append(decision is not None and "refit_ts" in decision.metrics)
    return {k: np.array(v) for k, v in out.items()}


def _ms(x: np.ndarray) -> str:
    return f"p50 {np.median(x) * 1e3:.2f} ms, p99 {np.percentile(x, 99) * 1e3:.2f} ms"


def bench_replay(store: Path) -> GuardService:
    snapshots = list(ReplaySource(open_store(store), ["BTC"]))
    quotes = np.array([len(s) for s in snapshots])
    warm = Guard(make_engine("ssvi"), make_engine("black76-flat"))
    for snap in snapshots[:3]:  # numba compilation, once per process
        warm.update(snap)
    warm.close()
    print(f"replay: {len(snapshots)} BTC snapshots, {quotes.sum():,} quote updates")

    guard = Guard(make_engine("ssvi"), make_engine("black76-flat"))
    r = _replay(snapshots, guard)
    path = r["wall"] - r["wait"]
    per_quote = path / quotes
    print("  deferred refits (deterministic: the refit started at snapshot i is swapped in at i+1)")
    print(
        f"    update path (guard.update less its wait for the refit): {path.sum():.2f} s, "
        f"**{quotes.sum() / path.sum():,.0f} quote updates/s**"
    )
    print(
        f"    per snapshot update: {_ms(path)}; per quote (update / its quotes): "
        f"p50 {np.median(per_quote) * 1e6:.2f} us, p99 {np.percentile(per_quote, 99) * 1e6:.2f} us"
    )
    print(
        f"    + guarded-quotes table: {_ms(r['table'])}; with it "
        f"{quotes.sum() / (path + r['table']).sum():,.0f} quote updates/s"
    )
    fits = guard.refitter
    print(
        f"    background refits: {fits.fits} fits, {fits.fit_seconds:.2f} s of fitting "
        f"(mean {fits.fit_seconds / max(fits.fits, 1) * 1e3:.1f} ms), updates waited "
        f"{r['wait'].sum():.2f} s for them"
    )
    print(
        f"    end to end, as fast as possible (waits included): {r['wall'].sum():.2f} s, "
        f"{quotes.sum() / r['wall'].sum():,.0f} quote updates/s"
    )
    guard.close()

    live = Guard(
        make_engine("ssvi"), make_engine("black76-flat"), GuardSettings(refit_mode="async")
    )
    r = _replay(snapshots, live)
    live.refitter.settle()
    print("  async refits (swapped in at the first update after they finish; never waited for)")
    print(
        f"    {r['wall'].sum():.2f} s, {quotes.sum() / r['wall'].sum():,.0f} quote updates/s; "
        f"per snapshot update: {_ms(r['wall'])}; {live.refitter.fits} refits swapped in "
        f"({live.refitter.fit_seconds:.2f} s of fitting on the worker thread)"
    )
    live.close()
    service = GuardService(Guard(make_engine("ssvi"), make_engine("black76-flat")))
    for snap in snapshots:
        service.update(snap)
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
