"""Session: the one place aioplatform touches aiohttp.

A :class:`Session` owns one ``aiohttp.ClientSession`` and its ``TCPConnector`` (the
pool), created lazily inside the running event loop on first use. Every call goes
through the same steps, :meth:`Session.request`'s (a service client's
``BaseClient._request`` runs them itself, one frame fewer on every call):

* applies the caller's :class:`~aioplatform.core.auth.Auth` and refreshes it once
  when the server rejects it,
* reads the whole body so the connection goes straight back to the pool,
* turns aiohttp's exceptions and error statuses into the typed errors of
  :mod:`aioplatform.core.errors`, with every known secret scrubbed,
* retries under a :class:`~aioplatform.core.retry.RetryPolicy`: the first attempt
  runs without tenacity (the success path stays cheap); only a retryable failure
  builds a fresh ``AsyncRetrying`` for the remaining attempts,
* honours ``Retry-After`` and, on a 429 that carries one, pauses every request to
  that host (not only the one that was told to wait).

The pool's connections time reads lazily (:class:`_LazyReadTimer`): the same read
timeout as aiohttp's, without a timer handle re-armed on every chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import json as jsonlib
import logging
import os
import ssl as ssl_module
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeAlias, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import attrs
from aiohttp.client_proto import ResponseHandler
from multidict import CIMultiDict, CIMultiDictProxy
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception
from yarl import URL

from . import defaults
from .auth import Auth, redact, redact_value
from .errors import (
    APIError,
    ConnectError,
    PlatformError,
    RateLimited,
    RequestTimeout,
    SessionError,
    TransportError,
    error_class_for_status,
)
from .multipart import source_error
from .retry import RetryPolicy, parse_retry_after


def _orjson_loads() -> Callable[[bytes], Any] | None:
    """orjson's ``loads`` when the optional ``speedups`` extra is installed, else None."""
    try:
        loads: Callable[[bytes], Any] = importlib.import_module("orjson").loads
    except ImportError:
        return None
    return loads


_fast_loads = _orjson_loads()
_DIGITS_ONLY = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))  # digit -> "0", else " "
_LONG_RUN = b"0" * 19
_OPENERS = frozenset(b"{[")  # the first byte of a JSON object or list

__all__ = [
    "Session",
    "Timeouts",
    "Limits",
    "Response",
    "StreamResponse",
    "SessionStats",
    "ErrorTranslator",
    "Body",
    "default_error_message",
]

log = logging.getLogger("aioplatform")

_NO_AUTH = Auth()
# Query parameters whose values are credentials (Astakos accepts ?X-Auth-Token=, Abaco ?x-nonce=).
_SECRET_PARAMS = frozenset(
    {"x-auth-token", "token", "api_key", "password", "access_token", "refresh_token", "x-nonce", "nonce"}
)
# Headers whose values are credentials, wherever they come from (an Auth, the Session's
# default headers or a call's own headers): scrubbed from every error, URL and log line.
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-auth-token", "api_key", "api-key", "x-api-key", "cookie"}
)


def header_secrets(headers: Mapping[str, str] | None) -> tuple[str, ...]:
    """The credential values among ``headers``: each whole value and, after a scheme word
    (``Bearer abc``), the credential alone."""
    if not headers:
        return ()
    found: list[str] = []
    for name, value in headers.items():
        if name.lower() in _SECRET_HEADERS and isinstance(value, str) and value:
            found.append(value)
            _, _, credential = value.partition(" ")
            if credential.strip():
                found.append(credential.strip())
    return tuple(found)


def _positive_or_none(name: str) -> Callable[[Any, Any, Any], None]:
    def check(instance: Any, attribute: Any, value: Any) -> None:
        if value is not None and (not isinstance(value, (int, float)) or value <= 0):
            raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")

    return check


