"""Files batches under injected faults: every input one outcome, the disk holds exactly what was sent.

429/503 are answered instead of the handler (nothing stored: any call may be re-sent);
``drop_before`` closes the connection before the handler; ``drop_after`` closes it after
the handler stored the file. An upload names its target (directory + ``fileName``), so
re-sending one whose answer was lost overwrites the same file with the same bytes: the
client retries it, and the disk must then hold each file once, byte for byte.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aioplatform import RetryPolicy, TransportError
from aioplatform.agave import AgaveClient
from aioplatform.testing import FaultRule, LocalPlatform
from aioplatform.testing.agave.defaults import DEFAULT_STORAGE_SYSTEM

from .conftest import client_for

SYS = DEFAULT_STORAGE_SYSTEM
N = 100
POLICY = RetryPolicy(max_attempts=8, backoff_base=0.01, backoff_cap=0.1)


def faults(method: str) -> FaultRule:
    return FaultRule(
        match=f"{method} /agave/files/v2/*",
        rate_429=0.05,
        rate_503=0.05,
        drop_before=0.01,
        drop_after=0.01,
        retry_after=0.05,
    )


def content(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest() * (50 + i)


def tree_on_disk(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def test_upload_many_under_429_503_and_drops_stores_every_file_once_with_its_bytes(
    tmp_path: Path,
) -> None:
    sources = []
    for i in range(N):
        path = tmp_path / f"file-{i:03}.bin"
        path.write_bytes(content(i))
        sources.append(path)
    # Half from paths, half as (name, bytes) pairs: both kinds of rewindable source.
    items: list[Path | tuple[str, bytes]] = [
        p if i % 2 else (p.name, p.read_bytes()) for i, p in enumerate(sources)
    ]
    async with LocalPlatform(faults=faults("POST"), seed=11) as platform:
        async with client_for(platform, retry=POLICY) as agave:
            await agave.files.mkdir(SYS, "batch")
            result = await agave.files.upload_many(SYS, "batch", items, concurrency=16)
            assert result.ok, result.errors[:3]
            assert len(result) == N
            assert [v.name for v in result.values] == [p.name for p in sources]
            injected = platform.faults.injected
            assert injected["429"] and injected["503"] and injected["drop_after"] and injected["drop_before"]
        assert platform.data_dir is not None
        stored = tree_on_disk(platform.data_dir / "agave" / SYS / "batch")
        assert stored == {p.name: content(i) for i, p in enumerate(sources)}

        def entries(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT COUNT(*) FROM agave_files_entries WHERE path LIKE 'batch/%'"
            ).fetchone()
            return int(row[0])

        assert await platform.store.run(entries) == N


async def test_download_many_under_429_503_and_drops_saves_every_file_intact(tmp_path: Path) -> None:
    async with (
        LocalPlatform(faults=faults("GET"), seed=5) as platform,
        client_for(platform, retry=POLICY) as agave,
    ):
        await seed_tree(agave)
        result = await agave.files.download_many(SYS, "tree", tmp_path, concurrency=16)
        assert result.ok, result.errors[:3]
        assert len(result) == N
        assert platform.faults.injected["drop_after"]
    expected = {f"d{i % 5}/f{i:03}.bin": content(i) for i in range(N)}
    assert tree_on_disk(tmp_path) == expected  # no partial or temporary file left either


async def seed_tree(agave: AgaveClient) -> None:
    for d in range(5):
        await agave.files.mkdir(SYS, f"tree/d{d}")
    result = await agave.files.upload_many(
        SYS, "tree", [], concurrency=1
    )  # an empty batch is an empty result
    assert len(result) == 0
    for i in range(N):
        await agave.files.upload(SYS, f"tree/d{i % 5}", content(i), file_name=f"f{i:03}.bin")


async def _stream(data: bytes) -> AsyncIterator[bytes]:
    yield data[: len(data) // 2]
    yield data[len(data) // 2 :]


async def test_a_lost_answer_re_sends_a_rewindable_upload_but_never_a_one_shot_stream() -> None:
    route = f"POST /agave/files/v2/media/system/{SYS}/once*"
    async with LocalPlatform() as platform, client_for(platform, retry=POLICY) as agave:
        await agave.files.mkdir(SYS, "once")
        platform.faults.script(route, ["drop_after"])
        result = await agave.files.upload(SYS, "once", b"rewindable", file_name="r.txt")
        assert result.name == "r.txt"
        assert platform.stats.count("POST", f"/agave/files/v2/media/system/{SYS}/once") == 2

        platform.faults.script(route, ["drop_after"])
        with pytest.raises(TransportError):
            await agave.files.upload(SYS, "once", _stream(b"one-shot bytes"), file_name="s.txt")
        assert platform.stats.count("POST", f"/agave/files/v2/media/system/{SYS}/once") == 3
        # The server did store it (the answer was lost), exactly once.
        history = await agave.files.get_history(SYS, "once/s.txt").to_list()
        assert [e.status for e in history][:1] == ["STAGING_QUEUED"]
        assert len([e for e in history if e.status == "STAGING_QUEUED"]) == 1
        assert platform.data_dir is not None
        assert (platform.data_dir / "agave" / SYS / "once" / "s.txt").read_bytes() == b"one-shot bytes"
