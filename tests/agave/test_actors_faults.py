"""Actors batches under injected faults: one outcome per message, checked against the store.

A message POST is retried only on 429/503 (answered before the handler ran). A dropped
connection is never re-sent: ``drop_before`` (nothing ran) and ``drop_after`` (the
execution exists, its answer is lost) look the same to the client, so both become
:class:`MessageOutcomeUnknown` carrying the batch's orphans (executions no outcome holds).
The store then holds exactly the executions of the ids returned plus those orphans:
nothing lost, nothing duplicated, every execution accounted for.
"""

from __future__ import annotations

import collections

from aioplatform import NotFound, RetryPolicy, TransportError
from aioplatform.agave.errors import ExecutionWaitTimeout, MessageOutcomeUnknown
from aioplatform.agave.models import Execution
from aioplatform.testing import FaultRule, LocalPlatform

from .conftest import client_for

POLICY = RetryPolicy(max_attempts=8, backoff_base=0.01, backoff_cap=0.05)


def executions(platform: LocalPlatform, actor_id: str) -> list[tuple[str, str]]:
    rows = platform.store.run_sync(
        lambda conn: conn.execute(
            "SELECT id, message FROM agave_actors_executions WHERE actor_id = ?", (actor_id,)
        ).fetchall()
    )
    return [(r["id"], r["message"]) for r in rows]


async def test_send_many_under_429_503_and_drops_accounts_for_every_message() -> None:
    n = 300
    faults = [
        FaultRule(
            match="POST /agave/actors/v2/*/messages", rate_429=0.05, rate_503=0.05, drop_before=0.01,
            drop_after=0.01, retry_after=0.01,
        ),
        FaultRule(match="GET /agave/actors/v2/*", rate_429=0.05, rate_503=0.05, retry_after=0.01),
    ]  # fmt: skip
    async with LocalPlatform(faults=faults, seed=5) as platform:
        platform.agave.actor_step_seconds = 10_000.0  # statuses are irrelevant here
        async with client_for(platform, retry=POLICY) as agave:
            actor = await agave.actors.add({"image": "abacosamples/wc"})
            messages = [f"message-{i:03d}" for i in range(n)]
            result = await agave.actors.send_many(actor.id, messages, concurrency=32)
            assert agave.session.pool_status()["in_use"] == 0

        posted = lambda kind: platform.faults.count(kind, "POST /agave/actors/v2/*/messages")  # noqa: E731
        assert (
            posted("429") > 0 and posted("503") > 0 and posted("drop_before") > 0 and posted("drop_after") > 0
        )

        stored = executions(platform, actor.id)
        by_message = collections.Counter(message for _, message in stored)
        assert all(count == 1 for count in by_message.values())  # nothing duplicated
        ids = {execution_id for execution_id, _ in stored}
        assert len(result) == n
        unknown = [o for o in result.outcomes if isinstance(o, MessageOutcomeUnknown)]
        for i, outcome in enumerate(result.outcomes):
            if isinstance(outcome, str):  # its execution exists and holds this message
                assert (outcome, f'"message-{i:03d}"') in stored
            else:
                assert isinstance(outcome, MessageOutcomeUnknown) and isinstance(
                    outcome.cause, TransportError
                )
                assert outcome.cause.sent
        assert len(unknown) == posted("drop_before") + posted("drop_after")
        orphans = set(unknown[0].orphans or ())
        assert all(set(u.orphans or ()) == orphans for u in unknown)
        # Every stored execution is an outcome's id or an orphan; the orphans are exactly the
        # executions of answers dropped after the handler ran.
        assert ids == set(result.values) | orphans and not orphans & set(result.values)
        assert len(orphans) == posted("drop_after")
        lost_messages = {f'"{messages[e.index]}"' for e in result.errors}
        assert {message for execution_id, message in stored if execution_id in orphans} <= lost_messages


async def test_wait_executions_gives_typed_timeouts_for_what_cannot_finish(platform: LocalPlatform) -> None:
    async with client_for(platform) as agave:
        platform.agave.actor_step_seconds = 0.01
        quick = await agave.actors.add({"image": "abacosamples/wc"})
        done_id = await agave.actors.send_message(quick.id, "fast")
        await agave.actors.wait_executions(quick.id, [done_id], deadline=10, poll_interval=0.01)
        platform.agave.actor_step_seconds = 10_000.0
        slow = await agave.actors.add({"image": "abacosamples/wc"})
        stuck = [await agave.actors.send_message(slow.id, f"slow-{i}") for i in range(3)]
        result = await agave.actors.wait_executions(
            slow.id, [*stuck, "NoSuchExec123"], deadline=0.3, poll_interval=0.05
        )
        assert len(result) == 4
        for execution_id, outcome in zip(stuck, result.outcomes[:3], strict=True):
            assert isinstance(outcome, ExecutionWaitTimeout) and isinstance(outcome, TimeoutError)
            assert outcome.execution_id == execution_id and outcome.actor_id == slow.id
            assert outcome.status == "SUBMITTED" and outcome.deadline == 0.3
            assert isinstance(outcome.last, Execution)
        assert isinstance(result.outcomes[3], NotFound)
        finished = await agave.actors.wait_executions(quick.id, [done_id, done_id], deadline=1)
        assert [e.status for e in finished.values] == ["COMPLETE", "COMPLETE"]  # duplicates polled once


async def test_wait_executions_under_get_faults_still_settles_each_once() -> None:
    rule = FaultRule(
        match="GET /agave/actors/v2/*", rate_429=0.1, rate_503=0.1, drop_after=0.05, retry_after=0.01
    )
    async with LocalPlatform(faults=[rule], seed=3) as platform:
        platform.agave.actor_step_seconds = 0.02
        async with client_for(platform, retry=POLICY) as agave:
            actor = await agave.actors.add({"image": "abacosamples/wc"})
            ids = [await agave.actors.send_message(actor.id, i) for i in range(40)]
            seen: list[int] = []
            result = await agave.actors.wait_executions(
                actor.id,
                ids,
                deadline=30,
                poll_interval=0.02,
                on_progress=lambda done, total, _: seen.append(done),
            )
        assert result.ok and [e.id for e in result.values] == ids
        assert seen == list(range(1, 41))
        assert {e.status for e in result.values} == {"COMPLETE"}
