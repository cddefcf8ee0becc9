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

_Job = tuple[Callable[[], Any], "asyncio.Future[Any] | concurrent.futures.Future[Any]"]
# What the queue carries: one job (from another thread), a loop iteration's jobs, or the stop.
_Item: TypeAlias = "_Job | list[_Job] | None"


def _settle(future: asyncio.Future[Any] | concurrent.futures.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return  # the request went away while its transaction ran; the work stands, as in a database
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _deliver(answers: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in answers:
        _settle(future, ok, value)


class Store:
    def __init__(self, path: str = ":memory:"):
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._jobs: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # Per event loop, the jobs submitted in its current iteration (touched by that
        # loop's thread only), handed over by _flush.
        self._pending: dict[asyncio.AbstractEventLoop, list[_Job]] = {}

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
            for job in batch:
                if job is None:
                    stopping = True  # finish what was queued before the stop, then end
                    continue
                call, future = job
                try:
                    ok, value = True, call()
                except BaseException as exc:  # handed to the awaiting request, re-raised there
                    ok, value = False, exc
                if isinstance(future, asyncio.Future):
                    by_loop.setdefault(future.get_loop(), []).append((future, ok, value))
                else:
                    _settle(future, ok, value)
            for loop, answers in by_loop.items():
                # A closed loop raises RuntimeError: nobody is waiting there any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_deliver, answers)

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="aioplatform-store", daemon=True)
            self._thread.start()

    def _submit_sync(self, call: Callable[[], T]) -> T:
        self._start()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((call, future))
        return future.result()

    async def _submit(self, call: Callable[[], T]) -> T:
        self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._flush, loop)  # after the callbacks of this iteration
        pending.append((call, future))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._jobs.put(self._pending.pop(loop))

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

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in one transaction on the store's thread."""
        return await self._submit(lambda: self._transaction(fn))

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
