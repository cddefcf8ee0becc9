"""gather / BatchResult: bounded concurrency, one outcome per input in order, nothing lost."""

from __future__ import annotations

import asyncio
import random
import traceback
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aioplatform import (
    BatchError,
    ItemCancelled,
    NotAttempted,
    PlatformError,
    RetryPolicy,
    ServerError,
    Session,
    gather,
)

from .conftest import ScriptedServer


class Boom(Exception):
    pass


@settings(max_examples=60, deadline=None)
@given(
    pattern=st.lists(st.booleans(), max_size=60),
    concurrency=st.integers(min_value=1, max_value=10),
)
def test_every_input_gets_exactly_one_outcome_in_input_order(pattern: list[bool], concurrency: int) -> None:
    async def fn(i: int) -> int:
        await asyncio.sleep(random.random() / 1000)
        if not pattern[i]:
            raise Boom(i)
        return i * 10

    result = asyncio.run(gather(fn, range(len(pattern)), concurrency=concurrency))
    assert len(result) == len(pattern)
    assert result.items == list(range(len(pattern)))
    for i, ok in enumerate(pattern):
        outcome = result[i]
        assert (outcome == i * 10) if ok else (isinstance(outcome, Boom) and outcome.args == (i,))
    assert result.values == [i * 10 for i, ok in enumerate(pattern) if ok]
    assert [e.index for e in result.errors] == [i for i, ok in enumerate(pattern) if not ok]
    assert all(e.item == e.index for e in result.errors)
    assert result.ok == all(pattern)


async def test_at_most_concurrency_calls_run_at_once_and_tasks_stay_bounded() -> None:
    running = peak = 0
    peak_tasks = 0

    async def fn(i: int) -> int:
        nonlocal running, peak, peak_tasks
        running += 1
        peak = max(peak, running)
        peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))
        await asyncio.sleep(0.001)
        running -= 1
        return i

    result = await gather(fn, range(500), concurrency=7)
    assert result.values == list(range(500))
    assert peak == 7
    assert peak_tasks <= 7 + 2  # the workers, the test itself, and gather's caller


async def test_progress_is_reported_once_per_item_with_the_total() -> None:
    seen: list[tuple[int, int | None]] = []

    async def fn(i: int) -> int:
        if i == 3:
            raise Boom()
        return i

    await gather(fn, list(range(10)), concurrency=3, on_progress=lambda d, t, o: seen.append((d, t)))
    assert seen == [(d, 10) for d in range(1, 11)]


async def test_async_progress_callbacks_are_awaited() -> None:
    calls = 0

    async def progress(done: int, total: int | None, outcome: object) -> None:
        nonlocal calls
        calls += 1

    async def fn(i: int) -> int:
        return i

    await gather(fn, range(5), on_progress=progress)
    assert calls == 5


async def test_async_iterables_and_generators_are_consumed_lazily_with_unknown_total() -> None:
    pulled = 0

    async def source() -> AsyncIterator[int]:
        nonlocal pulled
        for i in range(20):
            pulled += 1
            yield i

    totals: set[int | None] = set()

    async def fn(i: int) -> int:
        assert pulled <= i + 3  # never more than `concurrency` items ahead
        await asyncio.sleep(0)
        return -i

    result = await gather(fn, source(), concurrency=3, on_progress=lambda d, t, o: totals.add(t))
    assert result.values == [-i for i in range(20)]
    assert totals == {None}


async def test_fail_fast_stops_the_batch_but_still_accounts_for_every_input() -> None:
    started: list[int] = []

    async def fn(i: int) -> int:
        started.append(i)
        if i == 5:
            raise Boom()
        await asyncio.sleep(0.05 if i > 5 else 0)
        return i

    result = await gather(fn, range(100), concurrency=4, fail_fast=True)
    assert len(result) == 100
    assert isinstance(result[5], Boom)
    kinds = {type(o) for o in result.outcomes[6:]}
    assert kinds <= {ItemCancelled, NotAttempted, int}
    assert any(isinstance(o, ItemCancelled) for o in result.outcomes)
    assert sum(isinstance(o, NotAttempted) for o in result.outcomes) == 100 - len(started)
    assert result.values == [o for o in result.outcomes if isinstance(o, int)]


