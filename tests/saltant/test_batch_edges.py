"""saltant batches at the edges: the inputs kept as given, outcomes streamed, a breaker on a
rejected token."""

from __future__ import annotations

from typing import Any

from aioplatform import Breaker, NotAttempted
from aioplatform.saltant import AuthenticationFailed, SaltantClient

from .conftest import Backend, Setup


async def test_create_many_keeps_the_callers_specs_as_items_and_streams_outcomes(
    client: SaltantClient, ready: Setup
) -> None:
    specs = [
        {
            "task_type_id": ready.task_type.id,
            "task_queue_id": ready.queue.id,
            "name": f"s{i}",
            "arguments": {"who": str(i)},
        }
        for i in range(6)
    ]
    heard: list[tuple[int, Any]] = []
    result = await client.container_task_instances.create_many(
        specs, concurrency=3, on_outcome=lambda i, item, outcome: heard.append((i, item))
    )
    assert (
        result.ok and result.items == specs and all(a is b for a, b in zip(result.items, specs, strict=True))
    )
    assert sorted(i for i, _ in heard) == list(range(6))
    assert all(item is specs[i] for i, item in heard)


async def test_a_rejected_token_stops_clone_many_after_the_threshold(backend: Backend) -> None:
    import uuid

    ids = [str(uuid.uuid4()) for _ in range(300)]
    before = backend.requests
    async with backend.client(token="0" * 40) as bad:
        result = await bad.container_task_instances.clone_many(ids, concurrency=4, breaker=Breaker(8))
    assert isinstance(result[0], AuthenticationFailed)
    assert result.not_attempted >= 300 - 8 - 3
    assert all(
        isinstance(o, NotAttempted) and isinstance(o.cause, AuthenticationFailed)
        for o in result
        if isinstance(o, NotAttempted)
    )
    assert result.stopped is not None and "consecutive rejections of the credentials" in result.stopped
    if before is not None:
        assert backend.requests is not None and backend.requests - before <= 8 + 3
