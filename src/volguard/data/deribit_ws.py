"""Deribit websocket notifications -> guard events, and a small subscribing client.

Deribit pushes JSON-RPC notifications ``{"jsonrpc": "2.0", "method": "subscription",
"params": {"channel": ..., "data": ...}}`` (docs.deribit.com, "Notifications"). Three channel
families are parsed:

``ticker.{instrument}.{interval}``
    best bid/ask (coin), ``underlying_price`` (the forward) -> :class:`QuoteUpdate` in USD.
``book.{instrument}.{interval}`` and ``book.{instrument}.{group}.{depth}.{interval}``
    full snapshots or changes (``["new"|"change"|"delete", price, amount]`` or grouped
    ``[price, amount]``); the parser keeps each book and emits its top as a
    :class:`QuoteUpdate`, priced with the instrument's last known forward (from its ticker).
``trades.{instrument}.{interval}``
    a list of trades -> :class:`Trade` (USD at the trade's ``index_price``, ``iv`` percent ->
    decimal).

Option premiums are in the coin (inverse options); USD = coin x forward, as in the store.
A malformed message raises :class:`MessageError` naming what is wrong; :func:`stream` counts
and skips those, so a bad message never stops a feed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from volguard.data.events import QuoteUpdate, Trade
from volguard.errors import VolguardError
from volguard.market.deribit import DeribitInstrument, parse_deribit_instrument


class MessageError(VolguardError, ValueError):
    """A websocket message that is not a well-formed Deribit notification."""


def _instrument(name: str) -> DeribitInstrument:
    try:
        return parse_deribit_instrument(name)
    except ValueError as exc:
        raise MessageError(str(exc)) from exc


@dataclass
class _Book:
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)


class DeribitParser:
    """Stateful parser: keeps order books and each instrument's last forward.

    Examples
    --------
    >>> p = DeribitParser()
    >>> msg = {"jsonrpc": "2.0", "method": "subscription", "params": {
    ...     "channel": "ticker.BTC-27FEB26-90000-C.100ms", "data": {
    ...     "instrument_name": "BTC-27FEB26-90000-C", "timestamp": 1769673600000,
    ...     "best_bid_price": 0.05, "best_ask_price": 0.052, "underlying_price": 88000.0}}}
    >>> [(q.bid, q.ask) for q in p.parse(json.dumps(msg))]
    [(4400.0, 4576.0)]
    """

    def __init__(self) -> None:
        self._books: dict[str, _Book] = {}
        self._forward: dict[str, float] = {}

    def parse(self, message: str | bytes) -> list[QuoteUpdate | Trade]:
        """The events of one message; ``[]`` for a subscription reply or heartbeat.

        Raises
        ------
        MessageError
            If the message is not JSON, not a notification, or lacks a field it needs.
        """
        try:
            msg = json.loads(message)
        except (ValueError, TypeError) as exc:
            raise MessageError(f"message is not JSON: {str(message)[:60]!r}") from exc
        if not isinstance(msg, dict):
            raise MessageError(f"message is a JSON {type(msg).__name__}, expected an object")
        if "id" in msg or msg.get("method") in ("heartbeat", "public/test"):
            return []  # a reply to our request, or a heartbeat
        if msg.get("method") != "subscription":
            raise MessageError(f"method {msg.get('method')!r} is not 'subscription'")
        params = msg.get("params")
        if not isinstance(params, dict) or not isinstance(params.get("channel"), str):
            raise MessageError("params.channel is missing")
        channel, data = params["channel"], params.get("data")
        kind = channel.split(".", 1)[0]
        if kind == "ticker":
            return [self._ticker(_object(data, channel))]
        if kind == "book":
            quote = self._book(_object(data, channel))
            return [] if quote is None else [quote]
        if kind == "trades":
            if not isinstance(data, list):
                raise MessageError(f"{channel}: data must be a list of trades")
            return [self._trade(_object(t, channel)) for t in data]
        raise MessageError(f"channel {channel!r} is not a ticker, book or trades channel")

    def _ticker(self, d: dict[str, Any]) -> QuoteUpdate:
        name = _field(d, "instrument_name", str)
        forward = _number(d, "underlying_price", required=True)
        self._forward[name] = forward
        return _quote(
            name, _ts(d), forward, _number(d, "best_bid_price"), _number(d, "best_ask_price")
        )

    def _book(self, d: dict[str, Any]) -> QuoteUpdate | None:
        name = _field(d, "instrument_name", str)
        book = self._books.setdefault(name, _Book())
        if d.get("type", "snapshot") == "snapshot":
            book.bids.clear()
            book.asks.clear()
        for side, levels in (("bids", book.bids), ("asks", book.asks)):
            rows = d.get(side, [])
            if not isinstance(rows, list):
                raise MessageError(f"book {name}: {side} must be a list")
            for row in rows:
                _apply(levels, row, name)
        forward = self._forward.get(name)
        if forward is None:
            return None  # no ticker yet for this instrument: no forward to price in USD
        bid = max(book.bids) if book.bids else math.nan
        ask = min(book.asks) if book.asks else math.nan
        return _quote(name, _ts(d), forward, bid, ask)

    def _trade(self, d: dict[str, Any]) -> Trade:
        name = _field(d, "instrument_name", str)
        option = _instrument(name)
        index = _number(d, "index_price", required=True)
        iv = _number(d, "iv")
        return Trade(
            _ts(d),
            option.underlying,
            name,
            _number(d, "price", required=True) * index,
            _number(d, "amount", required=True),
            iv / 100 if math.isfinite(iv) else math.nan,
        )


def _apply(levels: dict[float, float], row: object, name: str) -> None:
    if not isinstance(row, list) or len(row) not in (2, 3):
        raise MessageError(
            f"book {name}: a level must be [price, amount] or [action, price, amount]"
        )
    action = row[0] if len(row) == 3 else "new"
    price, amount = row[-2], row[-1]
    if action not in ("new", "change", "delete") or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in (price, amount)
    ):
        raise MessageError(f"book {name}: bad level {row!r}")
    if action == "delete" or amount == 0:
        levels.pop(float(price), None)
    else:
        levels[float(price)] = float(amount)


def _quote(name: str, ts: pd.Timestamp, forward: float, bid: float, ask: float) -> QuoteUpdate:
    option = _instrument(name)
    return QuoteUpdate(
        ts,
        option.underlying,
        name,
        option.expiry,
        option.strike,
        option.is_call,
        forward,
        bid * forward,
        ask * forward,
    )


def _object(data: object, channel: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MessageError(f"{channel}: data must be an object")
    return data


def _field(d: dict[str, Any], name: str, kind: type) -> Any:
    value = d.get(name)
    if not isinstance(value, kind):
        raise MessageError(f"field {name!r} must be a {kind.__name__}; got {value!r}")
    return value


def _number(d: dict[str, Any], name: str, required: bool = False) -> float:
    value = d.get(name)
    if value is None and not required:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MessageError(f"field {name!r} must be a finite number; got {value!r}")
    return float(value)


def _ts(d: dict[str, Any]) -> pd.Timestamp:
    ms = d.get("timestamp")
    if isinstance(ms, bool) or not isinstance(ms, int) or not 0 < ms < 10**14:
        raise MessageError(f"field 'timestamp' must be epoch milliseconds; got {ms!r}")
    return pd.Timestamp(ms, unit="ms", tz="UTC")


@dataclass
class StreamStats:
    """Counts of one :func:`stream`: messages received, events emitted, messages rejected
    (with the last rejection's message)."""

    messages: int = 0
    events: int = 0
    rejected: int = 0
    last_error: str = ""


def stream(
    url: str,
    channels: Sequence[str],
    stats: StreamStats | None = None,
    timeout: float = 10.0,
) -> Iterator[QuoteUpdate | Trade]:
    """Subscribe to ``channels`` at ``url`` (e.g. ``wss://www.deribit.com/ws/api/v2``) and yield
    parsed events until the server closes the connection.

    Malformed messages are counted in ``stats`` and skipped.
    """
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    stats = stats if stats is not None else StreamStats()
    parser = DeribitParser()
    request = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "public/subscribe",
        "params": {"channels": list(channels)},
    }
    with connect(url, open_timeout=timeout) as ws:
        ws.send(json.dumps(request))
        while True:
            try:
                message = ws.recv(timeout=timeout)
            except (ConnectionClosed, TimeoutError):
                return
            stats.messages += 1
            try:
                events = parser.parse(message)
            except MessageError as exc:
                stats.rejected += 1
                stats.last_error = str(exc)
                continue
            stats.events += len(events)
            yield from events
