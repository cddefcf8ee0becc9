"""A grant is safe to re-send (setting it twice leaves what setting it once does), so
every resource's grant is retried when its answer was lost: under ``drop_after`` (the
server committed, the answer never came) the grant is sent twice and lands once."""

from __future__ import annotations

from typing import Any

from aioplatform import RetryPolicy
from aioplatform.testing import LocalPlatform
from aioplatform.testing.agave.defaults import DEFAULT_STORAGE_SYSTEM, SEEDED_APP

from .conftest import client_for
from .test_jobs import request

POLICY = RetryPolicy(max_attempts=3, backoff_base=0.01, backoff_cap=0.02)


def rows(platform: LocalPlatform, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in platform.store.run_sync(lambda conn: conn.execute(sql, args).fetchall())]


async def test_a_grant_whose_answer_was_lost_is_re_sent_and_lands_once(platform: LocalPlatform) -> None:
    async with client_for(platform, retry=POLICY) as agave:
        job = await agave.jobs.submit(request("grants"))
        uploaded = await agave.files.upload(DEFAULT_STORAGE_SYSTEM, "", b"x", file_name="granted.txt")
        calls = [
            (f"/agave/jobs/v2/{job.id}/pems", lambda: agave.jobs.update_permissions(job.id, "bob", "READ")),
            (
                f"/agave/jobs/v2/{job.id}/pems/carol",
                lambda: agave.jobs.update_permissions_for_user(job.id, "carol", "READ_WRITE"),
            ),
            (
                f"/agave/apps/v2/{SEEDED_APP}/pems",
                lambda: agave.apps.update_application_permissions(SEEDED_APP, "bob", "READ"),
            ),
            (
                f"/agave/systems/v2/{DEFAULT_STORAGE_SYSTEM}/roles",
                lambda: agave.systems.update_role(DEFAULT_STORAGE_SYSTEM, "bob", "USER"),
            ),
            (
                f"/agave/files/v2/pems/system/{DEFAULT_STORAGE_SYSTEM}/granted.txt",
                lambda: agave.files.update_permissions(DEFAULT_STORAGE_SYSTEM, "granted.txt", "bob", "READ"),
            ),
        ]
        for path, call in calls:
            platform.faults.script(f"POST {path}", ["drop_after"])
            assert await call() is not None, path
            assert platform.stats.count("POST", path) == 2, path
        assert uploaded.name == "granted.txt"

    jobs_pems = "SELECT username, read, write FROM agave_jobs_pems WHERE job_id = ? ORDER BY username"
    assert rows(platform, jobs_pems, job.id) == [("bob", 1, 0), ("carol", 1, 1)]
    assert rows(
        platform, "SELECT read FROM agave_apps_pems WHERE app_id = ? AND username = 'bob'", SEEDED_APP
    ) == [(1,)]
    assert rows(
        platform,
        "SELECT role FROM agave_systems_roles WHERE system_id = ? AND username = 'bob'",
        DEFAULT_STORAGE_SYSTEM,
    ) == [("USER",)]
    assert rows(
        platform,
        "SELECT path, read FROM agave_files_pems WHERE system_id = ? AND username = 'bob'",
        DEFAULT_STORAGE_SYSTEM,
    ) == [("granted.txt", 1)]
