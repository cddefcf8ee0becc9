"""The backends every flowserv client test runs against: the embedded platform and the real rob-flask.

``backend`` is parametrised: ``embedded`` (a fresh :class:`LocalPlatform` per test)
and ``robflask`` (one real rob-flask 0.6.0 server per session, from tests/interop;
skipped with a reason when it cannot be built, a failure under ``CI=true``). Tests
create their own users and groups with unique names, so they do not see each other
on the shared real server.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import attrs
import pytest

from aioplatform.flowserv import FlowservClient, User
from aioplatform.testing import LocalPlatform
from tests.interop.fixtures import robflask, robflask_short_ttl  # noqa: F401
from tests.interop.robflask import PARAMS_WORKFLOW_ID, RobFlask, write_params_template

PASSWORD = "correct horse battery staple"


def unique(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@attrs.define
class Backend:
    """Where the tests send: base URL, a workflow to create groups for, and user helpers."""

    name: str
    url: str
    workflow_id: str
    platform: LocalPlatform | None = None
    # a workflow installed from tests/interop/robflask.py's parameters template, on both
    params_workflow_id: str = PARAMS_WORKFLOW_ID

    def client(self, **options: object) -> FlowservClient:
        return FlowservClient(self.url, **options)  # type: ignore[arg-type]

    async def new_user(self, *, password: str = PASSWORD) -> User:
        """A fresh active user (registered over the API, so it works on both backends)."""
        async with self.client() as client:
            return await client.users.register(unique(), password)

    def expiring_url(self, request: pytest.FixtureRequest) -> str:
        """The URL of a server (same data) whose API keys expire 2 s after login."""
        if self.platform is not None:
            self.platform.flowserv.token_ttl = 2.0
            return self.url
        server: RobFlask = request.getfixturevalue("robflask_short_ttl")
        return server.url

    @contextlib.asynccontextmanager
    async def logged_in(self, user: User | None = None, **options: object) -> AsyncIterator[FlowservClient]:
        """A client logged in as ``user`` (a fresh one if None)."""
        user = user or await self.new_user()
        async with self.client(**options) as client:
            await client.users.login(user.username, PASSWORD)
            yield client


@pytest.fixture(params=["embedded", "robflask"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "robflask":
        server: RobFlask = request.getfixturevalue("robflask")
        yield Backend("robflask", server.url, server.workflow_id)
        return
    platform: LocalPlatform = request.getfixturevalue("local_platform")
    factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
    template = write_params_template(factory.mktemp("params-template"))
    platform.call(lambda: platform.flowserv.install_template(template, PARAMS_WORKFLOW_ID))
    yield Backend("embedded", platform.flowserv_url, platform.flowserv.workflow_id, platform)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The first robflask test may build the cached virtualenv (pip): give it time.
    for item in items:
        if "[robflask" in item.nodeid:
            item.add_marker(pytest.mark.timeout(900))
