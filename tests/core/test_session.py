"""Session lifecycle, loop binding, counters, errors, secrets and argument checks."""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings

import aiohttp
import pytest

from aioplatform import (
    APIError,
    Auth,
    BadRequest,
    BaseClient,
    Conflict,
    ConnectError,
    Forbidden,
    Limits,
    NotFound,
    RateLimited,
    RetryPolicy,
    ServerError,
    Session,
    SessionError,
    Timeouts,
    TokenAuth,
    Unauthorized,
)
from aioplatform.core.errors import error_class_for_status

from .conftest import ScriptedServer

SECRET = "s3cr3t-token-value-123"


async def test_a_closed_session_refuses_requests_and_aclose_is_idempotent(server: ScriptedServer) -> None:
    session = Session()
    await session.request("GET", server.u("/ok/a"))
    await session.aclose()
    await session.aclose()
    assert session.closed
    with pytest.raises(SessionError, match="closed"):
        await session.request("GET", server.u("/ok/a"))


async def test_a_session_used_from_another_event_loop_fails_fast(server: ScriptedServer) -> None:
    async with Session() as session:
        await session.request("GET", server.u("/ok/a"))
        errors: list[BaseException] = []

        def other_loop() -> None:
            async def use() -> None:
                await session.request("GET", server.u("/ok/a"))

            try:
                asyncio.run(asyncio.wait_for(use(), 5))
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=other_loop)
        thread.start()
        await asyncio.to_thread(thread.join)
        assert len(errors) == 1 and isinstance(errors[0], SessionError)
        assert "another event loop" in str(errors[0])


async def test_aclose_from_another_event_loop_raises_and_closing_from_its_own_loop_leaves_no_socket(
    server: ScriptedServer,
) -> None:
    # It used to return, set closed=True and leave the first loop's socket open (ResourceWarning).
    session = Session()
    await session.request("GET", server.u("/ok/a"))
    assert session.pool_status() == {"in_use": 0, "idle": 1}
    errors: list[BaseException] = []

    def other_loop() -> None:
        try:
            asyncio.run(asyncio.wait_for(session.aclose(), 5))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=other_loop)
    thread.start()
    await asyncio.to_thread(thread.join)
    assert len(errors) == 1 and isinstance(errors[0], SessionError)
    assert "another event loop" in str(errors[0])
    assert not session.closed and session.pool_status()["idle"] == 1  # nothing half-closed
    await session.request("GET", server.u("/ok/a"))  # still usable from its own loop

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        await session.aclose()
        await asyncio.sleep(0.01)
        gc.collect()
    assert session.closed and session.pool_status() == {"in_use": 0, "idle": 0}
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    with pytest.raises(SessionError, match="closed"):
        await session.request("GET", server.u("/ok/a"))


def test_a_session_can_be_built_outside_a_loop_but_not_used_there() -> None:
    session = Session()
    with pytest.raises(SessionError, match="running event loop"):
        session._ensure_client()


async def test_the_pool_is_shared_and_kept_alive(server: ScriptedServer) -> None:
    async with Session() as session:
        for _ in range(10):
            await session.request("GET", server.u("/ok/a"))
        assert session.stats.requests == 10
        assert session.stats.connections_opened == 1
        assert server.connections == 1
        assert session.pool_status() == {"in_use": 0, "idle": 1}


async def test_the_pool_limit_bounds_concurrent_connections(server: ScriptedServer) -> None:
    async with Session(limits=Limits(max_connections=3)) as session:
        await asyncio.gather(*(session.request("GET", server.u("/slow?delay=0.05")) for _ in range(12)))
        assert session.stats.connections_opened <= 3
        assert server.connections <= 3