@attrs.frozen(cache_hash=True)
class Timeouts:
    """Timeouts by phase, in seconds (None = no limit).

    * ``pool`` — waiting for a free connection when the pool is full,
    * ``connect`` — establishing a TCP connection (aiohttp enforces ``pool + connect``
      as one budget for getting a connection, and ``connect`` alone for the TCP
      handshake; a timeout while still queued for the pool is reported as ``"pool"``),
    * ``read`` — the longest silence between two reads of a response,
    * ``deadline`` — the whole call, across every retry and backoff, a streamed body's
      reading included. Finite by default (``defaults.DEADLINE``, 300 s): the read
      timeout restarts on every byte, so only a deadline bounds a server that trickles.
      ``deadline=None`` lifts it (a long transfer).

    >>> Timeouts(read=5.0, deadline=30.0)
    >>> await session.request("GET", url, timeout=Timeouts(deadline=2.0))  # one call
    >>> quick = client.with_options(timeouts=Timeouts(deadline=2.0))  # a client's calls
    >>> await quick.container_task_instances.get(uuid)
    """

    pool: float | None = attrs.field(
        default=defaults.POOL_TIMEOUT, validator=_positive_or_none("pool")
    )
    connect: float | None = attrs.field(
        default=defaults.CONNECT_TIMEOUT, validator=_positive_or_none("connect")
    )
    read: float | None = attrs.field(
        default=defaults.READ_TIMEOUT, validator=_positive_or_none("read")
    )
    deadline: float | None = attrs.field(
        default=defaults.DEADLINE, validator=_positive_or_none("deadline")
    )

    def replace(self, **changes: float | None) -> Timeouts:
        return attrs.evolve(self, **changes)

    def _client_timeout(self, total: float | None = None) -> aiohttp.ClientTimeout:
        # aiohttp's `connect` covers pool wait + connecting; `sock_connect` only the latter.
        pool_and_connect = None
        if self.pool is not None and self.connect is not None:
            pool_and_connect = self.pool + self.connect
        return aiohttp.ClientTimeout(
            total=total, connect=pool_and_connect, sock_connect=self.connect, sock_read=self.read
        )


@attrs.frozen
class Limits:
    """The connection pool: how many connections, per host, and how long idle ones live.

    >>> Limits(max_connections=200, max_per_host=50)
    """

    max_connections: int = defaults.MAX_CONNECTIONS
    max_per_host: int = defaults.MAX_PER_HOST
    keepalive: float = defaults.KEEPALIVE

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.max_connections, int) or self.max_connections < 1:
            raise ValueError(f"max_connections must be an integer >= 1, got {self.max_connections!r}")
        if not isinstance(self.max_per_host, int) or self.max_per_host < 0:
            raise ValueError(f"max_per_host must be an integer >= 0, got {self.max_per_host!r}")
        if not isinstance(self.keepalive, (int, float)) or self.keepalive < 0:
            raise ValueError(f"keepalive must be a number >= 0, got {self.keepalive!r}")


@attrs.define
class SessionStats:
    """Counters a Session keeps: what the demo and the benchmarks print."""

    requests: int = 0  # HTTP attempts sent (retries and auth refreshes included)
    retries: int = 0  # attempts that were a retry of a failed one
    connections_opened: int = 0  # new TCP connections the pool had to open
    errors: int = 0  # calls that ended in an exception

    def snapshot(self) -> dict[str, int]:
        return attrs.asdict(self)


def scrub_url(url: str, secrets: Iterable[str] = ()) -> str:
    """The URL with credential query parameters and known secrets replaced by ``***``."""
    parts = urlsplit(url)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
            query = urlencode(
                [(k, defaults.REDACTED if k.lower() in _SECRET_PARAMS else v) for k, v in pairs]
            )
            url = urlunsplit(parts._replace(query=query))
    if parts.username or parts.password:
        url = url.replace(f"{parts.username or ''}:{parts.password or ''}@", "***@")
    return redact(url, secrets)


def request_id(headers: Mapping[str, str] | None) -> str | None:
    """The request id a server sent in one of the usual headers (``X-Request-Id`` ...), or None."""
    if not headers:
        return None
    lowered = {name.lower(): value for name, value in headers.items()}
    for name in defaults.REQUEST_ID_HEADERS:
        value = lowered.get(name.lower())
        if value:
            return value
    return None


