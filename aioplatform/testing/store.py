"""The platform's SQLite store: one connection, driven from one worker thread.

Handlers never touch sqlite3 on the event loop: ``await store.run(fn)`` runs
``fn(connection)`` on the store's thread inside one transaction (BEGIN IMMEDIATE …
COMMIT, or ROLLBACK if ``fn`` raises), so a handler's reads and writes are atomic
and every request is serialised exactly as a real database would order them.
Tests on another thread use ``store.run_sync(fn)``.

The hand-off is a plain queue rather than a ``ThreadPoolExecutor``: under a batch of
concurrent requests the executor's locks and idle-thread bookkeeping cost more than
the SQL itself (a quarter of the server's time when profiled). The worker drains what
is waiting and answers each event loop once per drained run, so fifty queued
transactions wake the loop once, not fifty times. The other way too: the jobs a loop
submits in one iteration of its loop go to the thread together, once that iteration's
callbacks have run (one queue put and at most one thread wake-up per iteration, not one
per request). Each job is still its own transaction, run in the order submitted.

A *short* job (``run(fn, short=True)``: a few indexed statements, bounded work, such as
copying one row) may run on the event loop itself, at that same end of its iteration:
when the loop has at most ``_INLINE_MAX`` jobs to hand over, none of its earlier jobs is
still out with the thread, the thread is not inside a job (``_busy``) and the database is
in memory (a file's commit may write). Handing a job to the thread and its answer back
costs more CPU (two thread wake-ups, the GIL passed back and forth) than such a
transaction itself; the thread keeps the bigger batches, which it runs in parallel with
the loop's HTTP work. The order is the same: a loop's jobs run in the order submitted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

__all__ = ["Store"]

T = TypeVar("T")

# At most this many jobs run before their answers go back (bounds the added wait).
_DRAIN = 64
# A loop iteration's short jobs run on the loop itself when there are at most this many.
_INLINE_MAX = 3

_Job = tuple[Callable[[], Any], "asyncio.Future[Any] | concurrent.futures.Future[Any]", bool]
# What the queue carries: one job (from another thread), a loop iteration's jobs, or the stop.
_Item: TypeAlias = "_Job | list[_Job] | None"


def _settle(future: asyncio.Future[Any] | concurrent.futures.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return  # the request went away while its transaction ran; the work stands, as in a database
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _run(call: Callable[[], Any]) -> tuple[bool, Any]:
    try:
        return True, call()
    except BaseException as exc:  # handed to the awaiting request, re-raised there
        return False, exc


class Store:
    def __init__(self, path: str = ":memory:"):
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._jobs: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # Per event loop, the jobs submitted in its current iteration and the jobs it has
        # handed to the thread whose answers it has not had yet (both touched by that
        # loop's thread only).
        self._pending: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        self._out: dict[asyncio.AbstractEventLoop, int] = {}
        # Held by whoever runs jobs on the connection: the thread, or a loop running short ones.
        self._busy = threading.Lock()

    # -- the worker thread -------------------------------------------------------------------

    def _work(self) -> None:
        stopping = False
        while not stopping:
            batch: list[_Job | None] = []
            item = self._jobs.get()
            while True:
                if isinstance(item, list):
                    batch.extend(item)
                else:
                    batch.append(item)
                if len(batch) >= _DRAIN:
                    break
                try:
                    item = self._jobs.get_nowait()
                except queue.Empty:
                    break
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
            with self._busy:
                for job in batch:
                    if job is None:
                        stopping = True  # finish what was queued before the stop, then end
                        continue
                    call, future, _ = job
                    ok, value = _run(call)
                    if isinstance(future, asyncio.Future):
                        by_loop.setdefault(future.get_loop(), []).append((future, ok, value))
                    else:
                        _settle(future, ok, value)
            for loop, answers in by_loop.items():
                # A closed loop raises RuntimeError: nobody is waiting there any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._deliver, loop, answers)

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="aioplatform-store", daemon=True)
            self._thread.start()

    def _submit_sync(self, call: Callable[[], T]) -> T:
        self._start()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((call, future, False))
        return future.result()

    async def _submit(self, call: Callable[[], T], short: bool = False) -> T:
        self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._flush, loop)  # after the callbacks of this iteration
        pending.append((call, future, short))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        jobs = self._pending.pop(loop)
        if (
            len(jobs) <= _INLINE_MAX
            and self.path == ":memory:"
            and not self._out.get(loop)
            and all(short for _, _, short in jobs)
            and self._busy.acquire(blocking=False)
        ):
            try:
                for call, future, _ in jobs:
                    ok, value = _run(call)
                    _settle(future, ok, value)
            finally:
                self._busy.release()
            return
        self._out[loop] = self._out.get(loop, 0) + len(jobs)
        self._jobs.put(jobs)

    def _deliver(
        self, loop: asyncio.AbstractEventLoop, answers: list[tuple[asyncio.Future[Any], bool, Any]]
    ) -> None:
        left = self._out[loop] - len(answers)
        if left:
            self._out[loop] = left
        else:
            del self._out[loop]  # no reference kept to a loop with nothing out
        for future, ok, value in answers:
            _settle(future, ok, value)

    # -- on the worker thread ----------------------------------------------------------------

    def _open(self) -> None:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        self._conn = conn

    def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise RuntimeError("the store is not open")
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    # -- the API -----------------------------------------------------------------------------

    async def open(self) -> None:
        await self._submit(self._open)

    async def run(self, fn: Callable[[sqlite3.Connection], T], *, short: bool = False) -> T:
        """Run ``fn(conn)`` in one transaction on the store's thread.

        ``short=True`` for a transaction of a few indexed statements (bounded work, never a
        scan or a regex): it may run on the event loop instead, when that costs less (see
        the module's docstring).
        """
        return await self._submit(lambda: self._transaction(fn), short)

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Same as :meth:`run`, blocking: for tests and tools outside the server's loop."""
        return self._submit_sync(lambda: self._transaction(fn))

    @staticmethod
    def _dump(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                " ORDER BY name"
            )
        ]
        return {
            t: sorted((tuple(r) for r in conn.execute(f'SELECT * FROM "{t}"')), key=repr) for t in tables
        }

    async def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every table's rows (sorted): compare two dumps to check that a request changed nothing."""
        return await self.run(self._dump)

    def dump_sync(self) -> dict[str, list[tuple[Any, ...]]]:
        """:meth:`dump` from another thread."""
        return self.run_sync(self._dump)

    async def executescript(self, sql: str) -> None:
        def script() -> None:
            if self._conn is None:
                raise RuntimeError("the store is not open")
            self._conn.executescript(sql)

        await self._submit(script)

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        if self._thread is None:
            return
        await self._submit(close)
        self._jobs.put(None)
        thread, self._thread = self._thread, None
        await asyncio.get_running_loop().run_in_executor(None, thread.join)
