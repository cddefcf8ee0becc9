"""Session fixtures for the real rob-flask and saltant servers (imported by the conftests that need them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .robflask import RobFlask, RobFlaskUnavailable, ensure_venv, robflask_or_skip, start_server, unavailable
from .saltant_server import SaltantServer, saltant_or_skip

__all__ = ["robflask", "robflask_short_ttl", "saltant_server"]


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


@pytest.fixture(scope="session")
def saltant_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaltantServer]:
    """One real saltant server for the session (its own PostgreSQL cluster; users admin and alice)."""
    with saltant_or_skip(Path(tmp_path_factory.mktemp("saltant")) / "server.log") as server:
        yield server