def default_error_message(response: Response) -> str:
    """A readable message from a typical JSON error body, else the body text or reason."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("message", "detail", "error", "msg"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
    text = response.text.strip()
    if text and len(text) <= 500:
        return text
    return response.reason or f"HTTP {response.status}"


class Response:
    """A complete HTTP response: status, headers and the whole body, already read.

    The connection it came on is already back in the pool.
    """

    __slots__ = ("_auth", "_extra_secrets", "_url", "body", "headers", "method", "reason", "status")

    def __init__(
        self,
        *,
        method: str,
        url: URL,
        status: int,
        reason: str,
        headers: CIMultiDictProxy[str],
        body: bytes,
        auth: Auth | None = None,
        secrets: tuple[str, ...] | Callable[[], tuple[str, ...]] = (),
    ):
        self.method = method
        self._url = url
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self._auth = auth
        self._extra_secrets = secrets

    @property
    def _secrets(self) -> tuple[str, ...]:
        held = tuple(self._auth.secrets()) if self._auth is not None else ()
        extra = self._extra_secrets
        return held + (extra if isinstance(extra, tuple) else extra())

    @property
    def url(self) -> str:
        """The request URL, credentials scrubbed."""
        return scrub_url(str(self._url), self._secrets)

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` if it is not JSON; None if empty)."""
        if not self.body:
            return None
        # orjson turns an integer beyond 64 bits into a float: a body with a run of 19 digits
        # or more takes json's way (found by a byte translation, far cheaper than a regex).
        if _fast_loads is not None and _LONG_RUN not in self.body.translate(_DIGITS_ONLY):
            try:
                return _fast_loads(self.body)
            except ValueError:
                pass  # what orjson refuses (NaN, huge integers, UTF-16 ...) json may still read
        body = self.body
        if body[0] in _OPENERS and body[1:2] != b"\x00":
            # What json.loads(bytes) would find after sniffing the encoding (an object or a
            # list whose second byte is no NUL is UTF-8): decoded as it would, sniffing skipped.
            return jsonlib.loads(body.decode("utf-8", "surrogatepass"))
        return jsonlib.loads(body)

    def error(self, message: str | None = None, cls: type[APIError] | None = None) -> APIError:
        """The typed error for this response (class by status unless ``cls`` is given)."""
        if message is None:
            message = default_error_message(self)
        retry_after = (
            parse_retry_after(self.headers) if self.status in (429, 503) else None
        )
        secrets = self._secrets
        headers = CIMultiDictProxy(
            CIMultiDict(
                (name, redact(value, secrets))
                for name, value in self.headers.items()
                if name.lower() != "set-cookie"
            )
        )
        return (cls or error_class_for_status(self.status))(
            redact(message, secrets),
            status=self.status,
            method=self.method,
            url=self.url,
            body=redact(self.text, secrets),
            retry_after=retry_after,
            headers=headers,
            request_id=request_id(headers),
        )

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.method} {self.url}>"


ErrorTranslator: TypeAlias = Callable[[Response], APIError]
# A request body: JSON goes through ``json=``; ``data=`` takes bytes, str, a form
# (mapping or list of pairs; lists become repeated keys), or a zero-argument callable
# that builds a fresh body for every attempt (streams cannot be re-sent otherwise).
Body: TypeAlias = Any


# How to verify TLS servers: None or True (the system's CAs), False (no verification:
# tests only), an ``ssl.SSLContext``, or the path of a CA bundle (PEM) to trust.
SSLOption: TypeAlias = "ssl_module.SSLContext | bool | str | os.PathLike[str] | None"


def ssl_context(value: SSLOption) -> ssl_module.SSLContext | bool:
    """The connector's ``ssl`` argument for an :data:`SSLOption` (checked at once)."""
    if value is None or value is True:
        return True
    if value is False or isinstance(value, ssl_module.SSLContext):
        return value
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        if not os.path.isfile(path):
            raise ValueError(f"ssl must name a CA bundle file that exists, got {path!r}")
        return ssl_module.create_default_context(cafile=path)
    raise TypeError(f"ssl must be a bool, an ssl.SSLContext or a CA file path, got {type(value).__name__}")


