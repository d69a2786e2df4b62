"""Fetch clients: Tardis.dev free sample files and live Deribit chain snapshots.

Plain ``urllib`` with timeouts, retries with exponential backoff on transient trouble (connection
errors, timeouts, HTTP 429/5xx, truncated bodies), and clear :class:`FetchError` messages that
name the URL. Files are written atomically: streamed to a temporary file in the destination
folder, checked, then renamed, so a failed or interrupted download never leaves a partial file.

- :func:`fetch_tardis_sample` downloads Tardis.dev's ``options_chain`` day file
  ``{base}/v1/deribit/options_chain/{YYYY}/{MM}/{DD}/OPTIONS.csv.gz`` (read it with the ``tardis``
  loader). Without an API key only the first day of each month is served, so other days are
  refused before any request.
- :func:`fetch_deribit_chain` asks Deribit's public REST API for ``public/get_instruments`` and
  ``public/get_book_summary_by_currency`` (``kind=option``) and writes both raw responses into one
  bundle file (read it with the ``deribit-api`` loader).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

from volguard.errors import ConfigError, FetchError

DEFAULT_TARDIS_BASE = "https://datasets.tardis.dev"
DEFAULT_DERIBIT_BASE = "https://www.deribit.com"
USER_AGENT = "volguard-fetch/0.1 (+https://github.com/volguard)"
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
CHUNK_BYTES = 1 << 20
MAX_BACKOFF_S = 60.0

T = TypeVar("T")


class _Transient(Exception):
    """A failure worth retrying (wraps the cause)."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


def fetch_tardis_sample(
    day: dt.date | str,
    dest_dir: Path,
    *,
    base_url: str = DEFAULT_TARDIS_BASE,
    exchange: str = "deribit",
    data_type: str = "options_chain",
    symbol: str = "OPTIONS",
    api_key: str | None = None,
    timeout: float = 60.0,
    retries: int = 3,
    backoff: float = 1.0,
) -> Path:
    """Download one Tardis.dev day file (default: Deribit ``options_chain``, all options).

    Parameters
    ----------
    day : date or str
        The UTC day, ``YYYY-MM-DD``. Without ``api_key`` it must be the 1st of a month (Tardis.dev
        serves those days for free); any day with a key.
    dest_dir : Path
        Folder for the file (created if needed); the file is
        ``{exchange}_{data_type}_{YYYY-MM-DD}_{symbol}.csv.gz``, replaced if it exists.
    base_url : str
        Datasets host, ``https://datasets.tardis.dev`` by default.
    exchange, data_type, symbol : str
        Tardis dataset coordinates.
    api_key : str, optional
        Tardis.dev API key, sent as ``Authorization: Bearer``; needed for days other than the 1st.
    timeout : float
        Seconds to wait for the connection and for each read.
    retries : int
        Further attempts after a transient failure (connection error, timeout, HTTP 408/425/429/5xx,
        truncated or corrupt body).
    backoff : float
        Seconds before the first retry; doubled each time (capped at 60 s).

    Returns
    -------
    Path
        The downloaded file, a complete gzip (checked while streaming).

    Raises
    ------
    ConfigError
        If ``day`` is not a date, or not the 1st of a month without ``api_key``.
    FetchError
        If the server answers with a non-retryable status (e.g. 404), or every attempt fails.
    """
    when = _as_date(day)
    if api_key is None and when.day != 1:
        raise ConfigError(
            f"day {when.isoformat()}: Tardis.dev serves only the first day of each month "
            f"without an API key; ask for {when.replace(day=1).isoformat()} or pass api_key"
        )
    for name, value in (("exchange", exchange), ("data_type", data_type), ("symbol", symbol)):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise ConfigError(f"{name} {value!r} must be letters, digits, '_', '-' or '.'")
    url = (
        f"{_base(base_url)}/v1/{exchange}/{data_type}/{when:%Y}/{when:%m}/{when:%d}/{symbol}.csv.gz"
    )
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    dest = Path(dest_dir) / f"{exchange}_{data_type}_{when.isoformat()}_{symbol}.csv.gz"
    dest.parent.mkdir(parents=True, exist_ok=True)

    def attempt() -> Path:
        with _open(url, headers=headers, timeout=timeout) as response:
            _stream_gzip_atomically(response, dest)
        return dest

    return _with_retries(url, attempt, retries=retries, backoff=backoff)


