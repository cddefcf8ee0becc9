"""BaseClient: what every service client shares (openai-python's "resources over one engine").

A service client subclasses it, names its auth and error-body translation, and its
resource methods only validate arguments and call ``self._request(method, path, ...)``.
The client either borrows a caller's :class:`Session` (and never closes it) or owns
one built from ``limits``/``timeouts``/``retry`` and closes it on exit.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .auth import Auth, redact_value
from .calls import RawResponseProxy, call_timeout, check_timeout, per_call_options, record_response
from .errors import APIError, PlatformError
from .retry import RetryPolicy
from .session import (
    Body,
    Limits,
    Response,
    Session,
    SSLOption,
    StreamResponse,
    Timeouts,
    default_error_message,
    scrub_url,
)

__all__ = ["BaseClient", "check_headers", "check_http_url"]

C = TypeVar("C", bound="BaseClient")


def check_http_url(name: str, value: object) -> str:
    """``value`` if it is an absolute http(s) URL; otherwise a ``TypeError``/``ValueError``
    naming ``name`` that shows the value only redacted (a token passed where the URL
    goes must not end up in a traceback or a log)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    try:
        split = urlsplit(value)
        valid = split.scheme in ("http", "https") and bool(split.netloc) and split.hostname is not None
    except ValueError:  # e.g. an invalid IPv6 literal
        valid = False
    if not valid:
        raise ValueError(f"{name} must be an absolute http(s) URL, got {redact_value(value)}")
    return value


