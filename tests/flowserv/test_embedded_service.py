"""The embedded flowserv service's own promises: hashed passwords, files on disk, limits, restarts."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from aioplatform import APIError, NotFound
from aioplatform.flowserv import FlowservClient
from aioplatform.testing import LocalPlatform

from .conftest import PASSWORD, unique


async def test_passwords_are_stored_hashed_and_salted(local_platform: LocalPlatform) -> None:
    async with FlowservClient(local_platform.flowserv_url) as client:
        a = await client.users.register(unique(), PASSWORD)
        b = await client.users.register(unique(), PASSWORD)

    def secrets(conn: sqlite3.Connection) -> dict[str, str]:
        rows = conn.execute("SELECT id, secret FROM flowserv_users").fetchall()
        return {r["id"]: r["secret"] for r in rows}

    stored = local_platform.store.run_sync(secrets)
    assert PASSWORD not in stored[a.id] and stored[a.id].startswith("pbkdf2_sha256$")
    assert stored[a.id] != stored[b.id]  # salted


async def test_files_live_on_disk_under_the_data_folder_and_go_with_their_group(
    local_platform: LocalPlatform,
) -> None:
    folder = Path(local_platform.data_dir or "") / "flowserv"
    async with FlowservClient(local_platform.flowserv_url) as client:
        user = await client.users.register(unique(), PASSWORD)
        await client.users.login(user.username, PASSWORD)
        group = await client.groups.create(local_platform.flowserv.workflow_id, unique())
        kept = await client.groups.upload_file(group.id, b"kept on disk", "k.txt")
        dropped = await client.groups.upload_file(group.id, b"deleted", "d.txt")
        assert (folder / kept.id).read_bytes() == b"kept on disk"
        await client.groups.delete_file(group.id, dropped.id)
        assert not (folder / dropped.id).exists()
        await client.groups.delete(group.id)
        assert not (folder / kept.id).exists()
        assert [p.name for p in folder.iterdir()] == []  # no partial uploads left behind


async def test_an_upload_over_the_limit_is_413_and_leaves_nothing(local_platform: LocalPlatform) -> None:
    local_platform.flowserv.max_content_length = 1000
    async with FlowservClient(local_platform.flowserv_url) as client:
        user = await client.users.register(unique(), PASSWORD)
        await client.users.login(user.username, PASSWORD)
        group = await client.groups.create(local_platform.flowserv.workflow_id, unique())
        with pytest.raises(APIError) as caught:
            await client.groups.upload_file(group.id, b"x" * 5000, "big.bin")
        assert caught.value.status == 413 and "Request Entity Too Large" in caught.value.message
        assert await client.groups.list_files(group.id).to_list() == []
    assert list((Path(local_platform.data_dir or "") / "flowserv").iterdir()) == []


async def test_users_groups_and_files_survive_a_restart_on_a_file_database(tmp_path: Path) -> None:
    db = tmp_path / "platform.db"
    async with LocalPlatform(db) as first, FlowservClient(first.flowserv_url) as client:
        user = await client.users.register(unique(), PASSWORD)
        await client.users.login(user.username, PASSWORD)
        group = await client.groups.create(first.flowserv.workflow_id, unique())
        handle = await client.groups.upload_file(group.id, b"persisted", "p.txt")
    async with LocalPlatform(db) as second, FlowservClient(second.flowserv_url) as client:
        await client.users.login(user.username, PASSWORD)
        assert (await client.groups.get(group.id)).name == group.name
        assert await client.groups.download_file(group.id, handle.id) == b"persisted"


async def test_the_seeded_workflow_is_there(local_platform: LocalPlatform) -> None:
    async with FlowservClient(local_platform.flowserv_url) as client:
        workflow = await client.workflows.get(local_platform.flowserv.workflow_id)
    assert workflow.id == "hello" and workflow.name == "Hello World"


async def test_helpers_create_users_and_workflows_directly(local_platform: LocalPlatform) -> None:
    service = local_platform.flowserv
    user_id = local_platform.call(lambda: service.create_user("helper", "pw"))
    inactive = local_platform.call(lambda: service.create_user("sleeper", "pw", active=False))
    local_platform.call(lambda: service.create_workflow("second", "Second workflow"))
    async with FlowservClient(local_platform.flowserv_url) as client:
        assert (await client.users.login("helper", "pw")).id == user_id
        assert "sleeper" not in [u.username async for u in client.users.list()]
        await client.users.activate(inactive)
        assert [w.id async for w in client.workflows.list()] == ["hello", "second"]
        group = await client.groups.create("second", "g")
        assert group.workflow_id == "second"


async def test_password_reset_requests_expire_with_the_token_ttl(local_platform: LocalPlatform) -> None:
    local_platform.flowserv.token_ttl = 0.2
    async with FlowservClient(local_platform.flowserv_url) as client:
        await client.users.register("erin", "pw")
        request_id = await client.users.request_password_reset("erin")
        await asyncio.sleep(0.4)
        with pytest.raises(NotFound, match="unknown request"):
            await client.users.reset_password(request_id, "new")



async def test_malformed_bodies_are_400s_and_store_nothing(local_platform: LocalPlatform) -> None:
    url = local_platform.flowserv_url
    workflow = local_platform.flowserv.workflow_id
    name = unique()
    await local_platform.flowserv.create_user(name, PASSWORD)
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "users/login", json={"username": name, "password": PASSWORD}) as r:
            key = {"api_key": (await r.json())["token"]}
        async with session.post(url + f"workflows/{workflow}/groups", json={"name": "g"}, headers=key) as r:
            group = (await r.json())["id"]
        before = await local_platform.store.dump()
        deep = b"[" * 100_000 + b"]" * 100_000
        for path in ("users/login", "users/register", f"workflows/{workflow}/groups", f"groups/{group}"):
            method = "PUT" if path.startswith("groups/") else "POST"
            headers = {"Content-Type": "application/json", **key}
            async with session.request(method, url + path, data=deep, headers=headers) as response:
                assert response.status == 400 and "400 Bad Request" in await response.text()
        for filename in (b"a\x00b.txt", b"\x00"):
            body = (
                b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="' + filename
                + b'"\r\n\r\nhello\r\n--xyz--\r\n'
            )  # fmt: skip
            headers = {"Content-Type": "multipart/form-data; boundary=xyz", **key}
            async with session.post(url + f"uploads/{group}/files", data=body, headers=headers) as response:
                assert response.status == 400
    assert await local_platform.store.dump() == before
    leftovers = (Path(local_platform.data_dir or "") / "flowserv").iterdir()
    assert not [p for p in leftovers if p.name.startswith(".")]
