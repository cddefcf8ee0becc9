"""Uploads under injected faults (embedded backend): retries re-send whole bodies, nothing lost or doubled."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aioplatform import RetryPolicy, ServerError, TransportError
from aioplatform.flowserv import FileHandle, FlowservClient
from aioplatform.testing import FaultRule, LocalPlatform

from .conftest import PASSWORD, unique

UPLOADS = "POST /flowserv/api/v1/uploads/*/files"
FAST_RETRY = RetryPolicy(max_attempts=6, backoff_base=0.01, backoff_cap=0.1)


async def logged_in_client(platform: LocalPlatform, **options: object) -> FlowservClient:
    client = FlowservClient(platform.flowserv_url, **options)  # type: ignore[arg-type]
    user = await client.users.register(unique(), PASSWORD)
    await client.users.login(user.username, PASSWORD)
    return client


@pytest.mark.local_platform(
    faults=FaultRule(match=UPLOADS, rate_429=0.1, rate_503=0.15, drop_after=0.15, retry_after=0.05),
    seed=11,
)
async def test_upload_many_gives_one_outcome_per_file_under_faults(
    local_platform: LocalPlatform, tmp_path: Path
) -> None:
    sources: list[tuple[bytes, str] | Path] = []
    for i in range(50):
        if i % 2:
            sources.append((f"file {i}\n".encode() * 100, f"f{i:02d}.txt"))
        else:
            path = tmp_path / f"f{i:02d}.txt"
            path.write_bytes(f"file {i}\n".encode() * 100)
            sources.append(path)
    progress: list[int] = []
    # Ten attempts: no upload runs out of retries on 429/503 alone (0.25 ** 10 per upload).
    client = await logged_in_client(local_platform, retry=FAST_RETRY.replace(max_attempts=10))
    async with client:
        group = await client.groups.create(local_platform.flowserv.workflow_id, unique("batch"))
        result = await client.groups.upload_many(
            group.id, sources, concurrency=8, on_progress=lambda done, total, _: progress.append(done)
        )
        stored = await client.groups.list_files(group.id).to_list()
        assert client.session.pool_status()["in_use"] == 0  # no connection left checked out

    assert len(result) == 50 and sorted(progress) == list(range(1, 51))
    for i, outcome in enumerate(result):
        if isinstance(outcome, FileHandle):
            assert outcome.name == f"f{i:02d}.txt" and outcome.size == len(f"file {i}\n") * 100
        else:
            # Only a connection dropped after the server stored the file is not re-sent.
            assert isinstance(outcome, TransportError), outcome
    drops = local_platform.faults.count("drop_after", UPLOADS)
    retried = local_platform.faults.count("429", UPLOADS) + local_platform.faults.count("503", UPLOADS)
    assert drops > 0 and retried > 0  # the faults really happened
    assert len(result.errors) == drops
    # Every success is stored exactly once; every dropped upload is stored once too (never twice).
    stored_ids = [f.id for f in stored]
    assert len(stored_ids) == len(set(stored_ids)) == len(result.values) + drops
    assert {v.id for v in result.values} <= set(stored_ids)


async def test_a_rewindable_upload_is_re_sent_whole_after_503s(
    local_platform: LocalPlatform, tmp_path: Path
) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(bytes(range(256)) * 1000)
    client = await logged_in_client(local_platform, retry=FAST_RETRY)
    async with client:
        group = await client.groups.create(local_platform.flowserv.workflow_id, unique("retry"))
        local_platform.faults.script(UPLOADS, [503, 429])
        handle = await client.groups.upload_file(group.id, source)
        assert local_platform.stats.count("POST", "/flowserv/api/v1/uploads/*") == 3
        assert handle.size == 256_000
        assert await client.groups.download_file(group.id, handle.id) == source.read_bytes()


async def test_a_seekable_file_object_is_rewound_to_where_it_stood(local_platform: LocalPlatform) -> None:
    stream = io.BytesIO(b"header|the payload")
    stream.seek(7)
    client = await logged_in_client(local_platform, retry=FAST_RETRY)
    async with client:
        group = await client.groups.create(local_platform.flowserv.workflow_id, unique("seek"))
        local_platform.faults.script(UPLOADS, [503, 503])
        handle = await client.groups.upload_file(group.id, stream, "payload.txt")
        assert local_platform.stats.count("POST", "/flowserv/api/v1/uploads/*") == 3
        assert await client.groups.download_file(group.id, handle.id) == b"the payload"
        assert handle.size == len(b"the payload")


async def test_a_one_shot_stream_is_never_re_sent(local_platform: LocalPlatform) -> None:
    async def once() -> AsyncIterator[bytes]:
        yield b"only once"

    client = await logged_in_client(local_platform, retry=FAST_RETRY)
    async with client:
        group = await client.groups.create(local_platform.flowserv.workflow_id, unique("once"))
        local_platform.faults.script(UPLOADS, [503])
        with pytest.raises(ServerError) as caught:
            await client.groups.upload_file(group.id, once(), "once.txt")
        assert caught.value.status == 503
        assert local_platform.stats.count("POST", "/flowserv/api/v1/uploads/*") == 1
        assert await client.groups.list_files(group.id).to_list() == []


async def test_reconciled_upload_many_reports_every_stored_file_and_bytes_match(tmp_path: Path) -> None:
    # drop_after: stored, answer lost -> found by name and size; drop_before: never stored -> failure.
    rules = [
        FaultRule(match=UPLOADS, rate_503=0.1, drop_before=0.08, drop_after=0.2, retry_after=0.01),
        FaultRule(match="GET /flowserv/api/v1/uploads/*/files", rate_503=0.5, retry_after=0),
    ]
    sources: list[tuple[bytes, str] | Path] = []
    for i in range(80):
        content = f"row {i}\n".encode() * (i + 1)
        if i % 3 == 0:
            path = tmp_path / f"p{i:02d}.csv"
            path.write_bytes(content)
            sources.append(path)
        else:  # the same name for several items: told apart by size
            sources.append((content, f"same-{i % 4}.txt"))
    async with LocalPlatform(seed=4) as platform:
        client = await logged_in_client(platform, retry=FAST_RETRY.replace(max_attempts=3))
        async with client:
            group = await client.groups.create(platform.flowserv.workflow_id, unique("reconcile"))
            for rule in rules:
                platform.faults.add(rule)
            result = await client.groups.upload_many(group.id, sources, concurrency=8, reconcile=True)
            assert client.session.pool_status()["in_use"] == 0

        assert platform.faults.count("drop_after", UPLOADS) > 5
        assert platform.faults.count("drop_before", UPLOADS) > 0
        assert platform.faults.count("503", "GET *") > 0

        def stored(conn: sqlite3.Connection) -> dict[str, tuple[str, int]]:
            rows = conn.execute("SELECT id, name, size FROM flowserv_files WHERE group_id = ?", (group.id,))
            return {fid: (name, size) for fid, name, size in rows}

        files = platform.store.run_sync(stored)
        handles = result.values
        assert len({h.id for h in handles}) == len(handles)
        assert set(files) == {h.id for h in handles}  # every stored file is some item's outcome
        for index, outcome in enumerate(result.outcomes):
            if isinstance(outcome, BaseException):
                assert isinstance(outcome, TransportError), outcome
                continue
            source = sources[index]
            content = source.read_bytes() if isinstance(source, Path) else source[0]
            assert (platform.flowserv.files_dir / outcome.id).read_bytes() == content, index
        assert len(result.errors) == platform.faults.count("drop_before", UPLOADS)