async def test_raise_for_errors_raises_an_exception_group_with_a_note_per_item() -> None:
    async def fn(name: str) -> str:
        if name.startswith("bad"):
            raise Boom(name)
        return name.upper()

    result = await gather(fn, ["a", "bad1", "b", "bad2"])
    with pytest.raises(BatchError) as info:
        result.raise_for_errors()
    err = info.value
    assert isinstance(err, PlatformError) and isinstance(err, ExceptionGroup)  # noqa: F821 (3.11+)
    assert err.result is result and result.values == ["A", "B"]
    assert [e.args[0] for e in err.exceptions] == ["bad1", "bad2"]
    assert err.exceptions[0].__notes__[-1] == "item 1: 'bad1'"
    assert "2 of 4 items failed" in str(err)
    ok = await gather(fn, ["x"])
    ok.raise_for_errors()  # nothing failed: nothing raised


async def test_batch_error_notes_show_a_bounded_summary_of_each_item_never_its_whole_repr() -> None:
    # 4 failed 8 MiB uploads once formatted to 33.6 MB of exception text (repr(item) in each note)
    big = b"\0" * (8 * 1024 * 1024)

    async def upload(item: object) -> None:
        raise Boom("upload failed")

    items: list[object] = [(big, f"f{i}.bin") for i in range(4)]
    items += [bytearray(big), "n" * 10_000, {"payload": big, "more": list(range(10_000))}]
    result = await gather(upload, items)
    with pytest.raises(BatchError) as info:
        result.raise_for_errors()
    notes = [e.__notes__[-1] for e in info.value.exceptions]
    assert notes[:5] == [
        *(f"item {i}: (<8388608 bytes>, 'f{i}.bin')" for i in range(4)),
        "item 4: <8388608 bytes>",
    ]
    for index, note in enumerate(notes):
        summary = note.removeprefix(f"item {index}: ")
        assert len(summary) <= 200, note
    assert notes[5].startswith("item 5: 'nnnn") and "<8388608 bytes>" in notes[6]
    text = "".join(traceback.format_exception(info.value))
    assert len(text) < 20_000  # was > 33 MB
    assert repr(result.errors[0]).count("<8388608 bytes>") == 1  # ItemError's repr is bounded too


