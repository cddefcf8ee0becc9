"""Agave notifications: CRUD, and the embedded service firing them at a local receiver.

The receiver is a purpose-built aiohttp server on loopback; the platform POSTs to it on
its own (nobody polls the jobs), with Agave's URL macros expanded.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aioplatform import BadRequest, NotFound
from aioplatform.agave import AgaveClient
from aioplatform.agave.models import NotificationPolicy
from aioplatform.testing import LocalPlatform
from aioplatform.testing.agave.defaults import DEFAULT_STORAGE_SYSTEM, SEEDED_APP
from aioplatform.testing.agave.notifications import notifier_of

from .conftest import client_for

TERMINAL = {"FINISHED", "FAILED", "STOPPED", "KILLED"}


def request(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "appId": SEEDED_APP,
        "inputs": {"query1": f"agave://{DEFAULT_STORAGE_SYSTEM}/data/{name}.txt"},
        **extra,
    }


def stored(platform: LocalPlatform, sql: str, *args: Any) -> list[sqlite3.Row]:
    return platform.store.run_sync(lambda conn: conn.execute(sql, args).fetchall())


class Receiver:
    """A loopback webhook receiver: records every call; ``fail`` answers 500 to the first
    N calls for a (job, status); ``delay`` holds each answer that long."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail: dict[tuple[str, str], int] = {}
        self.fail_all = False
        self.delay = 0.0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        call = {"path": request.path, "query": dict(request.query), "body": body, "at": time.time()}
        self.calls.append(call)
        if self.delay:
            await asyncio.sleep(self.delay)
        key = (str(body.get("id")), str(body.get("status")))
        if self.fail_all or self.fail.get(key, 0) > 0:
            self.fail[key] = self.fail.get(key, 0) - 1
            return web.Response(status=500, text="receiver failed")
        return web.Response(text="ok")

    def events(self) -> list[tuple[str, str]]:
        return [(c["query"]["job"], c["query"]["status"]) for c in self.calls]

    async def until(self, done: Any, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"receiver got {len(self.calls)} calls, not what was awaited"
            await asyncio.sleep(0.01)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    hook.url = f"http://127.0.0.1:{port}/hook?job=${{JOB_ID}}&status=${{STATUS}}"
    yield hook
    await runner.cleanup()


def history(platform: LocalPlatform, job_id: str) -> list[str]:
    rows = stored(platform, "SELECT status FROM agave_jobs_history WHERE job_id = ? ORDER BY seq", job_id)
    return [r["status"] for r in rows]


# -- CRUD ------------------------------------------------------------------------------------------


async def test_add_answers_201_and_get_list_update_delete_match_the_store(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    platform.agave.job_step_seconds = 10_000.0
    job = await agave.jobs.submit(request("crud"))
    body = {"associatedUuid": job.id, "event": "FINISHED", "url": "http://127.0.0.1:9/x", "persistent": True}
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {platform.agave.access_token}"}
        async with http.post(
            f"{platform.agave_url}/notifications/v2/", json=body, headers=headers
        ) as response:
            assert response.status == 201
            raw = (await response.json())["result"]
    assert raw["id"].endswith("-011") and raw["uuid"] == raw["id"]
    created = await agave.notifications.create(job.id, "ops@example.org", event="failed")
    assert created.event == "FAILED" and created.persistent is False and created.status == "ACTIVE"
    assert created.policy == NotificationPolicy()  # the default policy
    rows = stored(platform, "SELECT id, owner, event FROM agave_notifications ORDER BY seq")
    assert [(r["id"], r["owner"], r["event"]) for r in rows] == [
        (raw["id"], platform.agave.username, "FINISHED"),
        (created.id, platform.agave.username, "FAILED"),
    ]
    got = await agave.notifications.get(raw["id"])
    assert (got.associated_uuid, got.url, got.persistent, got.attempts) == (job.id, body["url"], True, 0)
    assert got.uuid == raw["id"] and got["_links"]["job"]["href"].endswith(f"/jobs/v2/{job.id}")
    listed = [n.id async for n in agave.notifications.list(job.id)]
    assert listed == [created.id, raw["id"]]  # newest first
    assert [n.id async for n in agave.notifications.list(search={"event.eq": "FINISHED"})] == [raw["id"]]
    assert [n.id async for n in agave.notifications.list("0000-none-0001-007")] == []
    updated = await agave.notifications.update(
        raw["id"], {"event": "*", "policy": {"retryStrategy": "IMMEDIATE", "retryLimit": 2}}
    )
    assert updated.event == "*" and updated.url == body["url"] and updated.policy is not None
    assert (updated.policy.retry_strategy, updated.policy.retry_limit) == ("IMMEDIATE", 2)
    await agave.notifications.delete(raw["id"])
    with pytest.raises(NotFound):
        await agave.notifications.get(raw["id"])
    assert [r["id"] for r in stored(platform, "SELECT id FROM agave_notifications")] == [created.id]


async def test_add_refuses_what_the_server_requires(platform: LocalPlatform, agave: AgaveClient) -> None:
    platform.agave.job_step_seconds = 10_000.0
    job = await agave.jobs.submit(request("bad"))
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {platform.agave.access_token}"}
        url = f"{platform.agave_url}/notifications/v2/"
        for body, words in [
            ({"associatedUuid": job.id, "url": "http://127.0.0.1/x"}, "event"),
            ({"associatedUuid": job.id, "url": "ftp://host/x", "event": "*"}, "url"),
            ({"associatedUuid": job.id, "url": "not an address", "event": "*"}, "url"),
            ({"url": "http://127.0.0.1/x", "event": "*"}, "associatedUuid"),
            ({"associatedUuid": "1-ab-0001-007", "url": "http://127.0.0.1/x", "event": "*"}, "No resource"),
            ({"associatedUuid": job.id, "url": "http://127.0.0.1/x", "event": "*",
              "policy": {"retryStrategy": "SOMETIMES"}}, "retryStrategy"),
        ]:  # fmt: skip
            async with http.post(url, json=body, headers=headers) as response:
                assert response.status == 400, body
                assert words in (await response.json())["message"]
    assert stored(platform, "SELECT * FROM agave_notifications") == []


async def test_another_users_notification_is_not_found(platform: LocalPlatform, agave: AgaveClient) -> None:
    platform.agave.job_step_seconds = 10_000.0
    job = await agave.jobs.submit(request("mine"))
    mine = await agave.notifications.create(job.id, "me@example.org")
    await platform.agave.add_user("bob", "bob-password")
    access, refresh = await platform.agave.issue_token("bob")
    async with client_for(platform, token=access, refresh_token=refresh) as bob:
        with pytest.raises(NotFound):
            await bob.notifications.get(mine.id)
        with pytest.raises(NotFound):
            await bob.notifications.delete(mine.id)
        assert await bob.notifications.list().to_list() == []
        with pytest.raises(BadRequest):  # bob cannot watch a job he cannot see
            await bob.notifications.create(job.id, "bob@example.org")
    assert len(stored(platform, "SELECT * FROM agave_notifications")) == 1


async def test_bad_arguments_fail_before_any_request(agave: AgaveClient) -> None:
    with pytest.raises(ValueError, match="uuid"):
        await agave.notifications.get("..")
    with pytest.raises(TypeError, match="uuid"):
        await agave.notifications.delete(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="event"):
        await agave.notifications.create("x-007", "http://127.0.0.1/", event=" ")
    with pytest.raises(TypeError, match="persistent"):
        await agave.notifications.create("x-007", "http://127.0.0.1/", persistent="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retryStrategy"):
        await agave.notifications.create("x-007", "http://127.0.0.1/", policy={"retryStrategy": "OFTEN"})
    with pytest.raises(TypeError, match="body"):
        await agave.notifications.add(["url"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="associated_uuid"):
        agave.notifications.list(7)  # type: ignore[arg-type]


# -- firing ----------------------------------------------------------------------------------------


async def test_every_transition_of_100_jobs_reaches_the_receiver_exactly_once(
    platform: LocalPlatform, agave: AgaveClient, receiver: Receiver
) -> None:
    platform.agave.job_step_seconds = 0.02
    platform.agave.job_failure_rate = 0.2
    hook = [{"url": receiver.url, "event": "*", "persistent": True}]
    submitted = await agave.jobs.submit_many([request(f"sweep-{i}", notifications=hook) for i in range(100)])
    ids = {job.id for job in submitted.values}
    assert len(ids) == 100
    # Nobody reads the jobs: the platform moves them on and fires on its own.
    await receiver.until(lambda: {j for j, s in receiver.events() if s in TERMINAL} == ids)
    await notifier_of(platform.agave).idle()
    counts = collections.Counter(receiver.events())
    assert max(counts.values()) == 1  # exactly once per event
    for job_id in ids:
        statuses = history(platform, job_id)
        assert statuses[-1] in ("FINISHED", "FAILED")
        assert {s for j, s in counts if j == job_id} == set(statuses)
    assert len(receiver.calls) == sum(len(history(platform, j)) for j in ids)
    # The body is the job's JSON at that event; the macros named the same job and status.
    for call in receiver.calls:
        assert call["body"]["id"] == call["query"]["job"]
        assert call["body"]["status"] == call["query"]["status"]
    # Each job request's notification became one subscription on its job, with every attempt.
    subs = stored(platform, "SELECT associated_uuid, attempts, success FROM agave_notifications")
    assert {r["associated_uuid"] for r in subs} == ids and len(subs) == 100
    assert all(r["success"] == 1 for r in subs)
    assert sum(r["attempts"] for r in subs) == len(receiver.calls)


async def test_url_macros_are_expanded_with_the_jobs_values(
    platform: LocalPlatform, agave: AgaveClient, receiver: Receiver
) -> None:
    platform.agave.job_step_seconds = 0.01
    platform.agave.job_failure_rate = 1.0
    macros = ["UUID", "JOB_ID", "JOB_NAME", "EVENT", "STATUS", "LAST_UPDATED", "OWNER", "APP_ID",
              "EXECUTION_SYSTEM", "QUEUE", "ARCHIVE_PATH", "ARCHIVE_SYSTEM", "JOB_ERROR",
              "NOT_A_MACRO"]  # fmt: skip
    url = receiver.url + "".join(f"&{m.lower()}=${{{m}}}" for m in macros)
    job = await agave.jobs.submit(
        request("macro run", notifications=[{"url": url, "event": "FAILED", "persistent": False}])
    )
    await receiver.until(lambda: len(receiver.calls) == 1)
    await notifier_of(platform.agave).idle()
    assert len(receiver.calls) == 1  # only the FAILED event, once
    query = receiver.calls[0]["query"]
    full = await agave.jobs.get(job.id)
    failed_at = stored(
        platform, "SELECT created FROM agave_jobs_history WHERE job_id = ? AND status = 'FAILED'", job.id
    )[0]["created"]
    assert query["uuid"] == query["job_id"] == job.id
    assert query["job_name"] == "macro run"  # percent-encoded on the way, decoded by the receiver
    assert query["event"] == query["status"] == "FAILED"
    assert query["owner"] == platform.agave.username and query["app_id"] == SEEDED_APP
    assert query["execution_system"] == full.execution_system and query["queue"] == full["batchQueue"]
    assert query["archive_path"] == full["archivePath"] and query["archive_system"] == full["archiveSystem"]
    assert query["job_error"] == full["message"] and "failed" in query["job_error"].lower()
    assert abs(dt.datetime.fromisoformat(query["last_updated"]).timestamp() - failed_at) < 0.002
    assert query["not_a_macro"] == "${NOT_A_MACRO}"


async def test_a_non_persistent_subscription_fires_once_a_persistent_one_every_time(
    platform: LocalPlatform, agave: AgaveClient, receiver: Receiver
) -> None:
    platform.agave.job_step_seconds = 0.01
    hooks = [
        {"url": receiver.url + "&who=once", "event": "*"},
        {"url": receiver.url + "&who=always", "event": "*", "persistent": True},
        {"url": receiver.url + "&who=running", "event": "RUNNING", "persistent": False},
    ]
    job = await agave.jobs.submit(request("persist", notifications=hooks))
    await receiver.until(lambda: any(c["query"]["status"] == "FINISHED" for c in receiver.calls))
    await notifier_of(platform.agave).idle()
    once, always, running = stored(platform, "SELECT id FROM agave_notifications ORDER BY seq")
    by_who = collections.defaultdict(list)
    for call in receiver.calls:
        by_who[call["query"]["who"]].append(call["query"]["status"])
    steps = history(platform, job.id)
    assert by_who["once"] == ["PENDING"]
    assert sorted(by_who["always"]) == sorted(steps)
    assert by_who["running"] == ["RUNNING"]
    assert (await agave.notifications.get(once["id"])).status == "COMPLETE"
    assert (await agave.notifications.get(always["id"])).status == "ACTIVE"
    assert (await agave.notifications.get(running["id"])).attempts == 1


async def test_a_stop_fires_its_event(
    platform: LocalPlatform, agave: AgaveClient, receiver: Receiver
) -> None:
    platform.agave.job_step_seconds = 10_000.0
    job = await agave.jobs.submit(request("stopped"))
    await agave.notifications.create(job.id, receiver.url, event="STOPPED")
    await agave.jobs.stop(job.id)
    await receiver.until(lambda: len(receiver.calls) == 1)
    assert receiver.events() == [(job.id, "STOPPED")]


async def test_a_failed_delivery_is_retried_and_every_attempt_recorded(
    platform: LocalPlatform, agave: AgaveClient, receiver: Receiver
) -> None:
    platform.agave.job_step_seconds = 10_000.0
    job = await agave.jobs.submit(request("retry"))
    policy = NotificationPolicy(retry_strategy="DELAYED", retry_limit=3, retry_rate=0)
    sub = await agave.notifications.create(job.id, receiver.url, event="STOPPED", policy=policy)
    receiver.fail[(job.id, "STOPPED")] = 1  # the first attempt fails
    await agave.jobs.stop(job.id)
    await receiver.until(lambda: len(receiver.calls) == 2)
    await notifier_of(platform.agave).idle()
    assert receiver.events() == [(job.id, "STOPPED")] * 2
    attempts = await agave.notifications.list_attempts(sub.id).to_list()
    assert [(a.attempt_number, a.response_code, a.success) for a in attempts] == [
        (1, 500, False),
        (2, 200, True),
    ]
    assert all(a.event == "STOPPED" and a.associated_uuid == job.id for a in attempts)
    assert (await agave.notifications.get_attempt(sub.id, attempts[0].id)).response_code == 500
    got = await agave.notifications.get(sub.id)
    assert (got.attempts, got.response_code, got.success, got.status) == (2, 200, True, "COMPLETE")
    assert got.last_sent is not None


async def test_retries_stop_at_the_limit_and_a_non_persistent_subscription_fails(
    platform: LocalPlatform, agave: AgaveClient, receiver: Receiver
) -> None:
    platform.agave.job_step_seconds = 10_000.0
    receiver.fail_all = True
    jobs = [await agave.jobs.submit(request(f"limit-{i}")) for i in range(2)]
    limited = await agave.notifications.create(
        jobs[0].id, receiver.url, event="STOPPED", policy={"retryStrategy": "IMMEDIATE", "retryLimit": 2}
    )
    none = await agave.notifications.create(
        jobs[1].id, receiver.url, event="STOPPED", policy={"retryStrategy": "NONE", "retryLimit": 5}
    )
    await agave.jobs.stop_many([j.id for j in jobs])
    await receiver.until(lambda: len(receiver.calls) == 4)
    await notifier_of(platform.agave).idle()
    assert collections.Counter(receiver.events()) == {(jobs[0].id, "STOPPED"): 3, (jobs[1].id, "STOPPED"): 1}
    for sub, count in ((limited, 3), (none, 1)):
        got = await agave.notifications.get(sub.id)
        assert (got.attempts, got.success, got.response_code, got.status) == (count, False, 500, "FAILED")


async def test_a_slow_receiver_times_out_without_stalling_the_api(
    platform: LocalPlatform, agave: AgaveClient, receiver: Receiver
) -> None:
    platform.agave.job_step_seconds = 10_000.0
    platform.agave.notification_timeout = 0.2
    receiver.delay = 1.0
    jobs = [await agave.jobs.submit(request(f"slow-{i}")) for i in range(20)]
    subs = [
        await agave.notifications.create(
            j.id, receiver.url, event="STOPPED", policy={"retryStrategy": "NONE"}
        )
        for j in jobs
    ]
    await agave.jobs.stop_many([j.id for j in jobs])
    await receiver.until(lambda: len(receiver.calls) >= 8)  # the workers are busy with the slow receiver
    started = time.monotonic()
    assert (await agave.profiles.get()).username == platform.agave.username
    assert len(await agave.jobs.list().to_list()) == 20
    assert time.monotonic() - started < 0.25
    await notifier_of(platform.agave).idle()
    for sub in subs:
        got = await agave.notifications.get(sub.id)
        assert (got.attempts, got.success, got.response_code) == (1, False, None)
    attempt = (await agave.notifications.list_attempts(subs[0].id).to_list())[0]
    assert "Timeout" in attempt.response["message"]


async def test_webhooks_go_to_loopback_only_unless_remote_is_allowed(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    platform.agave.job_step_seconds = 10_000.0
    job = await agave.jobs.submit(request("ssrf"))
    subs = [
        await agave.notifications.create(job.id, url, event="STOPPED")
        for url in ("http://169.254.169.254/latest/meta-data", "http://example.org/hook", "http://10.0.0.1/")
    ]
    await agave.jobs.stop(job.id)
    await notifier_of(platform.agave).idle()
    for sub in subs:
        got = await agave.notifications.get(sub.id)
        assert (got.attempts, got.success, got.status) == (1, False, "FAILED")
        attempt = (await agave.notifications.list_attempts(sub.id).to_list())[0]
        assert attempt.response_code is None and "not a loopback host" in attempt.response["message"]


async def test_an_idle_platform_stays_idle_and_a_subscription_moves_jobs_without_reads(
    platform: LocalPlatform, agave: AgaveClient, receiver: Receiver
) -> None:
    platform.agave.job_step_seconds = 0.01
    quiet = await agave.jobs.submit(request("quiet"))
    await asyncio.sleep(0.3)
    # Nobody reads and nothing watches: the store still says PENDING (jobs are lazy).
    assert (
        stored(platform, "SELECT status FROM agave_jobs_jobs WHERE id = ?", quiet.id)[0]["status"]
        == "PENDING"
    )
    watched = await agave.jobs.submit(request("watched"))
    await agave.notifications.create(watched.id, receiver.url, event="FINISHED")
    await receiver.until(lambda: len(receiver.calls) == 1)
    assert (
        stored(platform, "SELECT status FROM agave_jobs_jobs WHERE id = ?", watched.id)[0]["status"]
        == "FINISHED"
    )
    # The ticker that moved them has stopped: nothing is watched any more.
    await asyncio.sleep(0.1)
    notifier = notifier_of(platform.agave)
    assert notifier._ticker is None or notifier._ticker.done()


async def test_retry_delay_spaces_the_first_retry_and_an_update_reactivates(
    platform: LocalPlatform, agave: AgaveClient, receiver: Receiver
) -> None:
    platform.agave.job_step_seconds = 10_000.0
    job = await agave.jobs.submit(request("delayed"))
    policy = {"retryStrategy": "IMMEDIATE", "retryLimit": 1, "retryDelay": 1}
    sub = await agave.notifications.create(job.id, receiver.url, event="STOPPED", policy=policy)
    receiver.fail[(job.id, "STOPPED")] = 1
    await agave.jobs.stop(job.id)
    await receiver.until(lambda: len(receiver.calls) == 2)
    assert receiver.calls[1]["at"] - receiver.calls[0]["at"] >= 0.95
    await notifier_of(platform.agave).idle()
    done = await agave.notifications.get(sub.id)
    assert (done.status, done.attempts, done.success) == ("COMPLETE", 2, True)
    again = await agave.notifications.update(sub.id, {"event": "*"})
    assert again.status == "ACTIVE" and again.event == "*"