def fetch_deribit_chain(
    currency: str,
    dest_dir: Path,
    *,
    base_url: str = DEFAULT_DERIBIT_BASE,
    now: dt.datetime | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 1.0,
) -> Path:
    """Snapshot Deribit's live option chain for one currency into a bundle file.

    Two public GETs, ``{base}/api/v2/public/get_instruments?currency=C&kind=option&expired=false``
    and ``{base}/api/v2/public/get_book_summary_by_currency?currency=C&kind=option``; the raw
    JSON-RPC responses are stored unchanged as
    ``{"currency", "fetched_at_ms", "get_instruments", "get_book_summary_by_currency"}``.

    Parameters
    ----------
    currency : str
        ``BTC``, ``ETH`` (inverse options) or ``USDC`` (linear ``BTC_USDC-...`` options), ...
    dest_dir : Path
        Folder for ``deribit_{CURRENCY}_options_{YYYYMMDDTHHMMSSZ}.json`` (created if needed).
    base_url : str
        API host, ``https://www.deribit.com`` by default (``https://test.deribit.com`` for testnet).
    now : datetime, optional
        Time-zone-aware fetch time for ``fetched_at_ms`` and the file name; the clock by default.
    timeout, retries, backoff
        As in :func:`fetch_tardis_sample`.

    Returns
    -------
    Path
        The bundle file.

    Raises
    ------
    ConfigError
        If ``currency`` is not a currency code or ``now`` is naive.
    FetchError
        If a request fails for good, or Deribit answers with a JSON-RPC error.
    """
    code = currency.strip().upper()
    if not re.fullmatch(r"[A-Z0-9]{2,10}", code):
        raise ConfigError(f"currency {currency!r} must be a code such as 'BTC', 'ETH' or 'USDC'")
    if now is not None and now.tzinfo is None:
        raise ConfigError(f"now {now!r} must be time-zone aware (e.g. datetime.now(UTC))")
    api = f"{_base(base_url)}/api/v2/public"
    query = urllib.parse.urlencode
    instruments = _get_deribit(
        f"{api}/get_instruments?{query({'currency': code, 'kind': 'option', 'expired': 'false'})}",
        timeout=timeout,
        retries=retries,
        backoff=backoff,
    )
    book = _get_deribit(
        f"{api}/get_book_summary_by_currency?{query({'currency': code, 'kind': 'option'})}",
        timeout=timeout,
        retries=retries,
        backoff=backoff,
    )
    fetched = now if now is not None else dt.datetime.now(dt.UTC)
    bundle = {
        "currency": code,
        "fetched_at_ms": int(fetched.timestamp() * 1000),
        "get_instruments": instruments,
        "get_book_summary_by_currency": book,
    }
    stamp = fetched.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    dest = Path(dest_dir) / f"deribit_{code}_options_{stamp}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(dest, json.dumps(bundle, separators=(",", ":")).encode("utf-8"))
    return dest


# --- HTTP plumbing -------------------------------------------------------------------------------


def _base(base_url: str) -> str:
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"base_url {base_url!r} must be an http(s) URL like 'https://host'")
    return base_url.rstrip("/")


def _as_date(day: dt.date | str) -> dt.date:
    if isinstance(day, dt.datetime):
        return day.date()
    if isinstance(day, dt.date):
        return day
    try:
        return dt.date.fromisoformat(str(day))
    except ValueError as exc:
        raise ConfigError(f"day {day!r} must be a date or 'YYYY-MM-DD'") from exc


def _open(url: str, *, headers: dict[str, str], timeout: float) -> http.client.HTTPResponse:
    """GET ``url``; HTTP errors become FetchError (final) or _Transient (retryable)."""
    request = urllib.request.Request(
        url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers}
    )
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        detail = _error_detail(exc)
        if exc.code in RETRY_STATUS:
            raise _Transient(
                f"HTTP {exc.code} {exc.reason}{detail}", _retry_after(exc.headers)
            ) from exc
        hint = " (no such file or day on the server)" if exc.code == 404 else ""
        if exc.code in (401, 403):
            hint = " (this file needs an API key or is not public)"
        raise FetchError(url, f"HTTP {exc.code} {exc.reason}{hint}{detail}") from exc
    except urllib.error.URLError as exc:
        raise _Transient(f"cannot connect ({exc.reason})") from exc
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise _Transient(f"connection failed ({type(exc).__name__}: {exc})") from exc
    assert isinstance(response, http.client.HTTPResponse)
    return response


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = exc.read(2000).decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException):
        return ""
    return f": {body[:300]}" if body else ""


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return min(float(value), MAX_BACKOFF_S) if value is not None else None
    except ValueError:
        return None


