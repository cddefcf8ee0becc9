"""Notifications batches under faults: one outcome per input, the store holds exactly what succeeded.

429 and 503 are answered instead of the handler (an add may be re-sent); ``drop_before``
closes the connection before the handler runs (nothing made, but the client cannot
know), ``drop_after`` after it committed (made, answer lost). An add is never re-sent
once sent: ``reconcile=True`` finds a dropped add that was made, and reports one that
was not. Counting subscriptions in the store checks nothing is lost or duplicated.
"""

from __future__ import annotations

import collections
from typing import Any

import pytest

from aioplatform import NotFound, RetryPolicy, TransportError
from aioplatform.agave.models import Notification
from aioplatform.testing import FaultRule, LocalPlatform

from .conftest import client_for
from .test_notifications import request

POLICY = RetryPolicy(max_attempts=8, backoff_base=0.01, backoff_cap=0.05)


def subscriptions(platform: LocalPlatform) -> collections.Counter[tuple[str, str, str]]:
    rows = platform.store.run_sync(
        lambda conn: conn.execute("SELECT associated_uuid, url, event FROM agave_notifications").fetchall()
    )
    return collections.Counter((r["associated_uuid"], r["url"], r["event"]) for r in rows)


async def test_create_many_with_reconcile_under_faults_makes_one_subscription_per_request() -> None:
    faults = [
        FaultRule(
            match="POST /agave/notifications/v2/", rate_429=0.05, rate_503=0.05, drop_before=0.03,
            drop_after=0.05, retry_after=0.01,
        ),
        FaultRule(match="GET /agave/notifications/v2/", rate_429=0.05, rate_503=0.05, retry_after=0.01),
    ]  # fmt: skip
    async with LocalPlatform(seed=7) as platform:
        platform.agave.job_step_seconds = 10_000.0
        async with client_for(platform, retry=POLICY) as agave:
            jobs = (await agave.jobs.submit_many([request(f"j{i}") for i in range(50)])).values
            platform.faults.rules = faults
            wanted: list[dict[str, Any]] = [
                {
                    "associatedUuid": job.id,
                    "url": f"http://127.0.0.1:9/{kind}",
                    "event": event,
                    "persistent": True,
                }
                for job in jobs
                for kind, event in (("done", "FINISHED"), ("all", "*"), ("fail", "FAILED"))
            ]
            result = await agave.notifications.create_many(wanted, concurrency=16, reconcile=True)
            assert agave.session.pool_status()["in_use"] == 0
        posted = lambda kind: platform.faults.count(kind, "POST /agave/notifications/v2/")  # noqa: E731
        assert all(posted(kind) > 0 for kind in ("429", "503", "drop_before", "drop_after"))

        stored = subscriptions(platform)
        assert len(result) == len(wanted) == 150
        assert max(stored.values()) == 1  # nothing duplicated
        for body, outcome in zip(wanted, result.outcomes, strict=True):
            key = (body["associatedUuid"], body["url"], body["event"])
            if isinstance(outcome, Notification):
                assert (outcome.associated_uuid, outcome.url, outcome.event) == key and key in stored
            else:  # only an add dropped before the handler ran fails, and it left nothing
                assert isinstance(outcome, TransportError) and outcome.sent and key not in stored
        assert len(stored) == len(result.values)  # every dropped-after add was found
        assert len({n.id for n in result.values}) == len(result.values)
        assert 0 < len(result.errors) <= posted("drop_before")


async def test_without_reconcile_a_dropped_add_is_an_error_and_never_resent() -> None:
    rule = FaultRule(match="POST /agave/notifications/v2/", drop_after=0.3)
    async with LocalPlatform(seed=3) as platform:
        platform.agave.job_step_seconds = 10_000.0
        async with client_for(platform, retry=POLICY) as agave:
            job = await agave.jobs.submit(request("solo"))
            platform.faults.rules = [rule]
            wanted = [
                {"associatedUuid": job.id, "url": f"http://127.0.0.1:9/{i}", "event": "*"} for i in range(30)
            ]
            result = await agave.notifications.create_many(wanted, concurrency=8)
        dropped = platform.faults.count("drop_after")
        assert dropped > 0 and len(result.errors) == dropped
        assert all(isinstance(e.exception, TransportError) for e in result.errors)
        assert sum(subscriptions(platform).values()) == 30  # made once each, never re-sent


async def test_delete_many_under_faults_deletes_each_once_and_reports_unknown_ones() -> None:
    rule = FaultRule(
        match="DELETE /agave/notifications/v2/*",
        rate_429=0.1,
        rate_503=0.1,
        drop_after=0.15,
        retry_after=0.01,
    )
    async with LocalPlatform(seed=5) as platform:
        platform.agave.job_step_seconds = 10_000.0
        async with client_for(platform, retry=POLICY) as agave:
            job = await agave.jobs.submit(request("many"))
            made = await agave.notifications.create_many(
                [
                    {"associatedUuid": job.id, "url": f"http://127.0.0.1:9/{i}", "event": "*"}
                    for i in range(60)
                ]
            )
            ids = [n.id for n in made.values]
            platform.faults.rules = [rule]
            result = await agave.notifications.delete_many(ids, concurrency=8)
            platform.faults.rules = []
            # An unknown uuid is a NotFound (its first answer was not lost, so it was not there).
            unknown = await agave.notifications.delete_many([ids[0], "0-0-0001-011"])
        assert platform.faults.count("drop_after") > 0
        assert result.ok and result.outcomes == ids
        assert isinstance(unknown.outcomes[0], NotFound) and isinstance(unknown.outcomes[1], NotFound)
        assert sum(subscriptions(platform).values()) == 0


async def test_batches_check_every_input_before_any_request(platform: LocalPlatform) -> None:
    async with client_for(platform) as agave:
        with pytest.raises(ValueError, match=r"requests\[1\]\['event'\]"):
            await agave.notifications.create_many(
                [{"associatedUuid": "a-007", "url": "http://127.0.0.1/", "event": "*"},
                 {"associatedUuid": "a-007", "url": "http://127.0.0.1/", "event": ""}]
            )  # fmt: skip
        with pytest.raises(TypeError, match="requests"):
            await agave.notifications.create_many({"url": "x"})
        with pytest.raises(ValueError, match=r"uuids\[1\]"):
            await agave.notifications.delete_many(["x-011", ".."])
    assert subscriptions(platform) == collections.Counter()
