"""gather and BatchResult: run one coroutine per item with bounded concurrency, lose nothing.

``await gather(fn, items, concurrency=32)`` keeps at most ``concurrency`` calls in
flight with only ``concurrency`` worker tasks alive (not one task per item), pulls
items lazily from any iterable or async iterable, and returns a :class:`BatchResult`
with exactly one outcome per input, in input order.

>>> result = await gather(client.container_task_instances.clone, uuids, concurrency=50)
>>> result.ok, len(result.values), [(e.index, e.exception) for e in result.errors]
>>> result.raise_for_errors()   # BatchError: an ExceptionGroup, one note per failed item
"""

from __future__ import annotations

import asyncio
import inspect
import reprlib
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Iterator, Sized
from typing import Any, Generic, TypeVar

import attrs

from . import defaults
from .errors import BatchError, ItemCancelled, NotAttempted, ServerError, TransportError

__all__ = ["gather", "BatchResult", "ItemError", "ProgressCallback", "answer_lost", "summarize_item"]

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741

ProgressCallback = Callable[[int, "int | None", Any], "Awaitable[None] | None"]


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
    * ``ok`` — True when nothing failed.
    """

    __slots__ = ("_failed", "_outcomes", "items")

    def __init__(self, items: list[Any], outcomes: list[Any], failed: set[int]):
        if len(items) != len(outcomes):
            raise ValueError("items and outcomes must have the same length")
        self.items = items
        self._outcomes = outcomes
        self._failed = failed

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
) -> BatchResult[T]:
    """Run ``fn(item)`` for every item, at most ``concurrency`` at a time.

    Every input gets exactly one outcome. With ``fail_fast=True`` the first failure
    stops the batch: calls in flight are cancelled (outcome :class:`ItemCancelled`: it
    may or may not have taken effect on the server) and items not yet started get
    :class:`NotAttempted` (the rest of the input is still read to record them).
    ``on_progress(done, total, outcome)`` — sync or async — is called once per item;
    ``total`` is ``len(items)`` when the input has a length, else None.
    Cancelling ``gather`` itself cancels every call in flight and re-raises.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a callable returning an awaitable, got {fn!r}")
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")
    if not isinstance(items, (Iterable, AsyncIterable)):
        raise TypeError(f"items must be an iterable or async iterable, got {type(items).__name__}")
    if on_progress is not None and not callable(on_progress):
        raise TypeError("on_progress must be callable or None")

    total = len(items) if isinstance(items, Sized) else None
    source = _aiter(items)
    inputs: list[Any] = []
    outcomes: list[Any] = []
    failed: set[int] = set()
    in_flight: dict[int, asyncio.Task[Any]] = {}
    stopping = False
    done = 0
    pull_lock = asyncio.Lock()

    async def report(index: int) -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            maybe = on_progress(done, total, outcomes[index])
            if inspect.isawaitable(maybe):
                await maybe

    async def record(index: int, outcome: Any, error: bool) -> None:
        outcomes[index] = outcome
        if error:
            failed.add(index)
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
        nonlocal stopping
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
            if not stopping:
                stopping = True
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
        async for item in source:
            inputs.append(item)
            outcomes.append(NotAttempted("not attempted: the batch stopped at the first failure"))
            failed.add(len(inputs) - 1)
            await report(len(inputs) - 1)
    return BatchResult(inputs, outcomes, failed)
