"""Per-call options on every service: with_options checked at once, ``timeout=`` on every call,
raw responses, and errors that carry the response's headers and request id.

Real HTTP over loopback: the embedded platform (all four services) and, for a request id,
a purpose-built aiohttp server that sends one.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from aioplatform import NotFound, RawResponse, RequestTimeout, RetryPolicy, Timeouts
from aioplatform.agave import AgaveClient
from aioplatform.astakos import AstakosClient
from aioplatform.flowserv import FlowservClient
from aioplatform.saltant import SaltantClient
from aioplatform.testing import LocalPlatform

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def platform() -> AsyncIterator[LocalPlatform]:
    async with LocalPlatform() as p:
        yield p


def clients(platform: LocalPlatform) -> dict[str, Any]:
    return {
        "saltant": SaltantClient(platform.saltant_url, platform.saltant_token),
        "astakos": AstakosClient(platform.astakos_user_token, platform.astakos_auth_url),
        "flowserv": FlowservClient(platform.flowserv_url),
        "agave": AgaveClient(platform.agave_url, token=platform.agave.access_token),
    }


async def one_call(name: str, client: Any, **options: Any) -> Any:
    """A representative read of each service, with ``options`` passed to the call."""
    if name == "saltant":
        return await client.users.get("admin", **options)
    if name == "astakos":
        return await client.get_quotas(**options)
    if name == "flowserv":
        return await client.users.register(f"u{uuid.uuid4().hex[:10]}", PASSWORD, **options)
    return await client.profiles.get(**options)


SERVICES = ("saltant", "astakos", "flowserv", "agave")


@pytest.mark.parametrize("service", SERVICES)
async def test_with_options_checks_its_arguments_at_once_and_shares_the_pool(
    platform: LocalPlatform, service: str
) -> None:
    async with clients(platform)[service] as client:
        before = platform.stats.requests
        with pytest.raises(TypeError, match="retry"):
            client.with_options(retry=3)
        with pytest.raises(TypeError, match="timeouts"):
            client.with_options(timeouts="5")
        with pytest.raises(ValueError, match="timeouts"):
            client.with_options(timeouts=-1)
        with pytest.raises(TypeError, match="headers"):
            client.with_options(headers=[("X-A", "1")])
        with pytest.raises(ValueError, match="headers"):
            client.with_options(headers={"X-A": "1\r\nX-Injected: 1"})
        with pytest.raises(TypeError):
            client.with_options(timeout=5)  # the per-client option is spelled timeouts
        assert platform.stats.requests == before  # nothing was sent
        copy = client.with_options(
            timeouts=7.5, retry=RetryPolicy(max_attempts=2), headers={"X-Trace": "run-7"}
        )
        assert copy.session is client.session and copy._timeouts.deadline == 7.5
        assert await one_call(service, copy) is not None


@pytest.mark.parametrize("service", SERVICES)
async def test_every_service_call_takes_timeout_as_its_deadline(
    platform: LocalPlatform, service: str
) -> None:
    async with clients(platform)[service] as client:
        assert await one_call(service, client, timeout=30) is not None  # a number: the deadline
        assert await one_call(service, client, timeout=Timeouts(deadline=30)) is not None
        with pytest.raises(TypeError, match="timeout"):
            await one_call(service, client, timeout="5")
        with pytest.raises(ValueError, match="timeout"):
            await one_call(service, client, timeout=0)
        platform.faults.latency = 1.0
        try:
            with pytest.raises(RequestTimeout) as info:
                await one_call(service, client, timeout=0.2)
            assert info.value.phase == "deadline"
            # the option is per call: the next call without it waits out the latency
            assert await one_call(service, client) is not None
        finally:
            platform.faults.latency = 0.0


@pytest.mark.parametrize("service", SERVICES)
async def test_with_raw_response_gives_the_parsed_value_with_status_and_headers(
    platform: LocalPlatform, service: str
) -> None:
    async with clients(platform)[service] as client:
        plain = await one_call(service, client)
        raw = await one_call(service, client.with_raw_response)
        assert isinstance(raw, RawResponse)
        assert type(raw.parsed) is type(plain)
        assert raw.status in (200, 201)
        assert raw.headers["Content-Type"].startswith("application/json")
        assert raw.url is not None and raw.url.startswith(platform.url)
        assert raw.responses and raw.responses[-1].status == raw.status


async def test_with_raw_response_refuses_what_is_not_a_call(platform: LocalPlatform) -> None:
    async with clients(platform)["saltant"] as client:
        with pytest.raises(AttributeError, match="listing"):
            client.with_raw_response.task_queues.list  # noqa: B018 - a pager, read lazily
        with pytest.raises(AttributeError):
            client.with_raw_response._request  # noqa: B018


async def test_headers_given_to_with_options_reach_the_server() -> None:
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("X-Trace"))
        return web.json_response({"id": 1, "username": "admin", "email": "", "queues": []})

    app = web.Application()
    app.router.add_get("/api/users/{name}/", handler)
    async with serve(app) as url, SaltantClient(url + "/api/", "t" * 40) as client:
        await client.with_options(headers={"X-Trace": "run-7"}).users.get("admin")
        await client.users.get("admin")
    assert seen == ["run-7", None]


async def test_errors_carry_the_response_headers_and_the_request_id() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(
            {"detail": "Not found."},
            status=404,
            headers={"X-Request-Id": "req-42", "Set-Cookie": "session=s3cr3t-value"},
        )

    app = web.Application()
    app.router.add_get("/api/users/{name}/", handler)
    async with serve(app) as url, SaltantClient(url + "/api/", "t" * 40) as client:
        with pytest.raises(NotFound) as info:
            await client.users.get("nobody")
    error = info.value
    assert error.request_id == "req-42" and error.headers["x-request-id"] == "req-42"
    assert "Set-Cookie" not in error.headers  # a session cookie is a secret
    assert "request id req-42" in str(error)


async def test_an_error_without_a_request_id_says_none(platform: LocalPlatform) -> None:
    async with clients(platform)["agave"] as client:
        with pytest.raises(NotFound) as info:
            await client.jobs.get("no-such-job-007")
    assert info.value.request_id is None and "Content-Type" in info.value.headers


class serve:
    """Run an aiohttp app on a free loopback port for the block."""

    def __init__(self, app: web.Application):
        self.runner = web.AppRunner(app)

    async def __aenter__(self) -> str:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


async def test_saltant_model_methods_take_timeout_too(platform: LocalPlatform) -> None:
    async with SaltantClient(platform.saltant_url, platform.saltant_token) as client:
        queue = await client.task_queues.create("per-call-queue")
        assert (await queue.sync(timeout=30)).name == "per-call-queue"
        platform.faults.latency = 1.0
        try:
            with pytest.raises(RequestTimeout):
                await queue.sync(timeout=0.2)
        finally:
            platform.faults.latency = 0.0
