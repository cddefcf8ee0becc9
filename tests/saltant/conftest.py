"""Fixtures: an embedded platform in the test's loop, a client on it, and a queue ready for instances."""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import pytest

from aioplatform.saltant import ContainerTaskType, SaltantClient, TaskQueue, TaskWhitelist
from aioplatform.testing import LocalPlatform


def fast_lifecycle(platform: LocalPlatform) -> None:
    """Instances go created -> published -> running -> successful within ~0.1 s."""
    service = platform.saltant
    service.publish_delay, service.run_delay, service.run_duration = 0.01, 0.01, 0.05


def frozen_lifecycle(platform: LocalPlatform) -> None:
    """Instances stay `created` (the simulated worker never picks them up)."""
    platform.saltant.publish_delay = 10_000.0


@pytest.fixture
async def platform() -> AsyncIterator[LocalPlatform]:
    async with LocalPlatform() as p:
        fast_lifecycle(p)
        yield p


@pytest.fixture
async def client(platform: LocalPlatform) -> AsyncIterator[SaltantClient]:
    async with SaltantClient(platform.saltant_url, platform.saltant_token) as c:
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
        name="hello", command_to_run="echo hi", container_image="busybox", container_type="docker",
        required_arguments=["who", "times"], required_arguments_default_values={"times": 1},
    )  # fmt: skip
    whitelist = await client.task_whitelists.create("wl", whitelisted_container_task_types=[task_type.id])
    queue = await client.task_queues.create("main", whitelists=[whitelist.id])
    return Setup(task_type, whitelist, queue)
