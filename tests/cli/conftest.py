"""Fixtures for the CLI: a threaded embedded platform, seeded instances and commissions, two ways to run.

The CLI calls ``asyncio.run`` itself, so the tests that run it are plain (sync) tests;
fixtures build their data with short ``asyncio.run`` calls of the async clients.
``invoke`` runs the typer app in-process (CliRunner); ``run`` starts a real
``python -m aioplatform.cli`` process.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import pytest
from typer.testing import CliRunner

from aioplatform.astakos import AstakosClient, CommissionRequest
from aioplatform.cli import _build_app
from aioplatform.saltant import SaltantClient
from aioplatform.testing import LocalPlatform

# Variables that would change what the CLI reads or how rich renders: never inherited.
CONTROLLED = (
    "SALTANT_API_URL",
    "SALTANT_AUTH_TOKEN",
    "ASTAKOS_AUTH_URL",
    "ASTAKOS_TOKEN",
    "FORCE_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "NO_COLOR",
)
UNKNOWN = "00000000-0000-4000-8000-000000000000"
UNKNOWN_2 = "00000000-0000-4000-8000-000000000001"
RESOURCE = "cyclades.vm"


@attrs.frozen
class Outcome:
    """What a CLI run left: exit code, stdout, stderr."""

    code: int
    stdout: str
    stderr: str

    @property
    def records(self) -> list[dict[str, Any]]:
        """stdout parsed as JSON lines (every non-empty line must parse)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def text(self) -> str:
        """stdout and stderr, whitespace and rich's box drawing folded, for message checks."""
        raw = self.stdout + "\n" + self.stderr
        return " ".join(raw.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())


def cli_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """This environment minus the CONTROLLED variables, plus ``env``; wide, so rich does not wrap."""
    base = {k: v for k, v in os.environ.items() if k not in CONTROLLED}
    base["COLUMNS"] = "200"
    base.update(env or {})
    return base


def run(args: Sequence[str], env: Mapping[str, str] | None = None, stdin: str | None = None) -> Outcome:
    """``python -m aioplatform.cli ARGS`` in a real process, with exactly the given credentials."""
    done = subprocess.run(
        [sys.executable, "-m", "aioplatform.cli", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=cli_env(env),
        timeout=60,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def invoke(args: Sequence[str], env: Mapping[str, str] | None = None, stdin: str | None = None) -> Outcome:
    """The same command run in-process through typer's CliRunner."""
    unset: dict[str, str | None] = {k: None for k in CONTROLLED}
    result = CliRunner().invoke(_build_app(), list(args), input=stdin, env={**unset, **(env or {})})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def platform(local_platform: LocalPlatform) -> LocalPlatform:
    """The threaded platform with a fast simulated worker (finished within ~0.1 s)."""
    service = local_platform.saltant
    service.publish_delay, service.run_delay, service.run_duration = 0.01, 0.01, 0.05
    return local_platform


@pytest.fixture
def saltant_env(platform: LocalPlatform) -> dict[str, str]:
    return {"SALTANT_API_URL": platform.saltant_url, "SALTANT_AUTH_TOKEN": platform.saltant_token}


@pytest.fixture
def astakos_env(platform: LocalPlatform) -> dict[str, str]:
    return {"ASTAKOS_AUTH_URL": platform.astakos_auth_url, "ASTAKOS_TOKEN": platform.astakos_service_token}


def create_instances(platform: LocalPlatform, n: int) -> list[str]:
    """``n`` container task instances (through the async client); their UUIDs in order."""

    async def create() -> list[str]:
        async with SaltantClient(platform.saltant_url, platform.saltant_token) as client:
            task_type = await client.container_task_types.create(
                name=f"cli-{n}", command_to_run="true", container_image="busybox", container_type="docker"
            )
            whitelist = await client.task_whitelists.create(
                f"cli-wl-{n}", whitelisted_container_task_types=[task_type.id]
            )
            queue = await client.task_queues.create(f"cli-q-{n}", whitelists=[whitelist.id])
            specs = [{"task_type_id": task_type.id, "task_queue_id": queue.id} for _ in range(n)]
            result = await client.container_task_instances.create_many(specs, concurrency=10)
            return [i.uuid for i in result.values]

    return asyncio.run(create())


def instance_states(platform: LocalPlatform, uuids: Sequence[str]) -> list[str]:
    """The stored states of these instances, read straight from the platform's store."""

    def read(conn: Any) -> list[str]:
        query = "SELECT state FROM saltant_containertaskinstances WHERE uuid = ?"
        return [conn.execute(query, (u,)).fetchone()[0] for u in uuids]

    result: list[str] = platform.store.run_sync(read)
    return result


def instance_count(platform: LocalPlatform) -> int:
    def read(conn: Any) -> int:
        return int(conn.execute("SELECT COUNT(*) FROM saltant_containertaskinstances").fetchone()[0])

    result: int = platform.store.run_sync(read)
    return result


@pytest.fixture
def instances(platform: LocalPlatform) -> list[str]:
    """Three freshly created instances (state ``created``; the worker moves them on fast)."""
    return create_instances(platform, 3)


def issue_commissions(platform: LocalPlatform, n: int) -> list[int]:
    """``n`` pending commissions of one ``cyclades.vm`` each for the seeded user; their serials."""
    astakos = platform.astakos
    user, project = astakos.user_uuid, astakos.system_project
    platform.call(lambda: astakos.set_limit(f"user:{user}", f"project:{project}", RESOURCE, 100))
    platform.call(lambda: astakos.set_limit(f"project:{project}", None, RESOURCE, 100))

    async def issue() -> list[int]:
        requests = [CommissionRequest.one(user, project, {RESOURCE: 1}, name=f"cli-{i}") for i in range(n)]
        async with AstakosClient(platform.astakos_service_token, platform.astakos_auth_url) as client:
            result = await client.issue_many(requests)
            return list(result.values)

    return asyncio.run(issue())


def pending_commissions(platform: LocalPlatform) -> list[int]:
    async def pending() -> list[int]:
        async with AstakosClient(platform.astakos_service_token, platform.astakos_auth_url) as client:
            return await client.get_pending_commissions()

    return asyncio.run(pending())


def vm_usage(platform: LocalPlatform) -> int:
    """The seeded user's ``cyclades.vm`` usage (``usage_min``: accepted commissions only)."""
    astakos = platform.astakos
    holder, source = f"user:{astakos.user_uuid}", f"project:{astakos.system_project}"
    holding = platform.call(lambda: astakos.holding(holder, source, RESOURCE))
    return int(holding["usage_min"])


@pytest.fixture
def serials(platform: LocalPlatform) -> list[int]:
    """Four pending commissions."""
    return issue_commissions(platform, 4)
