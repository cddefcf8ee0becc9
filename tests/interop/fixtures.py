"""Session fixtures for the real rob-flask server (imported by the conftests that need them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .robflask import RobFlask, RobFlaskUnavailable, ensure_venv, robflask_or_skip, start_server, unavailable

__all__ = ["robflask", "robflask_short_ttl"]


@pytest.fixture(scope="session")
def robflask(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RobFlask]:
    """One rob-flask 0.6.0 server for the session (24 h token TTL, its own data and database)."""
    with robflask_or_skip(tmp_path_factory.mktemp("robflask")) as server:
        yield server


@pytest.fixture(scope="session")
def robflask_short_ttl(robflask: RobFlask, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RobFlask]:
    """A second rob-flask on the same database whose API keys expire after 2 s."""
    log = Path(tmp_path_factory.mktemp("robflask-ttl")) / "server.log"
    try:
        server = start_server(ensure_venv(), robflask.env, log, token_ttl=2)
    except RobFlaskUnavailable as exc:
        unavailable(str(exc))
        raise
    yield server
    server.stop()
