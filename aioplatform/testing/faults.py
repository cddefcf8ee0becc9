"""Fault injection for the embedded platform: a seeded, repeatable middleware.

Rules (:class:`FaultRule`) apply by probability to requests whose ``"METHOD /path"``
matches a glob; scripts (:meth:`FaultInjector.script`) force exact outcomes on the
next matching requests, for tests that count attempts. Fault kinds:

* ``latency`` — added delay before the handler,
* ``429`` (with ``Retry-After``), ``500``, ``502``, ``503``, ``504`` — answered
  instead of the handler (the handler never runs),
* ``drop_before`` — the connection is closed before the handler runs,
* ``drop_after`` — the handler runs (its effects are committed) and then the
  connection is closed without an answer: the case where a blind POST retry
  duplicates work.

With one client sending sequentially, a seed gives the same faults run after run;
with concurrent clients the draws follow arrival order.
"""

from __future__ import annotations

import asyncio
import collections
import fnmatch
import random
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import attrs
from aiohttp import web

__all__ = ["FaultRule", "FaultInjector", "FAULT_KINDS"]

FAULT_KINDS = ("429", "500", "502", "503", "504", "drop_before", "drop_after")
_STATUS_FAULTS = {"429": 429, "500": 500, "502": 502, "503": 503, "504": 504}


def _rate(name: str) -> Callable[[Any, Any, float], None]:
    def check(instance: Any, attribute: Any, value: float) -> None:
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")

    return check


@attrs.frozen
class FaultRule:
    """Faults for requests matching ``match`` (a glob over ``"METHOD /path"``; ``*`` = all).

    >>> FaultRule(rate_429=0.1, rate_503=0.05, drop_after=0.02)
    >>> FaultRule(match="POST /saltant/api/*/clone/", drop_after=0.5)
    """

    match: str = "*"
    latency: float = 0.0
    rate_429: float = attrs.field(default=0.0, validator=_rate("rate_429"))
    rate_500: float = attrs.field(default=0.0, validator=_rate("rate_500"))
    rate_502: float = attrs.field(default=0.0, validator=_rate("rate_502"))
    rate_503: float = attrs.field(default=0.0, validator=_rate("rate_503"))
    rate_504: float = attrs.field(default=0.0, validator=_rate("rate_504"))
    drop_before: float = attrs.field(default=0.0, validator=_rate("drop_before"))
    drop_after: float = attrs.field(default=0.0, validator=_rate("drop_after"))
    retry_after: float | str | None = 1  # Retry-After sent with 429/503 (seconds or HTTP-date)

    def matches(self, key: str) -> bool:
        return self.match == "*" or fnmatch.fnmatchcase(key, self.match)

    def draw(self, rng: random.Random) -> str | None:
        """Pick at most one fault for a request (one uniform draw over the rates)."""
        x = rng.random()
        for kind, rate in (
            ("429", self.rate_429),
            ("503", self.rate_503),
            ("500", self.rate_500),
            ("502", self.rate_502),
            ("504", self.rate_504),
            ("drop_before", self.drop_before),
            ("drop_after", self.drop_after),
        ):
            if x < rate:
                return kind
            x -= rate
        return None

    @classmethod
    def uniform(cls, rate: float, **kwargs: Any) -> FaultRule:
        """``rate`` spread as the demo uses it: 45% 429, 45% 503, 10% drops after the handler."""
        return cls(
            rate_429=rate * 0.45, rate_503=rate * 0.45, drop_after=rate * 0.10, **kwargs
        )


class FaultInjector:
    """The live fault configuration of a platform: rules, scripts and a seeded RNG."""

    def __init__(self, rules: Iterable[FaultRule] = (), *, seed: int = 0, latency: float = 0.0):
        self.rules: list[FaultRule] = list(rules)
        self.latency = latency
        self._rng = random.Random(seed)
        self._scripts: list[tuple[str, collections.deque[str]]] = []
        self._lock = threading.Lock()  # tests on another thread add scripts and rules
        self.injected: collections.Counter[str] = collections.Counter()  # by kind
        self._by_route: collections.Counter[tuple[str, str]] = collections.Counter()

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self.rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self._scripts.clear()

    def script(self, match: str, outcomes: Iterable[str | int]) -> None:
        """Force ``outcomes`` (``503``, ``"drop_after"``, ``"ok"`` …) on the next matching requests.

        Scripted 429/503 answers carry no ``Retry-After`` (a rule's ``retry_after`` does).

        >>> platform.faults.script("GET /saltant/api/users/", [503, 503])  # then normal answers
        """
        queue = collections.deque(str(o) for o in outcomes)
        for outcome in queue:
            if outcome != "ok" and outcome not in FAULT_KINDS:
                raise ValueError(f"unknown fault {outcome!r}; expected 'ok' or one of {FAULT_KINDS}")
        with self._lock:
            self._scripts.append((match, queue))

    def count(self, kind: str | None = None, match: str = "*") -> int:
        """Faults injected of ``kind`` (any if None) on requests whose ``"METHOD /path"`` matches.

        >>> platform.faults.count("drop_after", "POST /saltant/api/*/clone/")
        """
        with self._lock:
            items = list(self._by_route.items())
        return sum(
            n
            for (k, key), n in items
            if (kind is None or k == kind) and (match == "*" or fnmatch.fnmatchcase(key, match))
        )

    def pick(self, key: str) -> tuple[str | None, float, float | str | None]:
        """(fault kind or None, extra latency, retry_after) for one request."""
        with self._lock:
            for match, queue in self._scripts:
                if queue and (match == "*" or fnmatch.fnmatchcase(key, match)):
                    outcome = queue.popleft()
                    return (None if outcome == "ok" else outcome), 0.0, None
            latency = 0.0
            retry_after: float | str | None = 1
            for rule in self.rules:
                if rule.matches(key):
                    latency += rule.latency
                    kind = rule.draw(self._rng)
                    if kind is not None:
                        return kind, latency, rule.retry_after
            return None, latency, retry_after

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def inject_faults(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            key = f"{request.method} {request.path}"
            kind, latency, retry_after = self.pick(key)
            latency += self.latency
            if latency > 0:
                await asyncio.sleep(latency)
            if kind is None:
                return await handler(request)
            with self._lock:
                self.injected[kind] += 1
                self._by_route[(kind, key)] += 1
            if kind in _STATUS_FAULTS:
                status = _STATUS_FAULTS[kind]
                headers = {}
                if status in (429, 503) and retry_after is not None:
                    headers["Retry-After"] = _format_retry_after(retry_after)
                return web.json_response(
                    {"detail": f"injected fault {status}"}, status=status, headers=headers
                )
            if kind == "drop_before":
                _drop(request)
                raise asyncio.CancelledError  # ends the handler task quietly; nothing was sent
            response = await handler(request)  # drop_after: the work is done, the answer is lost
            _drop(request)
            return response

        return inject_faults


def _format_retry_after(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _drop(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