class _LazyReadTimer(ResponseHandler):
    """aiohttp's connection protocol with a cheaper read timeout, same meaning.

    aiohttp re-arms ``sock_read`` on every chunk and at every response start (cancel the
    old timer handle, schedule a new one) and cancels it at every response end: two or
    three timer handles per request, about a tenth of a small request's CPU. Here the
    connection keeps one timer: a read only notes when the silence would end
    (``_read_due``), the end of a response only notes that nothing is being read, and
    the timer, when it fires, re-arms itself for what remains or raises aiohttp's own
    read timeout if the silence really lasted. A connection that is closed cancels it.
    """

    _read_due = 0.0
    _reading = False

    def _reschedule_timeout(self) -> None:
        timeout = self._read_timeout
        if not timeout:
            self._reading = False
            return
        due = self._loop.time() + timeout
        self._read_due, self._reading = due, True
        handle = self._read_timeout_handle
        if handle is None or handle.when() > due:  # none armed, or armed too late (a shorter timeout)
            if handle is not None:
                handle.cancel()
            self._read_timeout_handle = self._loop.call_at(due, self._read_timer_fired)

    def _drop_timeout(self) -> None:
        self._reading = False  # the armed timer finds nothing to time out when it fires

    def _read_timer_fired(self) -> None:
        self._read_timeout_handle = None
        if not self._reading:
            return
        if self._loop.time() >= self._read_due:
            self._on_read_timeout()
        else:
            self._read_timeout_handle = self._loop.call_at(self._read_due, self._read_timer_fired)

    def connection_lost(self, exc: BaseException | None) -> None:
        handle, self._read_timeout_handle = self._read_timeout_handle, None
        self._reading = False
        if handle is not None:
            handle.cancel()
        super().connection_lost(exc)


# The lazy timer overrides aiohttp internals: used only where they are what it expects
# (aiohttp's own protocol, and its timing, otherwise).
_LAZY_READ_TIMER = all(
    hasattr(ResponseHandler, name)
    for name in ("_reschedule_timeout", "_drop_timeout", "_on_read_timeout", "connection_lost")
)


class _PoolConnector(aiohttp.TCPConnector):
    """The pool: a TCPConnector that counts the connections it opens.

    Counting here instead of with a TraceConfig keeps aiohttp's per-request signal
    dispatch (a dozen awaited no-op calls once any tracing is on) off the hot path.
    """

    def __init__(self, stats: SessionStats, **kwargs: Any):
        super().__init__(**kwargs)
        self._stats = stats
        if _LAZY_READ_TIMER and hasattr(self, "_factory"):
            self._factory = cast(
                "functools.partial[ResponseHandler]", functools.partial(_LazyReadTimer, loop=self._loop)
            )

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:
        protocol = await super()._create_connection(req, traces, timeout)
        self._stats.connections_opened += 1
        return protocol

    def saturated(self) -> bool:
        """No free slot: the pool, or some host, is at its limit (a connect timeout then
        means the request was still waiting for the pool)."""
        if self._limit and len(self._acquired) >= self._limit:
            return True
        per_host = self._limit_per_host
        return bool(per_host) and any(len(c) >= per_host for c in self._acquired_per_host.values())


class StreamResponse:
    """A successful response whose body has not been read yet (from :meth:`Session.stream`)."""

    def __init__(self, raw: aiohttp.ClientResponse, url: str):
        self._raw = raw
        self.status = raw.status
        self.headers = raw.headers
        self.url = url

    async def iter_chunks(self, chunk_size: int = 64 * 1024) -> AsyncIterator[bytes]:
        """The body in chunks of at most ``chunk_size`` bytes (a failure midway raises
        :class:`~aioplatform.RequestTimeout` or :class:`~aioplatform.TransportError`)."""
        try:
            async for chunk in self._raw.content.iter_chunked(chunk_size):
                yield chunk
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            raise self._failure(exc) from None

    async def read(self) -> bytes:
        try:
            return await self._raw.read()
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            raise self._failure(exc) from None

    def _failure(self, exc: BaseException) -> TransportError:
        method, url = self._raw.method, self.url
        if isinstance(exc, aiohttp.SocketTimeoutError):
            return RequestTimeout(
                "read timeout while streaming the response", phase="read", method=method, url=url
            )
        if isinstance(exc, asyncio.TimeoutError):  # the call's deadline (aiohttp's total timeout)
            return RequestTimeout(
                "deadline exceeded while streaming the response", phase="deadline", method=method, url=url
            )
        return TransportError(f"{type(exc).__name__} while streaming the response", method=method, url=url)


