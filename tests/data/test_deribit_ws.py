"""Deribit websocket notifications: parsing, malformed messages, and a feed from a local server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.sync.server import ServerConnection, serve

from volguard.data.deribit_ws import (
    DeribitParser,
    MessageError,
    StreamStats,
    stream,
)
from volguard.data.events import QuoteUpdate, Trade
from volguard.market.deribit import parse_deribit_instrument

FIXTURE = Path(__file__).parent / "fixtures" / "deribit_ws.jsonl"
MESSAGES = FIXTURE.read_text(encoding="utf-8").splitlines()
BAD = range(6, 13)  # lines 7-13 of the fixture are malformed


@pytest.fixture
def deribit_server() -> Iterator[str]:
    """A websocket server on 127.0.0.1 that answers a subscription and plays the fixture."""
    received: list[dict[str, object]] = []

    def handler(ws: ServerConnection) -> None:
        request = json.loads(ws.recv())
        received.append(request)
        ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": ["ticker"]}))
        for line in MESSAGES:
            ws.send(line)

    with serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        host, port = server.socket.getsockname()[:2]
        yield f"ws://{host}:{port}"
        server.shutdown()
        assert received and received[0]["method"] == "public/subscribe"


def test_stream_from_a_local_server_parses_good_messages_and_skips_bad_ones(
    deribit_server: str,
) -> None:
    stats = StreamStats()
    events = list(stream(deribit_server, ["ticker.BTC-27FEB26-90000-C.100ms"], stats, timeout=5))
    assert stats.messages == len(MESSAGES) + 1  # the subscription reply too
    assert stats.rejected == len(BAD)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["QuoteUpdate", "QuoteUpdate", "QuoteUpdate", "Trade", "QuoteUpdate"]
    ticker, book, change, trade, eth = events
    assert isinstance(ticker, QuoteUpdate) and isinstance(trade, Trade)
    assert (ticker.bid, ticker.ask) == pytest.approx((0.05 * 88_000, 0.0525 * 88_000))
    assert ticker.strike == 90_000 and ticker.is_call and ticker.expiry.hour == 8
    assert (book.bid, book.ask) == pytest.approx((0.05 * 88_000, 0.0525 * 88_000))
    # the change deleted the 0.05 bid and improved the ask
    assert (change.bid, change.ask) == pytest.approx((0.0495 * 88_000, 0.052 * 88_000))
    assert trade.price == pytest.approx(0.051 * 87_860) and trade.iv == pytest.approx(0.415)
    assert eth.underlying == "ETH" and not eth.is_call


def test_a_book_before_its_ticker_waits_for_a_forward() -> None:
    parser = DeribitParser()
    assert parser.parse(MESSAGES[5]) == []  # grouped ETH book, no ETH ticker yet
    parser.parse(MESSAGES[-1])
    (quote,) = parser.parse(MESSAGES[5])
    assert isinstance(quote, QuoteUpdate)
    assert (quote.bid, quote.ask) == pytest.approx((0.03 * 2950, 0.032 * 2950))


@pytest.mark.parametrize("line", list(BAD))
def test_each_malformed_message_is_a_message_error(line: int) -> None:
    with pytest.raises(MessageError):
        DeribitParser().parse(MESSAGES[line])


def test_instrument_names() -> None:
    assert parse_deribit_instrument("BTC-27FEB26-90000-C").strike == 90_000.0
    for bad in ("BTC-PERPETUAL", "BTC-31FEB26-1-C", "BTC-27XXX26-1-C", "btc-27FEB26-1-C"):
        with pytest.raises(ValueError, match="BTC"):
            parse_deribit_instrument(bad)


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(MESSAGES[1:6]), st.data())
def test_fuzzed_fields_give_events_or_a_message_error(line: str, data: st.DataObject) -> None:
    msg = json.loads(line)
    payload = msg["params"]["data"]
    target = payload[0] if isinstance(payload, list) else payload
    key = data.draw(st.sampled_from(sorted(target)))
    target[key] = data.draw(VALUES)
    parser = DeribitParser()
    parser.parse(MESSAGES[1])  # forwards known
    try:
        events = parser.parse(json.dumps(msg))
    except MessageError:
        return
    assert all(isinstance(e, QuoteUpdate | Trade) for e in events)
