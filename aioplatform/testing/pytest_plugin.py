"""pytest plugin (registered by the ``pytest11`` entry point): the ``local_platform`` fixture.

The platform runs on its own thread and loop, so it serves async tests (any
plugin), blocking clients (saltant-py) and mixed tests alike. Configure it with a
marker::

    @pytest.mark.local_platform(latency=0.01, faults=FaultRule(rate_503=0.1), seed=3)
    async def test_something(local_platform):
        async with SaltantClient(local_platform.saltant_url, local_platform.saltant_token) as c:
            ...

pytest-asyncio runs the async tests (the ``testing`` extra pins a compatible one). In
its default *strict* mode it runs only tests marked ``asyncio``; so that the fixture
works in a user's project whatever the mode, an ``async def`` test that uses
``local_platform`` (directly or through the user's own fixtures) is marked ``asyncio``
here when nothing (the test, its class or its module) marked it already. Auto mode marks
every async test itself; an explicit ``@pytest.mark.asyncio(loop_scope=...)`` is kept, and
a test marked ``anyio`` is left to anyio's plugin.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator, Iterator

import pytest

from .platform import LocalPlatform

FIXTURE = "local_platform"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "local_platform(**kwargs): arguments for the local_platform fixture"
    )


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Generator[None, object, object]:
    """Mark the new items of an unmarked async test that uses the platform ``asyncio``.

    "Uses" means ``local_platform`` is in the test's fixture closure (taken directly,
    through the user's own fixtures, or by ``usefixtures``). A ``trylast`` wrapper is
    the innermost one, so pytest-asyncio's collection wrapper (which turns marked
    coroutine items into its own) sees the mark when its turn comes.
    """
    result = yield
    if not collector.config.pluginmanager.hasplugin("asyncio"):
        return result  # no pytest-asyncio: pytest reports the async test as unsupported, as usual
    if not inspect.iscoroutinefunction(obj):
        return result
    items = result if isinstance(result, list) else [result]
    for item in items:
        if (
            isinstance(item, pytest.Function)
            and FIXTURE in item.fixturenames
            and item.get_closest_marker("asyncio") is None
            and item.get_closest_marker("anyio") is None  # anyio's plugin runs those
        ):
            item.add_marker("asyncio")
    return result


@pytest.fixture
def local_platform(request: pytest.FixtureRequest) -> Iterator[LocalPlatform]:
    """A fresh embedded platform (in-memory SQLite) on 127.0.0.1, stopped after the test.

    It is a plain (synchronous) fixture: the platform serves from its own thread, so
    sync tests, async tests in any pytest-asyncio mode and loop scope, and blocking
    clients all use it alike. Arguments for `LocalPlatform` come from the
    ``@pytest.mark.local_platform(...)`` marker.
    """
    marker = request.node.get_closest_marker(FIXTURE)
    kwargs = dict(marker.kwargs) if marker else {}
    with LocalPlatform.in_thread(**kwargs) as platform:
        yield platform
