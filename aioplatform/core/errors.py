"""The exception tree of aioplatform. Every error the SDK raises on purpose is one of these::

    PlatformError                    base of everything below
    ├── SessionError                 misuse of a Session: closed, or used from another loop
    ├── TransportError               no usable HTTP answer (.method, .url, .sent)
    │   ├── ConnectError             could not connect; the request was never sent
    │   └── RequestTimeout           .phase: "pool" | "connect" | "read" | "deadline"
    ├── APIError                     the server answered with an error status, or with
    │   │                            a body the client cannot use
    │   │                            (.status, .method, .url, .body, .message, .retry_after,
    │   │                            .headers, .request_id)
    │   ├── BadRequest               400
    │   ├── Unauthorized             401 (and services' "credentials rejected" 403s)
    │   ├── Forbidden                403
    │   ├── NotFound                 404
    │   ├── Conflict                 409
    │   ├── RateLimited              429 (.retry_after: seconds, or None)
    │   ├── ServerError              5xx
    │   └── UnexpectedResponse       a body that is not what the protocol says (not JSON,
    │                                a field missing or of the wrong type): .field names it
    │                                ("$.results[0].uuid"), .problem says what is wrong
    ├── BatchError                   an ExceptionGroup of a batch's failures (.result)
    ├── NotAttempted                 a batch item skipped after a fail_fast or breaker stop
    └── ItemCancelled                a batch item cancelled in flight by a fail_fast stop

Service packages subclass these (e.g. astakos ``QuotaLimit(APIError)``) so one
``except PlatformError`` covers all of them. Messages never contain a token,
password or Authorization header: the session scrubs every secret it knows of
before an error is built (see ``aioplatform.core.auth``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if sys.version_info < (3, 11):  # pragma: no cover - exercised on 3.10 only
    from exceptiongroup import ExceptionGroup

if TYPE_CHECKING:
    from .batch import BatchResult

__all__ = [
    "PlatformError",
    "SessionError",
    "TransportError",
    "ConnectError",
    "RequestTimeout",
    "APIError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "Conflict",
    "RateLimited",
    "ServerError",
    "UnexpectedResponse",
    "BatchError",
    "NotAttempted",
    "ItemCancelled",
    "error_class_for_status",
]


class PlatformError(Exception):
    """Base class of every error aioplatform raises on purpose."""


class SessionError(PlatformError, RuntimeError):
    """A Session was used after ``aclose()`` or from an event loop it does not belong to."""


class TransportError(PlatformError):
    """No usable HTTP answer arrived: connection refused or dropped, or a timeout.

    ``sent`` says whether the request may have reached the server; a non-idempotent
    request is never retried once ``sent`` is true.
    """

    def __init__(self, message: str, *, method: str = "", url: str = "", sent: bool = True):
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url
        self.sent = sent

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.method else ""
        return f"{self.message}{where}"


class ConnectError(TransportError):
    """The connection could not be established; the request was never sent."""

    def __init__(self, message: str, *, method: str = "", url: str = ""):
        super().__init__(message, method=method, url=url, sent=False)


class RequestTimeout(TransportError):
    """A timeout fired. ``phase`` names it: pool wait, connect, read, or the call's deadline."""

    def __init__(self, message: str, *, phase: str, method: str = "", url: str = ""):
        super().__init__(message, method=method, url=url, sent=phase not in ("pool", "connect"))
        self.phase = phase


class APIError(PlatformError):
    """The server answered with a non-success status.

    ``message`` is the server's own message, extracted from the service's error body
    by its client; ``body`` is the raw body text (secrets scrubbed). ``headers`` are the
    response's headers (``Set-Cookie`` left out, secrets scrubbed) and ``request_id`` the
    request id the server sent in one (``X-Request-Id`` ...; None if it sent none).
    """

    status_code: int | None = None  # the status a subclass stands for

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str,
        url: str,
        body: str = "",
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.method = method
        self.url = url
        self.body = body
        self.retry_after = retry_after
        self.headers: Mapping[str, str] = headers if headers is not None else {}
        self.request_id = request_id

    def __str__(self) -> str:
        where = f"{self.method} {self.url}" + (f", request id {self.request_id}" if self.request_id else "")
        return f"{self.status} {self.message} ({where})"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, message={self.message!r}, "
            f"method={self.method!r}, url={self.url!r})"
        )


class BadRequest(APIError):
    status_code = 400


class Unauthorized(APIError):
    status_code = 401


class Forbidden(APIError):
    status_code = 403


class NotFound(APIError):
    status_code = 404


class Conflict(APIError):
    status_code = 409


class RateLimited(APIError):
    """429. ``retry_after`` is the server's Retry-After in seconds (None if absent)."""

    status_code = 429


class ServerError(APIError):
    """Any 5xx answer."""


class UnexpectedResponse(APIError):
    """The server answered (usually 2xx), but the body is not what the protocol says.

    Raised where a response is parsed (:meth:`Response.parse
    <aioplatform.core.session.Response.parse>`), never a raw ``KeyError``, ``TypeError``
    or cattrs error: ``field`` is where the body went wrong, as a JSONPath-like string
    (``"$.results[0].uuid"``; ``"$"`` for the whole body), ``problem`` what was wrong
    there, and ``status``/``method``/``url``/``body`` are the response's. The parsing
    error is chained as ``__cause__``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str,
        url: str,
        body: str = "",
        retry_after: float | None = None,
        field: str = "$",
        problem: str = "",
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ):
        super().__init__(
            message, status=status, method=method, url=url, body=body, retry_after=retry_after,
            headers=headers, request_id=request_id,
        )  # fmt: skip
        self.field = field
        self.problem = problem


_BY_STATUS: dict[int, type[APIError]] = {
    cls.status_code: cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, Conflict, RateLimited)
    if cls.status_code is not None
}


def error_class_for_status(status: int) -> type[APIError]:
    """The APIError subclass for an HTTP status (ServerError for 5xx, APIError otherwise)."""
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls
    return ServerError if status >= 500 else APIError


class NotAttempted(PlatformError):
    """The outcome of a batch item that was never started because the batch stopped early.

    ``cause`` is what stopped the batch when a circuit breaker did (the last of the
    consecutive failures, see :class:`~aioplatform.Breaker`), else None.
    """

    def __init__(self, message: str, *, cause: BaseException | None = None):
        super().__init__(message)
        self.cause = cause


class ItemCancelled(PlatformError):
    """The outcome of a batch item cancelled in flight; it may or may not have taken effect."""


class BatchError(ExceptionGroup[Exception], PlatformError):
    """A batch had failures. An exception group of them, one note per failed item.

    ``result`` is the whole :class:`~aioplatform.BatchResult` (values included),
    so nothing is lost when this is raised.
    """

    result: BatchResult[Any] | None

    def __new__(
        cls, message: str, exceptions: Sequence[Exception], result: BatchResult[Any] | None = None
    ) -> BatchError:
        self = super().__new__(cls, message, exceptions)
        self.result = result
        return self

    def __init__(
        self, message: str, exceptions: Sequence[Exception], result: BatchResult[Any] | None = None
    ):
        super().__init__(message, exceptions)

    def derive(self, excs: Sequence[Exception]) -> BatchError:  # type: ignore[override]
        return BatchError(self.message, excs, self.result)
