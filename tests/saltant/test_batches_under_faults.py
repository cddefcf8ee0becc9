"""Batches under injected faults: one outcome per input, and the server holds exactly what succeeded.

The fault middleware answers 429/503 *instead of* the handler (nothing was done: the
client may retry a POST) and ``drop_after`` closes the connection *after* the handler
committed (the clone exists, the answer is lost: a retry would duplicate it, so the
client must report a failure instead, or, with ``reconcile=True``, find the clone that
was made). Counting rows in the store checks both.
"""

from __future__ import annotations

import collections
import sqlite3

import pytest

from aioplatform import NotFound, RateLimited, RetryPolicy, ServerError, TransportError
from aioplatform.saltant import ContainerTaskInstance, SaltantClient
from aioplatform.testing import FaultRule, LocalPlatform

from .conftest import Setup

CLONE_ROUTE = "/saltant/api/containertaskinstances/*/clone/"
N = 1000


def names_in_store(platform: LocalPlatform) -> collections.Counter[str]:
    def count(conn: sqlite3.Connection) -> collections.Counter[str]:
        rows = conn.execute("SELECT name, COUNT(*) FROM saltant_containertaskinstances GROUP BY name")
        return collections.Counter({name: n for name, n in rows})

    return platform.store.run_sync(count)


async def instance_spec(client: SaltantClient) -> dict[str, int]:
    """A task type whitelisted on a queue: the create_many spec the instances here share."""
    task_type = await client.container_task_types.create("t", "true", "busybox", "docker")
    whitelist = await client.task_whitelists.create("w", whitelisted_container_task_types=[task_type.id])
    queue = await client.task_queues.create("q", whitelists=[whitelist.id])
    return {"task_type_id": task_type.id, "task_queue_id": queue.id}


async def test_clone_many_under_429_503_and_dropped_connections_never_duplicates() -> None:
    rule = FaultRule(
        match="POST " + CLONE_ROUTE, rate_429=0.05, rate_503=0.05, drop_after=0.02, retry_after=0.05
    )
    policy = RetryPolicy(max_attempts=6, backoff_base=0.01, backoff_cap=0.1)
    async with LocalPlatform(faults=rule, seed=7) as platform:
        platform.saltant.publish_delay = 10_000.0  # states are irrelevant here
        async with SaltantClient(platform.saltant_url, platform.saltant_token, retry=policy) as client:
            base = await instance_spec(client)
            made = await client.container_task_instances.create_many(
                [{**base, "name": f"orig-{i}"} for i in range(N)], concurrency=50
            )
            assert made.ok
            originals = made.values
            assert platform.faults.injected == {}  # the rule matches the clone route only

            result = await client.container_task_instances.clone_many(
                [o.uuid for o in originals], concurrency=50
            )
            assert client.session.pool_status()["in_use"] == 0

        injected = platform.faults.injected
        assert injected["429"] > 0 and injected["503"] > 0 and injected["drop_after"] > 0

        # exactly one outcome per input, in input order
        assert len(result) == N
        dropped = [e for e in result.errors if isinstance(e.exception, TransportError)]
        refused = [e for e in result.errors if isinstance(e.exception, (RateLimited, ServerError))]
        assert len(dropped) + len(refused) == len(result.errors)
        for index, clone in enumerate(result.outcomes):
            if not isinstance(clone, BaseException):
                assert clone.name == originals[index].name and clone.uuid != originals[index].uuid

        # the store: one new instance per success and per dropped answer (its handler ran), none else
        counts = names_in_store(platform)
        assert sum(counts.values()) - N == len(result.values) + injected["drop_after"]
        assert len(dropped) == injected["drop_after"]
        failed_at = {e.index: e.exception for e in result.errors}
        for index, original in enumerate(originals):
            exc = failed_at.get(index)
            expected_clones = 0 if isinstance(exc, (RateLimited, ServerError)) else 1
            assert counts[original.name] == 1 + expected_clones, (index, exc)

        # no POST was re-sent after the handler ran: attempts = answers + refused-at-the-door
        posts = platform.stats.count("POST", CLONE_ROUTE)
        assert posts == len(result.values) + injected["429"] + injected["503"] + injected["drop_after"]
        assert client.session.stats.retries == injected["429"] + injected["503"] - len(refused)


