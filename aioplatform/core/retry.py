"""RetryPolicy: when a failed call may be sent again, and how long to wait first.

The contract (pinned by tests/core/test_retry.py):

* GET, HEAD, OPTIONS, PUT, DELETE are retried on connection errors, timeouts,
  server disconnects and statuses 429, 502, 503, 504.
* POST and PATCH are retried **only** when the request provably did not reach the
  application: the connection failed or the pool wait timed out before sending,
  or the server answered 429 or 503. Never after a read timeout or a disconnect
  once sent, never on 500/502/504. ``idempotent=True`` on a call opts in to the
  full rules.
* Backoff is exponential with full jitter; ``Retry-After`` (seconds or HTTP-date)
  replaces it, up to ``retry_after_cap``; a longer one is not slept on: the call
  raises (``RateLimited`` for 429) with ``.retry_after`` set.

The policy is pure data; :mod:`aioplatform.core.session` turns it into a fresh
tenacity ``AsyncRetrying`` per call (a shared one mixes attempt counts across
tasks: jd/tenacity#93).
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping

import attrs

from . import defaults
from .errors import APIError, PlatformError, RateLimited, RequestTimeout, TransportError

__all__ = ["RetryPolicy", "parse_retry_after"]


@attrs.frozen
class RetryPolicy:
    """How a call is retried. Immutable; derive variants with :meth:`replace`.

    >>> RetryPolicy()                        # defaults: 4 attempts, 0.5 s .. 8 s backoff
    RetryPolicy(max_attempts=4, backoff_base=0.5, backoff_cap=8.0, retry_after_cap=60.0, ...)
    >>> RetryPolicy.none()                   # a single attempt
    >>> RetryPolicy(max_attempts=8, backoff_cap=30.0)
    """

    max_attempts: int = attrs.field(default=defaults.MAX_ATTEMPTS)
    backoff_base: float = defaults.BACKOFF_BASE
    backoff_cap: float = defaults.BACKOFF_CAP
    retry_after_cap: float = defaults.RETRY_AFTER_CAP
    idempotent_methods: frozenset[str] = defaults.IDEMPOTENT_METHODS
    retry_statuses: frozenset[int] = defaults.RETRY_STATUSES
    unprocessed_statuses: frozenset[int] = defaults.UNPROCESSED_STATUSES

    @max_attempts.validator
    def _check_attempts(self, attribute: attrs.Attribute[int], value: int) -> None:
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"max_attempts must be an integer >= 1, got {value!r}")

    def __attrs_post_init__(self) -> None:
        for name in ("backoff_base", "backoff_cap", "retry_after_cap"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)

    def replace(self, **changes: object) -> RetryPolicy:
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def until_deadline(self) -> RetryPolicy:
        """This policy with its attempts bounded by the call's deadline alone (and, should the
        deadline be lifted, by ``defaults.UNTIL_DEADLINE_ATTEMPTS``).

        For look-ups a caller cannot do without, such as finding the clone or commission
        whose answer was lost: a GET is harmless to repeat, so it is retried (under the
        same rules) until it gets an answer or the deadline ends it.

        >>> patient = client.with_options(retry=RetryPolicy().until_deadline())
        """
        return attrs.evolve(self, max_attempts=max(self.max_attempts, defaults.UNTIL_DEADLINE_ATTEMPTS))

    def is_idempotent(self, method: str, idempotent: bool | None) -> bool:
        return idempotent if idempotent is not None else method in self.idempotent_methods

    def should_retry(self, exc: BaseException, method: str, idempotent: bool | None) -> bool:
        """Whether a call that failed with ``exc`` may be sent again (attempts aside)."""
        if not isinstance(exc, PlatformError):
            return False
        full = self.is_idempotent(method, idempotent)
        if isinstance(exc, APIError):
            if exc.retry_after is not None and exc.retry_after > self.retry_after_cap:
                return False
            if full:
                return exc.status in self.retry_statuses
            return exc.status in self.unprocessed_statuses
        if isinstance(exc, RequestTimeout) and exc.phase == "deadline":
            return False
        if isinstance(exc, TransportError):
            return full or not exc.sent
        return False

    def backoff(self, retry_number: int, exc: BaseException | None = None) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 = the first retry).

        A server's Retry-After wins over the computed backoff.
        """
        if isinstance(exc, APIError) and exc.retry_after is not None:
            return exc.retry_after
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** (retry_number - 1)))
        return random.uniform(0.0, ceiling)


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date; None if absent or bad."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:  # pragma: no cover - older Pythons return None on garbage
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def is_rate_limit(exc: BaseException) -> bool:
    return isinstance(exc, RateLimited)
