"""Reconciling a batch of creates whose answers may be lost.

A create is a POST: never re-sent once it may have reached the server. When its answer
is lost (:func:`~aioplatform.core.batch.answer_lost`) the server may hold the record
anyway, so a batch that reconciles looks each such record up once every request is
done. What every service does alike lives here: the batch itself with the time each
request was sent, the outcomes held back from ``on_outcome`` until final, and the
claim-once bookkeeping (a record found for one item is never found for another). What
a lost record looks like, and where to search for it, is each service's own.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Any, TypeVar

from . import defaults
from .batch import (
    BatchResult,
    Breaker,
    OutcomeCallback,
    ProgressCallback,
    ReportedOutcomes,
    answer_lost,
    gather,
)

__all__ = ["CLOCK_SLACK", "FindLost", "date_header_skew", "gather_reconciled"]

T = TypeVar("T")
P = TypeVar("P")

# Seconds taken off the estimated server time of a lost request before looking its
# record up: an HTTP Date header has a resolution of one second.
CLOCK_SLACK = 1.0

# find_lost(index, sent_at, error, claimed): the record item ``index`` made, sent at
# ``sent_at`` (time.time(), our clock) and failed with ``error``, that is none of
# ``claimed``; None when there is none or the lookup failed (noted on ``error``).
FindLost = Callable[[int, float, BaseException, set[Any]], Awaitable[Any]]


def date_header_skew(headers: Mapping[str, str]) -> float | None:
    """The server's clock minus ours, from a response's ``Date`` header; None when the
    header is absent or unreadable. Truncated to the second and read after the answer
    came, it errs low, never high."""
    try:
        server = email.utils.parsedate_to_datetime(headers["Date"])
    except (KeyError, TypeError, ValueError):
        return None
    return server.timestamp() - time.time()


async def gather_reconciled(
    send: Callable[[P], Awaitable[T]],
    inputs: list[Any],
    prepared: list[P],
    *,
    find_lost: FindLost,
    identity: Callable[[T], Hashable],
    claimed: Iterable[Hashable] = (),
    concurrency: int = defaults.CONCURRENCY,
    fail_fast: bool = False,
    on_progress: ProgressCallback | None = None,
    on_outcome: OutcomeCallback | None = None,
    breaker: Breaker | None = None,
) -> BatchResult[T]:
    """:func:`~aioplatform.core.batch.gather` of ``send(prepared[i])``, then each item whose
    answer was lost looked up with ``find_lost``, in input order, one at a time: a record
    found becomes the item's outcome. ``claimed`` starts as the given identities (records
    that must never be taken: the inputs themselves, what existed before the batch) plus
    ``identity(value)`` of every success, and grows by each record found. ``on_outcome``
    hears a lost answer only once reconciled; the result's items are ``inputs``."""
    if len(inputs) != len(prepared):
        raise ValueError("inputs and prepared must have the same length")
    reported = ReportedOutcomes(on_outcome, inputs, hold=answer_lost)
    sent_at: dict[int, float] = {}

    async def send_one(item: tuple[int, P]) -> T:
        sent_at[item[0]] = time.time()
        return await send(item[1])

    result = await gather(
        send_one, list(enumerate(prepared)), concurrency=concurrency, fail_fast=fail_fast,
        on_progress=on_progress, on_outcome=reported, breaker=breaker,
    )  # fmt: skip
    outcomes = list(result.outcomes)
    failed = {e.index for e in result.errors}
    taken: set[Any] = set(claimed) | {identity(value) for value in result.values}
    for index in sorted(failed):
        error = outcomes[index]
        if index not in sent_at or not isinstance(error, BaseException) or not answer_lost(error):
            continue
        found = await find_lost(index, sent_at[index], error, taken)
        if found is not None:
            taken.add(identity(found))
            outcomes[index] = found
            failed.discard(index)
    return await reported.release(BatchResult(list(inputs), outcomes, failed, stopped=result.stopped))