async def test_user_trace_configs_are_called(server: ScriptedServer) -> None:
    seen: list[str] = []

    async def on_start(session: object, ctx: object, params: aiohttp.TraceRequestStartParams) -> None:
        seen.append(params.method)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with Session(trace_configs=[trace]) as session:
        await session.request("POST", server.u("/ok/a"), json={})
    assert seen == ["POST"]


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest), (401, Unauthorized), (403, Forbidden), (404, NotFound), (409, Conflict),
        (429, RateLimited), (500, ServerError), (503, ServerError), (418, APIError),
    ],
)
async def test_error_statuses_become_typed_errors_with_the_server_message(
    server: ScriptedServer, status: int, cls: type[APIError]
) -> None:
    async with Session(retry=RetryPolicy.none()) as session:
        with pytest.raises(cls) as info:
            await session.request("GET", server.u(f"/status/{status}"))
    err = info.value
    assert type(err) is error_class_for_status(status)
    assert (err.status, err.method) == (status, "GET")
    assert err.url == server.u(f"/status/{status}")
    assert err.message == f"status {status} as asked"
    assert f"status {status} as asked" in str(err) and str(status) in str(err)
    assert '"detail"' in err.body


async def test_a_non_json_error_body_still_gives_a_readable_message(server: ScriptedServer) -> None:
    async with Session(retry=RetryPolicy.none()) as session:
        with pytest.raises(ServerError) as info:
            await session.request("GET", server.u("/text-error"))
    assert info.value.status == 502
    assert "gateway exploded" in info.value.message


async def test_secrets_never_appear_in_errors_reprs_or_urls(server: ScriptedServer) -> None:
    auth = TokenAuth(SECRET)
    async with Session(retry=RetryPolicy.none()) as session:
        with pytest.raises(Unauthorized) as info:
            await session.request("GET", server.u("/echo-auth"), auth=auth)
        err = info.value
        assert "***" in err.message
        for text in (str(err), repr(err), err.message, err.body, repr(auth)):
            assert SECRET not in text
        with pytest.raises(NotFound) as info2:
            await session.request(
                "GET", server.u("/status/404"), params={"X-Auth-Token": SECRET}, auth=auth
            )
        assert SECRET not in str(info2.value) and "X-Auth-Token=%2A%2A%2A" in info2.value.url


async def test_credentials_in_plain_headers_are_scrubbed_like_an_auth(server: ScriptedServer) -> None:
    # A caller may skip Auth and pass the header itself, per call or as a session default.
    async with Session(retry=RetryPolicy.none()) as session:
        with pytest.raises(Unauthorized) as info:
            await session.request(
                "GET", server.u("/echo-auth"), headers={"Authorization": f"Bearer {SECRET}"}
            )
    async with Session(retry=RetryPolicy.none(), headers={"Authorization": SECRET}) as session:
        with pytest.raises(Unauthorized) as info2:
            await session.request("GET", server.u("/echo-auth"))
        # Nor does the call object the retry loop carries around (tenacity may show it).
        call = session._call(
            "GET", server.u("/x"), params=None, json={"password": SECRET}, data=None,
            headers={"Authorization": SECRET}, auth=TokenAuth(SECRET), idempotent=None, retry=None,
            timeout=None, errors=None, stream=False,
        )  # fmt: skip
        assert SECRET not in repr(call)
    for err in (info.value, info2.value):
        assert "***" in err.message
        for text in (str(err), repr(err), err.message, err.body):
            assert SECRET not in text


async def test_a_secret_in_the_url_path_never_reaches_a_transport_error() -> None:
    # Astakos validates a token with GET tokens/<token>: the credential is in the path.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with Session(retry=RetryPolicy.none()) as session:
        with pytest.raises(ConnectError) as info:
            await session.request("GET", f"http://127.0.0.1:{port}/tokens/{SECRET}", auth=TokenAuth(SECRET))
        with pytest.raises(ValueError) as bad:
            await session.request("GET", f"ftp://x/{SECRET}", auth=TokenAuth(SECRET))
    err = info.value
    assert "/tokens/***" in err.url
    for text in (str(err), repr(err), err.url, str(bad.value)):
        assert SECRET not in text


async def test_a_client_repr_hides_its_token(server: ScriptedServer) -> None:
    client = BaseClient(server.url, auth=TokenAuth(SECRET))
    assert SECRET not in repr(client)
    await client.aclose()


