"""pytest plugin (registered by the ``pytest11`` entry point): the ``local_platform`` fixture.

The platform runs on its own thread and loop, so it serves async tests (any
plugin), blocking clients (saltant-py) and mixed tests alike. Configure it with a
marker::

    @pytest.mark.local_platform(latency=0.01, faults=FaultRule(rate_503=0.1), seed=3)
    async def test_something(local_platform):
        async with SaltantClient(local_platform.saltant_url, local_platform.saltant_token) as c:
            ...
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .platform import LocalPlatform


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "local_platform(**kwargs): arguments for the local_platform fixture"
    )


@pytest.fixture
def local_platform(request: pytest.FixtureRequest) -> Iterator[LocalPlatform]:
    """A fresh embedded platform (in-memory SQLite) on 127.0.0.1, stopped after the test."""
    marker = request.node.get_closest_marker("local_platform")
    kwargs = dict(marker.kwargs) if marker else {}
    with LocalPlatform.in_thread(**kwargs) as platform:
        yield platform
