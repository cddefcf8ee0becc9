"""The platform's SQLite store: one connection, driven from one worker thread.

Handlers never touch sqlite3 on the event loop: ``await store.run(fn)`` runs
``fn(connection)`` on the store's thread inside one transaction (BEGIN IMMEDIATE …
COMMIT, or ROLLBACK if ``fn`` raises), so a handler's reads and writes are atomic
and every request is serialised exactly as a real database would order them.
Tests on another thread use ``store.run_sync(fn)``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["Store"]

T = TypeVar("T")


class Store:
    def __init__(self, path: str = ":memory:"):
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aioplatform-store")
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

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

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._open)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in one transaction on the store's thread."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._transaction, fn
        )

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Same as :meth:`run`, blocking: for tests and tools outside the server's loop."""
        return self._executor.submit(self._transaction, fn).result()

    async def executescript(self, sql: str) -> None:
        def script() -> None:
            assert self._conn is not None
            self._conn.executescript(sql)

        await asyncio.get_running_loop().run_in_executor(self._executor, script)

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)
