"""Fixtures: the backends the saltant client tests run against, a client on one, and a ready queue.

``backend`` is parametrised for the modules that set ``BACKENDS = ("embedded", "real")``:
``embedded`` (a fresh :class:`LocalPlatform` per test, in the test's loop) and ``real``
(one real saltant server per session, from tests/interop; skipped with a reason when it
cannot be built, a failure under ``CI=true``). Other modules run on ``embedded`` only.
A test that needs what only the emulator has (its simulated worker finishing
instances, fault injection, request counters, short JWT lifetimes) is marked
``@pytest.mark.embedded_only("why")``; a test that asks for ``platform`` must say so.
State on the real server persists for the session, so tests name what they create
with :func:`unique`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import attrs
import pytest

from aioplatform.saltant import ContainerTaskType, SaltantClient, TaskQueue, TaskWhitelist
from aioplatform.testing import LocalPlatform
from tests.interop.fixtures import saltant_server  # noqa: F401
from tests.interop.saltant_server import SaltantServer


def unique(prefix: str = "t") -> str:
    """A name no other test (or earlier session on the same server) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def fast_lifecycle(platform: LocalPlatform) -> None:
    """Instances go created -> published -> running -> successful within ~0.1 s."""
    service = platform.saltant
    service.publish_delay, service.run_delay, service.run_duration = 0.01, 0.01, 0.05


def frozen_lifecycle(platform: LocalPlatform) -> None:
    """Instances stay `created` (the simulated worker never picks them up)."""
    platform.saltant.publish_delay = 10_000.0


@attrs.define
class Backend:
    """Where the tests send: the API root, the admin's token and name, and user helpers."""

    name: str
    url: str
    token: str
    admin: str
    platform: LocalPlatform | None = None
    server: SaltantServer | None = None

    @property
    def real(self) -> bool:
        return self.server is not None

    def client(self, token: str | None = None, **options: object) -> SaltantClient:
        return SaltantClient(self.url, token or self.token, **options)  # type: ignore[arg-type]

    async def add_user(self, username: str, email: str = "", *, password: str | None = None) -> str:
        """A new normal user; returns its DRF token."""
        if self.platform is not None:
            return await self.platform.saltant.add_user(username, email, password=password)
        assert self.server is not None
        return await asyncio.to_thread(self.server.add_user, username, email, password)

    @property
    def requests(self) -> int | None:
        """Requests the embedded server has seen (None on the real one: it keeps no count)."""
        return self.platform.stats.requests if self.platform is not None else None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "embedded_only(reason): runs on the embedded saltant service only")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The first real-server test may build the cached virtualenv (pip, ~1 min): give it time.
    for item in items:
        if "tests/saltant/" in item.nodeid and "[real" in item.nodeid:
            item.add_marker(pytest.mark.timeout(900))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    backends = getattr(metafunc.module, "BACKENDS", ("embedded",))
    marker = metafunc.definition.get_closest_marker("embedded_only")
    if marker is not None:
        if not marker.args:
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: embedded_only needs a reason")
        backends = ("embedded",)
    elif "real" in backends and "platform" in metafunc.fixturenames:
        raise pytest.UsageError(
            f"{metafunc.definition.nodeid} asks for the embedded platform: mark it embedded_only(reason)"
        )
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture
async def platform() -> AsyncIterator[LocalPlatform]:
    async with LocalPlatform() as p:
        fast_lifecycle(p)
        yield p


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "real":
        server: SaltantServer = request.getfixturevalue("saltant_server")
        return Backend("real", server.url, server.admin_token, server.admin, server=server)
    platform: LocalPlatform = request.getfixturevalue("platform")
    return Backend("embedded", platform.saltant_url, platform.saltant_token, "admin", platform=platform)


@pytest.fixture
async def client(backend: Backend) -> AsyncIterator[SaltantClient]:
    async with backend.client() as c:
        yield c


@attrs.frozen
class Setup:
    task_type: ContainerTaskType
    whitelist: TaskWhitelist
    queue: TaskQueue


@pytest.fixture
async def ready(client: SaltantClient) -> Setup:
    """A container task type, a whitelist holding it, and an active queue using the whitelist."""
    task_type = await client.container_task_types.create(
        name=unique("hello"), command_to_run="echo hi", container_image="busybox", container_type="docker",
        required_arguments=["who", "times"], required_arguments_default_values={"times": 1},
    )  # fmt: skip
    whitelist = await client.task_whitelists.create(
        unique("wl"), whitelisted_container_task_types=[task_type.id]
    )
    queue = await client.task_queues.create(unique("main"), whitelists=[whitelist.id])
    return Setup(task_type, whitelist, queue)