def _with_retries(
    url: str,
    attempt: Callable[[], T],
    *,
    retries: int,
    backoff: float,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    if retries < 0:
        raise ConfigError(f"retries must be >= 0; got {retries}")
    failures: list[str] = []
    for n in range(retries + 1):
        try:
            return attempt()
        except _Transient as exc:
            failures.append(exc.problem)
            if n == retries:
                break
            wait = exc.retry_after if exc.retry_after is not None else backoff * 2**n
            sleep(min(max(wait, 0.0), MAX_BACKOFF_S))
    raise FetchError(url, f"failed after {len(failures)} attempt(s); last error: {failures[-1]}")


def _read_all(response: http.client.HTTPResponse) -> bytes:
    try:
        return response.read()
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise _Transient(f"body not received completely ({type(exc).__name__}: {exc})") from exc


def _get_deribit(url: str, *, timeout: float, retries: int, backoff: float) -> dict[str, Any]:
    """One Deribit JSON-RPC GET: the whole response object, checked to hold a result list."""

    def attempt() -> dict[str, Any]:
        try:
            response = _open(url, headers={"Accept": "application/json"}, timeout=timeout)
        except FetchError as exc:  # Deribit explains 400s in a JSON-RPC error body
            raise FetchError(url, _deribit_error(exc.problem) or exc.problem) from exc
        with response:
            body = _read_all(response)
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _Transient(f"response is not JSON ({exc})") from exc
        if not isinstance(payload, dict):
            raise FetchError(url, "response is not a JSON-RPC object")
        if "error" in payload:
            error = payload["error"]
            if isinstance(error, dict) and error.get("code") == 10028:  # too_many_requests
                raise _Transient(f"Deribit rate limit: {error}")
            raise FetchError(url, f"Deribit error {error!r}")
        if not isinstance(payload.get("result"), list):
            raise FetchError(url, "JSON-RPC response has no 'result' list")
        return payload

    return _with_retries(url, attempt, retries=retries, backoff=backoff)


def _deribit_error(problem: str) -> str | None:
    start = problem.find("{")
    if start < 0:
        return None
    try:
        error = json.loads(problem[start:]).get("error")
    except (json.JSONDecodeError, AttributeError):
        return None
    return f"{problem[:start].rstrip(': ')}: Deribit error {error!r}" if error else None


# --- atomic files --------------------------------------------------------------------------------


class _GzipCheck:
    """Inflates a gzip stream as it arrives, to tell a complete file from a cut or corrupt one."""

    def __init__(self) -> None:
        self._inflater = zlib.decompressobj(wbits=31)
        self.seen = 0

    def feed(self, chunk: bytes) -> None:
        self.seen += len(chunk)
        data = chunk
        while data:
            try:
                self._inflater.decompress(data, CHUNK_BYTES)
                while self._inflater.unconsumed_tail:
                    self._inflater.decompress(self._inflater.unconsumed_tail, CHUNK_BYTES)
            except zlib.error as exc:
                raise _Transient(f"body is not valid gzip ({exc})") from exc
            data = self._inflater.unused_data
            if self._inflater.eof and data:  # another gzip member follows
                self._inflater = zlib.decompressobj(wbits=31)
            else:
                data = b""

    def finish(self) -> None:
        if self.seen == 0:
            raise _Transient("empty body (expected a gzip file)")
        if not self._inflater.eof:
            raise _Transient(f"gzip stream cut short after {self.seen} bytes")


def _stream_gzip_atomically(response: http.client.HTTPResponse, dest: Path) -> None:
    expected = response.getheader("Content-Length")
    check = _GzipCheck()

    def copy(out: IO[bytes]) -> None:
        while True:
            try:
                chunk = response.read(CHUNK_BYTES)
            except (TimeoutError, ConnectionError, http.client.HTTPException) as e:
                raise _Transient(f"download interrupted ({type(e).__name__}: {e})") from e
            if not chunk:
                break
            check.feed(chunk)
            out.write(chunk)
        if expected is not None and expected.isdigit() and int(expected) != check.seen:
            raise _Transient(f"got {check.seen} of {expected} bytes")
        check.finish()

    _write_atomically(dest, copy)


def _write_atomically(dest: Path, content: bytes | Callable[[IO[bytes]], None]) -> None:
    """Write to a temporary file beside ``dest``, fsync, then rename; remove it on any failure."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(content, bytes):
                out.write(content)
            else:
                content(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
