"""`volguard serve`'s app under a real uvicorn on 127.0.0.1: price, health, metrics, stream,
and malformed requests."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import uvicorn
from websockets.sync.client import connect

from tests.guard.conftest import START, synthetic_market, synthetic_snapshot, write_store
from volguard.guard.runtime import Guard, GuardSettings
from volguard.guard.service import GuardService, create_app
from volguard.market.snapshot import MarketSnapshot
from volguard.models import make_engine

EXPIRY = (START + pd.Timedelta(days=4 + 45)).isoformat()  # a listed expiry of the last snapshot


def _snapshots(n: int, first: int = 0) -> list[MarketSnapshot]:
    rng = np.random.default_rng(first)
    return [
        MarketSnapshot.from_quotes(
            synthetic_snapshot(START + pd.Timedelta(days=i), 0.45, -0.1, rng)
        )
        for i in range(first, first + n)
    ]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, GuardService]]:
    service = GuardService(
        Guard(make_engine("ssvi"), make_engine("black76-flat"), GuardSettings(warmup=3))
    )
    for snap in _snapshots(5):
        service.update(snap)
    server = uvicorn.Server(
        uvicorn.Config(create_app(service), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"127.0.0.1:{port}", service
    server.should_exit = True
    thread.join(timeout=10)


def _http(base: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://{base}{path}", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read().decode(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def test_health_and_price(served: tuple[str, GuardService]) -> None:
    base, _ = served
    status, health = _http(base, "/health")
    assert status == 200 and health["status"] == "ok" and health["state"] == "NORMAL"
    body = {
        "contracts": [
            {"instrument": "BTC-15FEB26-90000-C"},
            {"expiry": EXPIRY, "strike": 80_000, "is_call": False},
        ]
    }
    status, out = _http(
        base, "/price", json.dumps({**body, "contracts": body["contracts"][1:]}).encode()
    )
    assert status == 200, out
    (quote,) = out["quotes"]
    assert out["state"] == "NORMAL" and out["engine"] == "ssvi"
    assert quote["bid_iv"] < quote["iv"] < quote["ask_iv"]
    assert quote["lower_iv"] < quote["iv"] < quote["upper_iv"]
    assert 0 < quote["bid_usd"] < quote["price_usd"] < quote["ask_usd"] < 80_000
    assert quote["delta"] < 0 and quote["vega"] > 0
    # an instrument whose expiry the snapshot does not list: a 422 that names it
    status, out = _http(base, "/price", json.dumps(body).encode())
    assert status == 422 and "contracts[0] (BTC-15FEB26-90000-C)" in out["detail"]
    assert "no forward" in out["detail"]


def test_a_contract_the_snapshot_cannot_price_is_a_422_naming_it(
    served: tuple[str, GuardService],
) -> None:
    base, _ = served
    cases = {  # (the synthetic expiries are at 09:00, so no Deribit name is listed)
        "ETH-19FEB26-3000-C": "underlying ETH; this service prices BTC",
        "BTC-27FEB26-90000-C": "is not listed",
        "BTC-1JAN26-90000-C": "expired",
    }
    for name, needle in cases.items():
        status, out = _http(
            base, "/price", json.dumps({"contracts": [{"instrument": name}]}).encode()
        )
        assert status == 422, (name, out)
        assert f"({name})" in out["detail"] and needle in out["detail"]
    explicit = {"expiry": EXPIRY, "strike": 3000, "is_call": True, "underlying": "ETH"}
    status, out = _http(base, "/price", json.dumps({"contracts": [explicit]}).encode())
    assert status == 422 and "this service prices BTC" in out["detail"]
    explicit["underlying"] = "btc"
    status, out = _http(base, "/price", json.dumps({"contracts": [explicit]}).encode())
    assert status == 200, out


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 422, "JSON"),
        (b"[]", 422, "valid dictionary"),
        (b'{"contracts": []}', 422, "at least 1"),
        (
            b'{"contracts": [{"strike": -5, "expiry": "2026-02-15", "is_call": true}]}',
            422,
            "greater than 0",
        ),
        (b'{"contracts": [{"strike": 90000}]}', 422, "give instrument"),
        (b'{"contracts": [{"instrument": "BTC-PERPETUAL"}]}', 422, "not a Deribit option"),
        (b'{"contracts": [{"instrument": "BTC-1JAN20-1-C"}]}', 422, "expired"),
        (b'{"contracts": [{"instrument": "BTC-15FEB26-1-C"}], "delta": "model"}', 422, "delta"),
    ],
)
def test_malformed_requests_get_a_4xx_with_a_message(
    served: tuple[str, GuardService], body: bytes, status: int, needle: str
) -> None:
    base, _ = served
    got, out = _http(base, "/price", body)
    assert got == status
    assert needle in json.dumps(out)
    assert _http(base, "/health")[0] == 200  # and the service lives on


def test_metrics_are_prometheus_text(served: tuple[str, GuardService]) -> None:
    base, service = served
    _http(base, "/price", b"{}")
    status, text = _http(base, "/metrics")
    assert status == 200 and isinstance(text, str)
    assert 'volguard_guard_state{underlying="BTC"} 0' in text
    assert "# TYPE volguard_price_requests_total counter" in text
    assert (
        f'volguard_price_request_errors_total{{underlying="BTC"}} {float(service.errors)!r}' in text
    )
    assert service.errors >= 1


def test_stream_pushes_decisions_and_answers_garbage(served: tuple[str, GuardService]) -> None:
    base, service = served
    with connect(f"ws://{base}/stream", open_timeout=10) as ws:
        first = json.loads(ws.recv(timeout=10))
        assert first["type"] == "decision" and first["seq"] == 4
        assert json.loads(ws.recv(timeout=10))["type"] == "guarded_quotes"
        ws.send("garbage {")
        assert json.loads(ws.recv(timeout=10))["type"] == "error"
        service.update(_snapshots(1, first=5)[0])
        nxt = json.loads(ws.recv(timeout=10))
        assert nxt["type"] == "decision" and nxt["seq"] == 5
        quotes = json.loads(ws.recv(timeout=10))
        assert quotes["seq"] == 5 and len(quotes["quotes"]) > 0


def test_volguard_serve_replays_a_store_and_answers(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_store(store, synthetic_market(6, None))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [
        "serve",
        "--store",
        str(store),
        "--underlying",
        "BTC",
        "--warmup",
        "3",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen([sys.executable, "-m", "volguard", *args], stderr=subprocess.PIPE)
    try:
        deadline, health = time.monotonic() + 120, {}
        while (
            time.monotonic() < deadline
            and health.get("last_snapshot") != "2026-01-06T09:00:00+00:00"
        ):
            time.sleep(0.2)
            try:
                health = _http(f"127.0.0.1:{port}", "/health")[1]
            except OSError:
                continue
        assert health["state"] == "NORMAL"
        status, out = _http(f"127.0.0.1:{port}", "/price", b'{"contracts": [{"instrument": "X"}]}')
        assert status == 422 and "not a Deribit option" in out["detail"]
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    first = stderr.decode().splitlines()[0]  # the startup line: where, what, how guarded
    assert first.startswith(f"volguard serve: http://127.0.0.1:{port} prices BTC from ")
    assert "no token" in first and "/ready" in first


def _server(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return server, thread, f"127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def _raw(base: str, head: str, body: bytes = b"") -> tuple[int, bytes, float]:
    """Send a raw request; the status, the reply and the seconds it took."""
    host, port = base.split(":")
    start = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(head.encode() + body)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    return int(reply.split(b" ", 2)[1]), reply, time.monotonic() - start


def test_a_body_over_the_limit_is_a_413_unread_and_never_echoed(
    served: tuple[str, GuardService],
) -> None:
    base, _ = served
    # announced 50 MB, nothing sent: the answer comes from the headers alone
    head = (
        "POST /price HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 50000000\r\nConnection: close\r\n\r\n"
    )
    status, reply, seconds = _raw(base, head)
    assert status == 413 and b"1000000 bytes" in reply and seconds < 5
    # a malformed body under the limit: the reply names the problem, not the body
    marker = "Z" * 5000
    body = json.dumps({"contracts": [{"instrument": 7, "note": marker}]}).encode()
    status, out = _http(base, "/price", body)
    assert status == 422 and marker not in json.dumps(out) and "input" not in out["detail"][0]
    assert _http(base, "/health")[0] == 200


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_json_nan_and_infinity_are_a_422(served: tuple[str, GuardService], value: str) -> None:
    base, _ = served
    body = f'{{"contracts": [{{"expiry": "{EXPIRY}", "strike": {value}, "is_call": true}}]}}'
    status, out = _http(base, "/price", body.encode())
    assert status == 422, out
    assert out["detail"][0]["loc"][-1] == "strike"


def test_ready_only_once_an_engine_is_fitted_and_the_token_guards_the_rest() -> None:
    service = GuardService(
        Guard(make_engine("ssvi"), make_engine("black76-flat"), GuardSettings(warmup=3))
    )
    server, thread, base = _server(create_app(service, token="s3cret"))
    try:
        status, health = _http(base, "/health")
        assert status == 200 and health["ready"] is False  # alive, not ready
        assert _http(base, "/ready")[0] == 503
        assert _http(base, "/price", b'{"contracts": [{"instrument": "X"}]}')[0] == 401
        for snapshot in _snapshots(2):  # fitted on the first, served from the second
            service.update(snapshot)
        assert _http(base, "/ready") == (200, {"ready": True})
        request = urllib.request.Request(
            f"http://{base}/metrics", headers={"Authorization": "Bearer s3cret"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        assert _http(base, "/metrics")[0] == 401
        with (
            pytest.raises(Exception),  # noqa: B017 (the handshake is refused)
            connect(f"ws://{base}/stream", open_timeout=10) as ws,
        ):
            ws.recv(timeout=5)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_repeated_quotes_are_served_from_the_cache_until_the_next_snapshot(
    served: tuple[str, GuardService],
) -> None:
    base, service = served
    assert service.guard.context is not None
    expiry = service.guard.context.expiries[2].isoformat()
    body = json.dumps({"contracts": [{"expiry": expiry, "strike": 85_000, "is_call": True}]})
    status, first = _http(base, "/price", body.encode())
    assert status == 200, first
    assert _http(base, "/price", body.encode())[1] == first
    assert any(c.strike == 85_000 for c, _ in service._view.quotes)
    with service._lock:  # an update in progress (a slow one) delays no request
        assert _http(base, "/price", body.encode()) == (200, first)
        assert _http(base, "/health")[0] == 200
    service.update(_snapshots(1, first=6)[0])
    assert not service._view.quotes  # a new snapshot: quotes computed afresh


def test_a_date_only_expiry_is_the_venue_expiry_time() -> None:
    from volguard.guard.service import Contract

    contract = Contract.model_validate({"expiry": "2026-02-27", "strike": 1, "is_call": True})
    assert (
        contract.expiry is not None and contract.expiry.isoformat() == "2026-02-27T08:00:00+00:00"
    )
