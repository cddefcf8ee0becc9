"""The real rob-flask and saltant servers for the interop tests (see robflask.py, saltant_server.py)."""

import pytest

from .fixtures import robflask, robflask_short_ttl, saltant_server  # noqa: F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The first test on a real server may build its cached virtualenv (pip, ~1 min): give it time.
    for item in items:
        if "tests/interop/" in item.nodeid and {"saltant_server", "robflask"} & set(
            getattr(item, "fixturenames", ())
        ):
            item.add_marker(pytest.mark.timeout(900))
