"""The store runs every job in its own transaction on one thread, whatever the loop does."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from aioplatform.testing.store import Store


async def opened(path: str = ":memory:") -> Store:
    store = Store(path)
    await store.open()
    await store.executescript("CREATE TABLE t (n INTEGER)")
    return store


async def test_concurrent_jobs_each_commit_and_answer_their_own_caller() -> None:
    store = await opened()
    threads: set[str] = set()

    def insert(conn: sqlite3.Connection) -> int:
        threads.add(threading.current_thread().name)
        conn.execute("INSERT INTO t VALUES (1)")
        return int(conn.execute("SELECT COUNT(*) FROM t").fetchone()[0])

    counts = await asyncio.gather(*(store.run(insert) for _ in range(500)))
    # Serialised: every job saw a distinct row count, 1..500, and got its own answer back.
    assert sorted(counts) == list(range(1, 501))
    assert threads == {"aioplatform-store"} and threading.current_thread().name not in threads
    await store.close()


async def test_a_failing_job_rolls_back_alone_and_raises_in_its_caller() -> None:
    store = await opened()

    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (1)")
        raise LookupError("nope")

    def ok(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (2)")

    results = await asyncio.gather(store.run(half_then_fail), store.run(ok), return_exceptions=True)
    assert isinstance(results[0], LookupError) and results[1] is None
    rows = await store.run(lambda c: [r[0] for r in c.execute("SELECT n FROM t")])
    assert rows == [2]
    await store.close()


async def test_a_cancelled_caller_does_not_break_the_store() -> None:
    store = await opened()
    started = threading.Event()
    release = threading.Event()

    def slow(conn: sqlite3.Connection) -> None:
        started.set()
        release.wait(5)
        conn.execute("INSERT INTO t VALUES (1)")

    task = asyncio.ensure_future(store.run(slow))
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
    task.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The transaction it started still committed (as a database would), and the store answers.
    assert await store.run(lambda c: c.execute("SELECT COUNT(*) FROM t").fetchone()[0]) == 1
    await store.close()


async def test_run_sync_from_another_thread_and_close_finishes_queued_work(tmp_path: Path) -> None:
    store = await opened(str(tmp_path / "db.sqlite3"))
    seen = await asyncio.get_running_loop().run_in_executor(
        None, store.run_sync, lambda c: c.execute("INSERT INTO t VALUES (7)").rowcount
    )
    assert seen == 1
    pending = [
        asyncio.ensure_future(store.run(lambda c: c.execute("INSERT INTO t VALUES (8)"))) for _ in range(20)
    ]
    await asyncio.sleep(0)
    await store.close()
    await asyncio.gather(*pending)
    reopened = Store(str(tmp_path / "db.sqlite3"))
    await reopened.open()
    assert await reopened.run(lambda c: c.execute("SELECT COUNT(*) FROM t").fetchone()[0]) == 21
    await reopened.close()
    await reopened.close()  # idempotent
