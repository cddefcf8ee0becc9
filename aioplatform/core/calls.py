"""Per-call options and raw responses, for every service at once.

Every public coroutine method of a service client and of its resources accepts
``timeout=`` (a :class:`~aioplatform.Timeouts`, or a number: that call's deadline in
seconds), and ``client.with_raw_response.<resource>.<method>(...)`` returns a
:class:`RawResponse` (the parsed value with the status, headers and request id of the
HTTP response it came from)::

    >>> queue = await client.task_queues.get(id=1, timeout=5)
    >>> raw = await client.with_raw_response.task_queues.get(id=1)
    >>> raw.parsed, raw.status, raw.headers["Content-Type"], raw.request_id

Both travel in context variables from the method to the one place every request passes
(:meth:`BaseClient._request <aioplatform.core.client.BaseClient._request>`), so no
resource method has to thread them through its own code: :func:`per_call_options`
wraps a class's public coroutine methods, and :class:`~aioplatform.core.client.BaseClient`
applies it to every client class and to every resource a client binds. Requests that a
call makes on other tasks (a batch's workers) inherit the options, as tasks copy their
context.

Each such method declares the parameter in its own signature, keyword-only and annotated
:data:`CallTimeout` (``timeout: CallTimeout = None``), so type checkers see it and check
its type; the wrapper reads it from the call and the method itself ignores it. A method
whose ``timeout`` parameter has another annotation keeps its own meaning and is left
alone (saltant's ``wait_until_finished(timeout=)``: how long to wait in all); one that
does not declare ``timeout`` at all still gets it at run time, unseen by type checkers.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeAlias, TypeVar

import attrs

from .session import Timeouts, request_id

__all__ = [
    "CallTimeout",
    "RawResponse",
    "RawResponseProxy",
    "call_timeout",
    "check_timeout",
    "per_call_options",
    "raw_responses",
    "record_response",
]

T = TypeVar("T")

CallTimeout: TypeAlias = "Timeouts | float | None"
"""The type of every service method's per-call ``timeout=``: a :class:`~aioplatform.Timeouts`,
a number of seconds (that call's deadline), or None (the client's own timeouts)."""

_TIMEOUT: contextvars.ContextVar[Timeouts | float | None] = contextvars.ContextVar(
    "aioplatform_call_timeout", default=None
)
_RECORDER: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "aioplatform_raw_responses", default=None
)
_WRAPPED = "__aioplatform_call_options__"


def check_timeout(value: object, name: str = "timeout") -> Timeouts | float | None:
    """``value`` if it is None, a :class:`Timeouts` or a positive finite number of seconds;
    otherwise a ``TypeError``/``ValueError`` naming ``name``."""
    if value is None or isinstance(value, Timeouts):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a Timeouts or a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def call_timeout() -> Timeouts | float | None:
    """The ``timeout=`` of the service call running in this context, if one was given."""
    return _TIMEOUT.get()


def record_response(response: Any) -> None:
    """Called for every response a client reads: kept when a raw response is being taken."""
    recorder = _RECORDER.get()
    if recorder is not None:
        recorder.append(response)


@attrs.frozen
class RawResponse(Generic[T]):
    """A service call's parsed value with the HTTP response it came from.

    ``status``, ``headers``, ``request_id`` and ``url`` are the last response's (the one
    the value was read from); ``responses`` holds every response the call read, in order
    (a call can make several: a token refresh, a reconciliation's look-ups, a batch).
    """

    parsed: T
    status: int | None
    headers: Mapping[str, str]
    request_id: str | None
    url: str | None
    responses: tuple[Any, ...] = attrs.field(repr=False, default=())


def per_call_options(cls: type[T]) -> type[T]:
    """Let every public coroutine method of ``cls`` (inherited ones included) take ``timeout=``.

    Idempotent. A method that declares ``timeout: CallTimeout`` gets a wrapper that reads
    it (and still passes it on); one whose ``timeout`` has another annotation is left as it
    is; one without ``timeout`` gets it added at run time.
    """
    for name in dir(cls):
        if name.startswith("_"):
            continue
        function = inspect.getattr_static(cls, name)
        if not inspect.iscoroutinefunction(function) or getattr(function, _WRAPPED, False):
            continue
        signature = inspect.signature(function)
        declared = signature.parameters.get("timeout")
        if declared is None:
            setattr(cls, name, _with_timeout(function, signature))
        elif declared.annotation == "CallTimeout":
            if declared.kind is not inspect.Parameter.KEYWORD_ONLY or declared.default is not None:
                raise TypeError(
                    f"{cls.__qualname__}.{name}: declare timeout as `*, timeout: CallTimeout = None`"
                )
            setattr(cls, name, _reading_timeout(function))
    return cls


async def _under_timeout(
    timeout: object, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Await ``function(*args, **kwargs)`` with ``timeout`` (checked) as the call's own."""
    token = _TIMEOUT.set(check_timeout(timeout))
    try:
        return await function(*args, **kwargs)
    finally:
        _TIMEOUT.reset(token)


def _reading_timeout(function: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a method that declares ``timeout: CallTimeout``: the context carries it."""

    @functools.wraps(function)
    async def call(*args: Any, **kwargs: Any) -> Any:
        timeout = kwargs.get("timeout")
        if timeout is None:
            return await function(*args, **kwargs)
        return await _under_timeout(timeout, function, args, kwargs)

    setattr(call, _WRAPPED, True)
    return call


def _with_timeout(function: Callable[..., Any], signature: inspect.Signature) -> Callable[..., Any]:
    @functools.wraps(function)
    async def call(*args: Any, timeout: Timeouts | float | None = None, **kwargs: Any) -> Any:
        if timeout is None:
            return await function(*args, **kwargs)
        return await _under_timeout(timeout, function, args, kwargs)

    parameters = list(signature.parameters.values())
    keyword = inspect.Parameter(
        "timeout", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="Timeouts | float | None"
    )
    var_keyword = [i for i, p in enumerate(parameters) if p.kind is inspect.Parameter.VAR_KEYWORD]
    at = var_keyword[0] if var_keyword else len(parameters)
    parameters.insert(at, keyword)
    call.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    setattr(call, _WRAPPED, True)
    return call


async def raw_responses(method: Callable[..., Any], *args: Any, **kwargs: Any) -> RawResponse[Any]:
    """Await ``method(*args, **kwargs)`` and return its value with the responses it read."""
    recorder: list[Any] = []
    token = _RECORDER.set(recorder)
    try:
        parsed = await method(*args, **kwargs)
    finally:
        _RECORDER.reset(token)
    last = recorder[-1] if recorder else None
    headers: Mapping[str, str] = last.headers if last is not None else {}
    return RawResponse(
        parsed=parsed,
        status=last.status if last is not None else None,
        headers=headers,
        request_id=request_id(headers),
        url=str(last.url) if last is not None else None,
        responses=tuple(recorder),
    )


class RawResponseProxy:
    """``client.with_raw_response``: the client's resources and coroutine methods, each
    call returning a :class:`RawResponse` instead of the bare value."""

    __slots__ = ("_target",)

    def __init__(self, target: Any):
        self._target = target

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(self._target, name)
        if inspect.iscoroutinefunction(value):
            return functools.partial(raw_responses, value)
        if hasattr(value, "_client"):  # a resource: its methods in turn
            return RawResponseProxy(value)
        raise AttributeError(
            f"with_raw_response.{name}: only coroutine methods and resources have raw responses "
            f"(got {type(value).__name__}; a listing's pages are read lazily: use with_options)"
        )

    def __repr__(self) -> str:
        return f"<with_raw_response of {self._target!r}>"

