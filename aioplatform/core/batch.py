"""gather and BatchResult: run one coroutine per item with bounded concurrency, lose nothing.

``await gather(fn, items, concurrency=32)`` keeps at most ``concurrency`` calls in
flight with only ``concurrency`` worker tasks alive (not one task per item), pulls
items lazily from any iterable or async iterable, and returns a :class:`BatchResult`
with exactly one outcome per input, in input order.

>>> result = await gather(client.container_task_instances.clone, uuids, concurrency=50)
>>> result.ok, len(result.values), [(e.index, e.exception) for e in result.errors]
>>> result.raise_for_errors()   # BatchError: an ExceptionGroup, one note per failed item

Two options make a long batch behave under failure: ``breaker=Breaker(20)`` stops
starting new items once 20 consecutive failures show that every remaining item would
fail the same way (credentials rejected, or the only host refusing connections), and
``on_outcome(index, item, outcome)`` hears each outcome the moment it is final, in
completion order, so a caller can stream results instead of waiting for the end.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import reprlib
from collections.abc import (
    AsyncIterable,
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Iterator,
    Sequence,
    Sized,
)
from typing import Any, Generic, TypeVar

import attrs

from . import defaults
from .errors import (
    BatchError,
    ConnectError,
    ItemCancelled,
    NotAttempted,
    ServerError,
    TransportError,
    Unauthorized,
)

__all__ = [
    "gather",
    "BatchResult",
    "Breaker",
    "ItemError",
    "OutcomeCallback",
    "ProgressCallback",
    "answer_lost",
    "check_batch_options",
    "gather_prepared",
    "backoff_pauses",
    "fixed_pauses",
    "poll_many",
    "ReportedOutcomes",
    "summarize_item",
]

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741
K = TypeVar("K", bound=Hashable)

ProgressCallback = Callable[[int, "int | None", Any], "Awaitable[None] | None"]
# on_outcome(index, item, outcome): the input's position, the input as given, and its
# final outcome (the value or the exception); sync or async.
OutcomeCallback = Callable[[int, Any, Any], "Awaitable[None] | None"]


NOTE_ITEM_LIMIT = 200  # characters of an item's summary in a BatchError note


class _ItemRepr(reprlib.Repr):
    """reprlib's bounded repr, with binary data shown by its size alone."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxtuple, self.maxlist, self.maxdict = 3, 4, 4, 4
        self.maxset = self.maxfrozenset = self.maxdeque = 4
        self.maxstring, self.maxother, self.maxlong = 120, 120, 40

    def repr_bytes(self, value: bytes, level: int) -> str:
        return f"<{len(value)} bytes>"

    repr_bytearray = repr_bytes

    def repr_memoryview(self, value: memoryview, level: int) -> str:
        return f"<{value.nbytes} bytes>"


_item_repr = _ItemRepr()


def summarize_item(item: Any, limit: int = NOTE_ITEM_LIMIT) -> str:
    """A short, bounded description of a batch item for notes and logs (at most ``limit``
    characters): containers show their first elements, binary data only its size
    (``<8388608 bytes>``), long strings their start."""
    try:
        text = _item_repr.repr(item)
    except Exception:  # an item's own __repr__ failing must not hide the batch's errors
        text = f"<{type(item).__name__} object>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def answer_lost(exc: BaseException) -> bool:
    """Whether the server may have acted on a request that failed with ``exc``: it was sent
    but no usable answer came back (a dropped connection or timeout after sending, a 5xx
    other than 503, an item cancelled in flight). What a batch's reconciliation looks up."""
    if isinstance(exc, TransportError):
        return exc.sent
    if isinstance(exc, ServerError):
        return exc.status != 503  # 503 is answered before the application runs
    return isinstance(exc, ItemCancelled)


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