async def test_wait_many_rides_out_faulty_polls() -> None:
    # GETs are idempotent: 429/503 and connections dropped before or after the handler are retried
    rule = FaultRule(
        match="GET /saltant/api/containertaskinstances/*/", rate_429=0.05, rate_503=0.05,
        drop_before=0.03, drop_after=0.03, retry_after=0.01,
    )  # fmt: skip
    policy = RetryPolicy(max_attempts=8, backoff_base=0.01, backoff_cap=0.05)
    async with LocalPlatform(faults=rule, seed=3) as platform:
        service = platform.saltant
        service.publish_delay, service.run_delay, service.run_duration = 0.01, 0.01, 0.1
        async with SaltantClient(platform.saltant_url, platform.saltant_token, retry=policy) as client:
            task_type = await client.container_task_types.create("t", "true", "busybox", "docker")
            whitelist = await client.task_whitelists.create(
                "w", whitelisted_container_task_types=[task_type.id]
            )
            queue = await client.task_queues.create("q", whitelists=[whitelist.id])
            spec = {"task_type_id": task_type.id, "task_queue_id": queue.id}
            made = await client.container_task_instances.create_many([spec] * 200)
            result = await client.container_task_instances.wait_many(
                [i.uuid for i in made.values], refresh_period=0.05, concurrency=20
            )
            assert client.session.pool_status()["in_use"] == 0
        assert sum(platform.faults.injected.values()) > 0
        assert result.ok and len(result) == 200 and {i.state for i in result.values} == {"successful"}


