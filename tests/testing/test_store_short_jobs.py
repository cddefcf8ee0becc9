"""Short jobs (``Store.run(fn, short=True)``) may run on the event loop: same order, same transactions.

The loop runs an iteration's short jobs itself only when they are few, the database is
in memory, none of its earlier jobs is still with the store's thread and the thread is
not inside a job; otherwise they go to the thread like any other job.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from aioplatform.testing import store as store_module
from aioplatform.testing.store import Store


async def opened(path: str = ":memory:") -> Store:
    store = Store(path)
    await store.open()
    await store.executescript("CREATE TABLE t (n INTEGER)")
    return store


def runs_on(conn: sqlite3.Connection) -> str:
    return threading.current_thread().name


async def test_a_lone_short_job_runs_on_the_loop_and_other_jobs_on_the_thread() -> None:
    store = await opened()
    here = threading.current_thread().name
    assert await store.run(runs_on, short=True) == here
    assert await store.run(runs_on) == "aioplatform-store"
    many = await asyncio.gather(
        *(store.run(runs_on, short=True) for _ in range(store_module._INLINE_MAX + 1))
    )
    assert set(many) == {"aioplatform-store"}  # a bigger batch goes to the thread
    mixed = await asyncio.gather(store.run(runs_on, short=True), store.run(runs_on))
    assert list(mixed) == ["aioplatform-store"] * 2  # one long job sends the iteration's batch to the thread
    await store.close()


async def test_a_file_database_keeps_every_job_on_the_thread(tmp_path: Path) -> None:
    store = await opened(str(tmp_path / "store.db"))
    assert await store.run(runs_on, short=True) == "aioplatform-store"
    await store.close()


async def test_short_and_other_jobs_commit_in_the_order_submitted() -> None:
    store = await opened()

    def append(n: int) -> Callable[[sqlite3.Connection], int]:
        def job(conn: sqlite3.Connection) -> int:
            conn.execute("INSERT INTO t VALUES (?)", (n,))
            return int(conn.execute("SELECT COUNT(*) FROM t").fetchone()[0])

        return job

    order: list[int] = []
    for wave in range(20):  # waves of 1..4 jobs, short or not, some waves overlapping
        size = wave % 4 + 1
        jobs = [store.run(append(len(order) + i), short=(wave + i) % 3 != 0) for i in range(size)]
        order.extend(range(len(order), len(order) + size))
        if wave % 2:
            await asyncio.gather(*jobs)
        else:
            pending = [asyncio.ensure_future(j) for j in jobs]
            await asyncio.sleep(0)
            await asyncio.gather(*pending)
    stored = await store.run(lambda c: [r[0] for r in c.execute("SELECT n FROM t ORDER BY rowid")])
    assert stored == order
    await store.close()


async def test_a_short_job_never_runs_inside_a_job_of_the_thread() -> None:
    store = await opened()
    inside = threading.Event()
    release = threading.Event()

    def two_rows_slowly(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (1)")
        inside.set()
        release.wait(10)
        conn.execute("INSERT INTO t VALUES (2)")

    # A job from another thread holds the connection in the middle of its transaction.
    other = asyncio.get_running_loop().run_in_executor(None, store.run_sync, two_rows_slowly)
    await asyncio.get_running_loop().run_in_executor(None, inside.wait, 10)
    counting = asyncio.ensure_future(
        store.run(lambda c: int(c.execute("SELECT COUNT(*) FROM t").fetchone()[0]), short=True)
    )
    await asyncio.sleep(0.05)
    assert not counting.done()  # it waits for the thread's transaction: it did not run beside it
    release.set()
    await other
    assert await counting == 2
    await store.close()


async def test_a_failing_short_job_rolls_back_and_raises_in_its_caller() -> None:
    store = await opened()

    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (1)")
        raise LookupError("nope")

    results = await asyncio.gather(store.run(half_then_fail, short=True), return_exceptions=True)
    assert isinstance(results[0], LookupError)
    assert await store.run(lambda c: c.execute("SELECT COUNT(*) FROM t").fetchone()[0], short=True) == 0
    await store.close()


async def test_a_short_job_waits_for_the_loops_jobs_still_with_the_thread() -> None:
    store = await opened()

    def append(n: int) -> Callable[[sqlite3.Connection], None]:
        def job(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t VALUES (?)", (n,))

        return job

    for n in range(0, 400, 2):
        handed = asyncio.ensure_future(store.run(append(n)))
        await asyncio.sleep(0)  # the iteration ends: that job goes to the thread
        await asyncio.sleep(0)
        await asyncio.gather(handed, store.run(append(n + 1), short=True))
    stored = await store.run(lambda c: [r[0] for r in c.execute("SELECT n FROM t ORDER BY rowid")])
    assert stored == list(range(400))
    await store.close()