def check_headers(name: str, value: object) -> dict[str, str]:
    """``value`` as a dict of header names to values, or ``TypeError``/``ValueError`` naming
    ``name`` (a header name or value with a line break would split the request)."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping of header names to values, got {type(value).__name__}")
    checked: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise TypeError(f"{name} must map str to str, got {type(key).__name__}: {type(item).__name__}")
        if not key or any(c in key for c in "\r\n: ") or any(c in item for c in "\r\n"):
            raise ValueError(f"{name} has an invalid header {key!r} (empty, or a line break, space or colon)")
        checked[key] = item
    return checked


_RESOURCE_CLASSES: set[type] = set()


class BaseClient:
    """Base of the service clients: base URL, auth, options, and the session it sends on.

    Every public coroutine method of a subclass, and of every resource object it binds in
    ``_rebind`` (an attribute whose ``_client`` is the client), takes a keyword-only
    ``timeout: CallTimeout = None``: that call's deadline in seconds or a
    :class:`~aioplatform.Timeouts` (:mod:`aioplatform.core.calls`), which the method itself
    never reads.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        per_call_options(cls)
        rebind = cls.__dict__.get("_rebind")
        if rebind is not None and not getattr(rebind, "_binds_call_options", False):

            @functools.wraps(rebind)
            def _rebind(self: BaseClient) -> None:
                rebind(self)
                self._resources_take_call_options()

            _rebind._binds_call_options = True  # type: ignore[attr-defined]
            cls._rebind = _rebind  # type: ignore[method-assign]

    def __init__(
        self,
        base_url: str,
        *,
        auth: Auth | None = None,
        session: Session | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        limits: Limits | None = None,
        ssl: SSLOption = None,
    ):
        check_http_url("base_url", base_url)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
        if timeouts is not None and not isinstance(timeouts, Timeouts):
            raise TypeError(f"timeouts must be a Timeouts, got {type(timeouts).__name__}")
        if session is not None:
            if not isinstance(session, Session):
                raise TypeError(f"session must be an aioplatform Session, got {type(session).__name__}")
            if limits is not None:
                raise ValueError("limits configure a client's own pool; set them on the shared Session")
            if ssl is not None:
                raise ValueError("ssl configures a client's own pool; set it on the shared Session")
            self._session, self._owns_session = session, False
        else:
            self._session = Session(limits=limits, timeouts=timeouts, retry=retry, ssl=ssl)
            self._owns_session = True
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._auth = auth
        self._retry = retry
        self._timeouts = timeouts
        self._headers: dict[str, str] = {}
        # Awaited before each request made with the client's own credential (a login that
        # must happen first, a token about to expire): set by a service that needs one.
        self._prepare: Callable[[], Awaitable[None]] | None = None

    @property
    def session(self) -> Session:
        return self._session

    async def __aenter__(self: C) -> C:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client's own session; a borrowed session is left open."""
        if self._owns_session:
            await self._session.aclose()

    def with_options(
        self: C,
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> C:
        """A cheap copy with other defaults, sharing this client's session (it never closes it).

        Checked at once: a wrong type is a ``TypeError``, a wrong value a ``ValueError``,
        each naming the argument. ``timeouts`` is a :class:`Timeouts` or a number (the
        deadline of each call); ``headers`` are added to every request of the copy (over
        this client's own).

        >>> patient = client.with_options(retry=RetryPolicy(max_attempts=10))
        >>> quick = client.with_options(timeouts=2.0, headers={"X-Trace": "run-7"})
        """
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
        checked_timeouts = check_timeout(timeouts, "timeouts")
        checked_headers = check_headers("headers", headers) if headers is not None else None
        clone = copy.copy(self)
        clone._owns_session = False
        if retry is not None:
            clone._retry = retry
        if isinstance(checked_timeouts, float):
            base = self._timeouts if self._timeouts is not None else self._session.timeouts
            clone._timeouts = base.replace(deadline=checked_timeouts)
        elif checked_timeouts is not None:
            clone._timeouts = checked_timeouts
        if checked_headers:
            clone._headers = {**self._headers, **checked_headers}
        clone._rebind()
        return clone

    @property
    def with_raw_response(self) -> Any:
        """The client's resources and coroutine methods, each call returning a
        :class:`~aioplatform.core.calls.RawResponse` (the parsed value with the status,
        headers and request id of the response it came from).

        >>> raw = await client.with_raw_response.task_queues.get(id=1)
        >>> raw.parsed.name, raw.status, raw.headers["Content-Type"]
        """
        return RawResponseProxy(self)

    def _resources_take_call_options(self) -> None:
        for value in list(vars(self).values()):
            cls = type(value)
            if cls not in _RESOURCE_CLASSES and getattr(value, "_client", None) is self:
                per_call_options(cls)
                _RESOURCE_CLASSES.add(cls)

    def _call_timeout(self, timeout: Timeouts | float | None) -> Timeouts | float | None:
        """The timeout of one request: the method's own, else the call's ``timeout=``, else
        the client's (a number is the deadline, the other phases from the client's)."""
        if timeout is None:
            timeout = call_timeout()
        if timeout is None:
            return self._timeouts
        if isinstance(timeout, (int, float)) and self._timeouts is not None:
            return self._timeouts.replace(deadline=float(timeout))
        return timeout

    def _with_headers(self, headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
        if not self._headers:
            return headers
        return {**self._headers, **(headers or {})}

    def _for_lookups(self: C) -> C:
        """A copy whose calls retry until their deadline (:meth:`RetryPolicy.until_deadline`):
        for the GETs a batch's reconciliation cannot do without."""
        policy = self._retry if self._retry is not None else self._session.retry
        return self.with_options(retry=policy.until_deadline())

    def _rebind(self) -> None:
        """Hook for subclasses whose resource objects hold a reference to the client."""

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + path.lstrip("/")

    def _error(self, response: Response) -> APIError:
        """Turn an error response into the typed exception; services override this."""
        return response.error(default_error_message(response))

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        data: Body = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        retry: RetryPolicy | None = None,
        timeout: Timeouts | float | None = None,
        auth: Auth | None = None,
    ) -> Response:
        if self._prepare is not None and auth is None:
            await self._prepare()
        session = self._session
        # Session.request's own steps, without its frame and its keywords: every service
        # call passes here. Positional, in Session._call's order.
        call = session._call(
            method, self._url(path), params, json, data, self._with_headers(headers),
            auth if auth is not None else self._auth, idempotent, retry or self._retry,
            self._call_timeout(timeout), self._error, False,
        )  # fmt: skip
        failed: PlatformError | None = None
        try:
            response = await session._attempt(call)
        except PlatformError as exc:
            failed = exc  # retried outside this handler: a later error does not chain to it
        if failed is not None:
            response = await session._after_failure(call, failed)
        assert isinstance(response, Response)
        record_response(response)
        return response

    def _stream(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        timeout: Timeouts | float | None = None,
        auth: Auth | None = None,
    ) -> AbstractAsyncContextManager[StreamResponse]:
        """Like :meth:`_request`, but the body is left unread: ``async with self._stream(...) as r``."""
        opened = self._session.stream(
            method,
            self._url(path),
            params=params,
            headers=self._with_headers(headers),
            auth=auth if auth is not None else self._auth,
            retry=retry or self._retry,
            timeout=self._call_timeout(timeout),
            errors=self._error,
        )

        prepare = self._prepare if auth is None else None

        @contextlib.asynccontextmanager
        async def recorded() -> AsyncIterator[StreamResponse]:
            if prepare is not None:
                await prepare()
            async with opened as response:
                record_response(response)
                yield response

        return recorded()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {scrub_url(self.base_url)} auth={self._auth!r}>"
