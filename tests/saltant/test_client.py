"""SaltantClient: construction, credentials (DRF token and JWT), error bodies, secrets.

Runs on the embedded service and on the real saltant server (see conftest.py).
"""

from __future__ import annotations

import asyncio

import pytest

from aioplatform import BadRequest, Forbidden, NotFound, Session, Unauthorized
from aioplatform.saltant import AuthenticationFailed, BadEnvironmentError, SaltantClient
from aioplatform.testing import LocalPlatform

from .conftest import Backend, Setup, unique

BACKENDS = ("embedded", "real")


async def test_test_authentication_passes_with_the_seeded_admin_token(client: SaltantClient) -> None:
    await client.test_authentication()


async def test_a_rejected_token_is_an_unauthorized_error_saying_so(backend: Backend) -> None:
    secret = "f" * 40
    async with SaltantClient(backend.url, secret) as client:
        with pytest.raises(AuthenticationFailed) as info:
            await client.test_authentication()
    exc = info.value
    assert isinstance(exc, Unauthorized) and exc.status == 403
    assert "rejected the token" in str(exc) and "Invalid token." in str(exc)
    assert secret not in str(exc) and secret not in repr(exc) and secret not in repr(client)


async def test_a_permission_denial_stays_forbidden(
    backend: Backend, client: SaltantClient, ready: Setup
) -> None:
    token = await backend.add_user(unique("mallory"))
    async with backend.client(token) as mallory:
        assert (await mallory.task_queues.get(id=ready.queue.id)).name == ready.queue.name  # reads are open
        with pytest.raises(Forbidden) as info:
            await mallory.task_queues.patch(ready.queue.id, description="mine now")
    assert not isinstance(info.value, Unauthorized)
    assert info.value.message == "You do not have permission to perform this action."


async def test_superusers_may_write_what_others_own(backend: Backend, client: SaltantClient) -> None:
    name = unique("dave")
    token = await backend.add_user(name)
    async with backend.client(token) as dave:
        queue = await dave.task_queues.create(unique("daves"))
    assert queue.user == name
    assert (await client.task_queues.patch(queue.id, description="by admin")).description == "by admin"


async def test_drf_field_errors_become_the_message(client: SaltantClient) -> None:
    dup = unique("dup")
    await client.task_queues.create(dup)
    with pytest.raises(BadRequest) as info:
        await client.task_queues.create(dup)
    assert info.value.message == "name: task queue with this name already exists."
    with pytest.raises(BadRequest, match=r"name:  @/\+/-/_ only"):  # saltant's own (odd) message
        await client.task_queues.create("has spaces")
    with pytest.raises(BadRequest, match="default arguments not a subset of required arguments"):
        await client.container_task_types.create(
            unique("t"),
            "true",
            "busybox",
            "docker",
            required_arguments=["a"],
            required_arguments_default_values={"b": 1},
        )


async def test_from_env_reads_url_and_token(monkeypatch: pytest.MonkeyPatch, backend: Backend) -> None:
    monkeypatch.setenv("SALTANT_API_URL", backend.url)
    monkeypatch.setenv("SALTANT_AUTH_TOKEN", backend.token)
    async with SaltantClient.from_env() as client:
        await client.test_authentication()
    monkeypatch.delenv("SALTANT_AUTH_TOKEN")
    with pytest.raises(BadEnvironmentError, match="SALTANT_AUTH_TOKEN"):
        SaltantClient.from_env()


def test_bad_construction_arguments_fail_at_once() -> None:
    with pytest.raises(ValueError, match="token"):
        SaltantClient("http://localhost/api/", "")
    with pytest.raises(ValueError, match="base_url"):
        SaltantClient("localhost/api/", "t")
    with pytest.raises(ValueError, match="either token or auth"):
        SaltantClient("http://localhost/api/")


async def test_get_by_id_xor_name(backend: Backend, client: SaltantClient) -> None:
    name = unique("named")
    queue = await client.task_queues.create(name)
    assert await client.task_queues.get(name=name) == queue == await client.task_queues.get(id=queue.id)
    before = backend.requests
    with pytest.raises(ValueError, match="Either id or name"):
        await client.task_queues.get()
    with pytest.raises(ValueError, match="Either id or name"):
        await client.task_whitelists.get(id=1, name="x")
    assert backend.requests == before  # counted on the embedded service (None == None on the real one)
    with pytest.raises(NotFound) as info:
        await client.container_task_types.get(name=unique("nothing"))
    assert isinstance(info.value, IndexError)  # what saltant-py raised


