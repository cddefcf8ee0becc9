"""What an upload source may be, and whose error a failing one raises (embedded platform).

A ``str`` is not an upload source: it could be a path or the content, so it is a
``TypeError`` with a hint, before any request (``Path`` for a file, bytes for text).
An exception raised by the caller's own stream or file object propagates as itself,
with its own cause — not as a ``TransportError`` — and nothing is stored.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aioplatform import TransportError
from aioplatform.flowserv import FlowservClient
from aioplatform.testing import LocalPlatform

from .conftest import PASSWORD, unique


class StreamBroke(Exception):
    pass


async def logged_in(platform: LocalPlatform) -> tuple[FlowservClient, str]:
    client = FlowservClient(platform.flowserv_url)
    user = await client.users.register(unique(), PASSWORD)
    await client.users.login(user.username, PASSWORD)
    group = await client.groups.create(platform.flowserv.workflow_id, unique("sources"))
    return client, group.id


async def test_a_str_source_is_a_type_error_with_a_hint_before_any_request(
    local_platform: LocalPlatform,
) -> None:
    async with FlowservClient(local_platform.flowserv_url, token="f" * 32) as client:
        with pytest.raises(TypeError, match=r"file is a str.*pathlib\.Path.*encode"):
            await client.groups.upload_file("g" * 32, "text content", "a.csv")  # type: ignore[arg-type]
        assert client.session.stats.requests == 0


async def test_paths_bytes_and_str_items_of_upload_many_are_uploaded(
    local_platform: LocalPlatform, tmp_path: Path
) -> None:
    source = tmp_path / "a.csv"
    source.write_bytes(b"a,b\n1,2\n")
    client, group_id = await logged_in(local_platform)
    async with client:
        by_path = await client.groups.upload_file(group_id, source)
        by_bytes = await client.groups.upload_file(group_id, b"text content", "t.txt")
        # in upload_many a bare str item is a path (content would need a name to go with it)
        items = [str(source), ("text content", "x.txt")]
        result = await client.groups.upload_many(group_id, items)  # type: ignore[arg-type]
        assert (by_path.name, by_path.size, by_bytes.size) == ("a.csv", 8, 12)
        assert result.outcomes[0].name == "a.csv"  # type: ignore[union-attr]
        assert isinstance(result.outcomes[1], TypeError) and "pathlib.Path" in str(result.outcomes[1])
        assert await client.groups.download_file(group_id, by_bytes.id) == b"text content"


async def test_the_callers_stream_error_propagates_as_itself(local_platform: LocalPlatform) -> None:
    client, group_id = await logged_in(local_platform)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"x" * 100_000
        try:
            raise KeyError("the producer's own cause")
        except KeyError as cause:
            raise StreamBroke("the producer failed") from cause

    async with client:
        with pytest.raises(StreamBroke, match="the producer failed") as caught:
            await client.groups.upload_file(group_id, chunks(), "s.txt")
        assert not isinstance(caught.value, TransportError)
        assert isinstance(caught.value.__cause__, KeyError)  # its own cause is kept
        assert await client.groups.list_files(group_id).to_list() == []  # nothing stored
        after = await client.groups.upload_file(group_id, b"after", "after.txt")  # the pool still works
        assert after.size == 5


async def test_a_file_objects_os_error_propagates_as_itself(local_platform: LocalPlatform) -> None:
    client, group_id = await logged_in(local_platform)

    class FailingFile(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
            raise OSError(5, "the disk went away")

    async with client:
        with pytest.raises(OSError, match="the disk went away") as caught:
            await client.groups.upload_file(group_id, FailingFile(), "f.bin")
        assert not isinstance(caught.value, TransportError)
        assert caught.value.errno == 5
        assert await client.groups.list_files(group_id).to_list() == []
