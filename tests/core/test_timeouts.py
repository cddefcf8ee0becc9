"""The default timeouts bound every call: a server that trickles a byte a second cannot hold one forever."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator

import attrs
import pytest
from aiohttp import web

from aioplatform import RequestTimeout, RetryPolicy, Session, Timeouts
from aioplatform.core import defaults


@attrs.define
class Trickle:
    url: str
    sent: int = 0  # body bytes written, over every request


@pytest.fixture
async def trickle() -> AsyncIterator[Trickle]:
    """Answers 200 at once, then one body byte per ``interval`` seconds, for ever (never silent
    long enough for a read timeout)."""
    state = Trickle(url="")

    async def handler(request: web.Request) -> web.StreamResponse:
        interval = float(request.query.get("interval", "1"))
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        while True:
            await response.write(b" ")
            state.sent += 1
            await asyncio.sleep(interval)

    app = web.Application()
    app.router.add_get("/trickle", handler)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


def test_the_default_timeouts_have_a_finite_deadline() -> None:
    deadline = Timeouts().deadline
    assert deadline is not None and math.isfinite(deadline) and 0 < deadline == defaults.DEADLINE
    # the retry policy keeps its room: every attempt of a silent server, plus backoff, fits inside
    assert defaults.READ_TIMEOUT is not None
    assert deadline > defaults.MAX_ATTEMPTS * defaults.READ_TIMEOUT + defaults.BACKOFF_CAP * 3
    assert Session().timeouts.deadline == deadline
    assert Timeouts(deadline=None).deadline is None  # a long transfer can still lift it


async def test_a_trickling_server_is_cut_off_at_the_deadline_though_no_read_ever_times_out(
    trickle: Trickle,
) -> None:
    # The defaults with only the deadline shortened: read stays 60 s, and it never fires,
    # because a byte arrives every 0.2 s. Without a deadline this call would never end.
    timeouts = Timeouts().replace(deadline=1.5)
    assert timeouts.read == defaults.READ_TIMEOUT
    async with Session(timeouts=timeouts, retry=RetryPolicy(backoff_base=0.01)) as session:
        started = time.monotonic()
        with pytest.raises(RequestTimeout) as info:
            await session.request("GET", trickle.url + "/trickle?interval=0.2")
        elapsed = time.monotonic() - started
        assert info.value.phase == "deadline"
        assert 1.4 < elapsed < 4.0
        assert session.stats.requests == 1  # a deadline is never retried
        assert 3 <= trickle.sent <= 20  # the server was trickling all along
        assert session.pool_status()["in_use"] == 0


async def test_a_stream_is_bounded_by_the_deadline_too(trickle: Trickle) -> None:
    async with Session(timeouts=Timeouts(deadline=1.0)) as session:
        received = 0
        started = time.monotonic()
        with pytest.raises(RequestTimeout) as info:
            async with session.stream("GET", trickle.url + "/trickle?interval=0.1") as response:
                async for chunk in response.iter_chunks():
                    received += len(chunk)
        assert info.value.phase == "deadline"  # typed, never aiohttp's own TimeoutError
        assert time.monotonic() - started < 3.0 and received >= 3
        assert session.pool_status()["in_use"] == 0