@attrs.frozen
class Breaker:
    """A batch's circuit breaker: after ``threshold`` consecutive failures of a kind that
    will hit every remaining item, stop starting new items.

    The kinds (:meth:`classify`): credentials rejected (any
    :class:`~aioplatform.Unauthorized`, which every service raises for a refused token,
    including saltant's ``AuthenticationFailed`` and Agave's ``AuthenticationError``),
    and a connection that could not be made (:class:`~aioplatform.ConnectError`:
    refused, DNS failure, unreachable) to one origin. Any success, or any other failure,
    resets the count. Calls already in flight finish normally; every item not started
    gets :class:`~aioplatform.NotAttempted` with ``.cause`` the last failure, and
    :attr:`BatchResult.stopped` says why in one sentence.

    >>> result = await gather(fn, items, breaker=Breaker(threshold=20))
    >>> result.stopped   # 'stopped after 20 consecutive connection failures to http://...'
    """

    threshold: int = attrs.field(default=defaults.BREAKER_THRESHOLD)

    @threshold.validator
    def _check(self, attribute: Any, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"threshold must be an integer, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"threshold must be >= 1, got {value!r}")

    @staticmethod
    def classify(exc: BaseException) -> tuple[str, str] | None:
        """``(kind, target)`` when ``exc`` would hit every remaining item, else None."""
        if isinstance(exc, Unauthorized):
            return ("credentials", "")
        if isinstance(exc, ConnectError):
            return ("connection", _origin(exc.url))
        return None

    @staticmethod
    def describe(kind: tuple[str, str], count: int, last: BaseException) -> str:
        """The one sentence a stopped batch reports (:attr:`BatchResult.stopped`)."""
        if kind[0] == "connection":
            where = kind[1] or "the server"
            return (
                f"stopped after {count} consecutive connection failures to {where} — "
                "is the server running?"
            )
        status = getattr(last, "status", None)
        message = getattr(last, "message", None) or str(last)
        return (
            f"stopped after {count} consecutive rejections of the credentials "
            f"({status} {message}) — check the token and that it is the kind this service needs"
        )


def check_batch_options(
    concurrency: object = 1,
    on_progress: object = None,
    on_outcome: object = None,
    breaker: object = None,
    fail_fast: object = False,
    reconcile: object = False,
) -> None:
    """The batch options every ``*_many`` method takes, checked before any request: a wrong
    type is a ``TypeError``, a wrong value a ``ValueError``, each naming the argument."""
    if not isinstance(reconcile, bool):
        raise TypeError(f"reconcile must be a bool, got {type(reconcile).__name__}")
    if not isinstance(concurrency, int) or isinstance(concurrency, bool):
        raise TypeError(f"concurrency must be an integer, got {type(concurrency).__name__}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")
    if not isinstance(fail_fast, bool):
        raise TypeError(f"fail_fast must be a bool, got {type(fail_fast).__name__}")
    if on_progress is not None and not callable(on_progress):
        raise TypeError(f"on_progress must be callable or None, got {type(on_progress).__name__}")
    if on_outcome is not None and not callable(on_outcome):
        raise TypeError(f"on_outcome must be callable or None, got {type(on_outcome).__name__}")
    if breaker is not None and not isinstance(breaker, Breaker):
        raise TypeError(f"breaker must be a Breaker or None, got {type(breaker).__name__}")


@attrs.frozen
class ItemError:
    """A failed item: its position in the input, the item, and what it raised."""

    index: int
    item: Any = attrs.field(repr=summarize_item)
    exception: BaseException


_PENDING = object()


class BatchResult(Generic[T]):
    """Exactly one outcome per input, in input order: the value, or the exception.

    * ``outcomes`` — every outcome (value or exception) by input position,
    * ``values`` — the successful values, in input order,
    * ``errors`` — :class:`ItemError` for each failure,
    * ``ok`` — True when nothing failed,
    * ``items`` — the inputs exactly as the caller gave them, in order,
    * ``stopped`` — why the batch stopped early (a breaker or ``fail_fast``), else None.
    """

    __slots__ = ("_failed", "_outcomes", "items", "stopped")

    def __init__(
        self, items: list[Any], outcomes: list[Any], failed: set[int], *, stopped: str | None = None
    ):
        if len(items) != len(outcomes):
            raise ValueError("items and outcomes must have the same length")
        self.items = items
        self._outcomes = outcomes
        self._failed = failed
        self.stopped = stopped

    @property
    def not_attempted(self) -> int:
        """How many items were never started (:class:`~aioplatform.NotAttempted`)."""
        return sum(isinstance(self._outcomes[i], NotAttempted) for i in self._failed)

    @property
    def outcomes(self) -> list[T | BaseException]:
        return list(self._outcomes)

    @property
    def values(self) -> list[T]:
        return [o for i, o in enumerate(self._outcomes) if i not in self._failed]

    @property
    def errors(self) -> list[ItemError]:
        return [ItemError(i, self.items[i], self._outcomes[i]) for i in sorted(self._failed)]

    @property
    def ok(self) -> bool:
        return not self._failed

    def succeeded(self, index: int) -> bool:
        return index not in self._failed

    def __len__(self) -> int:
        return len(self._outcomes)

    def __iter__(self) -> Iterator[T | BaseException]:
        return iter(self._outcomes)

    def __getitem__(self, index: int) -> T | BaseException:
        return self._outcomes[index]  # type: ignore[no-any-return]

    def with_items(self, items: list[Any]) -> BatchResult[T]:
        """The same outcomes reported against ``items`` (the caller's inputs, one per outcome)."""
        return BatchResult(list(items), self._outcomes, self._failed, stopped=self.stopped)

    def raise_for_errors(self) -> None:
        """Raise :class:`~aioplatform.BatchError` if any item failed: a note names each by its
        index and a bounded summary (:func:`summarize_item`), never the whole item."""
        if not self._failed:
            return
        excs: list[Exception] = []
        for err in self.errors:
            exc = err.exception
            if not isinstance(exc, Exception):  # pragma: no cover - BaseExceptions are re-raised
                exc = ItemCancelled(repr(exc))
            note = f"item {err.index}: {summarize_item(err.item)}"
            if note not in getattr(exc, "__notes__", ()):  # raising twice adds no second note
                exc.add_note(note)
            excs.append(exc)
        raise BatchError(
            f"{len(self._failed)} of {len(self)} items failed", excs, result=self
        )

    def __repr__(self) -> str:
        return f"<BatchResult {len(self) - len(self._failed)} ok, {len(self._failed)} failed>"


async def _aiter(items: Iterable[I] | AsyncIterable[I]) -> Any:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def gather(
    fn: Callable[[I], Awaitable[T]],
    items: Iterable[I] | AsyncIterable[I],
    *,
    concurrency: int = defaults.CONCURRENCY,
    fail_fast: bool = False,
    on_progress: ProgressCallback | None = None,
    on_outcome: OutcomeCallback | None = None,
    breaker: Breaker | None = None,
) -> BatchResult[T]:
    """Run ``fn(item)`` for every item, at most ``concurrency`` at a time.

    Every input gets exactly one outcome. With ``fail_fast=True`` the first failure
    stops the batch: calls in flight are cancelled (outcome :class:`ItemCancelled`: it
    may or may not have taken effect on the server) and items not yet started get
    :class:`NotAttempted` (the rest of the input is still read to record them).
    ``on_progress(done, total, outcome)`` — sync or async — is called once per item;
    ``total`` is ``len(items)`` when the input has a length, else None.
    ``on_outcome(index, item, outcome)`` — sync or async — is called once per input the
    moment its outcome is final, in completion order (items never started included),
    so outcomes can be streamed; the returned result still holds them in input order.
    With ``breaker`` (a :class:`Breaker`), consecutive failures that would hit every
    remaining item stop the batch: no new item starts, calls in flight finish, and the
    rest get :class:`NotAttempted` whose ``cause`` is the last failure.
    Cancelling ``gather`` itself cancels every call in flight and re-raises.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a callable returning an awaitable, got {fn!r}")
    if not isinstance(items, (Iterable, AsyncIterable)) or isinstance(items, (str, bytes)):
        raise TypeError(f"items must be an iterable or async iterable, got {type(items).__name__}")
    check_batch_options(concurrency, on_progress, on_outcome, breaker, fail_fast)

    total = len(items) if isinstance(items, Sized) else None
    source = _aiter(items)
    inputs: list[Any] = []
    outcomes: list[Any] = []
    failed: set[int] = set()
    in_flight: dict[int, asyncio.Task[Any]] = {}
    stopping = False
    stopped: str | None = None
    streak: tuple[tuple[str, str] | None, int] = (None, 0)
    trip_cause: BaseException | None = None
    done = 0
    pull_lock = asyncio.Lock()

    async def report(index: int) -> None:
        nonlocal done
        done += 1
        if on_outcome is not None:
            maybe = on_outcome(index, inputs[index], outcomes[index])
            if inspect.isawaitable(maybe):
                await maybe
        if on_progress is not None:
            maybe = on_progress(done, total, outcomes[index])
            if inspect.isawaitable(maybe):
                await maybe

    def count(outcome: Any, error: bool) -> None:
        nonlocal streak, stopping, stopped, trip_cause
        if breaker is None or stopping:
            return
        kind = Breaker.classify(outcome) if error else None
        streak = (kind, streak[1] + 1 if kind is not None and kind == streak[0] else 1)
        if kind is not None and streak[1] >= breaker.threshold:
            stopping, trip_cause = True, outcome
            stopped = Breaker.describe(kind, streak[1], outcome)

    async def record(index: int, outcome: Any, error: bool) -> None:
        outcomes[index] = outcome
        if error:
            failed.add(index)
        count(outcome, error)
        await report(index)

    async def pull() -> tuple[int, Any] | None:
        async with pull_lock:
            if stopping:
                return None
            try:
                item = await source.__anext__()
            except StopAsyncIteration:
                return None
            inputs.append(item)
            outcomes.append(_PENDING)
            return len(inputs) - 1, item

    def cancelled_from_outside() -> bool:
        # The worker itself is being cancelled (gather was cancelled), as opposed to
        # fail_fast cancelling the item's own task.
        current = asyncio.current_task()
        cancelling = getattr(current, "cancelling", None)
        return bool(cancelling()) if cancelling is not None else not stopping

    async def run_one(index: int, item: Any) -> None:
        nonlocal stopping, stopped, trip_cause
        if not fail_fast:
            try:
                value = await fn(item)
            except Exception as exc:
                await record(index, exc, True)
            else:
                await record(index, value, False)
            return
        # fail_fast needs a handle on every call in flight to cancel the others.
        began = False

        async def call() -> Any:
            nonlocal began
            began = True
            return await fn(item)

        task = asyncio.ensure_future(call())
        in_flight[index] = task
        try:
            value = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled() and stopping and not cancelled_from_outside():
                # A task cancelled before its first step never ran ``fn``: provably not sent.
                outcome = ItemCancelled("cancelled in flight by fail_fast") if began else NotAttempted(
                    "not attempted: the batch stopped at the first failure"
                )
                await record(index, outcome, True)
                return
            task.cancel()
            raise
        except Exception as exc:
            await record(index, exc, True)
            if not stopping or trip_cause is not None:
                stopping, trip_cause = True, None
                stopped = "stopped at the first failure (fail_fast)"
                for other, t in in_flight.items():
                    if other != index:
                        t.cancel()
            return
        finally:
            in_flight.pop(index, None)
        await record(index, value, False)

    async def worker() -> None:
        while True:
            pulled = await pull()
            if pulled is None:
                return
            await run_one(*pulled)

    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for w in workers:
            w.cancel()
        for t in list(in_flight.values()):
            t.cancel()
        await asyncio.gather(*workers, *in_flight.values(), return_exceptions=True)
        raise

    if stopping:  # record what the input still had: never started
        why = f"not attempted: the batch {stopped}" if trip_cause is not None else (
            "not attempted: the batch stopped at the first failure"
        )
        async for item in source:
            inputs.append(item)
            outcomes.append(NotAttempted(why, cause=trip_cause))
            failed.add(len(inputs) - 1)
            await report(len(inputs) - 1)
    return BatchResult(inputs, outcomes, failed, stopped=stopped)


class ReportedOutcomes:
    """The ``on_outcome`` a service hands an inner :func:`gather` so its caller hears the
    inputs it gave (``inputs[index]``, not a converted body; None: the item gather has),
    and, for a batch that reconciles lost answers afterwards, hears such an outcome only
    once it is final.

    ``hold(exc)`` picks the outcomes to hold back (e.g. :func:`answer_lost`);
    ``await reported.release(result)`` reports them from the final result and returns it.
    """

    def __init__(
        self,
        on_outcome: OutcomeCallback | None,
        inputs: list[Any] | None = None,
        hold: Callable[[BaseException], bool] | None = None,
    ):
        self._on_outcome = on_outcome
        self._inputs = inputs
        self._hold = hold
        self._held: list[int] = []

    async def _report(self, index: int, item: Any, outcome: Any) -> None:
        if self._on_outcome is not None:
            given = self._inputs[index] if self._inputs is not None else item
            maybe = self._on_outcome(index, given, outcome)
            if inspect.isawaitable(maybe):
                await maybe

    async def __call__(self, index: int, item: Any, outcome: Any) -> None:
        if self._hold is not None and isinstance(outcome, BaseException) and self._hold(outcome):
            self._held.append(index)
            return
        await self._report(index, item, outcome)

    async def release(self, result: BatchResult[T]) -> BatchResult[T]:
        """Report the held outcomes as ``result`` has them; return ``result``."""
        held, self._held = self._held, []
        for index in held:
            await self._report(index, result.items[index], result[index])
        return result


async def gather_prepared(
    fn: Callable[[Any], Awaitable[T]],
    inputs: list[Any],
    prepared: list[Any],
    *,
    concurrency: int = defaults.CONCURRENCY,
    fail_fast: bool = False,
    on_progress: ProgressCallback | None = None,
    on_outcome: OutcomeCallback | None = None,
    breaker: Breaker | None = None,
) -> BatchResult[T]:
    """:func:`gather` of ``fn(prepared[i])`` whose result and ``on_outcome`` show
    ``inputs[i]``: for a service that checks and converts every input (into a request
    body) before the first request, while :attr:`BatchResult.items` stays the caller's."""
    if len(inputs) != len(prepared):
        raise ValueError("inputs and prepared must have the same length")
    result = await gather(
        lambda pair: fn(pair[1]),
        list(enumerate(prepared)),
        concurrency=concurrency,
        fail_fast=fail_fast,
        on_progress=on_progress,
        on_outcome=ReportedOutcomes(on_outcome, inputs) if on_outcome is not None else None,
        breaker=breaker,
    )
    return result.with_items(inputs)


def fixed_pauses(seconds: float) -> Iterator[float]:
    """The pauses of :func:`poll_many` that never change: ``seconds`` every round."""
    while True:
        yield float(seconds)


def backoff_pauses(start: float, cap: float, *, growth: float = 1.5) -> Iterator[float]:
    """The pauses of :func:`poll_many` that grow: the base starts at ``start`` and grows by
    ``growth`` each round up to ``cap``; each pause is a random share (50-100 %) of the
    base, so the polls of many clients spread out."""
    base = float(start)
    while True:
        yield base * random.uniform(0.5, 1.0)
        base = min(base * growth, cap)


async def poll_many(
    fetch: Callable[[K], Awaitable[T]],
    ids: Sequence[K],
    *,
    done: Callable[[T], bool],
    timeout_error: Callable[[K, T | None], BaseException],
    pauses: Iterator[float],
    deadline: float | None = None,
    concurrency: int = defaults.CONCURRENCY,
    on_progress: ProgressCallback | None = None,
    on_outcome: OutcomeCallback | None = None,
    breaker: Breaker | None = None,
) -> BatchResult[T]:
    """Wait for many things at once by polling them in rounds; one outcome per id, in order.

    Each round calls ``fetch(id)`` through :func:`gather` for every id not yet settled (an id given
    twice is polled once and settles both positions), at most ``concurrency`` in flight.
    An id settles with its value once ``done(value)``, or with the error its poll raised;
    the others are polled again after the next pause from ``pauses`` (:func:`fixed_pauses`,
    :func:`backoff_pauses`). Once ``deadline`` seconds have passed since the call, every
    id still unsettled gets ``timeout_error(id, last value seen or None)``. ``on_outcome``
    and ``on_progress`` hear each position as it settles; a ``breaker`` tripped by a
    round's polls settles every id that round did not poll as ``NotAttempted``. The
    arguments are the caller's to check: this runs no checks of its own.
    """
    loop = asyncio.get_running_loop()
    ends = None if deadline is None else loop.time() + deadline
    positions: dict[K, list[int]] = {}
    for i, key in enumerate(ids):
        positions.setdefault(key, []).append(i)
    outcomes: list[Any] = [None] * len(ids)
    failed: set[int] = set()
    last: dict[K, T] = {}
    settled = 0

    async def settle(key: K, outcome: Any, error: bool) -> None:
        nonlocal settled
        for i in positions[key]:
            outcomes[i] = outcome
            if error:
                failed.add(i)
            settled += 1
            if on_outcome is not None:
                maybe = on_outcome(i, ids[i], outcome)
                if inspect.isawaitable(maybe):
                    await maybe
            if on_progress is not None:
                maybe = on_progress(settled, len(ids), outcome)
                if inspect.isawaitable(maybe):
                    await maybe

    pending = list(positions)
    stopped: str | None = None
    while pending:
        polled = await gather(fetch, pending, concurrency=concurrency, breaker=breaker)
        stopped = stopped or polled.stopped
        still: list[K] = []
        for key, outcome in zip(pending, polled.outcomes, strict=True):
            if isinstance(outcome, BaseException):
                await settle(key, outcome, True)
            elif done(outcome):
                await settle(key, outcome, False)
            else:
                last[key] = outcome
                still.append(key)
        pending = still
        if not pending:
            break
        pause = next(pauses)
        if ends is not None:
            remaining = ends - loop.time()
            if remaining <= 0:
                for key in pending:
                    await settle(key, timeout_error(key, last.get(key)), True)
                break
            pause = min(pause, remaining)
        await asyncio.sleep(pause)
    return BatchResult(list(ids), outcomes, failed, stopped=stopped)
