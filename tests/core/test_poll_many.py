"""poll_many: the one "wait for many" loop every service's wait_many uses."""

from __future__ import annotations

import asyncio
import itertools

from aioplatform.core.batch import backoff_pauses, fixed_pauses, poll_many


class Gone(Exception):
    pass


async def test_each_id_is_polled_once_a_round_and_settles_every_position_it_holds() -> None:
    polls: list[str] = []
    rounds_to_finish = {"a": 1, "b": 3, "c": 2}

    async def fetch(key: str) -> tuple[str, int]:
        polls.append(key)
        if key == "c":
            raise Gone(key)
        return key, polls.count(key)

    heard: list[tuple[int, str]] = []
    progress: list[tuple[int, int | None]] = []
    result = await poll_many(
        fetch,
        ["a", "b", "a", "c"],
        done=lambda seen: seen[1] >= rounds_to_finish[seen[0]],
        timeout_error=lambda key, seen: TimeoutError(key),
        pauses=fixed_pauses(0.001),
        on_outcome=lambda i, item, outcome: heard.append((i, item)),
        on_progress=lambda done, total, outcome: progress.append((done, total)),
    )
    assert polls.count("a") == 1 and polls.count("b") == 3 and polls.count("c") == 1
    assert result.items == ["a", "b", "a", "c"]
    assert result.outcomes[:3] == [("a", 1), ("b", 3), ("a", 1)]
    assert isinstance(result[3], Gone)
    assert [e.index for e in result.errors] == [3]
    assert sorted(heard) == [(0, "a"), (1, "b"), (2, "a"), (3, "c")]
    assert heard[-1] == (1, "b")  # heard when it settled, not at the end in input order
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]


async def test_a_deadline_settles_the_unfinished_with_the_timeout_error_and_last_value() -> None:
    async def fetch(key: int) -> int:
        return key * 10

    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await poll_many(
        fetch,
        [1, 2],
        done=lambda seen: seen == 10,
        timeout_error=lambda key, seen: TimeoutError(key, seen),
        pauses=fixed_pauses(60.0),  # the deadline cuts the pause short
        deadline=0.05,
    )
    assert loop.time() - started < 5
    assert result[0] == 10
    timeout = result[1]
    assert isinstance(timeout, TimeoutError) and timeout.args == (2, 20)
    assert [e.index for e in result.errors] == [1]


def test_fixed_pauses_repeat_and_backoff_pauses_grow_with_jitter_to_the_cap() -> None:
    assert list(itertools.islice(fixed_pauses(2), 3)) == [2.0, 2.0, 2.0]
    pauses = list(itertools.islice(backoff_pauses(1.0, 4.0), 8))
    bases = [1.0, 1.5, 2.25, 3.375, 4.0, 4.0, 4.0, 4.0]
    for pause, base in zip(pauses, bases, strict=True):
        assert base * 0.5 <= pause <= base