async def test_clients_share_one_session(backend: Backend) -> None:
    async with Session() as session:
        a = SaltantClient(backend.url, backend.token, session=session)
        b = a.with_options()
        await asyncio.gather(a.users.get(backend.admin), b.users.list().to_list())
        await a.aclose()
        assert not session.closed  # a borrowed session is left open
        await b.test_authentication()


async def test_jwt_login_obtains_and_uses_an_access_token(backend: Backend) -> None:
    erin = unique("erin")
    await backend.add_user(erin, password="erin-pw-123")
    async with SaltantClient.from_jwt(backend.url, erin, "erin-pw-123") as client:
        queue = await client.task_queues.create(unique("erins"))
        assert queue.user == erin
        if backend.platform is not None:
            assert backend.platform.stats.count("POST", "/saltant/api/token/") == 1
        assert client._jwt is not None and client._jwt.renewals == 1
        assert "erin-pw-123" not in repr(client)


@pytest.mark.embedded_only("the real server's JWT lifetimes are whole days, set at start")
async def test_jwt_access_tokens_are_refreshed_when_expired_or_rejected(platform: LocalPlatform) -> None:
    platform.saltant.jwt_access_lifetime = 0.3
    await platform.saltant.add_user("fay", password="fay-pw-123")
    async with SaltantClient.from_jwt(platform.saltant_url, "fay", "fay-pw-123") as client:
        auth = client._jwt
        assert auth is not None
        auth._leeway = 0.0
        await client.test_authentication()
        await asyncio.sleep(0.4)  # expired: renewed through token/refresh/ before the next request
        await asyncio.gather(*(client.users.get("fay") for _ in range(5)))
        assert platform.stats.count("POST", "/saltant/api/token/refresh/") == 1
        auth._expires_at = None  # unknown expiry: the server's 403 token_not_valid triggers the refresh
        await asyncio.sleep(0.4)
        await client.users.get("fay")
        assert platform.stats.count("POST", "/saltant/api/token/refresh/") == 2
        assert platform.stats.count("POST", "/saltant/api/token/") == 1


@pytest.mark.embedded_only("the real server's JWT lifetimes are whole days, set at start")
async def test_jwt_logs_in_again_once_the_refresh_token_expired(platform: LocalPlatform) -> None:
    platform.saltant.jwt_access_lifetime = platform.saltant.jwt_refresh_lifetime = 0.3
    await platform.saltant.add_user("gus", password="gus-pw-123")
    async with SaltantClient.from_jwt(platform.saltant_url, "gus", "gus-pw-123") as client:
        auth = client._jwt
        assert auth is not None
        auth._leeway = 0.0
        await client.test_authentication()
        await asyncio.sleep(0.4)  # both expired: no refresh is tried, a new login is made
        await client.test_authentication()
        assert platform.stats.count("POST", "/saltant/api/token/") == 2
        assert platform.stats.count("POST", "/saltant/api/token/refresh/") == 0
        platform.saltant.jwt_refresh_lifetime = 3600.0
        await client.test_authentication()  # fresh again: nothing renewed
        assert auth.renewals == 2


async def test_jwt_with_a_wrong_password_is_unauthorized(backend: Backend) -> None:
    async with SaltantClient.from_jwt(backend.url, backend.admin, "wrong-password") as client:
        with pytest.raises(Unauthorized, match="No active account"):
            await client.test_authentication()


async def test_an_empty_405_is_reported_as_a_server_side_failure() -> None:
    # saltant's custom error views answer non-GET server errors with an empty 405 (protocol §9)
    from aiohttp import web

    from aioplatform import ServerError

    async def empty_405(request: web.Request) -> web.Response:
        return web.Response(status=405)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", empty_405)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with SaltantClient(f"http://127.0.0.1:{port}/api/", "t" * 40) as client:
            with pytest.raises(ServerError, match="empty 405") as info:
                await client.container_task_instances.clone("00000000-0000-4000-8000-000000000000")
        assert info.value.status == 405
    finally:
        await runner.cleanup()
