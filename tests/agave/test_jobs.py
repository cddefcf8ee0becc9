"""Agave jobs: every operation against the embedded platform, the status machine, search and outputs."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import itertools
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aioplatform import BadRequest, Forbidden, NotFound
from aioplatform.agave import AgaveClient
from aioplatform.agave.errors import JobWaitTimeout
from aioplatform.agave.models import Job, JobSummary, structure
from aioplatform.testing import LocalPlatform
from aioplatform.testing.agave.apps import WC_APP
from aioplatform.testing.agave.defaults import DEFAULT_STORAGE_SYSTEM, SEEDED_APP

from .conftest import client_for

ARCHIVE_TIMELINE = [
    "PENDING", "PROCESSING_INPUTS", "STAGING_INPUTS", "STAGED", "STAGING_JOB", "SUBMITTING",
    "QUEUED", "RUNNING", "CLEANING_UP", "ARCHIVING", "ARCHIVING_FINISHED", "FINISHED",
]  # fmt: skip


def request(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "appId": SEEDED_APP,
        "inputs": {"query1": f"agave://{DEFAULT_STORAGE_SYSTEM}/data/{name}.txt"},
        "parameters": {"printLongestLine": True},
        **extra,
    }


def stored(platform: LocalPlatform, sql: str, *args: Any) -> list[sqlite3.Row]:
    return platform.store.run_sync(lambda conn: conn.execute(sql, args).fetchall())


def fast(platform: LocalPlatform, seconds: float = 0.005) -> None:
    platform.agave.job_step_seconds = seconds


def frozen(platform: LocalPlatform) -> None:
    platform.agave.job_step_seconds = 10_000.0


# -- submit, get, status, history ---------------------------------------------------------------


async def test_submit_answers_201_pending_with_the_app_filled_in(platform: LocalPlatform) -> None:
    frozen(platform)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            platform.agave_url + "/jobs/v2/",
            json=request("raw"),
            headers={"Authorization": f"Bearer {platform.agave.access_token}"},
        ) as response,
    ):
        assert response.status == 201
        body = await response.json()
    job = body["result"]
    assert body["version"] == "2.2.22-r7deb380"
    assert job["status"] == "PENDING" and job["executionSystem"] == "agave-exec"
    assert job["inputs"] == {"query1": [f"agave://{DEFAULT_STORAGE_SYSTEM}/data/raw.txt"]}
    assert job["parameters"] == {"printLongestLine": True}
    assert job["batchQueue"] == "normal" and job["maxRunTime"] == "00:10:00"
    assert job["_links"]["self"]["href"] == f"{platform.agave_url}/jobs/v2/{job['id']}"
    assert job["id"].endswith("-007")


async def test_submit_get_and_the_job_model(platform: LocalPlatform, agave: AgaveClient) -> None:
    frozen(platform)
    notifications = [{"url": "https://example.org/hook?id=${JOB_ID}", "event": "*", "persistent": True}]
    job = await agave.jobs.submit(request("model", nodeCount=2, notifications=notifications))
    assert isinstance(job, Job) and job.status == "PENDING" and not job.finished
    assert job.name == "model" and job.app_id == SEEDED_APP and job.owner == platform.agave.username
    assert job.node_count == 2 and job.archive is True and job.archive_system == DEFAULT_STORAGE_SYSTEM
    assert job.notifications == notifications  # stored (firing them is part 2)
    again = await agave.jobs.get(job.id)
    assert again.id == job.id and again.created == job.created and again["workPath"]
    rows = stored(platform, "SELECT name, status, owner FROM agave_jobs_jobs WHERE id = ?", job.id)
    assert [tuple(r) for r in rows] == [("model", "PENDING", platform.agave.username)]


async def test_submit_is_refused_for_unknown_apps_inputs_parameters_and_bad_values(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    with pytest.raises(BadRequest, match="No app found"):
        await agave.jobs.submit({"name": "x", "appId": "nope-1.0"})
    with pytest.raises(BadRequest, match="Invalid input 'other'"):
        await agave.jobs.submit(request("x", inputs={"other": "a"}))
    with pytest.raises(BadRequest, match="Invalid parameter 'nope'"):
        await agave.jobs.submit(request("x", parameters={"nope": 1}))
    with pytest.raises(BadRequest, match="must be a boolean"):
        await agave.jobs.submit(request("x", parameters={"printLongestLine": "maybe"}))
    with pytest.raises(BadRequest, match="maxRunTime"):
        await agave.jobs.submit(request("x", maxRunTime="ten minutes"))
    with pytest.raises(BadRequest, match="No storage system"):
        await agave.jobs.submit(request("x", archiveSystem="agave-exec"))
    assert stored(platform, "SELECT COUNT(*) FROM agave_jobs_jobs")[0][0] == 0


async def test_a_required_input_without_default_must_be_given(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    app = copy.deepcopy(WC_APP)
    app["name"], app["version"] = "wcstrict", "1.0"
    app["inputs"][0]["value"] = {"default": "", "required": True, "visible": True}
    created = await agave.apps.add(app)
    with pytest.raises(BadRequest, match="No input specified for query1"):
        await agave.jobs.submit({"name": "strict", "appId": created.id})
    job = await agave.jobs.submit({"name": "strict", "appId": created.id, "inputs": {"query1": ["a", "b"]}})
    assert job.inputs == {"query1": ["a", "b"]} and job.execution_system == "agave-exec"


async def test_bad_arguments_fail_before_any_request(platform: LocalPlatform, agave: AgaveClient) -> None:
    before = platform.stats.count(None, "/agave/jobs/*")
    with pytest.raises(ValueError, match="'name'"):
        await agave.jobs.submit({"appId": SEEDED_APP})
    with pytest.raises(TypeError, match="body must be a mapping"):
        await agave.jobs.submit("not a request")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="job_id"):
        await agave.jobs.get("..")
    with pytest.raises(TypeError, match="job_id"):
        await agave.jobs.get_status(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="requests\\[1\\]"):
        await agave.jobs.submit_many([request("a"), {"name": "b"}])
    with pytest.raises(ValueError, match="permission"):
        await agave.jobs.update_permissions("1-007", "bob", "SUPERUSER")
    with pytest.raises(ValueError, match="action"):
        await agave.jobs.manage("1-007", "pause")
    with pytest.raises(ValueError, match="deadline"):
        await agave.jobs.wait_many(["1-007"], deadline=-1)
    with pytest.raises(ValueError, match="max_interval"):
        await agave.jobs.wait_many(["1-007"], poll_interval=5, max_interval=1)
    with pytest.raises(ValueError, match="file_path"):
        await agave.jobs.download_output("1-007", "../secret")
    assert platform.stats.count(None, "/agave/jobs/*") == before


async def test_status_machine_reaches_finished_with_one_history_entry_per_transition(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    fast(platform)
    job = await agave.jobs.submit(request("life"))
    result = await agave.jobs.wait_many([job.id], poll_interval=0.05, max_interval=0.1, deadline=30)
    assert result.ok
    status = result.values[0]
    assert status.status == "FINISHED" and status.finished and set(status.raw) == {"id", "status", "_links"}
    history = await agave.jobs.get_history(job.id).to_list()
    assert [e.status for e in history] == ARCHIVE_TIMELINE
    times = [e.created for e in history]
    assert all(a is not None and b is not None and a <= b for a, b in itertools.pairwise(times))
    assert history[0].created_by == platform.agave.username and history[-1].description
    done = await agave.jobs.get(job.id)
    assert done.start_time is not None and done.end_time is not None and done.submit_time is not None
    assert done.start_time <= done.end_time and done.message == "Job completed successfully."
    # a non-archiving job skips the ARCHIVING steps
    plain = await agave.jobs.submit(request("plain", archive=False))
    await agave.jobs.wait_many([plain.id], poll_interval=0.05, deadline=30)
    statuses = [e.status async for e in agave.jobs.get_history(plain.id)]
    assert statuses[-2:] == ["CLEANING_UP", "FINISHED"] and "ARCHIVING" not in statuses


async def test_a_seeded_share_of_jobs_fails(agave: AgaveClient, platform: LocalPlatform) -> None:
    fast(platform)
    platform.agave.job_failure_rate = 0.5
    made = await agave.jobs.submit_many([request(f"f{i}") for i in range(24)], concurrency=8)
    assert made.ok
    result = await agave.jobs.wait_many([j.id for j in made.values], poll_interval=0.05, deadline=60)
    statuses = [s.status for s in result.values]
    assert len(statuses) == 24 and set(statuses) == {"FINISHED", "FAILED"}
    failed = next(s.id for s in result.values if s.status == "FAILED")
    history = [e.status async for e in agave.jobs.get_history(failed)]
    assert history[-2:] == ["RUNNING", "FAILED"]
    assert (await agave.jobs.get(failed)).failed


# -- stop, resubmit, delete ---------------------------------------------------------------------


async def park(platform: LocalPlatform, job_id: str, status: str) -> None:
    """Hold a job in ``status`` (set-up: the lifecycle stops moving it)."""
    await platform.store.run(
        lambda conn: conn.execute(
            "UPDATE agave_jobs_jobs SET status = ?, next_at = NULL WHERE id = ?", (status, job_id)
        )
    )


async def test_stop_pending_is_stopped_running_is_killed_finished_is_unchanged(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    frozen(platform)
    pending = await agave.jobs.submit(request("pending"))
    stopped = await agave.jobs.stop(pending.id)
    assert stopped.status == "STOPPED" and stopped.message == "Job cancelled by user."
    assert [e.status async for e in agave.jobs.get_history(pending.id)] == ["PENDING", "STOPPED"]

    running = await agave.jobs.submit(request("running"))
    await park(platform, running.id, "RUNNING")
    killed = await agave.jobs.manage(running.id, "stop")
    assert killed.status == "KILLED" and killed.finished and killed.end_time is not None

    fast(platform)
    finished = await agave.jobs.submit(request("finished"))
    await agave.jobs.wait_many([finished.id], poll_interval=0.05, deadline=30)
    before = await agave.jobs.get_history(finished.id).to_list()
    same = await agave.jobs.stop(finished.id)
    assert same.status == "FINISHED"
    assert len(await agave.jobs.get_history(finished.id).to_list()) == len(before)


async def test_resubmit_is_202_and_a_new_pending_job_copying_the_request(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    frozen(platform)
    original = await agave.jobs.submit(request("again", nodeCount=3))
    await agave.jobs.stop(original.id)
    before = platform.stats.count("POST", f"/agave/jobs/v2/{original.id}")
    new = await agave.jobs.manage(original.id, "resubmit")
    assert new.id != original.id and new.status == "PENDING"
    assert (new.name, new.app_id, new.inputs, new.parameters, new.node_count) == (
        original.name, original.app_id, original.inputs, original.parameters, 3,
    )  # fmt: skip
    assert platform.stats.count("POST", f"/agave/jobs/v2/{original.id}") == before + 1
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{platform.agave_url}/jobs/v2/{original.id}",
            json={"action": "resubmit"},
            headers={"Authorization": f"Bearer {platform.agave.access_token}"},
        ) as response,
    ):
        assert response.status == 202
    many = await agave.jobs.resubmit_many([original.id, new.id, "404404-007"])
    assert [type(o).__name__ for o in many.outcomes] == ["Job", "Job", "NotFound"]
    assert len({j.id for j in many.values} | {original.id, new.id}) == 4


async def test_delete_hides_the_job(platform: LocalPlatform, agave: AgaveClient) -> None:
    frozen(platform)
    job = await agave.jobs.submit(request("gone"))
    await agave.jobs.delete(job.id)
    with pytest.raises(NotFound, match="No job found"):
        await agave.jobs.get(job.id)
    with pytest.raises(NotFound):
        await agave.jobs.get_status(job.id)
    assert [j.id async for j in agave.jobs.list()] == []
    assert [
        tuple(r) for r in stored(platform, "SELECT visible FROM agave_jobs_jobs WHERE id = ?", job.id)
    ] == [(0,)]


# -- listings and search ------------------------------------------------------------------------


async def test_pager_walks_20_jobs_in_pages_of_7(platform: LocalPlatform, agave: AgaveClient) -> None:
    frozen(platform)
    made = await agave.jobs.submit_many([request(f"p{i:02d}") for i in range(20)], concurrency=5)
    before = platform.stats.count("GET", "/agave/jobs/v2/")
    listed = [j async for j in agave.jobs.list(limit=7)]
    assert platform.stats.count("GET", "/agave/jobs/v2/") - before == 3  # 7 + 7 + 6
    assert all(isinstance(j, JobSummary) for j in listed)
    assert sorted(j.id for j in listed) == sorted(j.id for j in made.values)
    created = [j.created for j in listed]
    assert all(a is not None and b is not None and a >= b for a, b in itertools.pairwise(created))
    page = await agave.jobs.list(limit=7, offset=14)
    assert len(page) == 6


async def test_search_terms_status_app_name_dates_and_fields(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    fast(platform, 0.001)
    done = await agave.jobs.submit_many([request(f"done-{i}") for i in range(3)])
    await agave.jobs.wait_many([j.id for j in done.values], poll_interval=0.05, deadline=30)
    await asyncio.sleep(0.01)
    between = dt.datetime.now(dt.timezone.utc)
    await asyncio.sleep(0.01)
    frozen(platform)
    late = await agave.jobs.submit_many([request(f"late-{i}", nodeCount=i + 1) for i in range(4)])
    late_ids = {j.id for j in late.values}

    async def names(**kw: Any) -> set[str]:
        return {j.name async for j in agave.jobs.list(**kw)}

    assert await names(search={"status.eq": "FINISHED"}) == {"done-0", "done-1", "done-2"}
    assert await names(status="PENDING") == {f"late-{i}" for i in range(4)}
    assert await names(search={"status.in": ["FINISHED", "FAILED"]}) == {"done-0", "done-1", "done-2"}
    assert len(await names(search={"appId.like": "wc*"})) == 7
    assert await names(search={"appId.like": "nomatch*"}) == set()
    assert await names(search={"name.like": "late-*", "nodeCount.gt": 2}) == {"late-2", "late-3"}
    assert {j.id async for j in agave.jobs.list(search={"created.after": between.isoformat()})} == late_ids
    assert await names(search={"created.before": between.isoformat()}) == {"done-0", "done-1", "done-2"}
    today = between.date().isoformat()
    assert len(await names(search={"created.on": today})) == 7
    assert await names(search={"name.rlike": "^late-[13]$"}) == {"late-1", "late-3"}
    assert await names(search={"endTime.after": "yesterday", "name.nlike": "done-1"}) == {"done-0", "done-2"}
    assert await names(search={"inputs.like": "*late-0.txt*"}) == {"late-0"}
    with pytest.raises(BadRequest, match="date"):
        await agave.jobs.list(search={"created.after": "not a date"}).to_list()
    with pytest.raises(BadRequest, match="regular expression"):
        await agave.jobs.list(search={"name.rlike": "(a)\\1"}).to_list()


async def test_search_route_and_filter_projection(platform: LocalPlatform, agave: AgaveClient) -> None:
    frozen(platform)
    a = await agave.jobs.submit(request("alpha"))
    await agave.jobs.submit(request("beta"))
    found = await agave.jobs.search("name", "alpha").to_list()
    assert [j.id for j in found] == [a.id]
    assert [j.name for j in await agave.jobs.search("name.like", "*eta").to_list()] == ["beta"]
    assert platform.stats.count("GET", "/agave/jobs/v2/search/*") == 2
    slim = await agave.jobs.list(filter=["id", "status"]).to_list()
    assert {tuple(sorted(j.raw)) for j in slim} == {("id", "status")}


async def test_listing_10k_jobs_stays_quick(platform: LocalPlatform, agave: AgaveClient) -> None:
    frozen(platform)
    job = await agave.jobs.submit(request("seed"))

    def copy_many(conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT * FROM agave_jobs_jobs WHERE id = ?", (job.id,)).fetchone()
        values = dict(row)
        del values["seq"]
        rows = []
        for i in range(10_000):
            values.update(
                id=f"{i}-bulk-0001-007", name=f"bulk-{i}", status="FINISHED" if i % 2 else "PENDING"
            )
            rows.append(tuple(values.values()))
        marks = ",".join("?" * len(values))
        conn.executemany(f"INSERT INTO agave_jobs_jobs ({','.join(values)}) VALUES ({marks})", rows)

    await platform.store.run(copy_many)
    loop = asyncio.get_running_loop()
    started = loop.time()
    page = await agave.jobs.list(search={"status.eq": "FINISHED", "name.like": "bulk-9*"}, limit=100)
    indexed = loop.time() - started
    started = loop.time()
    scanned = await agave.jobs.list(search={"nodeCount.eq": 1, "status.eq": "FINISHED"}, limit=100)
    python_side = loop.time() - started
    started = loop.time()
    nothing = await agave.jobs.list(search={"nodeCount.eq": 99}, limit=100)  # a full scan
    full_scan = loop.time() - started
    assert len(nothing) == 0
    assert len(page) == 100 and all(j.status == "FINISHED" for j in page)
    assert len(scanned) == 100
    print(f"indexed {indexed:.3f}s, early stop {python_side:.3f}s, full scan {full_scan:.3f}s")
    assert indexed < 2.0 and python_side < 2.0 and full_scan < 5.0  # generous: a loaded 2-core box


# -- permissions --------------------------------------------------------------------------------


async def test_permissions_grant_read_then_write_and_revoke(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    frozen(platform)
    await platform.agave.add_user("bob", "bob-password")
    access, refresh = await platform.agave.issue_token("bob")
    job = await agave.jobs.submit(request("shared"))
    async with client_for(platform, token=access, refresh_token=refresh) as bob:
        with pytest.raises(NotFound):
            await bob.jobs.get(job.id)
        granted = await agave.jobs.update_permissions(job.id, "bob", "READ")
        assert granted is not None and granted.username == "bob" and granted.read and not granted.write
        assert (await bob.jobs.get(job.id)).id == job.id
        assert [j.id async for j in bob.jobs.list()] == [job.id]
        with pytest.raises(Forbidden):
            await bob.jobs.stop(job.id)
        pems = await agave.jobs.list_permissions(job.id).to_list()
        assert [(p.username, p.read, p.write) for p in pems] == [
            (platform.agave.username, True, True), ("bob", True, False),
        ]  # fmt: skip
        await agave.jobs.update_permissions_for_user(job.id, "bob", "READ_WRITE")
        mine = await agave.jobs.list_permissions_for_user(job.id, "bob")
        assert (mine.read, mine.write) == (True, True)
        assert (await bob.jobs.stop(job.id)).status == "STOPPED"
        await agave.jobs.delete_permissions_for_user(job.id, "bob")
        with pytest.raises(NotFound):
            await bob.jobs.get_status(job.id)
        await agave.jobs.update_permissions(job.id, "bob", "READ")
        assert await agave.jobs.update_permissions(job.id, "bob", "NONE") is None
        await agave.jobs.update_permissions(job.id, "bob", "READ")
        await agave.jobs.delete_permissions(job.id)
        assert [p.username async for p in agave.jobs.list_permissions(job.id)] == [platform.agave.username]
        nobody = await agave.jobs.list_permissions_for_user(job.id, "carol")
        assert (nobody.read, nobody.write) == (False, False)


# -- outputs ------------------------------------------------------------------------------------


async def test_outputs_are_written_when_the_job_finishes_and_served(
    platform: LocalPlatform, agave: AgaveClient, tmp_path: Path
) -> None:
    fast(platform)
    job = await agave.jobs.submit(request("out job"))
    await agave.jobs.wait_many([job.id], poll_interval=0.05, deadline=30)
    listing = await agave.jobs.list_outputs(job.id).to_list()
    assert listing[0].is_self
    names = sorted(f.name for f in listing[1:])
    stem = f"out-job-{job.id}"
    assert names == sorted([f"{stem}.err", f"{stem}.out", "wc_out.txt"])
    out = await agave.jobs.download_output(job.id, f"{stem}.out")
    assert f"as job {job.id}" in out.decode()
    wc = await agave.jobs.download_output(job.id, "wc_out.txt", tmp_path / "wc.txt")
    assert wc.read_text().startswith("1 2 ") and "out job.txt" in wc.read_text()
    # on the archive system under the job's outputPath, owned by the job's owner
    done = await agave.jobs.get(job.id)
    entries = stored(
        platform, "SELECT path, owner FROM agave_files_entries WHERE system_id = ? AND path LIKE ?",
        DEFAULT_STORAGE_SYSTEM, f"{done.output_path}/%",
    )  # fmt: skip
    assert {r["path"].rsplit("/", 1)[1] for r in entries} >= set(names)
    assert {r["owner"] for r in entries} == {platform.agave.username}

    got = await agave.jobs.download_outputs(job.id, tmp_path / "all", exclude="*.err")
    assert got.ok and sorted(p.name for p in got.values) == sorted([f"{stem}.out", "wc_out.txt"])
    assert (tmp_path / "all" / "wc_out.txt").read_text() == wc.read_text()
    only = await agave.jobs.download_outputs(job.id, tmp_path / "some", include=["*.out", "*.err"])
    assert sorted(p.name for p in only.values) == sorted([f"{stem}.out", f"{stem}.err"])
    assert not list((tmp_path / "some").glob("*.part"))
    with pytest.raises(NotFound):
        await agave.jobs.download_output(job.id, "missing.txt")


async def test_outputs_of_a_job_still_pending_are_not_found(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    frozen(platform)
    job = await agave.jobs.submit(request("early"))
    with pytest.raises(NotFound):
        await agave.jobs.list_outputs(job.id).to_list()


# -- models -------------------------------------------------------------------------------------


def test_the_aloe_schema_parses_onto_the_same_attributes() -> None:
    aloe = {
        "id": "1-007", "name": "n", "owner": "o", "appId": "wc-1.00", "systemId": "exec",
        "status": "FINISHED", "created": "2019-01-02T03:04:05.000-06:00",
        "remoteSubmitted": "2019-01-02T03:05:00.000-06:00", "started": "2019-01-02T03:06:00.000-06:00",
        "ended": "2019-01-02T03:07:00.000-06:00", "lastStatusMessage": "done", "remoteJobId": "42",
        "maxHours": 0.5, "remoteOutcome": "FINISHED", "tenantId": "tacc",
    }  # fmt: skip
    job = structure(aloe, Job)
    assert (job.execution_system, job.message, job.local_id, job.max_run_time) == (
        "exec",
        "done",
        "42",
        "00:30:00",
    )
    assert job.start_time is not None and job.end_time is not None and job.submit_time is not None
    assert job.end_time - job.start_time == dt.timedelta(minutes=1)
    assert job["remoteOutcome"] == "FINISHED" and job.finished
    summary = structure(
        {"id": "1", "systemId": "exec", "started": 1546419960000, "status": "RUNNING"}, JobSummary
    )
    assert summary.execution_system == "exec" and summary.start_time is not None and not summary.finished


async def test_wait_many_gives_typed_timeouts_for_jobs_that_never_finish(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    frozen(platform)
    stuck = await agave.jobs.submit(request("stuck"))
    fast(platform)
    quick = await agave.jobs.submit(request("quick"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await agave.jobs.wait_many([stuck.id, quick.id, stuck.id], poll_interval=0.05, deadline=1.0)
    assert loop.time() - started < 5
    first, second, third = result.outcomes
    assert isinstance(first, JobWaitTimeout) and first.job_id == stuck.id and first.status == "PENDING"
    assert third is first and not isinstance(second, BaseException) and second.status == "FINISHED"
    assert [e.index for e in result.errors] == [0, 2]


async def test_iter_output_streams_a_large_output_in_chunks(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    fast(platform)
    job = await agave.jobs.submit(request("big"))
    await agave.jobs.wait_many([job.id], poll_interval=0.05, deadline=30)
    done = await agave.jobs.get(job.id)
    assert done.output_path is not None
    data = bytes(range(256)) * 8192  # 2 MiB
    await agave.files.upload(DEFAULT_STORAGE_SYSTEM, done.output_path, data, file_name="big.bin")
    chunks = [chunk async for chunk in agave.jobs.iter_output(job.id, "big.bin")]
    assert len(chunks) > 1 and max(len(c) for c in chunks) <= 256 * 1024
    assert b"".join(chunks) == data


async def test_wait_many_backs_off_between_polls_and_honours_until(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    frozen(platform)
    job = await agave.jobs.submit(request("slow"))
    before = platform.stats.count("GET", f"/agave/jobs/v2/{job.id}/status")
    result = await agave.jobs.wait_many([job.id], poll_interval=0.05, max_interval=0.2, deadline=1.2)
    polls = platform.stats.count("GET", f"/agave/jobs/v2/{job.id}/status") - before
    assert isinstance(result[0], JobWaitTimeout)
    assert 3 <= polls <= 14  # a fixed 50 ms interval would poll ~24 times
    pending = await agave.jobs.wait_many([job.id], until=["PENDING"], deadline=5)
    assert pending.ok and pending.values[0].status == "PENDING"