async def test_reconciled_clone_many_leaves_one_clone_per_success_and_none_per_failure() -> None:
    # The invariant, literally: lost answers are looked up and become successes.
    rule = FaultRule(
        match="POST " + CLONE_ROUTE, rate_429=0.05, rate_503=0.05, drop_after=0.02, retry_after=0.05
    )
    policy = RetryPolicy(max_attempts=2, backoff_base=0.01, backoff_cap=0.05)  # some 429/503 stay failures
    async with LocalPlatform(faults=rule, seed=11) as platform:
        platform.saltant.publish_delay = 10_000.0
        async with SaltantClient(platform.saltant_url, platform.saltant_token, retry=policy) as client:
            base = await instance_spec(client)
            # every original has the same name and arguments: only uuids and times tell clones apart
            made = await client.container_task_instances.create_many([base] * N, concurrency=50)
            assert made.ok
            uuids = [o.uuid for o in made.values]
            uuids[5] = uuids[4]  # a uuid given twice is cloned twice, and each lost answer found once
            result = await client.container_task_instances.clone_many(uuids, concurrency=50, reconcile=True)
            assert client.session.pool_status()["in_use"] == 0

        injected = platform.faults.injected
        assert injected["drop_after"] > 0 and len(result.errors) > 0
        assert len(result) == N
        assert all(isinstance(e.exception, (RateLimited, ServerError)) for e in result.errors)
        clones = result.values
        assert len({c.uuid for c in clones}) == len(clones)  # no clone reported twice
        assert not {c.uuid for c in clones} & set(uuids)

        def rows(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT COUNT(*) FROM saltant_containertaskinstances").fetchone()[0])

        assert platform.store.run_sync(rows) - N == len(clones)  # one per success, none per failure
        posts = platform.stats.count("POST", CLONE_ROUTE)
        # answered + lost-then-found + refused at the door: no POST was re-sent after the handler ran
        assert posts == len(clones) + injected["429"] + injected["503"]


async def test_a_single_lost_clone_answer_is_found_or_reraised(platform: LocalPlatform, ready: Setup) -> None:
    platform.saltant.publish_delay = 10_000.0
    async with SaltantClient(platform.saltant_url, platform.saltant_token) as client:
        manager = client.container_task_instances
        original = await manager.create(ready.task_type.id, ready.queue.id, {"who": "x"}, name="o")
        earlier = await original.clone()  # an older clone with the same inputs is never claimed
        platform.faults.add(FaultRule(match="POST " + CLONE_ROUTE, drop_before=1.0))
        with pytest.raises(TransportError) as info:  # sent, but the server never acted: nothing to find
            await manager.clone(original.uuid, reconcile=True)
        assert info.value.sent
        platform.faults.clear()
        platform.faults.add(FaultRule(match="POST " + CLONE_ROUTE, drop_after=1.0))
        found = await original.clone(reconcile=True)
        assert isinstance(found, ContainerTaskInstance) and found.uuid not in (original.uuid, earlier.uuid)
        assert (found.name, found.arguments, found.user) == ("o", original.arguments, "admin")
        with pytest.raises(TransportError):
            await manager.clone(original.uuid)  # without reconcile: the honest failure
        listed = {i.uuid async for i in manager.list({"name": "o"})}
        assert len(listed) == 4 and {original.uuid, earlier.uuid, found.uuid} < listed  # + that orphan


async def test_a_lost_clone_is_never_matched_to_another_clients_clone_made_just_before(
    platform: LocalPlatform, ready: Setup
) -> None:
    platform.saltant.publish_delay = 10_000.0
    async with SaltantClient(platform.saltant_url, platform.saltant_token) as first:
        original = await first.container_task_instances.create(
            ready.task_type.id, ready.queue.id, {"who": "y"}, name="twin"
        )
        theirs = await original.clone()  # same inputs, made well within the Date header's second
    platform.faults.add(FaultRule(match="POST " + CLONE_ROUTE, drop_after=1.0))
    async with SaltantClient(platform.saltant_url, platform.saltant_token) as second:  # knows no clone
        result = await second.container_task_instances.clone_many([original.uuid], reconcile=True)
        ours = result.values[0]
        assert ours.uuid not in (original.uuid, theirs.uuid)
        single = await second.container_task_instances.clone(original.uuid, reconcile=True)
        assert single.uuid not in (original.uuid, theirs.uuid, ours.uuid)


async def test_terminate_many_under_dropped_connections_terminates_every_instance() -> None:
    # Terminating twice is harmless, so a terminate whose connection dropped (before or after
    # the handler ran) is sent again: every outcome is a success unless the server refused it.
    terminate = "POST /saltant/api/containertaskinstances/*/terminate/"
    rule = FaultRule(match=terminate, rate_503=0.05, drop_before=0.05, drop_after=0.05, retry_after=0.01)
    policy = RetryPolicy(max_attempts=8, backoff_base=0.01, backoff_cap=0.05)
    async with LocalPlatform(faults=rule, seed=5) as platform:
        platform.saltant.publish_delay = 10_000.0  # `created` until terminated
        async with SaltantClient(platform.saltant_url, platform.saltant_token, retry=policy) as client:
            base = await instance_spec(client)
            made = await client.container_task_instances.create_many([base] * 400, concurrency=50)
            assert made.ok
            uuids = [i.uuid for i in made.values]
            unknown = "00000000-0000-4000-8000-000000000000"
            result = await client.container_task_instances.terminate_many(
                [*uuids, unknown, uuids[0]], concurrency=50
            )
            assert client.session.pool_status()["in_use"] == 0

        assert platform.faults.count("drop_before", terminate) > 0
        assert platform.faults.count("drop_after", terminate) > 0
        assert len(result) == 402
        assert [e.index for e in result.errors] == [400]  # only the refusal: the unknown uuid
        assert isinstance(result.errors[0].exception, NotFound)
        assert [i.uuid for i in result.values] == [*uuids, uuids[0]]

        def states(conn: sqlite3.Connection) -> collections.Counter[str]:
            rows = conn.execute("SELECT state FROM saltant_containertaskinstances")
            return collections.Counter(state for (state,) in rows)

        assert platform.store.run_sync(states) == {"terminated": 400}


async def test_reconcile_look_ups_retry_to_an_answer_however_often_they_are_faulted() -> None:
    # The look-ups are GETs: a 503 on most of them must not turn a made clone into a failure.
    rules = [
        FaultRule(match="POST " + CLONE_ROUTE, drop_after=0.3),
        FaultRule(match="GET /saltant/api/containertaskinstances/*", rate_503=0.6, retry_after=0),
    ]
    policy = RetryPolicy(max_attempts=3, backoff_base=0.001, backoff_cap=0.01)
    async with LocalPlatform(seed=9) as platform:
        platform.saltant.publish_delay = 10_000.0
        async with SaltantClient(platform.saltant_url, platform.saltant_token, retry=policy) as client:
            base = await instance_spec(client)
            made = await client.container_task_instances.create_many([base] * 60)
            uuids = [o.uuid for o in made.values]
            for rule in rules:
                platform.faults.add(rule)
            result = await client.container_task_instances.clone_many(uuids, concurrency=10, reconcile=True)

        assert platform.faults.count("drop_after", "POST " + CLONE_ROUTE) > 5
        assert platform.faults.count("503", "GET /saltant/api/containertaskinstances/*") > 20
        assert result.ok, [str(e.exception) for e in result.errors]
        clones = {c.uuid for c in result.values}
        assert len(clones) == 60 and not clones & set(uuids)

        def rows(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT COUNT(*) FROM saltant_containertaskinstances").fetchone()[0])

        assert platform.store.run_sync(rows) == 120  # one clone per original, each reported