@attrs.define(slots=True, repr=False)
class _Call:
    """One logical call: what every attempt of it needs."""

    method: str
    url: str
    params: Any
    json: Any
    data: Any
    headers: Mapping[str, str] | None
    auth: Auth
    idempotent: bool | None
    retry: RetryPolicy
    timeouts: Timeouts
    errors: ErrorTranslator | None
    session_secrets: tuple[str, ...] = ()  # credentials in the session's default headers
    deadline: float | None = None  # loop time
    stream: bool = False
    refreshed: bool = False
    fresh: bool = True  # no attempt has started and nothing has waited: the whole deadline is left
    _header_secrets: tuple[str, ...] | None = attrs.field(default=None, init=False)

    def header_secrets(self) -> tuple[str, ...]:
        """Credentials in the session's and the call's headers (found only when an error or
        a log line needs them: the success path never looks)."""
        found = self._header_secrets
        if found is None:
            found = self._header_secrets = self.session_secrets + header_secrets(self.headers)
        return found

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc.rpartition("@")[2]  # never the user:password part

    def secrets(self) -> tuple[str, ...]:
        """Every credential this call carries (an Auth's may change on refresh)."""
        return (*self.auth.secrets(), *self.header_secrets())

    def safe_url(self) -> str:
        """The URL as errors and logs show it: credentials scrubbed, in the path too."""
        return scrub_url(self.url, self.secrets())

    def __repr__(self) -> str:  # never the headers or body: they may hold credentials
        return f"<call {self.method} {self.safe_url()}>"


