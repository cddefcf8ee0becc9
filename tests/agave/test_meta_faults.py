"""Meta batches under injected faults: one outcome per input, and the store holds exactly what succeeded.

429 and 503 are answered instead of the handler (nothing done: a POST may be re-sent);
``drop_before`` closes the connection before the handler runs (nothing done, but the
client cannot know: it was sent); ``drop_after`` after the handler committed (done,
answer lost). A create is never re-sent once sent, so with ``reconcile=True`` a dropped
create is either found (it exists) or reported (it does not). A delete's lost answer is
re-sent, and a 404 then counts as deleted.
"""

from __future__ import annotations

import asyncio
import collections
import json
from typing import Any

from aioplatform import RetryPolicy, TransportError, gather
from aioplatform.agave.models import Metadata
from aioplatform.testing import FaultRule, LocalPlatform

from .conftest import client_for

POLICY = RetryPolicy(max_attempts=8, backoff_base=0.01, backoff_cap=0.05)
MIX = {"rate_429": 0.05, "rate_503": 0.05, "drop_before": 0.01, "drop_after": 0.01, "retry_after": 0.01}


def stored_by_name(platform: LocalPlatform) -> dict[str, list[Any]]:
    rows = platform.store.run_sync(
        lambda conn: conn.execute("SELECT uuid, name, value FROM agave_meta_data").fetchall()
    )
    by_name: dict[str, list[Any]] = collections.defaultdict(list)
    for row in rows:
        by_name[row["name"]].append(row)
    return by_name


async def test_create_many_of_1000_with_reconcile_makes_one_record_per_success_and_none_per_error() -> None:
    n = 1000
    faults = [
        FaultRule(match="POST /agave/meta/v2/data", **MIX),
        FaultRule(
            match="GET /agave/meta/v2/data", rate_429=0.05, rate_503=0.05, drop_after=0.01, retry_after=0.01
        ),
    ]
    async with LocalPlatform(faults=faults, seed=5) as platform:
        async with client_for(platform, retry=POLICY) as agave:
            records = [{"name": f"rec-{i:04d}", "value": {"i": i, "tags": ["t"]}} for i in range(n)]
            progress: list[int] = []
            result = await agave.meta.create_many(
                records,
                concurrency=32,
                reconcile=True,
                on_progress=lambda done, total, _: progress.append(done),
            )
            assert agave.session.pool_status()["in_use"] == 0

        posted = lambda kind: platform.faults.count(kind, "POST /agave/meta/v2/data")  # noqa: E731
        assert (
            posted("429") > 0 and posted("503") > 0 and posted("drop_before") > 0 and posted("drop_after") > 0
        )
        assert len(result) == n and sorted(progress) == list(range(1, n + 1))

        stored = stored_by_name(platform)
        assert all(len(rows) == 1 for rows in stored.values())  # nothing duplicated
        for i, outcome in enumerate(result.outcomes):
            name = f"rec-{i:04d}"
            if isinstance(outcome, Metadata):
                assert outcome.name == name and outcome.value == {"i": i, "tags": ["t"]}
                assert [r["uuid"] for r in stored[name]] == [outcome.uuid]
            else:  # only a create dropped before the handler ran fails, and it left nothing
                assert isinstance(outcome, TransportError) and outcome.sent
                assert name not in stored
        assert len(stored) == len(result.values)  # nothing lost: every stored record is an outcome
        assert 0 < len(result.errors) <= posted("drop_before")


async def test_without_reconcile_a_lost_create_is_reported_never_resent() -> None:
    rule = FaultRule(match="POST /agave/meta/v2/data", drop_after=0.2, drop_before=0.1)
    async with LocalPlatform(faults=[rule], seed=3) as platform:
        async with client_for(platform, retry=POLICY) as agave:
            result = await agave.meta.create_many([{"name": f"n{i}", "value": i} for i in range(200)])
        stored = stored_by_name(platform)
        assert all(len(rows) == 1 for rows in stored.values())
        dropped = platform.faults.count("drop_after") + platform.faults.count("drop_before")
        assert len(result.errors) == dropped > 0
        assert all(isinstance(e.exception, TransportError) and e.exception.sent for e in result.errors)
        # the store holds every success plus exactly the creates whose answer was dropped after
        assert len(stored) == len(result.values) + platform.faults.count("drop_after")


