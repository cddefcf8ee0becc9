"""BaseClient: what every service client shares (openai-python's "resources over one engine").

A service client subclasses it, names its auth and error-body translation, and its
resource methods only validate arguments and call ``self._request(method, path, ...)``.
The client either borrows a caller's :class:`Session` (and never closes it) or owns
one built from ``limits``/``timeouts``/``retry`` and closes it on exit.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .auth import Auth, redact_value
from .errors import APIError
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

__all__ = ["BaseClient", "check_http_url"]

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


class BaseClient:
    """Base of the service clients: base URL, auth, options, and the session it sends on."""

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
        self: C, *, retry: RetryPolicy | None = None, timeouts: Timeouts | None = None
    ) -> C:
        """A cheap copy with other defaults, sharing this client's session (it never closes it).

        >>> patient = client.with_options(retry=RetryPolicy(max_attempts=10))
        """
        clone = copy.copy(self)
        clone._owns_session = False
        if retry is not None:
            clone._retry = retry
        if timeouts is not None:
            clone._timeouts = timeouts
        clone._rebind()
        return clone

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
        return await self._session.request(
            method,
            self._url(path),
            params=params,
            json=json,
            data=data,
            headers=headers,
            auth=auth if auth is not None else self._auth,
            idempotent=idempotent,
            retry=retry or self._retry,
            timeout=timeout if timeout is not None else self._timeouts,
            errors=self._error,
        )

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
        return self._session.stream(
            method,
            self._url(path),
            params=params,
            headers=headers,
            auth=auth if auth is not None else self._auth,
            retry=retry or self._retry,
            timeout=timeout if timeout is not None else self._timeouts,
            errors=self._error,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {scrub_url(self.base_url)} auth={self._auth!r}>"
