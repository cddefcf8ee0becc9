"""gather's circuit breaker and on_outcome: stop when every remaining item would fail the same
way, and hear each outcome the moment it is final."""

from __future__ import annotations

import asyncio
import socket

import pytest

from aioplatform import Breaker, ConnectError, NotAttempted, RetryPolicy, Session, Unauthorized, gather

from .conftest import ScriptedServer

QUICK = RetryPolicy(max_attempts=2, backoff_base=0.001, backoff_cap=0.002)


def _refused_url() -> str:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def test_a_refusing_host_stops_the_batch_after_the_threshold_and_the_rest_are_not_attempted() -> None:
    url = _refused_url()
    started: list[int] = []
    async with Session(retry=QUICK) as session:

        async def fetch(i: int) -> int:
            started.append(i)
            return (await session.request("GET", f"{url}/x/{i}")).status

        result = await gather(fetch, range(500), concurrency=4, breaker=Breaker(threshold=10))
    assert len(result) == 500 and result.items == list(range(500))
    # 10 consecutive refusals, plus at most the 3 others already in flight.
    assert 10 <= len(started) <= 13
    assert all(isinstance(result[i], ConnectError) for i in started)
    skipped = [o for o in result if isinstance(o, NotAttempted)]
    assert len(skipped) == 500 - len(started) == result.not_attempted
    assert all(isinstance(o.cause, ConnectError) for o in skipped)
    assert result.stopped == (
        f"stopped after 10 consecutive connection failures to {url} — is the server running?"
    )
    assert "stopped after 10 consecutive connection failures" in str(skipped[0])


async def test_rejected_credentials_trip_the_breaker_on_a_real_server(server: ScriptedServer) -> None:
    async with Session(retry=QUICK) as session:

        async def fetch(i: int) -> int:
            return (await session.request("GET", server.u("/status/401"))).status

        result = await gather(fetch, range(200), concurrency=1, breaker=Breaker(threshold=5))
    assert server.seen["/status/401"] == 5  # exactly the threshold, then nothing more was sent
    assert all(isinstance(result[i], Unauthorized) for i in range(5))
    assert result.not_attempted == 195
    assert result.stopped is not None and result.stopped.startswith(
        "stopped after 5 consecutive rejections of the credentials (401 "
    )


async def test_a_success_or_another_failure_resets_the_count(server: ScriptedServer) -> None:
    async with Session(retry=QUICK) as session:

        async def fetch(i: int) -> int:
            # 401, 401, 404, 401, 401, 200, ... never 3 rejections in a row
            path = ("/status/401", "/status/401", "/status/404" if i % 6 == 2 else "/ok/x")[min(i % 3, 2)]
            return (await session.request("GET", server.u(path))).status

        result = await gather(fetch, range(60), concurrency=1, breaker=Breaker(threshold=3))
    assert result.stopped is None and result.not_attempted == 0
    assert sum(server.seen.values()) == 60


async def test_without_a_breaker_every_item_is_tried() -> None:
    url = _refused_url()
    async with Session(retry=QUICK) as session:

        async def fetch(i: int) -> int:
            return (await session.request("GET", f"{url}/x")).status

        result = await gather(fetch, range(40), concurrency=8)
    assert all(isinstance(o, ConnectError) for o in result) and result.stopped is None


async def test_on_outcome_hears_every_input_once_in_completion_order_with_the_input_as_given() -> None:
    heard: list[tuple[int, object, object]] = []
    gate = asyncio.Event()

    async def fn(item: dict[str, int]) -> int:
        if item["n"] == 0:
            await gate.wait()  # the first input finishes last
        elif item["n"] == 3:
            gate.set()
        else:
            await asyncio.sleep(0)
        return item["n"] * 2

    items = [{"n": n} for n in range(4)]

    async def on_outcome(index: int, item: object, outcome: object) -> None:  # async callbacks too
        heard.append((index, item, outcome))

    result = await gather(fn, items, concurrency=4, on_outcome=on_outcome)
    assert sorted(i for i, _, _ in heard) == [0, 1, 2, 3]
    assert heard[-1] == (0, {"n": 0}, 0)  # completion order, not input order
    assert all(item is items[i] for i, item, _ in heard)  # the caller's own objects
    assert result.outcomes == [0, 2, 4, 6] and result.items == items


async def test_on_outcome_also_hears_the_items_a_breaker_never_started() -> None:
    heard: list[int] = []

    async def fn(i: int) -> int:
        raise Unauthorized("bad token", status=401, method="GET", url="http://h/x")

    result = await gather(
        fn, iter(range(50)), concurrency=2, breaker=Breaker(3), on_outcome=lambda i, item, o: heard.append(i)
    )
    assert sorted(heard) == list(range(50)) and result.not_attempted >= 45


async def test_batch_options_are_checked_by_type_then_value_before_anything_runs() -> None:
    async def fn(i: int) -> int:
        raise AssertionError("must not run")

    with pytest.raises(TypeError, match="concurrency"):
        await gather(fn, [1], concurrency="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="concurrency"):
        await gather(fn, [1], concurrency=0)
    with pytest.raises(TypeError, match="on_outcome"):
        await gather(fn, [1], on_outcome=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="breaker"):
        await gather(fn, [1], breaker=20)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fail_fast"):
        await gather(fn, [1], fail_fast="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="items"):
        await gather(fn, "abc")
    with pytest.raises(ValueError, match="threshold"):
        Breaker(0)
    with pytest.raises(TypeError, match="threshold"):
        Breaker("20")  # type: ignore[arg-type]
