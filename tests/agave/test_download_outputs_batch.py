"""``jobs.download_outputs`` takes the batch options of ``gather``: ``on_outcome`` hears each
file once, a ``breaker`` stops the downloads when the credentials are rejected (the files
not started are reported ``NotAttempted``, none is lost), and a wrong type is a TypeError
naming the argument, raised before any request."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from aioplatform import Breaker, NotAttempted, ServerError
from aioplatform.agave import AgaveClient
from aioplatform.agave.errors import AuthenticationError
from aioplatform.testing import LocalPlatform
from aioplatform.testing.agave.defaults import DEFAULT_STORAGE_SYSTEM, SEEDED_APP

from .conftest import client_for

EXTRA = 12  # files added to the job's three outputs


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def finished_job_with_outputs(platform: LocalPlatform, agave: AgaveClient) -> str:
    platform.agave.job_step_seconds = 0.005
    job = await agave.jobs.submit({
        "name": "many outputs", "appId": SEEDED_APP,
        "inputs": {"query1": f"agave://{DEFAULT_STORAGE_SYSTEM}/data/many.txt"},
        "parameters": {"printLongestLine": True},
    })  # fmt: skip
    waited = await agave.jobs.wait_many([job.id], poll_interval=0.02, deadline=30)
    assert waited.ok
    done = await agave.jobs.get(job.id)
    assert done.output_path
    for i in range(EXTRA):
        await agave.files.upload(
            DEFAULT_STORAGE_SYSTEM, done.output_path, f"part {i}\n".encode(), file_name=f"part-{i:02d}.txt"
        )
    return job.id


async def test_the_breaker_stops_the_downloads_and_every_file_has_one_outcome(
    platform: LocalPlatform, agave: AgaveClient, tmp_path: Path
) -> None:
    job_id = await finished_job_with_outputs(platform, agave)
    access, _ = await platform.agave.issue_token()
    heard: list[tuple[int, Any, Any]] = []
    progress: list[int] = []

    async def on_outcome(index: int, item: Any, outcome: Any) -> None:
        heard.append((index, item, outcome))
        if len(heard) == 1:  # the credentials are revoked after the first download
            await platform.agave.expire_token(access)

    async with client_for(platform, token=access, refresh_token=None, api_key=None, api_secret=None) as c:
        result = await c.jobs.download_outputs(
            job_id, tmp_path, concurrency=1, breaker=Breaker(3), on_outcome=on_outcome,
            on_progress=lambda done, total, outcome: progress.append(done),
        )  # fmt: skip

    total = EXTRA + 3
    assert len(result) == total and len(result.items) == total
    assert all(isinstance(item, str) for item in result.items)
    assert isinstance(result[0], Path) and result[0].is_file()
    assert all(isinstance(result[i], AuthenticationError) for i in (1, 2, 3))
    assert all(isinstance(result[i], NotAttempted) for i in range(4, total))
    assert result.not_attempted == total - 4
    assert all(result[i].cause is result[3] for i in range(4, total))  # type: ignore[union-attr]
    assert result.stopped is not None and "3 consecutive rejections of the credentials" in result.stopped
    # on_outcome heard every file exactly once, with the input as given and its final outcome
    assert sorted(i for i, _, _ in heard) == list(range(total))
    assert all(item == result.items[i] and outcome is result[i] for i, item, outcome in heard)
    assert progress == list(range(1, total + 1))
    # only the first file reached the disk; the three rejected ones were sent, no more
    assert await asyncio.to_thread(files_under, tmp_path) == [result[0]]
    assert platform.stats.count("GET", "/agave/jobs/v2/*/outputs/media/*") == 4


async def test_without_a_breaker_every_download_is_tried(
    platform: LocalPlatform, agave: AgaveClient, tmp_path: Path
) -> None:
    job_id = await finished_job_with_outputs(platform, agave)
    heard: list[int] = []
    result = await agave.jobs.download_outputs(
        job_id, tmp_path, concurrency=4, on_outcome=lambda i, item, outcome: heard.append(i)
    )
    assert result.ok and len(result) == EXTRA + 3 and result.stopped is None
    assert sorted(heard) == list(range(EXTRA + 3))
    assert sorted(p.name for p in result.values if isinstance(p, Path)) == sorted(
        Path(item).name for item in result.items
    )


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"breaker": 20}, "breaker"),
        ({"breaker": "Breaker(3)"}, "breaker"),
        ({"on_outcome": "print"}, "on_outcome"),
        ({"on_progress": 1}, "on_progress"),
        ({"concurrency": "8"}, "concurrency"),
    ],
)
async def test_a_wrong_type_is_a_type_error_before_any_request(
    platform: LocalPlatform, agave: AgaveClient, tmp_path: Path, options: dict[str, Any], named: str
) -> None:
    before = platform.stats.count()
    with pytest.raises(TypeError, match=named):
        await agave.jobs.download_outputs("job-1", tmp_path, **options)
    assert platform.stats.count() == before


async def test_fail_fast_stops_at_the_first_failed_download(
    platform: LocalPlatform, agave: AgaveClient, tmp_path: Path
) -> None:
    job_id = await finished_job_with_outputs(platform, agave)
    heard: list[int] = []
    platform.faults.script("GET /agave/jobs/v2/*/outputs/media/*", ["ok", 500])  # a 500 is not retried
    result = await agave.jobs.download_outputs(
        job_id, tmp_path, concurrency=1, fail_fast=True, on_outcome=lambda i, item, outcome: heard.append(i)
    )
    total = EXTRA + 3
    assert len(result) == total and isinstance(result[0], Path)
    assert isinstance(result[1], ServerError) and result[1].status == 500
    assert all(isinstance(result[i], NotAttempted) for i in range(2, total))
    assert result.stopped is not None and "fail_fast" in result.stopped
    assert sorted(heard) == list(range(total))
    assert await asyncio.to_thread(files_under, tmp_path) == [result[0]]


async def test_a_wrong_fail_fast_is_a_type_error_before_any_request(
    platform: LocalPlatform, agave: AgaveClient, tmp_path: Path
) -> None:
    before = platform.stats.count()
    with pytest.raises(TypeError, match="fail_fast"):
        await agave.jobs.download_outputs("job-1", tmp_path, fail_fast="yes")  # type: ignore[arg-type]
    assert platform.stats.count() == before
