"""Fetch clients against a local HTTP server on 127.0.0.1 (never an external host)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest

from tests._http_server import Server, ok, slow, status, truncated
from tests.data._files import DERIBIT_FIXTURES, TARDIS_FIXTURE
from volguard.data.fetch import fetch_deribit_chain, fetch_tardis_sample
from volguard.data.loaders import LOADERS
from volguard.errors import ConfigError, FetchError

TARDIS_PATH = "/v1/deribit/options_chain/2025/06/01/OPTIONS.csv.gz"
INSTRUMENTS_PATH = "/api/v2/public/get_instruments?currency=BTC&kind=option&expired=false"
BOOK_PATH = "/api/v2/public/get_book_summary_by_currency?currency=BTC&kind=option"


FAST = {"retries": 2, "backoff": 0.0, "timeout": 5.0}


def test_tardis_download_is_complete_and_loadable(server: Server, tmp_path: Path) -> None:
    body = TARDIS_FIXTURE.read_bytes()
    server.routes[TARDIS_PATH] = [ok(body)]
    path = fetch_tardis_sample("2025-06-01", tmp_path, base_url=server.base, **FAST)
    assert path == tmp_path / "deribit_options_chain_2025-06-01_OPTIONS.csv.gz"
    assert path.read_bytes() == body
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left
    assert len(LOADERS["tardis"](path)) == 208


def test_500_then_success_retries(server: Server, tmp_path: Path) -> None:
    server.routes[TARDIS_PATH] = [status(500), status(503), ok(TARDIS_FIXTURE.read_bytes())]
    path = fetch_tardis_sample(dt.date(2025, 6, 1), tmp_path, base_url=server.base, **FAST)
    assert path.is_file() and server.hits == [TARDIS_PATH] * 3


def test_404_is_a_clear_error_without_retries(server: Server, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"OPTIONS\.csv\.gz: HTTP 404.*no such file"):
        fetch_tardis_sample("2025-06-01", tmp_path, base_url=server.base, **FAST)
    assert len(server.hits) == 1 and list(tmp_path.iterdir()) == []


def test_truncated_body_leaves_no_file(server: Server, tmp_path: Path) -> None:
    server.routes[TARDIS_PATH] = [truncated(TARDIS_FIXTURE.read_bytes())]
    with pytest.raises(FetchError, match="failed after 3 attempt"):
        fetch_tardis_sample("2025-06-01", tmp_path, base_url=server.base, **FAST)
    assert list(tmp_path.iterdir()) == []
    assert len(server.hits) == 3


def test_corrupt_or_cut_gzip_leaves_no_file(server: Server, tmp_path: Path) -> None:
    body = TARDIS_FIXTURE.read_bytes()
    server.routes[TARDIS_PATH] = [ok(body[: len(body) - 20])]  # consistent length, cut stream
    with pytest.raises(FetchError, match="cut short"):
        fetch_tardis_sample("2025-06-01", tmp_path, base_url=server.base, **FAST)
    server.routes[TARDIS_PATH] = [ok(b"<html>not a gzip</html>")]
    with pytest.raises(FetchError, match="not valid gzip"):
        fetch_tardis_sample("2025-06-01", tmp_path, base_url=server.base, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_timeout_is_retried_then_reported(server: Server, tmp_path: Path) -> None:
    server.routes[TARDIS_PATH] = [slow(1.0, ok(b""))]
    with pytest.raises(FetchError, match="failed after 2 attempt"):
        fetch_tardis_sample(
            "2025-06-01", tmp_path, base_url=server.base, retries=1, backoff=0.0, timeout=0.2
        )
    assert list(tmp_path.iterdir()) == []


def test_only_first_of_month_is_free(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"first day of each month.*2025-06-01"):
        fetch_tardis_sample("2025-06-15", tmp_path, base_url="http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        fetch_tardis_sample("June 1st", tmp_path, base_url="http://127.0.0.1:9")


def test_api_key_allows_any_day(server: Server, tmp_path: Path) -> None:
    server.routes["/v1/deribit/options_chain/2025/06/15/OPTIONS.csv.gz"] = [
        ok(TARDIS_FIXTURE.read_bytes())
    ]
    path = fetch_tardis_sample("2025-06-15", tmp_path, base_url=server.base, api_key="k", **FAST)
    assert path.name == "deribit_options_chain_2025-06-15_OPTIONS.csv.gz"


def _raw(key: str) -> bytes:
    bundle = json.loads(DERIBIT_FIXTURES["BTC"].read_text())
    return json.dumps(bundle[key]).encode()


def test_deribit_chain_bundle(server: Server, tmp_path: Path) -> None:
    server.routes[INSTRUMENTS_PATH] = [ok(_raw("get_instruments"), "application/json")]
    server.routes[BOOK_PATH] = [
        status(502),
        ok(_raw("get_book_summary_by_currency"), "application/json"),
    ]
    now = dt.datetime(2025, 6, 1, 0, 0, 1, tzinfo=dt.UTC)
    path = fetch_deribit_chain("btc", tmp_path, base_url=server.base, now=now, **FAST)
    assert path.name == "deribit_BTC_options_20250601T000001Z.json"
    bundle = json.loads(path.read_text())
    assert bundle["currency"] == "BTC" and bundle["fetched_at_ms"] == 1748736001000
    assert json.dumps(bundle["get_instruments"]).encode() == _raw("get_instruments")
    out = LOADERS["deribit-api"](path)
    assert len(out) == len(LOADERS["deribit-api"](DERIBIT_FIXTURES["BTC"]))
    assert list(tmp_path.iterdir()) == [path]


def test_deribit_error_response(server: Server, tmp_path: Path) -> None:
    error = {"jsonrpc": "2.0", "error": {"code": 10029, "message": "not_open"}, "testnet": False}
    server.routes[INSTRUMENTS_PATH] = [status(400, json.dumps(error).encode())]
    with pytest.raises(FetchError, match="not_open"):
        fetch_deribit_chain("BTC", tmp_path, base_url=server.base, **FAST)
    server.routes[INSTRUMENTS_PATH] = [ok(json.dumps(error).encode())]
    with pytest.raises(FetchError, match="Deribit error"):
        fetch_deribit_chain("BTC", tmp_path, base_url=server.base, **FAST)
    server.routes[INSTRUMENTS_PATH] = [truncated(_raw("get_instruments"))]
    with pytest.raises(FetchError, match="failed after 3 attempt"):
        fetch_deribit_chain("BTC", tmp_path, base_url=server.base, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_deribit_argument_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="currency"):
        fetch_deribit_chain("BTC/../x", tmp_path, base_url="http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="time-zone aware"):
        fetch_deribit_chain(
            "BTC", tmp_path, base_url="http://127.0.0.1:9", now=dt.datetime(2025, 6, 1)
        )


def test_unreachable_host_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"cannot connect|connection failed"):
        fetch_deribit_chain("BTC", tmp_path, base_url="http://127.0.0.1:9", retries=1, backoff=0.0)


def test_gzip_of_fixture_is_multi_member_safe(server: Server, tmp_path: Path) -> None:
    two = gzip.compress(b"a,b\n", mtime=0) + gzip.compress(b"1,2\n", mtime=0)
    server.routes[TARDIS_PATH] = [ok(two)]
    path = fetch_tardis_sample("2025-06-01", tmp_path, base_url=server.base, **FAST)
    assert gzip.decompress(path.read_bytes()) == b"a,b\n1,2\n"


def test_base_url_must_be_http(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="base_url"):
        fetch_tardis_sample("2025-06-01", tmp_path, base_url="file:///etc")
    with pytest.raises(ConfigError, match="base_url"):
        fetch_deribit_chain("BTC", tmp_path, base_url="www.deribit.com")
