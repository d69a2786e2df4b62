"""``volguard serve`` under load, beside a plain FastAPI echo endpoint in the same run.

Two uvicorn servers run as subprocesses on 127.0.0.1: the guard service (fitted on synthetic
snapshots) and a FastAPI app whose ``POST /echo`` returns its JSON body. Each gets the same
load: ``--clients`` concurrent keep-alive connections, each sending ``--requests`` requests
(one contract per ``POST /price``); the client is a minimal asyncio HTTP/1.1 loop so that
the load generator costs little. Prints p50/p99 latency and requests per second of both.

Run: ``PYTHONPATH=src:. python benchmarks/bench_service.py --clients 50 --requests 40``
(loopback only; bounded request loops).
"""

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(kind: str, port: int) -> None:
    """The server subprocess: ``volguard`` (the guard service) or ``echo`` (plain FastAPI)."""
    import uvicorn

    if kind == "echo":
        from typing import Annotated, Any

        from fastapi import Body, FastAPI

        app = FastAPI()

        @app.post("/echo")
        def echo(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
            return body

        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
        return
    import pandas as pd
    from tests.guard.conftest import START, synthetic_snapshot

    from volguard.guard.runtime import Guard, GuardSettings
    from volguard.guard.service import GuardService, create_app
    from volguard.market.snapshot import MarketSnapshot
    from volguard.models import make_engine

    service = GuardService(
        Guard(make_engine("ssvi"), make_engine("black76-flat"), GuardSettings(warmup=3))
    )
    rng = np.random.default_rng(0)
    for i in range(5):
        quotes = synthetic_snapshot(START + pd.Timedelta(days=i), 0.45, -0.1, rng)
        service.update(MarketSnapshot.from_quotes(quotes))
    uvicorn.run(create_app(service), host="127.0.0.1", port=port, log_level="warning")


def _bodies(kind: str, distinct: bool, n: int) -> list[bytes]:
    """One request body, or ``n`` bodies of distinct strikes (each a quote not yet cached)."""
    expiry = "2026-02-19T09:00:00+00:00"  # a listed expiry of the served synthetic snapshot
    strikes = [90_000 + i for i in range(n)] if distinct else [90_000]
    return [
        json.dumps({"contracts": [{"expiry": expiry, "strike": k, "is_call": True}]}).encode()
        for k in strikes
    ]


async def _client(
    port: int, path: str, bodies: list[bytes], n: int, latencies: list[float]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for i in range(n):
        body = bodies[i % len(bodies)]
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        start = time.perf_counter()
        writer.write(head + body)
        await writer.drain()
        headers = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in headers.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        status = int(headers.split(b" ", 2)[1])
        await reader.readexactly(length)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}")
        latencies.append(time.perf_counter() - start)
    writer.close()


async def _load(port: int, path: str, bodies: list[list[bytes]], n: int) -> dict[str, float]:
    latencies: list[float] = []
    start = time.perf_counter()
    await asyncio.gather(*(_client(port, path, b, n, latencies) for b in bodies))
    elapsed = time.perf_counter() - start
    ms = np.array(latencies) * 1e3
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "requests_per_s": len(ms) / elapsed,
    }


def _wait(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


def bench(kind: str, clients: int, n: int) -> dict[str, dict[str, float]]:
    """Latency and throughput of ``kind``: the same contract again and again, and a new
    contract on every request (for ``/price``: cached quotes, then every quote computed)."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port)])
    try:
        _wait(port, proc)
        path = "/echo" if kind == "echo" else "/price"
        same = [_bodies(kind, False, 1)] * clients
        asyncio.run(_load(port, path, same, 5))  # warm the server
        fresh = _bodies(kind, True, clients * n)
        distinct = [fresh[i * n : (i + 1) * n] for i in range(clients)]
        return {
            "same contract": asyncio.run(_load(port, path, same, n)),
            "new contract": asyncio.run(_load(port, path, distinct, n)),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="per client")
    parser.add_argument("--serve", choices=("volguard", "echo"))
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    print(f"{args.clients} clients x {args.requests} requests, 127.0.0.1")
    for kind in ("echo", "volguard"):
        for case, r in bench(kind, args.clients, args.requests).items():
            name = "POST /echo (FastAPI)" if kind == "echo" else "POST /price (volguard)"
            print(
                f"{name:24s} {case:14s} p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  "
                f"{r['requests_per_s']:7.0f} req/s"
            )


if __name__ == "__main__":
    main()
