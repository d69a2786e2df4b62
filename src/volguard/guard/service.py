"""The guard as a service: FastAPI app over a :class:`GuardService`.

``POST /price``
    contracts in (Deribit instrument names, or ``expiry``/``strike``/``is_call``), guarded vol,
    price and greeks out, with the conformal interval, the widened bid/ask and the guard's state.
``GET /health``
    liveness: always 200 while the process serves, with the state, whether it is ready and the
    time of the last snapshot.
``GET /ready``
    readiness: 200 once an engine is fitted (``/price`` can answer), 503 before.
``GET /metrics``
    Prometheus text format: state, decisions, requests and errors, ``z``, stress probability,
    conformal half-width.
``WS /stream``
    each new decision and its guarded quotes as JSON messages (server push; anything a client
    sends is answered with an error message and otherwise ignored).

A malformed request gets a 4xx with a message naming the field, never echoing the body (a JSON
NaN or Infinity is a 422); a body over ``max_body`` bytes is a 413 answered from its headers,
unread. A valid request that the guard cannot price says why: no snapshot yet is a 503; a
contract of another underlying, an expiry the served snapshot does not list (or already past),
a strike without a finite price is a 422 naming the contract. The service never lets an input
reach a 500. With a ``token``, every path but ``/health`` and ``/ready`` needs the header
``Authorization: Bearer TOKEN`` (401 without it).

Quotes are computed once per contract and served snapshot: the guard's answer for a contract
changes only when a snapshot is fed (:meth:`GuardService.update` clears the cache), so repeated
requests between snapshots cost a dictionary lookup.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from volguard.guard.policy import Decision, State
from volguard.guard.runtime import MIN_VOL, Guard
from volguard.kernels.api import black76_price
from volguard.market.deribit import DERIBIT_EXPIRY_HOUR_UTC, parse_deribit_instrument
from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import SurfaceEngine

MAX_CONTRACTS = 10_000
STREAM_POLL_S = 0.1
MAX_BODY_BYTES = 1_000_000
"""Default request body limit (bytes); larger bodies get a 413 without being read."""
CACHE_SIZE = 100_000
"""Most contracts whose quotes are kept between two snapshots."""
OPEN_PATHS = ("/health", "/ready")
"""Paths that need no token (orchestrators' probes)."""


class Contract(BaseModel):
    """One contract: ``instrument`` (e.g. ``BTC-27FEB26-90000-C``) or all three of ``expiry``
    (UTC), ``strike`` (USD) and ``is_call``, with ``underlying`` optional (checked if given)."""

    model_config = ConfigDict(frozen=True)  # hashable: the key of the quote cache

    instrument: str | None = None
    underlying: str | None = None
    expiry: datetime | None = None
    strike: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    is_call: bool | None = None

    @field_validator("expiry", mode="before")
    @classmethod
    def _venue_time(cls, value: Any) -> Any:
        # a date alone is the venue's expiry time that day (as everywhere contracts are taken)
        if isinstance(value, str) and len(value.strip()) == len("YYYY-MM-DD"):
            return f"{value.strip()}T{DERIBIT_EXPIRY_HOUR_UTC:02d}:00:00Z"
        return value

    @model_validator(mode="after")
    def _one_way(self) -> Contract:
        explicit = (self.expiry, self.strike, self.is_call)
        if self.instrument is None and any(v is None for v in explicit):
            raise ValueError("give instrument, or all of expiry, strike and is_call")
        return self


class PriceRequest(BaseModel):
    contracts: list[Contract] = Field(min_length=1, max_length=MAX_CONTRACTS)
    delta: Literal["sticky-strike", "sticky-moneyness"] = "sticky-strike"


@dataclass(frozen=True)
class _View:
    """What pricing reads of the guard after one update, published in one assignment so that
    a request never waits for the feed (an update can take a while)."""

    engine: SurfaceEngine | None
    context: MarketSnapshot | None
    state: State
    width: float
    half: float
    widen: float
    quotes: dict[tuple[Contract, str], dict[str, Any]] = field(default_factory=dict)
    """Quotes computed under this view (cleared with it by the next update)."""


class GuardService:
    """A guard shared by the feed (``update``) and the request handlers: the feed updates under
    a lock and publishes a :class:`_View` that pricing reads without one."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self._lock = threading.Lock()
        self._decisions: list[tuple[Decision, pd.DataFrame]] = []
        self._view = self._publish()
        self.requests = 0
        self.errors = 0

    def _publish(self) -> _View:
        g = self.guard
        widen = g.settings.policy.widen[g.state]
        width, half = g.conformal.half_width, g.typical_half_spread
        return _View(g.served, g.context, g.state, width, half, widen)

    def update(self, snapshot: MarketSnapshot) -> None:
        """Feed one snapshot to the guard."""
        with self._lock:
            self.guard.update(snapshot)
            self._view = self._publish()  # a new fit, context or state: quotes afresh
            if self.guard.decision is not None:
                self._decisions.append((self.guard.decision, self.guard.guarded))
                del self._decisions[:-100]  # the stream needs only the recent ones

    @property
    def ready(self) -> bool:
        """Whether an engine is fitted, so that :meth:`price` can answer."""
        return self._view.engine is not None and self._view.context is not None

    def decisions_after(self, seq: int) -> list[tuple[Decision, pd.DataFrame]]:
        with self._lock:
            return [(d, g) for d, g in self._decisions if d.seq > seq]

    def cached(self, request: PriceRequest) -> dict[str, Any] | None:
        """The answer of :meth:`price` if every quote asked is already computed, else None."""
        view = self._view
        try:
            quotes = [view.quotes[(c, request.delta)] for c in request.contracts]
        except KeyError:
            return None
        return _answer(view, quotes)

    def price(self, request: PriceRequest) -> dict[str, Any]:
        """Guarded quotes of the requested contracts (see the module docstring).

        Raises
        ------
        HTTPException
            503 before the first fitted snapshot, 422 for contracts it cannot price.
        """
        view = self._view
        engine, context, cache = view.engine, view.context, view.quotes
        if engine is None or context is None:
            raise HTTPException(503, "the guard has no fitted engine yet; feed it a snapshot")
        keys: list[tuple[Contract, str]] = [(c, request.delta) for c in request.contracts]
        todo = list(dict.fromkeys(k for k in keys if k not in cache))
        if todo:
            width = view.width if math.isfinite(view.width) else 1.0
            half = view.half if math.isfinite(view.half) else 0.01
            spread = half * (1.0 + view.widen * width)
            contracts = _contracts([c for c, _ in todo], context)
            g = engine.greeks(contracts, context, delta=request.delta)
            f, strike, t, is_call = engine.contract_inputs(contracts, context)
            bad = np.flatnonzero(~np.isfinite(g["price"]) | ~np.isfinite(g["iv"]))
            if bad.size:
                raise HTTPException(422, f"{_name(contracts, int(bad[0]))}: no finite price")
            iv = g["iv"]
            bid_iv, ask_iv = np.maximum(iv - spread, MIN_VOL), iv + spread
            columns = {
                "strike": strike,
                "is_call": is_call,
                "iv": iv,
                "lower_iv": iv - width * half,
                "upper_iv": iv + width * half,
                "bid_iv": bid_iv,
                "ask_iv": ask_iv,
                "price_usd": g["price"],
                "bid_usd": black76_price(f, strike, t, bid_iv, is_call),
                "ask_usd": black76_price(f, strike, t, ask_iv, is_call),
                **{name: g[name] for name in ("delta", "gamma", "vega", "theta")},
            }
            names = contracts["instrument"].tolist()
            expiries = [e.isoformat() for e in contracts["expiry"]]
            values = {name: column.tolist() for name, column in columns.items()}
            fresh = {
                key: {
                    "instrument": names[i],
                    "expiry": expiries[i],
                    **{name: column[i] for name, column in values.items()},
                }
                for i, key in enumerate(todo)
            }
            if len(cache) + len(fresh) <= CACHE_SIZE:
                cache.update(fresh)
        else:
            fresh = {}
        return _answer(view, [fresh[k] if k in fresh else cache[k] for k in keys])

    def metrics_text(self) -> str:
        """The Prometheus exposition of the service's gauges and counters."""
        with self._lock:
            d = self.guard.decision
            under = d.underlying if d else ""
            m = d.metrics if d else {}
            values = {
                (
                    "volguard_guard_state",
                    "gauge",
                    "Guard state, 0 NORMAL .. 4 RISK_REDUCE.",
                ): self.guard.state.value,
                ("volguard_decisions_total", "counter", "Decisions taken."): (d.seq + 1)
                if d
                else 0,
                (
                    "volguard_price_requests_total",
                    "counter",
                    "POST /price requests.",
                ): self.requests,
                (
                    "volguard_price_request_errors_total",
                    "counter",
                    "POST /price requests answered 4xx/5xx.",
                ): self.errors,
                (
                    "volguard_error_rate_z",
                    "gauge",
                    "Standardized error rate of the last snapshot.",
                ): m.get("z"),
                (
                    "volguard_stress_probability",
                    "gauge",
                    "Filtered stress-regime probability.",
                ): m.get("p_stress"),
                (
                    "volguard_conformal_half_width",
                    "gauge",
                    "ACI half-width, in half-spreads.",
                ): self.guard.conformal.half_width,
            }
        lines = []
        for (name, kind, help_text), value in values.items():
            number = float(value) if isinstance(value, int | float) else math.nan
            lines += [
                f"# HELP {name} {help_text}",
                f"# TYPE {name} {kind}",
                f'{name}{{underlying="{under}"}} {_prom(number)}',
            ]
        return "\n".join(lines) + "\n"


def _answer(view: _View, quotes: list[dict[str, Any]]) -> dict[str, Any]:
    assert view.engine is not None and view.context is not None
    return {
        "state": view.state.name,
        "ts": view.context.ts.isoformat(),
        "engine": type(view.engine).name,
        "quotes": quotes,
    }


def _prom(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value == math.inf else repr(value)


def _contracts(items: list[Contract], context: MarketSnapshot) -> pd.DataFrame:
    """The requested contracts as ``instrument, expiry, strike, is_call``, each checked against
    the served snapshot (see the module docstring)."""
    rows: list[tuple[str | None, pd.Timestamp, float | None, bool | None]] = []
    for i, c in enumerate(items):
        where = f"contracts[{i}]" + (f" ({c.instrument})" if c.instrument else "")
        underlying = c.underlying
        if c.instrument is not None:
            try:
                option = parse_deribit_instrument(c.instrument)
            except ValueError as exc:
                raise HTTPException(422, f"{where}: {exc}") from exc
            underlying = option.underlying
            rows.append((c.instrument, option.expiry, option.strike, option.is_call))
        else:
            assert c.expiry is not None  # the validator asked for all three
            expiry = pd.Timestamp(c.expiry)
            expiry = (
                expiry.tz_localize("UTC") if expiry.tzinfo is None else expiry.tz_convert("UTC")
            )
            rows.append((None, expiry, c.strike, c.is_call))
        if underlying is not None and underlying.upper() != context.underlying:
            raise HTTPException(
                422, f"{where}: underlying {underlying}; this service prices {context.underlying}"
            )
        expiry, strike = rows[-1][1], rows[-1][2]
        if expiry <= context.ts:
            raise HTTPException(422, f"{where}: expired at {expiry}, before {context.ts}")
        if expiry not in context.forwards.index:
            listed = ", ".join(f"{e:%Y-%m-%d %H:%M}" for e in context.expiries)
            raise HTTPException(
                422,
                f"{where}: expiry {expiry} is not listed in the {context.underlying} snapshot of "
                f"{context.ts} (no forward); listed: {listed}",
            )
        if strike is None or not strike > 0:
            raise HTTPException(422, f"{where}: strike must be positive; got {strike}")
    frame = pd.DataFrame(rows, columns=["instrument", "expiry", "strike", "is_call"])
    frame["expiry"] = pd.to_datetime(frame["expiry"], utc=True)
    return frame


def _name(contracts: pd.DataFrame, i: int) -> str:
    instrument = contracts["instrument"].iloc[i]
    return f"contracts[{i}] ({instrument})" if isinstance(instrument, str) else f"contracts[{i}]"


class _Gate:
    """Pure ASGI middleware in front of the app: the bearer token, the body limit (from the
    ``Content-Length`` header, and counted as a body streams in), and the ``/price`` counters
    of the metrics."""

    def __init__(self, app: Any, service: GuardService, token: str | None, max_body: int) -> None:
        self.app, self.service, self.token, self.max_body = app, service, token, max_body

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if self.token is not None and scope["path"] not in OPEN_PATHS:
            given = headers.get(b"authorization", b"").decode("latin-1")
            if not hmac.compare_digest(given, f"Bearer {self.token}"):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await _reply(send, 401, "missing or wrong bearer token (Authorization header)")
                return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        length = headers.get(b"content-length", b"0")
        if not length.isdigit():
            await _reply(send, 400, "Content-Length is not a number")
            return
        if int(length) > self.max_body:
            await _reply(send, 413, f"request body over {self.max_body} bytes")
            return
        received = 0

        async def limited() -> Any:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:
                raise _TooLarge
            return message

        status = 0

        async def counted(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, limited, counted)
        except _TooLarge:
            await _reply(send, 413, f"request body over {self.max_body} bytes")
            status = 413
        if scope["path"] == "/price":
            self.service.requests += 1
            self.service.errors += status >= 400


class _TooLarge(Exception):
    """A streamed body passed the limit."""


async def _reply(send: Callable[[dict[str, Any]], Awaitable[None]], status: int, text: str) -> None:
    body = json.dumps({"detail": text}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(
    service: GuardService, *, token: str | None = None, max_body: int = MAX_BODY_BYTES
) -> FastAPI:
    """The FastAPI app of ``service`` (see the module docstring).

    Parameters
    ----------
    token : str, optional
        Bearer token every path but ``/health`` and ``/ready`` requires.
    max_body : int
        Request body limit, bytes.
    """
    app = FastAPI(title="volguard guard", version="0.1.0")
    app.add_middleware(_Gate, service=service, token=token, max_body=max_body)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # what was wrong and where, never the input itself (it may be huge, or NaN)
        detail = [{k: e[k] for k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.get("/health")
    def health() -> dict[str, Any]:
        context = service.guard.context
        return {
            "status": "ok",
            "ready": service.ready,
            "state": service.guard.state.name,
            "last_snapshot": context.ts.isoformat() if context is not None else None,
        }

    @app.get("/ready")
    def ready() -> JSONResponse:
        if service.ready:
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False, "reason": "no fitted engine yet"}, status_code=503)

    @app.post("/price")
    async def price(request: PriceRequest) -> dict[str, Any]:
        # cached quotes are a lookup on the event loop; new ones are computed in a worker thread
        answer = service.cached(request)
        return answer if answer is not None else await run_in_threadpool(service.price, request)

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> str:
        return service.metrics_text()

    @app.websocket("/stream")
    async def stream(ws: WebSocket) -> None:
        await ws.accept()
        latest = service.decisions_after(-1)
        last = latest[-1][0].seq - 1 if latest else -1
        try:
            while True:
                for decision, guarded in service.decisions_after(last):
                    record = json.loads(decision.to_json())
                    await ws.send_text(json.dumps({"type": "decision", **record}))
                    quotes = (
                        guarded.assign(ts=guarded["ts"].astype(str)) if len(guarded) else guarded
                    )
                    await ws.send_text(
                        json.dumps(
                            {
                                "type": "guarded_quotes",
                                "seq": decision.seq,
                                "quotes": json.loads(quotes.to_json(orient="records")),
                            }
                        )
                    )
                    last = decision.seq
                try:
                    await asyncio.wait_for(ws.receive_text(), timeout=STREAM_POLL_S)
                except TimeoutError:
                    continue
                await ws.send_text(
                    json.dumps(
                        {"type": "error", "message": "the stream is server push only; send nothing"}
                    )
                )
        except WebSocketDisconnect:
            return

    return app
