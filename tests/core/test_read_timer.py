"""The read timeout keeps aiohttp's meaning with one lazy timer per connection.

aioplatform's connections (``session._LazyReadTimer``) note the time of each read instead of
re-arming a timer handle per chunk; these tests pin that the meaning did not change: silence
longer than ``read`` fails, steady progress never does, a kept-alive connection carries no
stale timer from its previous response into the next, and a shorter read timeout on a reused
connection is honoured at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from aioplatform import RequestTimeout, RetryPolicy, Session, Timeouts
from aioplatform.core import session as session_module

ONCE = RetryPolicy(max_attempts=1)


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """``/answer?wait=S&chunks=N&gap=G``: waits S seconds before the headers, then sends N
    body chunks G seconds apart (a JSON list of N zeros, on a kept-alive connection);
    ``blob=B`` sends a JSON string of B bytes in one write instead."""

    async def answer(request: web.Request) -> web.StreamResponse:
        wait = float(request.query.get("wait", "0"))
        chunks = int(request.query.get("chunks", "1"))
        gap = float(request.query.get("gap", "0"))
        await asyncio.sleep(wait)
        parts = [b"[0"] + [b",0"] * (chunks - 1)
        parts[-1] += b"]"
        if "blob" in request.query:  # one JSON string of that many bytes, in one write
            parts = [b'"' + b"x" * int(request.query["blob"]) + b'"']
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = sum(len(p) for p in parts)
        await response.prepare(request)
        for i, part in enumerate(parts):
            if i:
                await asyncio.sleep(gap)
            await response.write(part)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/answer", answer)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/answer"
    finally:
        await runner.cleanup()


def protocols(session: Session) -> list[object]:
    assert session._client is not None and session._client.connector is not None
    return [proto for conns in session._client.connector._conns.values() for proto, _ in conns]


async def test_the_pool_uses_the_lazy_timer(server: str) -> None:
    async with Session() as session:
        await session.request("GET", server)
        found = protocols(session)
        assert found and all(isinstance(p, session_module._LazyReadTimer) for p in found)


async def test_silence_longer_than_the_read_timeout_fails_in_time(server: str) -> None:
    async with Session(timeouts=Timeouts(read=0.3), retry=ONCE) as session:
        started = time.monotonic()
        with pytest.raises(RequestTimeout) as info:
            await session.request("GET", server + "?wait=3")
        assert info.value.phase == "read"
        assert 0.25 < time.monotonic() - started < 1.5


async def test_silence_midway_through_the_body_fails_too(server: str) -> None:
    async with Session(timeouts=Timeouts(read=0.3), retry=ONCE) as session:
        started = time.monotonic()
        with pytest.raises(RequestTimeout) as info:
            await session.request("GET", server + "?chunks=3&gap=3")
        assert info.value.phase == "read"
        assert time.monotonic() - started < 1.5


async def test_steady_progress_outlasting_the_read_timeout_never_fails(server: str) -> None:
    # 8 chunks 0.15 s apart: 1 s in all, more than three read timeouts, never 0.4 s silent.
    async with Session(timeouts=Timeouts(read=0.4), retry=ONCE) as session:
        started = time.monotonic()
        response = await session.request("GET", server + "?chunks=8&gap=0.15")
        assert response.json() == [0] * 8
        assert time.monotonic() - started > 0.9


async def test_a_kept_alive_connection_carries_no_stale_timeout(server: str) -> None:
    async with Session(timeouts=Timeouts(read=0.6), retry=ONCE) as session:
        await session.request("GET", server)
        await asyncio.sleep(0.8)  # the first response's timer comes due while the connection idles
        assert (await session.request("GET", server + "?wait=0.1")).json() == [0]
        # Started 0.2 s after the previous response ended, 0.3 s after it began: that one's
        # timer comes due 0.3 s into this call's 0.45 s wait (within the read timeout) and
        # must re-arm for what remains, not fire.
        await asyncio.sleep(0.2)
        assert (await session.request("GET", server + "?wait=0.45")).json() == [0]
        assert session.stats.connections_opened == 1


async def test_a_shorter_read_timeout_on_a_reused_connection_applies_at_once(server: str) -> None:
    async with Session(timeouts=Timeouts(read=30.0), retry=ONCE) as session:
        await session.request("GET", server)  # the connection's timer is armed 30 s ahead
        started = time.monotonic()
        with pytest.raises(RequestTimeout) as info:
            await session.request("GET", server + "?wait=3", timeout=Timeouts(read=0.3))
        assert info.value.phase == "read"
        assert time.monotonic() - started < 1.5
        assert session.stats.connections_opened == 1


async def test_a_closed_connection_leaves_no_timer_behind(server: str) -> None:
    loop = asyncio.get_running_loop()
    async with Session(timeouts=Timeouts(read=30.0)) as session:
        for _ in range(3):
            await session.request("GET", server)
        armed = [p for p in protocols(session) if p._read_timeout_handle is not None]  # type: ignore[attr-defined]
        assert armed  # the idle connection keeps its one timer
        handles = [p._read_timeout_handle for p in armed]  # type: ignore[attr-defined]
    await asyncio.sleep(0.05)
    assert all(h.cancelled() for h in handles)
    assert loop.is_running()


async def test_a_slow_reader_of_a_stream_is_not_a_silent_server(server: str) -> None:
    # 4 MB written at once, read 64 KiB at a time with a pause after each: the transport
    # fills and stops reading (flow control), which stops the read timeout as aiohttp's
    # does; the call lasts about ten read timeouts and never times out.
    size = 4 * 1024 * 1024
    async with Session(timeouts=Timeouts(read=0.3), retry=ONCE) as session:
        started, received = time.monotonic(), 0
        async with session.stream("GET", server + f"?blob={size}") as response:
            async for chunk in response.iter_chunks(64 * 1024):
                received += len(chunk)
                await asyncio.sleep(0.05)
        assert received == size + 2
        assert time.monotonic() - started > 3.0
