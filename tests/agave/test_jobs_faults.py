"""Jobs batches under injected faults: one outcome per input, and the store holds exactly what succeeded.

429 and 503 are answered instead of the handler (nothing was done, a POST may be
re-sent); ``drop_before`` closes the connection before the handler runs (no job, but
the client cannot know: it was sent), ``drop_after`` after the handler committed (the
job exists, the answer is lost). A submit is never re-sent once sent, so a dropped
submit is either found by ``reconcile=True`` (it exists) or reported (it does not):
nothing is lost, nothing is duplicated. Counting jobs in the store checks both.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
from typing import Any

from aioplatform import RetryPolicy, TransportError
from aioplatform.agave.errors import JobWaitTimeout
from aioplatform.agave.models import Job, JobStatus
from aioplatform.testing import FaultRule, LocalPlatform

from .conftest import client_for
from .test_jobs import request

POLICY = RetryPolicy(max_attempts=8, backoff_base=0.01, backoff_cap=0.05)


def jobs_by_name(platform: LocalPlatform) -> dict[str, list[sqlite3.Row]]:
    rows = platform.store.run_sync(
        lambda conn: conn.execute("SELECT id, name, status FROM agave_jobs_jobs").fetchall()
    )
    by_name: dict[str, list[sqlite3.Row]] = collections.defaultdict(list)
    for row in rows:
        by_name[row["name"]].append(row)
    return by_name


async def test_submit_many_with_reconcile_under_429_503_and_drops_makes_one_job_per_request() -> None:
    n = 300
    faults = [
        FaultRule(
            match="POST /agave/jobs/v2/", rate_429=0.05, rate_503=0.05, drop_before=0.01, drop_after=0.01,
            retry_after=0.01,
        ),
        FaultRule(
            match="GET /agave/jobs/v2/*", rate_429=0.05, rate_503=0.05, drop_after=0.01, retry_after=0.01
        ),
    ]  # fmt: skip
    async with LocalPlatform(faults=faults, seed=11) as platform:
        platform.agave.job_step_seconds = 10_000.0  # statuses are irrelevant here
        async with client_for(platform, retry=POLICY) as agave:
            requests = [request(f"sweep-{i:03d}") for i in range(n)]
            result = await agave.jobs.submit_many(requests, concurrency=32, reconcile=True)
            assert agave.session.pool_status()["in_use"] == 0

        posted = lambda kind: platform.faults.count(kind, "POST /agave/jobs/v2/")  # noqa: E731
        assert (
            posted("429") > 0 and posted("503") > 0 and posted("drop_after") > 0 and posted("drop_before") > 0
        )

        stored = jobs_by_name(platform)
        assert len(result) == n
        assert all(len(rows) == 1 for rows in stored.values())  # nothing duplicated
        for i, outcome in enumerate(result.outcomes):
            name = f"sweep-{i:03d}"
            if isinstance(outcome, Job):
                assert outcome.name == name and [r["id"] for r in stored[name]] == [outcome.id]
            else:  # only a submit dropped before the app ran fails, and it left nothing
                assert isinstance(outcome, TransportError) and outcome.sent
                assert name not in stored
        # every answer dropped after the job was made was reconciled; every failure is a drop before
        assert len(stored) == len(result.values)
        assert len(result.errors) <= posted("drop_before")
        assert len(result.values) >= n - posted("drop_before")


async def test_reconcile_never_claims_a_job_another_outcome_holds_or_an_older_one() -> None:
    # Same name and app for every request: only the creation order tells the jobs apart.
    rule = FaultRule(match="POST /agave/jobs/v2/", drop_after=0.3)
    async with LocalPlatform(seed=5) as platform:
        platform.agave.job_step_seconds = 10_000.0
        async with client_for(platform, retry=POLICY) as agave:
            older = await agave.jobs.submit(request("same"))  # before the batch: never a lost answer
            platform.faults.rules = [rule]
            result = await agave.jobs.submit_many(
                [request("same") for _ in range(40)], concurrency=4, reconcile=True
            )
        assert platform.faults.count("drop_after") > 0
        ids = [o.id for o in result.outcomes if isinstance(o, Job)]
        assert result.ok and len(ids) == len(set(ids)) == 40
        assert older.id not in ids
        assert len(jobs_by_name(platform)["same"]) == 41


async def test_without_reconcile_a_dropped_submit_is_an_error_and_never_resent() -> None:
    rule = FaultRule(match="POST /agave/jobs/v2/", drop_after=0.2)
    async with LocalPlatform(faults=rule, seed=3) as platform:
        platform.agave.job_step_seconds = 10_000.0
        async with client_for(platform, retry=POLICY) as agave:
            result = await agave.jobs.submit_many([request(f"plain-{i}") for i in range(50)], concurrency=8)
        dropped = platform.faults.count("drop_after")
        assert dropped > 0 and len(result.errors) == dropped
        assert platform.stats.count("POST", "/agave/jobs/v2/") == 50  # one POST per request
        assert all(len(rows) == 1 for rows in jobs_by_name(platform).values())
        assert len(jobs_by_name(platform)) == 50


async def test_stop_many_under_faults_stops_every_job() -> None:
    rule = FaultRule(
        match="POST /agave/jobs/v2/*-007", rate_429=0.1, rate_503=0.1, drop_before=0.05, drop_after=0.05,
        retry_after=0.01,
    )  # fmt: skip
    async with LocalPlatform(seed=9) as platform:
        platform.agave.job_step_seconds = 10_000.0
        async with client_for(platform, retry=POLICY) as agave:
            made = await agave.jobs.submit_many([request(f"stop-{i}") for i in range(120)], concurrency=16)
            assert made.ok
            platform.faults.rules = [rule]
            result = await agave.jobs.stop_many([j.id for j in made.values], concurrency=16)
        assert platform.faults.count("drop_after") > 0 and platform.faults.count("drop_before") > 0
        assert result.ok and all(isinstance(o, Job) and o.status == "STOPPED" for o in result.outcomes)
        statuses = {row["status"] for rows in jobs_by_name(platform).values() for row in rows}
        assert statuses == {"STOPPED"}


async def test_wait_many_under_faults_and_a_deadline_gives_timeouts_only_for_frozen_jobs() -> None:
    rule = FaultRule(
        match="GET /agave/jobs/v2/*/status", rate_429=0.1, rate_503=0.1, drop_after=0.05, retry_after=0.01
    )
    async with LocalPlatform(seed=2) as platform:
        async with client_for(platform, retry=POLICY) as agave:
            platform.agave.job_step_seconds = 10_000.0
            frozen = await agave.jobs.submit_many([request(f"frozen-{i}") for i in range(10)])
            platform.agave.job_step_seconds = 0.005
            moving = await agave.jobs.submit_many([request(f"moving-{i}") for i in range(30)])
            ids = [j.id for j in frozen.values] + [j.id for j in moving.values]
            platform.faults.rules = [rule]
            progress: list[Any] = []
            loop = asyncio.get_running_loop()
            started = loop.time()
            result = await agave.jobs.wait_many(
                ids, poll_interval=0.05, max_interval=0.2, deadline=1.5, concurrency=8,
                on_progress=lambda done, total, outcome: progress.append(outcome),
            )  # fmt: skip
            assert loop.time() - started < 10
        assert platform.faults.count() > 0
        assert len(result) == 40 and len(progress) == 40
        for outcome in result.outcomes[:10]:
            assert isinstance(outcome, JobWaitTimeout) and outcome.status == "PENDING"
        for outcome in result.outcomes[10:]:
            assert isinstance(outcome, JobStatus) and outcome.status == "FINISHED"


async def test_resubmit_many_with_reconcile_finds_the_resubmissions_whose_answer_was_lost() -> None:
    rule = FaultRule(match="POST /agave/jobs/v2/*-007", drop_after=0.25)
    async with LocalPlatform(seed=4) as platform:
        platform.agave.job_step_seconds = 10_000.0
        async with client_for(platform, retry=POLICY) as agave:
            made = await agave.jobs.submit_many([request(f"re-{i}") for i in range(40)], concurrency=8)
            originals = [j.id for j in made.values]
            platform.faults.rules = [rule]
            result = await agave.jobs.resubmit_many(originals, concurrency=8, reconcile=True)
        assert platform.faults.count("drop_after") > 0
        assert result.ok
        stored = jobs_by_name(platform)
        for i, (original, new) in enumerate(zip(originals, result.outcomes, strict=True)):
            assert isinstance(new, Job) and new.id != original and new.name == f"re-{i}"
            assert sorted(r["id"] for r in stored[f"re-{i}"]) == sorted([original, new.id])
