"""agavepy 0.9.5, unmodified, against the embedded Agave's TLS site.

agavepy builds every operation's URL as ``https://`` + the netloc of ``api_server`` and
attaches the bearer token only when that netloc has no port (agave.md §8), so the
platform serves Agave at the root of ``https://127.0.0.2`` on port 443 with a
certificate from a CA made at start-up; agavepy gets ``verify=<ca.pem>``. Binding 443
needs root: CI runs as root (and sets ``CI=true``), so there a platform that cannot
start, or an agavepy that cannot be imported, fails the tests; elsewhere they skip
with the reason (the rule of ``tests/interop/robflask.py``, whose ``under_ci`` this uses).
"""

from __future__ import annotations

import contextlib
import errno
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aioplatform.testing import LocalPlatform

from ..interop.robflask import under_ci

__all__ = ["AGAVEPY_VERSION", "agavepy_client", "agavepy_platform", "query", "unavailable"]

AGAVEPY_VERSION = "0.9.5"


def unavailable(reason: str) -> None:
    """Fail under CI (the interop test must run there), skip elsewhere."""
    if under_ci():
        pytest.fail(f"agavepy interop unavailable under CI: {reason}", pytrace=False)
    pytest.skip(f"agavepy interop unavailable: {reason}")


def _agavepy_or_unavailable() -> None:
    try:
        from importlib.metadata import version

        import agavepy.agave  # noqa: F401
    except ImportError as exc:
        unavailable(f"agavepy is not installed (pip install 'aioplatform[test]'): {exc}")
        return
    installed = version("agavepy")
    if installed != AGAVEPY_VERSION:
        unavailable(f"agavepy {installed} is installed; these tests pin {AGAVEPY_VERSION}")


def _addresses() -> list[str]:
    # 127.0.0.2 first (what the docs show); if another run holds its 443, another address
    # of 127.0.0.0/8 (all loopback on Linux).
    rng = random.Random()
    return ["127.0.0.2"] + [f"127.0.43.{n}" for n in rng.sample(range(2, 255), 6)]


@contextlib.contextmanager
def agavepy_platform(home: Path, **platform_options: Any) -> Iterator[LocalPlatform]:
    """A threaded platform with its Agave TLS site on a loopback address's port 443,
    with ``HOME`` and ``AGAVE_CACHE_DIR`` pointing into ``home`` (agavepy writes its
    token cache under them) while it runs."""
    _agavepy_or_unavailable()
    cache = home / ".agave"
    cache.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HOME", str(home))
        env.setenv("AGAVE_CACHE_DIR", str(cache))
        failure: OSError | None = None
        for address in _addresses():
            try:
                platform_cm = LocalPlatform.in_thread(agave_tls_host=address, **platform_options)
                platform = platform_cm.__enter__()
            except PermissionError as exc:
                unavailable(f"binding {address}:443 needs root (CI runs as root): {exc}")
                raise
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    unavailable(f"the TLS site could not start on {address}:443: {exc}")
                    raise
                failure = exc
                continue
            try:
                yield platform
            finally:
                platform_cm.__exit__(None, None, None)
            return
        unavailable(f"port 443 is taken on every loopback address tried: {failure}")


def agavepy_client(platform: LocalPlatform, **options: Any) -> Any:
    """``agavepy.agave.Agave`` on the TLS site, trusting its CA; by default the password
    grant at construction (``options`` replace or add constructor arguments)."""
    from agavepy.agave import Agave

    service = platform.agave
    kwargs: dict[str, Any] = {
        "api_server": platform.agave_tls_url,
        "api_key": service.client_key,
        "api_secret": service.client_secret,
        "username": service.username,
        "password": service.password,
        "verify": str(platform.agave_ca_pem),
    }
    kwargs.update(options)
    return Agave(**kwargs)


def query(platform: LocalPlatform, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of the embedded store (read on the platform's own thread), as plain tuples."""

    def run(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in conn.execute(sql, args).fetchall()]

    return list(platform.call(lambda: platform.store.run(run)))
