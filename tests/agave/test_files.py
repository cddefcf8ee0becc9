"""Agave files against the embedded platform: every operation, the recorded shapes, streaming,
path safety on both sides of the wire."""

from __future__ import annotations

import asyncio
import io
import json
import os
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aioplatform.agave import AgaveClient
from aioplatform.agave.models.files import FileHistoryEvent, FilePermission, LogicalFile
from aioplatform.core.errors import BadRequest, Forbidden, NotFound, Unauthorized
from aioplatform.testing import LocalPlatform
from aioplatform.testing.agave.defaults import DEFAULT_STORAGE_SYSTEM
from aioplatform.testing.agave.files import put_file

from .conftest import client_for

SYS = DEFAULT_STORAGE_SYSTEM
SAMPLES = Path("/work/shared/protocols/agave-samples")
if not SAMPLES.exists():  # the samples travel with the repository's shared folder
    SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "protocols" / "agave-samples"


def disk(platform: LocalPlatform, path: str = "") -> Path:
    assert platform.data_dir is not None
    return platform.data_dir / "agave" / SYS / path


def headers(platform: LocalPlatform) -> dict[str, str]:
    return {"Authorization": f"Bearer {platform.agave.access_token}"}


def local_files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden temporaries included) by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def seed(platform: LocalPlatform, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        await put_file(platform.agave, SYS, path, data, platform.agave.username)


async def wait_for_status(agave: AgaveClient, path: str, status: str) -> list[FileHistoryEvent]:
    for _ in range(100):
        events = await agave.files.get_history(SYS, path).to_list()
        if events and events[-1].status == status:
            return events
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} never reached {status}: {[e.status for e in events]}")


async def second_user(platform: LocalPlatform, name: str = "bob") -> AgaveClient:
    await platform.agave.add_user(name, "secret-pw")
    access, refresh = await platform.agave.issue_token(name)
    return client_for(platform, token=access, refresh_token=refresh)


# -- listings ----------------------------------------------------------------------------------


