"""The retry contract: which failures are retried, for which methods, how many times, how long."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import socket
import time

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aioplatform import (
    APIError,
    ConnectError,
    RateLimited,
    RequestTimeout,
    RetryPolicy,
    ServerError,
    Session,
    SessionError,
    Timeouts,
    TransportError,
)
from aioplatform.core.retry import parse_retry_after

from .conftest import ScriptedServer

FAST = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_cap=0.02)
IDEMPOTENT = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]
NON_IDEMPOTENT = ["POST", "PATCH"]


@pytest.fixture
async def session() -> Session:  # type: ignore[misc]
    async with Session(retry=FAST) as s:
        yield s


@pytest.mark.parametrize("method", IDEMPOTENT)
@pytest.mark.parametrize("fault", ["429", "502", "503", "504", "drop_before", "drop_after"])
async def test_idempotent_methods_are_retried_on_every_transient_fault(
    server: ScriptedServer, session: Session, method: str, fault: str
) -> None:
    server.faults.script("* /ok/x", [fault, fault])
    response = await session.request(method, server.u("/ok/x"))
    assert response.status == 200
    assert server.seen["/ok/x"] == 3
    # The value is the third attempt's: the handler ran once, or every time after a drop_after
    # (harmless for these methods; the reason POST is never retried after one).
    runs = 3 if fault == "drop_after" else 1
    assert server.handled["/ok/x"] == runs
    if method != "HEAD":
        assert response.json()["n"] == runs and response.json()["method"] == method


@pytest.mark.parametrize("method", NON_IDEMPOTENT)
@pytest.mark.parametrize("fault", ["429", "503"])
async def test_post_and_patch_are_retried_when_the_server_provably_did_not_process_them(
    server: ScriptedServer, session: Session, method: str, fault: str
) -> None:
    server.faults.script("* /ok/x", [fault, fault])
    response = await session.request(method, server.u("/ok/x"), json={"a": 1})
    assert response.json()["n"] == 1  # the handler ran exactly once
    assert server.seen["/ok/x"] == 3


@pytest.mark.parametrize("method", NON_IDEMPOTENT)
@pytest.mark.parametrize("fault", ["500", "502", "504"])
async def test_post_and_patch_are_not_retried_on_statuses_that_may_follow_processing(
    server: ScriptedServer, session: Session, method: str, fault: str
) -> None:
    server.faults.script("* /ok/x", [fault])
    with pytest.raises(ServerError) as info:
        await session.request(method, server.u("/ok/x"), json={})
    assert info.value.status == int(fault)
    assert server.seen["/ok/x"] == 1


@pytest.mark.parametrize("method", IDEMPOTENT + NON_IDEMPOTENT)
@pytest.mark.parametrize("status", [400, 404, 409, 500])
async def test_no_method_is_retried_on_a_client_error_or_a_500(
    server: ScriptedServer, session: Session, method: str, status: int
) -> None:
    with pytest.raises(APIError) as info:
        await session.request(method, server.u(f"/status/{status}"))
    assert info.value.status == status
    assert server.seen[f"/status/{status}"] == 1
    assert session.stats.retries == 0


@pytest.mark.parametrize("method", IDEMPOTENT)
async def test_idempotent_methods_give_up_after_max_attempts_with_the_last_error(
    server: ScriptedServer, session: Session, method: str
) -> None:
    server.faults.script("* /ok/x", ["503"] * 10)
    with pytest.raises(ServerError) as info:
        await session.request(method, server.u("/ok/x"))
    assert info.value.status == 503
    assert server.seen["/ok/x"] == FAST.max_attempts
    assert session.stats.retries == FAST.max_attempts - 1
    assert session.pool_status()["in_use"] == 0


@pytest.mark.parametrize("method", NON_IDEMPOTENT)
async def test_post_dropped_after_the_handler_ran_is_one_attempt_and_a_transport_error(
    server: ScriptedServer, session: Session, method: str
) -> None:
    server.faults.script("* /ok/x", ["drop_after"])
    with pytest.raises(TransportError) as info:
        await session.request(method, server.u("/ok/x"), json={})
    assert info.value.sent is True
    assert server.seen["/ok/x"] == 1
    assert server.handled["/ok/x"] == 1  # the work happened once, and only once


@pytest.mark.parametrize("method", NON_IDEMPOTENT)
async def test_post_dropped_before_the_handler_is_not_retried_either(
    server: ScriptedServer, session: Session, method: str
) -> None:
    # From the client's side a drop before and after the handler look the same.
    server.faults.script("* /ok/x", ["drop_before"])
    with pytest.raises(TransportError) as info:
        await session.request(method, server.u("/ok/x"), json={})
    assert info.value.sent is True
    assert server.seen["/ok/x"] == 1
    assert server.handled["/ok/x"] == 0


@pytest.mark.parametrize("method", ["GET", "OPTIONS", "PUT", "DELETE", *NON_IDEMPOTENT])  # HEAD has no body
async def test_a_disconnect_in_the_middle_of_the_body_is_retried_only_for_idempotent_methods(
    server: ScriptedServer, session: Session, method: str
) -> None:
    with pytest.raises(TransportError) as info:
        await session.request(method, server.u("/partial"), json={})
    assert info.value.sent is True and "reading the response" in str(info.value)
    assert server.handled["/partial"] == (FAST.max_attempts if method in IDEMPOTENT else 1)
    assert session.pool_status() == {"in_use": 0, "idle": 0}  # a broken connection is not kept


async def test_idempotent_true_opts_a_post_in_to_full_retries(
    server: ScriptedServer, session: Session
) -> None:
    server.faults.script("POST /ok/x", ["drop_after", "502"])
    response = await session.request("POST", server.u("/ok/x"), json={}, idempotent=True)
    assert response.status == 200
    assert server.seen["/ok/x"] == 3


async def test_idempotent_false_makes_a_get_as_careful_as_a_post(
    server: ScriptedServer, session: Session
) -> None:
    server.faults.script("GET /ok/x", ["502"])
    with pytest.raises(ServerError):
        await session.request("GET", server.u("/ok/x"), idempotent=False)
    assert server.seen["/ok/x"] == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("method", IDEMPOTENT + NON_IDEMPOTENT)
async def test_connection_refused_is_retried_for_every_method_then_raises_connect_error(
    session: Session, method: str
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/x"
    with pytest.raises(ConnectError) as info:
        await session.request(method, url, json={})
    assert info.value.sent is False
    assert session.stats.requests == FAST.max_attempts
    assert session.stats.retries == FAST.max_attempts - 1


@pytest.mark.parametrize("method", NON_IDEMPOTENT)
async def test_post_and_patch_read_timeouts_are_not_retried(server: ScriptedServer, method: str) -> None:
    async with Session(retry=FAST, timeouts=Timeouts(read=0.1)) as session:
        with pytest.raises(RequestTimeout) as info:
            await session.request(method, server.u("/slow?delay=0.6"), json={})
        assert info.value.phase == "read" and info.value.sent is True
        assert server.seen["/slow"] == 1
        assert server.handled["/slow"] == 1  # it reached the application: re-sending could repeat it
        assert session.pool_status()["in_use"] == 0


async def test_idempotent_false_makes_a_get_read_timeout_final(server: ScriptedServer) -> None:
    async with Session(retry=FAST, timeouts=Timeouts(read=0.1)) as session:
        with pytest.raises(RequestTimeout):
            await session.request("GET", server.u("/slow?delay=0.6"), idempotent=False)
        assert server.seen["/slow"] == 1


@pytest.mark.parametrize("method", IDEMPOTENT)
async def test_idempotent_read_timeouts_are_retried_up_to_max_attempts(
    server: ScriptedServer, method: str
) -> None:
    async with Session(retry=FAST, timeouts=Timeouts(read=0.05)) as session:
        with pytest.raises(RequestTimeout) as info:
            await session.request(method, server.u("/slow?delay=0.6"))
        assert info.value.phase == "read"
        assert server.seen["/slow"] == FAST.max_attempts
        # A timed-out connection is closed, never handed back to the pool half-read.
        assert session.pool_status() == {"in_use": 0, "idle": 0}


async def test_idempotent_true_opts_a_post_in_to_read_timeout_retries(server: ScriptedServer) -> None:
    async with Session(retry=FAST, timeouts=Timeouts(read=0.05)) as session:
        with pytest.raises(RequestTimeout):
            await session.request("POST", server.u("/slow?delay=0.6"), json={}, idempotent=True)
        assert server.seen["/slow"] == FAST.max_attempts


async def test_each_timeout_phase_can_be_overridden_per_call(server: ScriptedServer) -> None:
    patient = Timeouts(pool=30, connect=10, read=30)
    async with Session(retry=RetryPolicy.none(), timeouts=patient) as session:
        with pytest.raises(RequestTimeout) as info:
            await session.request("GET", server.u("/slow?delay=0.6"), timeout=patient.replace(read=0.1))
        assert info.value.phase == "read"
        started = time.monotonic()
        response = await session.request("GET", server.u("/slow?delay=0.3"))  # the session's own
        assert response.status == 200 and time.monotonic() - started >= 0.3
        with pytest.raises(RequestTimeout) as info2:
            await session.request("GET", server.u("/slow?delay=0.6"), timeout=0.1)  # a number: the deadline
        assert info2.value.phase == "deadline"


async def test_max_attempts_bounds_the_attempts(server: ScriptedServer) -> None:
    server.faults.script("GET /ok/x", ["503"] * 10)
    async with Session(retry=FAST.replace(max_attempts=2)) as session:
        with pytest.raises(ServerError):
            await session.request("GET", server.u("/ok/x"))
    assert server.seen["/ok/x"] == 2


async def test_a_policy_per_call_overrides_the_session_policy(
    server: ScriptedServer, session: Session
) -> None:
    server.faults.script("GET /ok/x", ["503", "503"])
    with pytest.raises(ServerError):
        await session.request("GET", server.u("/ok/x"), retry=RetryPolicy.none())
    assert server.seen["/ok/x"] == 1


async def test_retry_after_seconds_is_honoured(server: ScriptedServer, session: Session) -> None:
    started = time.monotonic()
    server.faults.script("GET /status/429", [])
    with pytest.raises(RateLimited):
        await session.request(
            "GET", server.u("/status/429?retry_after=0.2"), retry=FAST.replace(max_attempts=2)
        )
    assert server.seen["/status/429"] == 2
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_retry_after_on_a_503_is_honoured_too(
    server: ScriptedServer, session: Session, method: str
) -> None:
    started = time.monotonic()
    with pytest.raises(ServerError) as info:
        await session.request(
            method, server.u("/status/503?retry_after=0.3"), json={}, retry=FAST.replace(max_attempts=2)
        )
    assert info.value.retry_after == 0.3
    assert server.seen["/status/503"] == 2
    assert time.monotonic() - started >= 0.3


async def test_retry_after_http_date_is_honoured(server: ScriptedServer, session: Session) -> None:
    when = email.utils.formatdate(time.time() + 1.5, usegmt=True)
    started = time.monotonic()
    with pytest.raises(RateLimited) as info:
        await session.request(
            "GET", server.u("/status/429"), params={"retry_after": when},
            retry=FAST.replace(max_attempts=2),
        )  # fmt: skip
    # HTTP-dates have one-second resolution: at least half a second must have been waited.
    assert time.monotonic() - started >= 0.5
    assert info.value.retry_after is not None and info.value.retry_after <= 1.5
    assert server.seen["/status/429"] == 2


async def test_retry_after_above_the_cap_raises_rate_limited_without_sleeping(
    server: ScriptedServer, session: Session
) -> None:
    started = time.monotonic()
    with pytest.raises(RateLimited) as info:
        await session.request(
            "GET", server.u("/status/429?retry_after=3600"), retry=FAST.replace(retry_after_cap=10)
        )
    assert info.value.retry_after == 3600
    assert server.seen["/status/429"] == 1
    assert time.monotonic() - started < 5


async def test_a_429_with_retry_after_pauses_every_request_to_that_host(
    server: ScriptedServer, session: Session
) -> None:
    from aiohttp import web

    other_hits: list[float] = []

    async def other(request: web.Request) -> web.Response:
        other_hits.append(asyncio.get_running_loop().time())
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/", other)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    other_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/"  # type: ignore[union-attr]
    try:
        # A 429 with a 1 s Retry-After, told to one call that does not retry...
        with pytest.raises(RateLimited):
            await session.request("GET", server.u("/status/429?retry_after=1"), retry=RetryPolicy.none())
        told_at = next(t for t, p in server.arrivals if p == "/status/429")
        # ...holds back other calls, on other routes, to that host, started in parallel,
        waiting = [asyncio.ensure_future(session.request("GET", server.u(f"/ok/{i}"))) for i in range(3)]
        # ...but not calls to another host.
        await session.request("GET", other_url)
        assert other_hits and other_hits[0] - told_at < 0.8
        await asyncio.gather(*waiting)
        for i in range(3):
            arrived_at = next(t for t, p in server.arrivals if p == f"/ok/{i}")
            assert arrived_at - told_at >= 0.99
    finally:
        await runner.cleanup()


async def test_the_deadline_bounds_a_whole_call_across_retries(server: ScriptedServer) -> None:
    policy = RetryPolicy(max_attempts=50, backoff_base=0.1, backoff_cap=0.1)
    server.faults.script("GET /ok/x", ["503"] * 100)
    async with Session(retry=policy) as session:
        started = time.monotonic()
        with pytest.raises((ServerError, RequestTimeout)):
            await session.request("GET", server.u("/ok/x"), timeout=0.5)
        assert time.monotonic() - started < 1.0
        assert 2 <= server.seen["/ok/x"] < 50


async def test_the_deadline_interrupts_a_slow_response(server: ScriptedServer) -> None:
    async with Session(retry=FAST) as session:
        with pytest.raises(RequestTimeout) as info:
            await session.request("GET", server.u("/slow?delay=2"), timeout=Timeouts(deadline=0.2))
        assert info.value.phase == "deadline"
        assert server.seen["/slow"] == 1  # a deadline is never retried
        assert session.pool_status()["in_use"] == 0


async def test_pool_wait_timeout_is_typed_and_safe_to_retry_for_post(server: ScriptedServer) -> None:
    from aioplatform import Limits

    async with Session(
        limits=Limits(max_connections=1), timeouts=Timeouts(pool=0.1, connect=0.1), retry=FAST
    ) as session:
        hog = asyncio.ensure_future(session.request("GET", server.u("/slow?delay=3")))
        while server.seen["/slow"] == 0:  # noqa: ASYNC110 - the hog holds the only connection
            await asyncio.sleep(0.01)
        with pytest.raises(RequestTimeout) as info:
            await session.request("POST", server.u("/ok/x"), json={})
        assert info.value.phase == "pool"
        assert info.value.sent is False
        assert server.seen["/ok/x"] == 0
        # The POST was retried (it was never sent): every attempt waited for the pool.
        assert session.stats.retries == FAST.max_attempts - 1
        assert session.stats.requests == 1 + FAST.max_attempts  # the hog, then each attempt
        await hog
        assert session.pool_status()["in_use"] == 0


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH"])
async def test_a_connect_timeout_is_retried_for_every_method_it_was_never_sent(method: str) -> None:
    # A listener whose accept queue is full drops new SYNs: the handshake never completes.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        async with Session(retry=FAST.replace(max_attempts=3), timeouts=Timeouts(connect=0.2)) as session:
            with pytest.raises(RequestTimeout) as info:
                await session.request(method, f"http://127.0.0.1:{port}/x", json={})
            assert (info.value.phase, info.value.sent) == ("connect", False)
            assert session.stats.requests == 3 and session.stats.retries == 2
            assert session.stats.connections_opened == 0
            assert session.pool_status() == {"in_use": 0, "idle": 0}
    finally:
        for sock in (*fillers, listener):
            sock.close()


async def test_concurrent_calls_keep_their_own_attempt_counts(server: ScriptedServer) -> None:
    # A shared tenacity object would mix attempt counts across tasks (jd/tenacity#93).
    for i in range(20):
        server.faults.script(f"GET /ok/{i}", ["503", "503"])  # each call fails twice
    async with Session(retry=FAST.replace(max_attempts=3)) as session:
        results = await asyncio.gather(
            *(session.request("GET", server.u(f"/ok/{i}")) for i in range(20)),
            return_exceptions=True,
        )
        assert session.stats.retries == 40
    assert [r.status for r in results if not isinstance(r, BaseException)] == [200] * 20
    assert [server.seen[f"/ok/{i}"] for i in range(20)] == [3] * 20


async def test_failed_responses_are_released_before_retrying(server: ScriptedServer) -> None:
    from aioplatform import Limits

    # With a single connection, an unreleased 503 would deadlock the retry.
    server.faults.script("GET /ok/x", ["503", "503", "503"])
    async with Session(limits=Limits(max_connections=1), retry=FAST, timeouts=Timeouts(pool=1)) as session:
        response = await session.request("GET", server.u("/ok/x"))
        assert response.status == 200
        assert session.pool_status()["in_use"] == 0
        assert server.connections == 1  # the same kept-alive connection served every attempt


def test_parse_retry_after_accepts_seconds_and_http_dates() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after({"Retry-After": "7"}, now=now) == 7.0
    assert parse_retry_after({"Retry-After": "0.25"}, now=now) == 0.25
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"Retry-After": date}, now=now) == pytest.approx(30, abs=1)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after({"Retry-After": past}, now=now) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}, now=now) is None
    assert parse_retry_after({}, now=now) is None


@given(st.integers(min_value=1, max_value=30))
def test_backoff_is_full_jitter_below_an_exponential_ceiling_and_the_cap(n: int) -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_cap=8.0)
    delay = policy.backoff(n)
    assert 0.0 <= delay <= min(8.0, 0.5 * 2 ** (n - 1))


def test_policy_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="backoff_cap"):
        RetryPolicy(backoff_cap=-1)


_FULL = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}


@given(
    method=st.sampled_from(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST", "PATCH"]),
    idempotent=st.sampled_from([None, True, False]),
    status=st.integers(min_value=400, max_value=599),
    retry_after=st.one_of(st.none(), st.floats(min_value=0, max_value=120)),
)
def test_status_decisions_follow_the_contract(
    method: str, idempotent: bool | None, status: int, retry_after: float | None
) -> None:
    from aioplatform.core.errors import error_class_for_status

    policy = RetryPolicy()
    cls = error_class_for_status(status)
    exc = cls("x", status=status, method=method, url="http://h/", retry_after=retry_after)
    full = idempotent if idempotent is not None else method in _FULL
    expected = status in ({429, 502, 503, 504} if full else {429, 503})
    if retry_after is not None and retry_after > policy.retry_after_cap:
        expected = False  # raised at once, with .retry_after, instead of sleeping
    assert policy.should_retry(exc, method, idempotent) is expected


@given(
    method=st.sampled_from(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST", "PATCH"]),
    idempotent=st.sampled_from([None, True, False]),
    failure=st.sampled_from(["connect", "pool", "connect-timeout", "read", "deadline", "disconnect"]),
)
def test_transport_decisions_follow_the_contract(method: str, idempotent: bool | None, failure: str) -> None:
    exc: TransportError
    if failure == "connect":
        exc = ConnectError("refused")
    elif failure == "disconnect":
        exc = TransportError("ServerDisconnectedError")
    else:
        exc = RequestTimeout("t", phase=failure.removesuffix("-timeout"))
    full = idempotent if idempotent is not None else method in _FULL
    never_sent = failure in ("connect", "pool", "connect-timeout")
    expected = failure != "deadline" and (full or never_sent)
    assert exc.sent is not never_sent
    assert RetryPolicy().should_retry(exc, method, idempotent) is expected


async def test_a_host_pause_longer_than_the_deadline_fails_at_once_without_sending(
    server: ScriptedServer, session: Session
) -> None:
    with pytest.raises(RateLimited):
        await session.request("GET", server.u("/status/429?retry_after=5"), retry=RetryPolicy.none())
    started = time.monotonic()
    with pytest.raises(RequestTimeout) as info:
        await session.request("POST", server.u("/ok/x"), json={}, timeout=0.5)
    assert info.value.phase == "deadline"
    assert time.monotonic() - started < 0.4  # it did not sit out a pause it could never finish
    assert server.seen["/ok/x"] == 0


async def test_closing_the_session_during_a_backoff_ends_the_call_with_session_error(
    server: ScriptedServer,
) -> None:
    session = Session(retry=FAST)
    call = asyncio.ensure_future(session.request("GET", server.u("/status/503?retry_after=2")))
    while server.seen["/status/503"] == 0:  # noqa: ASYNC110 - the first attempt's answer is a 503
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    await session.aclose()
    with pytest.raises(SessionError, match="closed"):
        await asyncio.wait_for(call, 5)  # never a hang
    assert server.seen["/status/503"] == 1


def test_the_default_policy_is_the_documented_one() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.backoff_base, policy.backoff_cap, policy.retry_after_cap) == (
        4, 0.5, 8.0, 60.0,
    )  # fmt: skip
    assert policy.idempotent_methods == {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
    assert policy.retry_statuses == {429, 502, 503, 504}
    assert policy.unprocessed_statuses == {429, 503}
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.max_attempts = 9  # type: ignore[misc]


async def test_the_default_retry_after_cap_is_sixty_seconds(server: ScriptedServer) -> None:
    async with Session() as session:
        started = time.monotonic()
        with pytest.raises(RateLimited) as info:
            await session.request("POST", server.u("/status/429?retry_after=61"), json={})
        assert info.value.retry_after == 61 and time.monotonic() - started < 5
        assert server.seen["/status/429"] == 1