class Session:
    """One connection pool, shared by any number of service clients.

    >>> async with Session(limits=Limits(max_connections=50)) as session:
    ...     async with SaltantClient(url, token, session=session) as saltant, \\
    ...                AstakosClient(token, auth_url, session=session) as astakos:
    ...         ...   # both clients send over the same pool

    The aiohttp session is created lazily inside the running loop and is bound to
    it: using the Session from another loop, or after :meth:`aclose`, raises
    :class:`~aioplatform.SessionError` at once. Nothing is closed from ``__del__``.
    """

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
        ssl: SSLOption = None,
    ):
        for name, value, kind in (
            ("limits", limits, Limits),
            ("timeouts", timeouts, Timeouts),
            ("retry", retry, RetryPolicy),
        ):
            if value is not None and not isinstance(value, kind):
                raise TypeError(f"{name} must be a {kind.__name__}, got {type(value).__name__}")
        self.limits = limits or Limits()
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self.stats = SessionStats()
        self._headers = {"User-Agent": "aioplatform/0.1", **(headers or {})}
        self._header_secrets = header_secrets(self._headers)
        self._trace_configs = list(trace_configs)
        self._ssl = ssl_context(ssl)
        self._client: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._paused_until: dict[str, float] = {}
        self._timeout_cache: dict[Timeouts, aiohttp.ClientTimeout] = {}

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> Session:
        self._ensure_client()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Close the pool. Idempotent; a closed Session refuses further requests.

        Raises :class:`~aioplatform.SessionError` (and closes nothing) when called from
        another event loop than the one the pool was opened in: its connections belong
        to that loop and can only be closed there.
        """
        if self._client is not None and asyncio.get_running_loop() is not self._loop:
            raise SessionError(
                "this Session belongs to another event loop; close it from the loop that used it"
            )
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def _ensure_client(self) -> aiohttp.ClientSession:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise SessionError("a Session can only be used inside a running event loop") from None
        if self._closed:
            raise SessionError("this Session is closed; create a new one")
        client = self._client
        if client is None:
            connector = _PoolConnector(
                self.stats,
                limit=self.limits.max_connections,
                limit_per_host=self.limits.max_per_host,
                keepalive_timeout=self.limits.keepalive,
                ssl=self._ssl,
            )
            client = aiohttp.ClientSession(
                connector=connector,
                trace_configs=self._trace_configs or None,
                headers=self._headers,
            )
            # aiohttp silently re-sends an idempotent request once when a kept-alive
            # connection drops. The RetryPolicy must own (and count) every attempt, so
            # that hidden retry is turned off; a stale connection is an ordinary
            # retryable TransportError for GET/PUT/DELETE and is never re-sent for POST.
            if hasattr(client, "_retry_connection"):
                client._retry_connection = False
            self._client, self._loop = client, loop
        elif loop is not self._loop:
            raise SessionError(
                "this Session belongs to another event loop; create one Session per loop"
            )
        return client

    def pool_status(self) -> dict[str, int]:
        """Connections of the pool now: ``in_use`` (checked out) and ``idle`` (kept alive)."""
        client = self._client
        if client is None or client.connector is None:
            return {"in_use": 0, "idle": 0}
        connector = client.connector
        in_use = len(connector._acquired)
        idle = sum(len(conns) for conns in connector._conns.values())
        return {"in_use": in_use, "idle": idle}

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._client else "new")
        return f"<Session {state} limits={self.limits!r}>"

    # -- requests --------------------------------------------------------------------

    def _call(
        self,
        method: str,
        url: str,
        params: Any,
        json: Any,
        data: Body,
        headers: Mapping[str, str] | None,
        auth: Auth | None,
        idempotent: bool | None,
        retry: RetryPolicy | None,
        timeout: Timeouts | float | None,
        errors: ErrorTranslator | None,
        stream: bool,
    ) -> _Call:
        """The checked call, its deadline running (the pool is opened on first use)."""
        if not isinstance(method, str) or not method:
            raise ValueError("method must be a non-empty string such as 'GET'")
        if json is not None and data is not None:
            raise ValueError("pass either json= or data=, not both")
        if timeout is None:
            timeouts = self.timeouts
        elif isinstance(timeout, Timeouts):
            timeouts = timeout
        elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
            timeouts = self.timeouts.replace(deadline=float(timeout))
        else:
            raise TypeError(f"timeout must be a Timeouts or a number of seconds, got {timeout!r}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) < 9:
            raise ValueError(f"url must be an absolute http(s) URL, got {redact_value(url)}")
        # Positional, in field order: about a third of the cost of 13 keywords, on every call.
        call = _Call(
            method.upper(), url, params, json, data, headers, auth or _NO_AUTH, idempotent,
            retry or self.retry, timeouts, errors, self._header_secrets, None, stream,
        )  # fmt: skip
        self._ensure_client()
        if timeouts.deadline is not None:
            call.deadline = self._loop.time() + timeouts.deadline  # type: ignore[union-attr]
        return call

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        json: Any = None,
        data: Body = None,
        headers: Mapping[str, str] | None = None,
        auth: Auth | None = None,
        idempotent: bool | None = None,
        retry: RetryPolicy | None = None,
        timeout: Timeouts | float | None = None,
        errors: ErrorTranslator | None = None,
    ) -> Response:
        """Send one call (with retries) and return its complete response.

        ``idempotent=True`` lets a POST/PATCH be retried like a GET (only when the
        caller knows re-sending it is harmless). ``timeout`` is a :class:`Timeouts`
        or a number (the call's deadline in seconds). ``errors`` turns an error
        response into the service's typed exception; the default reads common JSON
        error bodies. Raises :class:`~aioplatform.PlatformError` subclasses only.
        """
        call = self._call(
            method, url, params, json, data, headers, auth, idempotent, retry, timeout, errors, False
        )  # fmt: skip
        failed: PlatformError | None = None
        try:
            result = await self._attempt(call)
        except PlatformError as exc:
            failed = exc  # retried outside this handler: a later error does not chain to it
        if failed is not None:
            result = await self._after_failure(call, failed)
        assert isinstance(result, Response)
        return result

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        json: Any = None,
        data: Body = None,
        headers: Mapping[str, str] | None = None,
        auth: Auth | None = None,
        idempotent: bool | None = None,
        retry: RetryPolicy | None = None,
        timeout: Timeouts | float | None = None,
        errors: ErrorTranslator | None = None,
    ) -> AsyncIterator[StreamResponse]:
        """Like :meth:`request`, but the body is left unread for the caller to stream.

        Retries cover everything up to the response headers; an error status is
        read and raised as usual. The connection is released when the block exits.
        """
        call = self._call(
            method, url, params, json, data, headers, auth, idempotent, retry, timeout, errors, True
        )  # fmt: skip
        failed: PlatformError | None = None
        try:
            raw = await self._attempt(call)
        except PlatformError as exc:
            failed = exc
        if failed is not None:
            raw = await self._after_failure(call, failed)
        assert isinstance(raw, aiohttp.ClientResponse)
        try:
            yield StreamResponse(raw, scrub_url(str(raw.url), call.secrets()))
        finally:
            raw.release()

    async def _after_failure(self, call: _Call, first: PlatformError) -> Response | aiohttp.ClientResponse:
        """The first attempt failed: retry when the policy allows it, else raise its error
        (the call's final error is counted in ``stats.errors``)."""
        policy = call.retry
        try:
            if policy.max_attempts <= 1 or not policy.should_retry(first, call.method, call.idempotent):
                raise first
            return await self._retry(call, first)
        except PlatformError:
            self.stats.errors += 1
            raise

    async def _retry(self, call: _Call, first: PlatformError) -> Response | aiohttp.ClientResponse:
        """The slow path: a fresh tenacity loop for the attempts after the first."""
        policy = call.retry
        loop = asyncio.get_running_loop()

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return policy.backoff(state.attempt_number + 1, exc)

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= policy.max_attempts - 1:
                return True
            return call.deadline is not None and loop.time() + state.upcoming_sleep > call.deadline

        def before_sleep(state: RetryCallState) -> None:
            self.stats.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            log.debug(
                "retrying %s %s after %s (attempt %d, sleeping %.2fs)",
                call.method, call.safe_url(), type(exc).__name__,
                state.attempt_number + 2, state.upcoming_sleep,
            )  # fmt: skip

        delay = policy.backoff(1, first)
        if call.deadline is not None and loop.time() + delay > call.deadline:
            raise first
        self.stats.retries += 1
        log.debug(
            "retrying %s %s after %s (attempt 2, sleeping %.2fs)",
            call.method, call.safe_url(), type(first).__name__, delay,
        )  # fmt: skip
        await asyncio.sleep(delay)
        retrying = AsyncRetrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception(
                lambda e: policy.should_retry(e, call.method, call.idempotent)
            ),
            before_sleep=before_sleep,
            reraise=True,
        )
        return await retrying(self._attempt, call)

    def _client_timeout(self, call: _Call) -> aiohttp.ClientTimeout:
        if call.fresh or call.deadline is None:
            # The first attempt has the whole deadline: one ClientTimeout per Timeouts serves it.
            call.fresh = False
            cached = self._timeout_cache.get(call.timeouts)
            if cached is None:
                if len(self._timeout_cache) >= 64:  # many one-off Timeouts (per-call deadlines)
                    self._timeout_cache.clear()
                cached = self._timeout_cache[call.timeouts] = call.timeouts._client_timeout(
                    total=call.timeouts.deadline
                )
            return cached
        remaining = call.deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise RequestTimeout(
                f"deadline of {call.timeouts.deadline}s exceeded",
                phase="deadline", method=call.method, url=call.safe_url(),
            )  # fmt: skip
        return call.timeouts._client_timeout(total=remaining)

    async def _wait_for_host(self, call: _Call) -> None:
        until = self._paused_until.get(call.host)
        if until is None:
            return
        now = asyncio.get_running_loop().time()
        if until <= now:
            self._paused_until.pop(call.host, None)
            return
        if call.deadline is not None and until > call.deadline:
            raise RequestTimeout(
                f"the host's rate-limit pause outlasts the {call.timeouts.deadline}s deadline",
                phase="deadline", method=call.method, url=call.safe_url(),
            )  # fmt: skip
        call.fresh = False
        await asyncio.sleep(until - now)

    def _pause_host(self, host: str, seconds: float) -> None:
        until = asyncio.get_running_loop().time() + seconds
        if until > self._paused_until.get(host, 0.0):
            self._paused_until[host] = until

    async def _attempt(self, call: _Call) -> Response | aiohttp.ClientResponse:
        """One HTTP exchange (plus at most one resend after an auth refresh)."""
        client = self._client or self._ensure_client()  # None once closed: that raises
        if self._paused_until:
            await self._wait_for_host(call)
        while True:
            if call.auth is _NO_AUTH:
                headers = call.headers  # aiohttp copies them into the request: nothing to add
            else:
                headers = dict(call.headers) if call.headers else {}
                call.auth.apply(headers)
            data = call.data() if callable(call.data) else call.data
            timeout = self._client_timeout(call)
            self.stats.requests += 1
            try:
                # aiohttp's own coroutine: request() only wraps it in a context manager
                raw = await client._request(
                    call.method,
                    call.url,
                    params=call.params,
                    json=call.json,
                    data=data,
                    headers=headers,
                    timeout=timeout,
                )
            except aiohttp.ClientConnectorError as exc:
                raise ConnectError(
                    f"cannot connect to {call.host}: "
                    f"{redact(exc.os_error.strerror or str(exc), call.secrets())}",
                    method=call.method, url=call.safe_url(),
                ) from None  # fmt: skip
            except aiohttp.ConnectionTimeoutError:
                queued = isinstance(client.connector, _PoolConnector) and client.connector.saturated()
                phase = "pool" if queued else "connect"
                limit = call.timeouts.pool if queued else call.timeouts.connect
                raise RequestTimeout(
                    f"{phase} timeout after {limit}s",
                    phase=phase, method=call.method, url=call.safe_url(),
                ) from None  # fmt: skip
            except aiohttp.SocketTimeoutError:
                raise RequestTimeout(
                    f"read timeout after {call.timeouts.read}s",
                    phase="read", method=call.method, url=call.safe_url(),
                ) from None  # fmt: skip
            except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
                raise RequestTimeout(
                    f"deadline of {call.timeouts.deadline}s exceeded",
                    phase="deadline", method=call.method, url=call.safe_url(),
                ) from None  # fmt: skip
            except aiohttp.ClientError as exc:
                if (own := source_error(exc)) is not None:
                    # The caller's upload stream failed: its error, as it is (its own cause kept).
                    raise own from own.__cause__
                raise TransportError(
                    f"{type(exc).__name__}: {redact(str(exc), call.secrets())}",
                    method=call.method, url=call.safe_url(),
                ) from None  # fmt: skip

            if call.stream and raw.status < 400:
                return raw
            try:
                body = await raw.read()
            except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                raw.close()
                if (own := source_error(exc)) is not None:
                    raise own from own.__cause__
                if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
                    which = "read" if isinstance(exc, aiohttp.SocketTimeoutError) else "deadline"
                    raise RequestTimeout(
                        f"{which} timeout while reading the response",
                        phase=which, method=call.method, url=call.safe_url(),
                    ) from None  # fmt: skip
                raise TransportError(
                    f"{type(exc).__name__} while reading the response",
                    method=call.method, url=call.safe_url(),
                ) from None  # fmt: skip
            finally:
                raw.release()
            response = Response(
                method=call.method,
                url=raw.url,
                status=raw.status,
                reason=raw.reason or "",
                headers=raw.headers,
                body=body,
                auth=call.auth,
                secrets=call.header_secrets,  # a bound method: looked at only on an error
            )
            if response.status < 400:
                return response
            if (
                response.status in (401, 403)
                and not call.refreshed
                and call.auth is not _NO_AUTH
            ):
                call.refreshed = True
                if await call.auth.refresh(response):
                    continue  # rejected at the door: resending cannot duplicate work
            error = call.errors(response) if call.errors is not None else response.error()
            if (
                isinstance(error, RateLimited)
                and error.retry_after is not None
                and error.retry_after <= call.retry.retry_after_cap
            ):
                self._pause_host(call.host, error.retry_after)
            raise error