async def test_bad_arguments_are_rejected_before_anything_runs() -> None:
    async def fn(i: int) -> int:
        raise AssertionError("must not run")

    with pytest.raises(ValueError, match="concurrency"):
        await gather(fn, [1], concurrency=0)
    with pytest.raises(TypeError, match="items"):
        await gather(fn, 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fn"):
        await gather(None, [1])  # type: ignore[arg-type]


async def test_cancelling_gather_cancels_in_flight_requests_and_leaves_no_open_connection(
    server: ScriptedServer,
) -> None:
    async with Session() as session:

        async def fetch(i: int) -> int:
            await session.request("GET", server.u("/slow?delay=5"))
            return i

        task = asyncio.ensure_future(gather(fetch, range(50), concurrency=10))
        while server.seen["/slow"] < 10:  # noqa: ASYNC110 - polling the server's own counter
            await asyncio.sleep(0.01)
        assert session.pool_status()["in_use"] == 10
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Aborted requests close their connections: none checked out, none kept half-read.
        assert session.pool_status() == {"in_use": 0, "idle": 0}
        assert server.seen["/slow"] == 10  # nothing new started after the cancel


async def test_a_batch_of_real_requests_under_faults_loses_nothing(server: ScriptedServer) -> None:
    server.faults.script("POST /ok/*", ["503", "500", "drop_after", "429"] * 5)
    async with Session(retry=RetryPolicy(max_attempts=3, backoff_base=0.01, backoff_cap=0.02)) as session:

        async def post(i: int) -> int:
            return int((await session.request("POST", server.u(f"/ok/{i}"), json={"i": i})).json()["n"])

        result = await gather(post, range(200), concurrency=20)
        assert len(result) == 200
        assert all(isinstance(e.exception, PlatformError) for e in result.errors)
        # 5 x 500 and 5 x dropped-after are final for a POST; 503/429 were retried away.
        assert len(result.errors) == 10
        assert sum(isinstance(e.exception, ServerError) for e in result.errors) == 5
        handled = sum(server.handled[f"/ok/{i}"] for i in range(200))
        assert handled == len(result.values) + 5  # the drops did the work once; never twice
        assert all(v == 1 for v in result.values)
        assert session.pool_status()["in_use"] == 0


async def test_batch_error_splits_keep_the_result_and_raising_twice_adds_no_second_note() -> None:
    async def fn(i: int) -> int:
        if i % 3 == 0:
            raise ServerError("down", status=503, method="GET", url="http://h/x")
        if i % 3 == 1:
            raise Boom(i)
        return i

    result = await gather(fn, range(6))
    for _ in range(2):
        with pytest.raises(BatchError) as info:
            result.raise_for_errors()
    err = info.value
    assert [e.__notes__ for e in err.exceptions] == [[f"item {i}: {i}"] for i in (0, 1, 3, 4)]
    servers, rest = err.split(ServerError)
    assert isinstance(servers, BatchError) and isinstance(rest, BatchError)
    assert servers.result is result and rest.result is result
    assert [type(e) for e in servers.exceptions] == [ServerError, ServerError]
    booms = err.subgroup(lambda e: isinstance(e, Boom))  # what ``except* Boom`` receives
    assert isinstance(booms, BatchError) and booms.result is result
    assert [e.args for e in booms.exceptions] == [(1,), (4,)]


async def test_fail_fast_still_reports_progress_exactly_once_per_input() -> None:
    seen: list[tuple[int, int | None]] = []

    async def fn(i: int) -> int:
        if i == 2:
            raise Boom()
        await asyncio.sleep(0.05)
        return i

    result = await gather(
        fn, list(range(30)), concurrency=4, fail_fast=True, on_progress=lambda d, t, o: seen.append((d, t))
    )
    assert len(result) == 30
    assert seen == [(d, 30) for d in range(1, 31)]


@settings(max_examples=40, deadline=None)
@given(
    pattern=st.lists(st.booleans(), min_size=1, max_size=40),
    concurrency=st.integers(min_value=1, max_value=8),
)
def test_fail_fast_accounts_for_every_input_whatever_fails(pattern: list[bool], concurrency: int) -> None:
    started: set[int] = set()

    async def fn(i: int) -> int:
        started.add(i)
        await asyncio.sleep(random.random() / 500)
        if not pattern[i]:
            raise Boom(i)
        return i

    result = asyncio.run(gather(fn, iter(range(len(pattern))), concurrency=concurrency, fail_fast=True))
    assert len(result) == len(pattern) and result.items == list(range(len(pattern)))
    for i, outcome in enumerate(result):
        if isinstance(outcome, NotAttempted):
            assert i not in started  # never started
        elif isinstance(outcome, Boom):
            assert not pattern[i] and outcome.args == (i,)
        elif isinstance(outcome, ItemCancelled):
            assert i in started
        else:
            assert outcome == i and pattern[i]
    assert result.ok == all(pattern)
    assert result.values == [o for o in result if isinstance(o, int)]
    assert sum(isinstance(o, Boom) for o in result) >= (0 if all(pattern) else 1)


async def test_fail_fast_cancels_in_flight_requests_and_leaves_no_open_connection(
    server: ScriptedServer,
) -> None:
    async with Session(retry=RetryPolicy.none()) as session:

        async def fetch(i: int) -> int:
            if i == 5:
                while server.seen["/slow"] < 5:  # noqa: ASYNC110 - the others are in flight
                    await asyncio.sleep(0.01)
                await session.request("GET", server.u("/status/500"))
            await session.request("GET", server.u("/slow?delay=5"))
            return i

        result = await gather(fetch, range(20), concurrency=6, fail_fast=True)
        assert isinstance(result[5], ServerError)
        assert sum(isinstance(o, ItemCancelled) for o in result) == 5
        assert sum(isinstance(o, NotAttempted) for o in result) == 14
        # Cancelled requests close their connections: none is checked out, none kept.
        assert session.pool_status() == {"in_use": 0, "idle": 1}  # the 500's, fully read


@pytest.mark.parametrize("fail_fast", [False, True])
async def test_a_long_async_input_keeps_only_o_concurrency_tasks_alive(fail_fast: bool) -> None:
    peak_tasks = 0

    async def source() -> AsyncIterator[int]:
        for i in range(2000):
            yield i

    async def fn(i: int) -> int:
        nonlocal peak_tasks
        peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))
        await asyncio.sleep(0)
        return i

    result = await gather(fn, source(), concurrency=5, fail_fast=fail_fast)
    assert result.values == list(range(2000))
    # 5 workers (+ one task per call in flight with fail_fast) and the test's own task.
    assert peak_tasks <= (2 * 5 if fail_fast else 5) + 1