async def test_reconcile_never_claims_a_record_another_outcome_holds_or_an_older_one() -> None:
    rule = FaultRule(match="POST /agave/meta/v2/data", drop_after=0.4)
    async with LocalPlatform(seed=8) as platform:
        async with client_for(platform, retry=POLICY) as agave:
            same = {"name": "same", "value": {"k": [1, 2]}, "associationIds": ["job-1"]}
            older = await agave.meta.add_metadata(same)
            await asyncio.sleep(1.3)  # older than a lost create's window (its send time less 1 s)
            platform.faults.rules = [rule]
            result = await agave.meta.create_many([same] * 40, concurrency=8, reconcile=True)
            platform.faults.rules = []
        assert platform.faults.count("drop_after") > 0
        uuids = [m.uuid for m in result.values]
        assert result.ok and len(set(uuids)) == 40 and older.uuid not in uuids
        assert len(stored_by_name(platform)["same"]) == 41


async def test_reconcile_tells_records_apart_by_value_and_associations() -> None:
    rule = FaultRule(match="POST /agave/meta/v2/data", drop_after=1.0)
    async with LocalPlatform(faults=[rule], seed=1) as platform:
        async with client_for(platform, retry=POLICY) as agave:
            records = [
                {"name": "twin", "value": {"v": 1}},
                {"name": "twin", "value": {"v": 2}},
                {"name": "twin", "value": {"v": 2}, "associationIds": ["a"]},
            ]
            result = await agave.meta.create_many(records, concurrency=1, reconcile=True)
        assert result.ok
        assert [(m.value, m.association_ids) for m in result.values] == [
            ({"v": 1}, []), ({"v": 2}, []), ({"v": 2}, ["a"])
        ]  # fmt: skip
        stored = platform.store.run_sync(
            lambda conn: conn.execute("SELECT uuid, value FROM agave_meta_data").fetchall()
        )
        assert sorted(r["uuid"] for r in stored) == sorted(m.uuid for m in result.values)
        assert sorted(json.loads(r["value"])["v"] for r in stored) == [1, 2, 2]


async def test_delete_many_under_faults_deletes_everything_and_reports_honestly() -> None:
    async with LocalPlatform(seed=21) as platform:
        async with client_for(platform, retry=POLICY) as agave:
            created = await agave.meta.create_many([{"name": f"d{i}", "value": i} for i in range(600)])
            assert created.ok
            uuids = [m.uuid for m in created.values]
            platform.faults.rules = [
                FaultRule(match="DELETE /agave/meta/v2/data/*", **{**MIX, "drop_after": 0.03})
            ]
            result = await agave.meta.delete_many([*uuids, "never-existed-012"], concurrency=32)
            platform.faults.rules = []
            assert agave.session.pool_status()["in_use"] == 0
        deleted = lambda kind: platform.faults.count(kind, "DELETE /agave/meta/v2/data/*")  # noqa: E731
        assert (
            deleted("drop_after") > 0
            and deleted("drop_before") > 0
            and deleted("429") > 0
            and deleted("503") > 0
        )
        # a delete whose answer was dropped after it happened counts as deleted (its re-send found 404)
        assert result.values == uuids
        [error] = result.errors
        assert error.index == 600 and getattr(error.exception, "status", None) == 404
        assert stored_by_name(platform) == {}


async def test_update_is_a_full_replacement_re_sent_when_its_answer_is_lost() -> None:
    async with LocalPlatform(seed=4) as platform:
        async with client_for(platform, retry=POLICY) as agave:
            created = await agave.meta.create_many([{"name": f"u{i}", "value": {"v": 0}} for i in range(60)])
            platform.faults.rules = [
                FaultRule(match="POST /agave/meta/v2/data/*", drop_after=0.2, drop_before=0.05)
            ]
            result = await gather(
                lambda m: agave.meta.update_metadata(m.uuid, {"name": m.name, "value": {"v": 1}}),
                created.values,
                concurrency=8,
            )
            platform.faults.rules = []
        assert platform.faults.count("drop_after") > 0 and platform.faults.count("drop_before") > 0
        assert result.ok and all(m.value == {"v": 1} for m in result.values)
        values = platform.store.run_sync(
            lambda conn: conn.execute("SELECT value FROM agave_meta_data").fetchall()
        )
        assert len(values) == 60 and {r["value"] for r in values} == {json.dumps({"v": 1})}