class RefreshingAuth(Auth):
    def __init__(self, succeed: bool = True) -> None:
        self.token = "stale-token-1"
        self.refreshes = 0
        self.succeed = succeed

    def apply(self, headers):  # type: ignore[no-untyped-def]
        headers["Authorization"] = f"Token {self.token}"

    def secrets(self):  # type: ignore[no-untyped-def]
        return (self.token,)

    async def refresh(self, response):  # type: ignore[no-untyped-def]
        self.refreshes += 1
        self.token = "fresh-token-2" if self.succeed else "still-stale-3"
        return True


async def test_a_rejected_credential_is_refreshed_once_and_the_call_resent(server: ScriptedServer) -> None:
    auth = RefreshingAuth()
    async with Session() as session:
        response = await session.request("GET", server.u("/auth"), auth=auth)
        assert response.json() == {"ok": True}
    assert auth.refreshes == 1
    assert server.seen["/auth"] == 2


async def test_a_refresh_that_does_not_help_ends_in_unauthorized_without_looping(
    server: ScriptedServer,
) -> None:
    auth = RefreshingAuth(succeed=False)
    async with Session() as session:
        with pytest.raises(Unauthorized):
            await session.request("GET", server.u("/auth"), auth=auth)
    assert auth.refreshes == 1


@pytest.mark.parametrize(
    ("kwargs", "exc", "word"),
    [
        ({"json": {}, "data": b"x"}, ValueError, "json"),
        ({"timeout": "soon"}, TypeError, "timeout"),
        ({"retry": 3}, TypeError, "retry"),
    ],
)
async def test_bad_arguments_fail_before_any_request(
    server: ScriptedServer, kwargs: dict[str, object], exc: type[Exception], word: str
) -> None:
    async with Session() as session:
        with pytest.raises(exc, match=word):
            await session.request("GET", server.u("/ok/a"), **kwargs)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="url"):
            await session.request("GET", "/relative/path")
    assert server.seen["/ok/a"] == 0


def test_config_objects_validate_and_name_the_argument() -> None:
    with pytest.raises(ValueError, match="read"):
        Timeouts(read=-1)
    with pytest.raises(ValueError, match="max_connections"):
        Limits(max_connections=0)
    with pytest.raises(TypeError, match="limits"):
        Session(limits=10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="base_url"):
        BaseClient("not a url")


async def test_a_client_closes_its_own_session_but_never_a_borrowed_one(server: ScriptedServer) -> None:
    async with Session() as shared:
        async with BaseClient(server.url, session=shared) as borrowed:
            await borrowed._request("GET", "ok/a")
        assert not shared.closed
        await shared.request("GET", server.u("/ok/a"))
        own = BaseClient(server.url)
        await own._request("GET", "ok/a")
        await own.aclose()
        assert own.session.closed
        with pytest.raises(ValueError, match="limits"):
            BaseClient(server.url, session=shared, limits=Limits())


async def test_with_options_shares_the_pool_and_changes_only_the_options(server: ScriptedServer) -> None:
    server.faults.script("GET /ok/a", ["503", "503"])
    async with BaseClient(server.url, retry=RetryPolicy.none()) as client:
        patient = client.with_options(retry=RetryPolicy(max_attempts=3, backoff_base=0.01))
        assert patient.session is client.session
        response = await patient._request("GET", "ok/a")
        assert response.status == 200
        await patient.aclose()
        assert not client.session.closed
        server.faults.script("GET /ok/a", ["503"])
        with pytest.raises(ServerError):
            await client._request("GET", "ok/a")


async def test_stream_hands_over_the_body_in_chunks_and_releases_the_connection(
    server: ScriptedServer,
) -> None:
    async with Session() as session:
        async with session.stream("GET", server.u("/ok/stream")) as response:
            chunks = [c async for c in response.iter_chunks(8)]
        assert b"".join(chunks).startswith(b'{"method": "GET"')
        assert max(len(c) for c in chunks) <= 8
        assert session.pool_status()["in_use"] == 0


def test_credential_query_parameters_are_scrubbed_from_urls() -> None:
    from aioplatform.core.session import scrub_url

    url = "http://h/actors/v2/a/messages?x-nonce=NONCE-abcdef&refresh_token=R3fresh&limit=5"
    scrubbed = scrub_url(url)
    assert "NONCE-abcdef" not in scrubbed and "R3fresh" not in scrubbed
    assert "limit=5" in scrubbed