async def test_listing_starts_with_the_directory_itself_then_the_children_by_name(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    await seed(platform, {"data/b.txt": b"bb", "data/a.csv": b"a", "data/sub/c.txt": b"c"})
    entries = await agave.files.list(SYS, "data").to_list()
    assert [e.name for e in entries] == [".", "a.csv", "b.txt", "sub"]
    dot, a, _, sub = entries
    assert dot.is_self and dot.is_dir and dot.path == "/data" and dot.format == "folder"
    assert dot.mime_type == "text/directory" and dot.permissions == "ALL"
    assert a.length == 1 and a.type == "file" and a.path == "/data/a.csv" and a.system == SYS
    assert a.mime_type == "text/csv" and a.last_modified is not None
    assert sub.is_dir and not sub.is_self


async def test_paging_counts_the_dot_entry_so_nothing_is_skipped_or_repeated(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    await seed(platform, {f"many/f{i:02}.txt": b"x" for i in range(7)})
    pages = [[e.name for e in page] async for page in agave.files.list(SYS, "many", limit=3).pages()]
    assert pages == [[".", "f00.txt", "f01.txt"], ["f02.txt", "f03.txt", "f04.txt"], ["f05.txt", "f06.txt"]]
    later = await agave.files.list(SYS, "many", limit=3, offset=1).to_list()
    assert [e.name for e in later] == [f"f{i:02}.txt" for i in range(7)]
    assert platform.stats.count("GET", "/agave/files/v2/listings/system/*") == 3 + 3


async def test_listing_a_file_answers_just_that_file(platform: LocalPlatform, agave: AgaveClient) -> None:
    await seed(platform, {"one/file.txt": b"12345"})
    (entry,) = await agave.files.list(SYS, "one/file.txt").to_list()
    assert entry.name == "file.txt" and entry.length == 5 and not entry.is_self


async def test_default_system_family_lists_the_users_default_storage(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    await seed(platform, {"home/x.txt": b"x"})
    on_default = await agave.files.list_on_default_system("home").to_list()
    explicit = await agave.files.list(SYS, "home").to_list()
    assert [e.raw for e in on_default] == [e.raw for e in explicit]
    root = await agave.files.list_on_default_system().to_list()
    assert root[0].is_self and root[0].path == "/" and "home" in [e.name for e in root]


async def test_listing_search_terms_filter_the_children(platform: LocalPlatform, agave: AgaveClient) -> None:
    await seed(platform, {"s/a.csv": b"1", "s/b.txt": b"22", "s/c.csv": b"333"})
    found = await agave.files.list(SYS, "s", search={"name.like": "*.csv"}).to_list()
    assert [e.name for e in found] == [".", "a.csv", "c.csv"]


async def test_unknown_path_and_unknown_system_are_not_found(agave: AgaveClient) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        await agave.files.list(SYS, "nothing/here").to_list()
    with pytest.raises(NotFound, match="No system"):
        await agave.files.list("no-such-system", "x").to_list()


async def test_walk_yields_every_entry_once_and_never_a_dot(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    tree = {f"w/d{i}/e{j}/f{k}.txt": b"x" for i in range(3) for j in range(2) for k in range(3)}
    tree["w/top.txt"] = b"t"
    await seed(platform, tree)
    expected_files = {"/" + p for p in tree}
    for concurrency in (1, 4):
        seen = [e async for e in agave.files.walk(SYS, "w", concurrency=concurrency)]
        paths = [e.path for e in seen]
        assert len(paths) == len(set(paths))
        assert not any(e.is_self for e in seen)
        assert {e.path for e in seen if not e.is_dir} == expected_files
        assert {e.path for e in seen if e.is_dir} == {f"/w/d{i}" for i in range(3)} | {
            f"/w/d{i}/e{j}" for i in range(3) for j in range(2)
        }


async def test_walk_stops_when_the_consumer_breaks_out(platform: LocalPlatform, agave: AgaveClient) -> None:
    await seed(platform, {f"b/d{i}/f.txt": b"x" for i in range(20)})
    walker = agave.files.walk(SYS, "b", concurrency=2)
    async for _ in walker:
        break
    await walker.aclose()  # type: ignore[attr-defined]
    before = platform.stats.count("GET", "*")
    await asyncio.sleep(0.1)
    assert platform.stats.count("GET", "*") == before


async def test_walk_raises_the_listing_error(agave: AgaveClient) -> None:
    with pytest.raises(NotFound):
        async for _ in agave.files.walk(SYS, "missing"):
            pass


# -- golden shapes (recorded production answers) -------------------------------------------------


def assert_shape(ours: Any, recorded: Any, where: str = "$") -> None:
    """Our answer has every key of the recorded one, with the same JSON type."""
    if recorded is None:
        return  # null in the sample: any type (or null) is fine
    assert type(ours) is type(recorded) or (
        isinstance(recorded, (int, float)) and isinstance(ours, (int, float)) and not isinstance(ours, bool)
    ), f"{where}: {type(ours).__name__} != {type(recorded).__name__}"
    if isinstance(recorded, dict):
        for key, value in recorded.items():
            assert key in ours, f"{where}: missing {key!r}"
            assert_shape(ours[key], value, f"{where}.{key}")
    elif isinstance(recorded, list) and recorded and ours:
        assert_shape(ours[0], recorded[0], f"{where}[0]")


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


async def raw_get(platform: LocalPlatform, path: str) -> Any:
    async with (
        aiohttp.ClientSession(headers=headers(platform)) as http,
        http.get(platform.agave_url + path) as r,
    ):
        assert r.status == 200, await r.text()
        return await r.json()


async def test_listing_matches_the_recorded_shape_dot_first(platform: LocalPlatform) -> None:
    await seed(platform, {"tests/copy.txt": b"0123456789"})
    ours = await raw_get(platform, f"/files/v2/listings/system/{SYS}/tests")
    recorded = sample("files-list.json")
    assert set(recorded) <= set(ours)
    assert ours["result"][0]["name"] == recorded["result"][0]["name"] == "."
    assert_shape(ours["result"][0], recorded["result"][0], "$.result[0]")
    assert_shape(ours["result"][1], recorded["result"][1], "$.result[1]")
    assert ours["version"] == recorded["version"]


async def test_history_pems_and_upload_match_the_recorded_shapes(platform: LocalPlatform) -> None:
    await seed(platform, {"shape/f.txt": b"x"})
    history = await raw_get(platform, f"/files/v2/history/system/{SYS}/shape/f.txt")
    assert_shape(history, sample("files-history.json"))
    pems = await raw_get(platform, f"/files/v2/pems/system/{SYS}/shape/f.txt")
    assert_shape(pems, sample("files-pems-list.json"))
    form = aiohttp.FormData()
    form.add_field("fileToUpload", b"data", filename="thisone", content_type="text/plain")
    async with (
        aiohttp.ClientSession(headers=headers(platform)) as http,
        http.post(f"{platform.agave_url}/files/v2/media/system/{SYS}/shape", data=form) as r,
    ):
        assert r.status == 202
        upload = await r.json()
    assert_shape(upload, sample("files-upload.json"))
    assert upload["result"]["status"] == "STAGING_QUEUED"
    assert upload["result"]["_links"]["self"]["href"].startswith(platform.agave_url + "/files/v2/media/")


# -- uploads -------------------------------------------------------------------------------------


async def _chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_upload_from_a_path_bytes_a_file_object_and_a_stream(
    platform: LocalPlatform, agave: AgaveClient, tmp_path: Path
) -> None:
    await agave.files.mkdir(SYS, "up")
    local = tmp_path / "local.bin"
    local.write_bytes(b"from a path")
    results = [
        await agave.files.upload(SYS, "up", local),
        await agave.files.upload(SYS, "up", b"from bytes", file_name="bytes.txt"),
        await agave.files.upload(SYS, "up", io.BytesIO(b"from a file object"), file_name="fileobj.txt"),
        await agave.files.upload(SYS, "up", _chunks(b"from a stream" * 500), file_name="stream.txt"),
    ]
    assert all(isinstance(r, LogicalFile) and r.status == "STAGING_QUEUED" for r in results)
    assert [r.name for r in results] == ["local.bin", "bytes.txt", "fileobj.txt", "stream.txt"]
    assert disk(platform, "up/local.bin").read_bytes() == b"from a path"
    assert disk(platform, "up/bytes.txt").read_bytes() == b"from bytes"
    assert disk(platform, "up/fileobj.txt").read_bytes() == b"from a file object"
    assert disk(platform, "up/stream.txt").read_bytes() == b"from a stream" * 500
    events = await wait_for_status(agave, "up/bytes.txt", "STAGING_COMPLETED")
    assert events[0].status == "STAGING_QUEUED"
    assert results[0].uuid.endswith("-002") and results[0].owner == platform.agave.username


async def test_upload_sends_file_name_so_the_stored_name_is_the_callers(
    platform: LocalPlatform, agave: AgaveClient, tmp_path: Path
) -> None:
    local = tmp_path / "original.txt"
    local.write_bytes(b"renamed")
    await agave.files.mkdir(SYS, "named")
    result = await agave.files.upload(SYS, "named", local, file_name="renamed.txt")
    assert result.name == "renamed.txt"
    assert disk(platform, "named/renamed.txt").read_bytes() == b"renamed"
    assert not disk(platform, "named/original.txt").exists()


async def test_without_file_name_the_part_filename_is_stored_as_agavepy_sends_it(
    platform: LocalPlatform,
) -> None:
    await seed(platform, {"agavepy/.keep": b""})
    form = aiohttp.FormData()
    form.add_field("fileToUpload", b"agavepy style", filename="up.txt", content_type="text/plain")
    async with (
        aiohttp.ClientSession(headers=headers(platform)) as http,
        http.post(f"{platform.agave_url}/files/v2/media/system/{SYS}/agavepy", data=form) as r,
    ):
        assert r.status == 202
    assert disk(platform, "agavepy/up.txt").read_bytes() == b"agavepy style"


async def test_upload_argument_errors_come_before_any_request(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    before = platform.stats.count("*", "*")
    with pytest.raises(TypeError, match="str"):
        await agave.files.upload(SYS, "x", "looks like a path")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="file_name"):
        await agave.files.upload(SYS, "x", b"bytes need a name")
    with pytest.raises(ValueError, match="file_name"):
        await agave.files.upload(SYS, "x", b"data", file_name="../escape")
    with pytest.raises(ValueError, match="exactly one"):
        await agave.files.import_data(SYS, "x")
    assert platform.stats.count("*", "*") == before


async def test_upload_into_a_missing_directory_is_not_found(agave: AgaveClient) -> None:
    with pytest.raises(NotFound):
        await agave.files.upload(SYS, "no/such/dir", b"x", file_name="x.txt")


async def test_import_from_a_loopback_url_fetches_in_the_background(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    payload = b"imported bytes\n" * 1000

    async def serve(_: web.Request) -> web.Response:
        return web.Response(body=payload)

    app = web.Application()
    app.router.add_get("/data.txt", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await agave.files.mkdir(SYS, "imports")
        result = await agave.files.import_data(
            SYS, "imports", url_to_ingest=f"http://127.0.0.1:{port}/data.txt"
        )
        assert result.status == "STAGING_QUEUED" and result.name == "data.txt"
        events = await wait_for_status(agave, "imports/data.txt", "STAGING_COMPLETED")
        assert [e.status for e in events] == ["STAGING_QUEUED", "STAGING", "STAGING_COMPLETED"]
        assert disk(platform, "imports/data.txt").read_bytes() == payload
        renamed = await agave.files.import_to_default_system(
            "imports", url_to_ingest=f"http://localhost:{port}/data.txt", file_name="copy.txt"
        )
        assert renamed.name == "copy.txt"
        await wait_for_status(agave, "imports/copy.txt", "STAGING_COMPLETED")
        # A JSON body is accepted for imports too.
        async with aiohttp.ClientSession(headers=headers(platform)) as http:
            url = f"{platform.agave_url}/files/v2/media/system/{SYS}/imports"
            body = {"urlToIngest": f"http://127.0.0.1:{port}/data.txt", "fileName": "json.txt"}
            async with http.post(url, json=body) as r:
                assert r.status == 202
        await wait_for_status(agave, "imports/json.txt", "STAGING_COMPLETED")
    finally:
        await runner.cleanup()


async def test_import_refuses_urls_off_the_loopback_interface(agave: AgaveClient) -> None:
    await agave.files.mkdir(SYS, "imports")
    for url in ("http://example.org/x", "ftp://127.0.0.1/x", "http://10.0.0.1/x", "file:///etc/passwd"):
        with pytest.raises(BadRequest, match="loopback"):
            await agave.files.import_data(SYS, "imports", url_to_ingest=url)
    assert [e.name for e in await agave.files.list(SYS, "imports").to_list()] == ["."]


# -- downloads -----------------------------------------------------------------------------------


async def test_download_to_a_path_into_a_directory_and_as_a_stream(
    platform: LocalPlatform, agave: AgaveClient, tmp_path: Path
) -> None:
    data = os.urandom(300_000)
    await seed(platform, {"dl/blob.bin": data})
    saved = await agave.files.download(SYS, "dl/blob.bin", tmp_path / "out.bin")
    assert saved == tmp_path / "out.bin" and saved.read_bytes() == data
    into = await agave.files.download_from_default_system("dl/blob.bin", tmp_path)
    assert into == tmp_path / "blob.bin" and into.read_bytes() == data
    chunks = [c async for c in agave.files.download_stream(SYS, "dl/blob.bin", chunk_size=65536)]
    assert b"".join(chunks) == data and len(chunks) > 1 and max(map(len, chunks)) <= 65536
    assert local_files(tmp_path) == {"blob.bin": data, "out.bin": data}  # no temporary file left


async def test_a_failed_download_leaves_no_file_behind(agave: AgaveClient, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        await agave.files.download(SYS, "absent.bin", tmp_path / "absent.bin")
    assert local_files(tmp_path) == {}


async def test_downloading_a_directory_is_a_bad_request(platform: LocalPlatform, agave: AgaveClient) -> None:
    await seed(platform, {"dd/f.txt": b"x"})
    with pytest.raises(BadRequest, match="directory"):
        async for _ in agave.files.download_stream(SYS, "dd"):
            pass


async def test_download_many_keeps_the_layout_and_applies_the_globs(
    platform: LocalPlatform, agave: AgaveClient, tmp_path: Path
) -> None:
    tree = {
        "run/out/a.csv": b"a",
        "run/out/b.csv": b"b",
        "run/out/log.txt": b"log",
        "run/deep/x/c.csv": b"c",
        "run/skip.csv": b"s",
    }
    await seed(platform, tree)
    result = await agave.files.download_many(SYS, "run", tmp_path, include="*.csv", exclude=["skip*"])
    assert result.ok and len(result) == 3
    assert local_files(tmp_path) == {"out/a.csv": b"a", "out/b.csv": b"b", "deep/x/c.csv": b"c"}


# -- manage, delete ------------------------------------------------------------------------------


async def raw(platform: LocalPlatform, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(headers=headers(platform)) as http,
        http.request(method, platform.agave_url + path, **kwargs) as r,
    ):
        text = await r.text()
        return r.status, json.loads(text) if text else None


async def test_mkdir_is_201_then_200_and_400_over_a_file(platform: LocalPlatform, agave: AgaveClient) -> None:
    url = f"/files/v2/media/system/{SYS}/m"
    await seed(platform, {"m/file.txt": b"x"})
    status, body = await raw(platform, "PUT", url, json={"action": "mkdir", "path": "new/deeper"})
    assert (
        status == 201
        and body["result"]["path"] == "/m/new/deeper"
        and body["result"]["nativeFormat"] == "dir"
    )
    status, body = await raw(platform, "PUT", url, json={"action": "mkdir", "path": "new/deeper"})
    assert status == 200 and "already exists" in body["message"]
    status, _ = await raw(platform, "PUT", url, data={"action": "mkdir", "path": "file.txt"})  # form body
    assert status == 400
    made = await agave.files.mkdir(SYS, "m/by/client")
    assert made is not None and made.path == "/m/by/client" and disk(platform, "m/by/client").is_dir()
    again = await agave.files.mkdir(SYS, "m/by/client")
    assert again is not None and again.uuid == made.uuid


async def test_missing_action_is_400_and_an_unknown_one_501(platform: LocalPlatform) -> None:
    await seed(platform, {"act/f.txt": b"x"})
    url = f"/files/v2/media/system/{SYS}/act/f.txt"
    status, body = await raw(platform, "PUT", url, json={"path": "x"})
    assert status == 400 and body["message"] == "Please provide a file action to perform"
    status, _ = await raw(platform, "PUT", url, json={"action": "explode", "path": "x"})
    assert status == 501


async def test_rename_copy_and_move(platform: LocalPlatform, agave: AgaveClient) -> None:
    await seed(platform, {"r/a.txt": b"A", "r/b.txt": b"B", "r/dir/in.txt": b"in"})
    renamed = await agave.files.rename(SYS, "r/a.txt", "a2.txt")
    assert renamed is not None and renamed.path == "/r/a2.txt"
    assert disk(platform, "r/a2.txt").read_bytes() == b"A" and not disk(platform, "r/a.txt").exists()
    with pytest.raises(BadRequest, match="exists"):
        await agave.files.rename(SYS, "r/a2.txt", "b.txt")
    copied = await agave.files.copy(SYS, "r/dir", "/r/dir-copy")
    assert copied is not None and copied.path == "/r/dir-copy"
    assert (
        disk(platform, "r/dir-copy/in.txt").read_bytes() == b"in" and disk(platform, "r/dir/in.txt").exists()
    )
    moved = await agave.files.move(SYS, "r/b.txt", "elsewhere/b.txt")
    assert moved is not None and moved.path == "/elsewhere/b.txt"
    assert disk(platform, "elsewhere/b.txt").read_bytes() == b"B" and not disk(platform, "r/b.txt").exists()
    with pytest.raises(BadRequest, match="exists"):
        await agave.files.move(SYS, "r/a2.txt", "r/dir")
    with pytest.raises(BadRequest, match="itself"):
        await agave.files.move(SYS, "r/dir", "r/dir/inner")
    history = [e.status for e in await agave.files.get_history(SYS, "elsewhere/b.txt").to_list()]
    assert history[0] == "CREATED" and history[-1] == "MOVED"
    renamed_history = await agave.files.get_history_on_default_system("r/a2.txt").to_list()
    assert renamed_history[-1].status == "RENAME"
    via_manage = await agave.files.manage_on_default_system("r/a2.txt", action="copy", path="r/a3.txt")
    assert via_manage is not None and disk(platform, "r/a3.txt").read_bytes() == b"A"


async def test_delete_a_file_and_a_tree_200_and_204_when_naked(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    await seed(platform, {"del/a.txt": b"a", "del/tree/b/c.txt": b"c", "del/n.txt": b"n"})
    await agave.files.delete(SYS, "del/a.txt")
    await agave.files.delete_from_default_system("del/tree")
    assert not disk(platform, "del/a.txt").exists() and not disk(platform, "del/tree").exists()
    status, body = await raw(platform, "DELETE", f"/files/v2/media/system/{SYS}/del/n.txt?naked=true")
    assert status == 204 and body is None
    with pytest.raises(NotFound):
        await agave.files.delete(SYS, "del/a.txt")
    leftover = await platform.store.run(
        lambda c: c.execute("SELECT COUNT(*) FROM agave_files_entries WHERE path LIKE 'del/%'").fetchone()[0]
    )
    assert leftover == 0


# -- history and permissions ---------------------------------------------------------------------


async def test_permissions_grant_list_and_revoke(platform: LocalPlatform, agave: AgaveClient) -> None:
    await seed(platform, {"shared/data.txt": b"secret data", "private/p.txt": b"p"})
    async with await second_user(platform) as bob:
        with pytest.raises(Forbidden):
            await bob.files.list(SYS, "shared").to_list()
        granted = await agave.files.update_permissions(SYS, "shared", "bob", "READ", recursive=True)
        assert [(p.username, p.permission.read, p.permission.write, p.recursive) for p in granted] == [
            ("bob", True, False, True)
        ]
        assert (
            b"".join([c async for c in bob.files.download_stream(SYS, "shared/data.txt")]) == b"secret data"
        )
        with pytest.raises(Forbidden):
            await bob.files.upload(SYS, "shared", b"x", file_name="x.txt")
        with pytest.raises(Unauthorized):  # Agave answers a denied delete with 401
            await bob.files.delete(SYS, "shared/data.txt")
        pems = await agave.files.list_permissions(SYS, "shared").to_list()
        assert [p.username for p in pems] == [platform.agave.username, "bob"]
        assert all(isinstance(p, FilePermission) for p in pems)
        only_bob = await agave.files.list_permissions(SYS, "shared", search={"username.eq": "bob"}).to_list()
        assert [p.username for p in only_bob] == ["bob"]
        await agave.files.update_permissions_on_default_system("shared", "bob", "READ_WRITE")
        await bob.files.upload(SYS, "shared", b"from bob", file_name="bob.txt")
        await agave.files.delete_permissions(SYS, "shared")
        with pytest.raises(Forbidden):
            await bob.files.list(SYS, "shared").to_list()
        with pytest.raises(Forbidden):
            await bob.files.update_permissions(SYS, "private", "bob", "ALL")
    statuses = [e.status for e in await agave.files.get_history(SYS, "shared").to_list()]
    assert statuses.count("PERMISSION_GRANT") == 2 and statuses[-1] == "PERMISSION_REVOKE"
    with pytest.raises(ValueError, match="permission"):
        await agave.files.update_permissions(SYS, "shared", "bob", "OWN")


async def test_history_pages(platform: LocalPlatform, agave: AgaveClient) -> None:
    await seed(platform, {"h/f.txt": b"1"})
    for _ in range(4):
        await seed(platform, {"h/f.txt": b"again"})
    events = await agave.files.get_history(SYS, "h/f.txt", limit=2).to_list()
    assert [e.status for e in events] == ["CREATED"] + ["OVERWRITTEN"] * 4
    assert all(e.created is not None and e.created_by == platform.agave.username for e in events)


# -- path safety ---------------------------------------------------------------------------------


async def test_client_refuses_dot_segments_before_any_request(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    before = platform.stats.count("*", "*")
    for bad in ("../etc", "a/../../b", "a/./b", "%2e%2e/x"):
        with pytest.raises(ValueError, match=r"file_path|path"):
            await agave.files.list(SYS, bad).to_list()
        with pytest.raises(ValueError):
            await agave.files.download(SYS, bad, Path("/tmp/never"))
    with pytest.raises(ValueError, match="system_id"):
        await agave.files.list("..", "x").to_list()
    with pytest.raises(ValueError, match="new_name"):
        await agave.files.rename(SYS, "a.txt", "x/y")
    assert platform.stats.count("*", "*") == before


async def test_hash_and_question_mark_in_names_are_encoded(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    await agave.files.mkdir(SYS, "odd dir#1?")
    await agave.files.upload(SYS, "odd dir#1?", b"odd", file_name="a#b?c%20.txt")
    assert disk(platform, "odd dir#1?/a#b?c%20.txt").read_bytes() == b"odd"
    names = [e.name for e in await agave.files.list(SYS, "odd dir#1?").to_list()]
    assert names == [".", "a#b?c%20.txt"]
    data = b"".join([c async for c in agave.files.download_stream(SYS, "odd dir#1?/a#b?c%20.txt")])
    assert data == b"odd"


async def test_emulator_refuses_paths_that_escape_the_system_root(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"TOP SECRET")
    await seed(platform, {"safe/f.txt": b"f"})
    disk(platform, "safe/link").symlink_to(outside)
    disk(platform, "safe/filelink").symlink_to(outside / "secret.txt")
    async with aiohttp.ClientSession(headers=headers(platform)) as http:
        base = f"{platform.agave_url}/files/v2"
        probes = [
            ("GET", f"{base}/listings/system/{SYS}/safe/link"),
            ("GET", f"{base}/media/system/{SYS}/safe/link/secret.txt"),
            ("GET", f"{base}/media/system/{SYS}/safe/filelink"),
            ("GET", f"{base}/media/system/{SYS}/safe/..%5C..%5C..%5Csecret.txt"),
            ("GET", f"{base}/listings/safe/..%5C..%5C.."),
            ("PUT", f"{base}/media/system/{SYS}/safe/link"),
            ("DELETE", f"{base}/media/system/{SYS}/safe/link"),
        ]
        for method, url in probes:
            async with http.request(
                method, aiohttp.client.URL(url, encoded=True), json={"action": "mkdir", "path": "x"}
            ) as r:
                body = await r.read()
                assert r.status in (400, 404), (method, url, r.status)
                assert b"TOP SECRET" not in body
        # A mkdir/copy/move whose body names a path outside is refused too.
        for body in ({"action": "mkdir", "path": "../../escape"}, {"action": "copy", "path": "../../../x"}):
            async with http.put(f"{base}/media/system/{SYS}/safe/f.txt", json=body) as r:
                assert r.status == 400
        # The listing of the directory holding the links does not show them.
        async with http.get(f"{base}/listings/system/{SYS}/safe") as r:
            names = [e["name"] for e in (await r.json())["result"]]
        assert names == [".", "f.txt"]
    assert (outside / "secret.txt").read_bytes() == b"TOP SECRET"
    assert not (platform.data_dir / "escape").exists()  # type: ignore[operator]


# -- streaming -----------------------------------------------------------------------------------


async def test_a_50_mb_upload_and_download_keep_python_memory_flat(
    platform: LocalPlatform, agave: AgaveClient, tmp_path: Path
) -> None:
    size = 50 * 1024 * 1024
    source = tmp_path / "big.bin"
    block = os.urandom(1024 * 1024)
    with source.open("wb") as f:
        for _ in range(50):
            f.write(block)
    await agave.files.mkdir(SYS, "big")
    tracemalloc.start()
    try:
        await agave.files.upload(SYS, "big", source)
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        saved = await agave.files.download(SYS, "big/big.bin", tmp_path / "back.bin")
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert disk(platform, "big/big.bin").stat().st_size == size
    assert saved.stat().st_size == size
    with source.open("rb") as a, saved.open("rb") as b:
        while chunk := a.read(1024 * 1024):
            assert chunk == b.read(1024 * 1024)
    # Client and server run in this process: both sides together stay far below the file.
    assert upload_peak < size / 10, upload_peak
    assert download_peak < size / 10, download_peak


async def test_staging_completes_on_the_file_even_after_it_was_renamed(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    await agave.files.mkdir(SYS, "stage")
    await agave.files.upload(SYS, "stage", b"quick", file_name="first.txt")
    await agave.files.rename(SYS, "stage/first.txt", "second.txt")
    for _ in range(100):
        statuses = [e.status for e in await agave.files.get_history(SYS, "stage/second.txt").to_list()]
        if "STAGING_COMPLETED" in statuses:
            break
        await asyncio.sleep(0.02)
    assert statuses[0] == "STAGING_QUEUED" and "RENAME" in statuses and "STAGING_COMPLETED" in statuses
    stale = await platform.store.run(
        lambda c: c.execute(
            "SELECT COUNT(*) FROM agave_files_history WHERE path = 'stage/first.txt'"
        ).fetchone()[0]
    )
    assert stale == 0


async def test_bodies_read_whole_must_be_small_and_sized(platform: LocalPlatform) -> None:
    await seed(platform, {"small/f.txt": b"x"})
    url = f"/files/v2/media/system/{SYS}/small/f.txt"
    huge = json.dumps({"action": "mkdir", "path": "x" * (2 * 1024 * 1024)})
    status, _ = await raw(platform, "PUT", url, data=huge, headers={"Content-Type": "application/json"})
    assert status == 413

    async def chunked() -> AsyncIterator[bytes]:
        yield b'{"action": "mkdir", '
        yield b'"path": "y"}'

    status, _ = await raw(platform, "PUT", url, data=chunked(), headers={"Content-Type": "application/json"})
    assert status == 413
    form = aiohttp.FormData()
    form.add_field("fileName", "z" * (2 * 1024 * 1024))
    form.add_field("fileToUpload", b"x", filename="x.txt")
    status, _ = await raw(platform, "POST", f"/files/v2/media/system/{SYS}/small", data=form)
    assert status == 413


async def test_the_remaining_default_system_twins(platform: LocalPlatform, agave: AgaveClient) -> None:
    await seed(platform, {"twin/f.txt": b"twin bytes"})
    data = b"".join([c async for c in agave.files.download_stream_from_default_system("twin/f.txt")])
    assert data == b"twin bytes"
    made = await agave.files.manage(None, "twin", action="mkdir", path="sub")
    assert made is not None and disk(platform, "twin/sub").is_dir()
    await agave.files.update_permissions(None, "twin", "carol", "READ")
    await agave.files.delete_permissions_on_default_system("twin")
    assert [p.username for p in await agave.files.list_permissions(None, "twin").to_list()] == [
        platform.agave.username
    ]
    with pytest.raises(ValueError, match="action"):
        await agave.files.manage(SYS, "twin", action="explode", path="x")


async def test_a_users_own_storage_system_is_its_own_tree_and_invisible_to_others(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    await agave.systems.add(
        {
            "id": "my-store",
            "name": "mine",
            "type": "STORAGE",
            "storage": {
                "protocol": "SFTP", "host": "data.example.org", "port": 22, "rootDir": "/data",
                "auth": {"type": "PASSWORD", "username": "svc", "password": "not-a-real-one"},
            },
        }
    )  # fmt: skip
    await agave.files.mkdir("my-store", "private")
    await agave.files.upload("my-store", "private", b"mine", file_name="m.txt")
    assert platform.data_dir is not None
    assert (platform.data_dir / "agave" / "my-store" / "private" / "m.txt").read_bytes() == b"mine"
    assert not disk(platform, "private").exists()
    async with await second_user(platform) as bob:
        with pytest.raises(NotFound, match="No system"):
            await bob.files.list("my-store", "private").to_list()
