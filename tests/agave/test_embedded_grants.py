"""The embedded Agave's grant requests, shared by apps, systems, jobs, metadata and files:
who a grant is for, the level, and the answers to a bad one (over real HTTP)."""

from __future__ import annotations

from typing import Any

import aiohttp

from aioplatform.agave import AgaveClient
from aioplatform.testing import LocalPlatform
from aioplatform.testing.agave.defaults import DEFAULT_STORAGE_SYSTEM, SEEDED_APP


async def _post(platform: LocalPlatform, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {platform.agave.access_token}"}
    url = f"{platform.agave_url.rstrip('/')}/{path}"
    async with aiohttp.ClientSession(headers=headers) as http, http.post(url, json=body) as response:
        return response.status, await response.json()


async def test_app_permissions_and_system_roles_answer_a_bad_level_with_the_valid_ones(
    platform: LocalPlatform,
) -> None:
    status, body = await _post(platform, f"apps/v2/{SEEDED_APP}/pems", {"username": "bob", "permission": "x"})
    assert status == 400 and body["message"].startswith("Invalid permission. Valid values are: NONE, READ,")
    status, body = await _post(platform, f"systems/v2/{DEFAULT_STORAGE_SYSTEM}/roles", {"role": "USER"})
    assert (status, body["message"]) == (400, "Please specify the 'username' the role is for")
    status, body = await _post(platform, f"systems/v2/{DEFAULT_STORAGE_SYSTEM}/roles/bob", ["USER"])
    assert (status, body["message"]) == (400, "The role must be a JSON object with 'username' and 'role'")
    status, body = await _post(
        platform, f"systems/v2/{DEFAULT_STORAGE_SYSTEM}/roles/bob", {"username": "bob", "role": "user"}
    )
    assert status == 201 and (body["result"]["username"], body["result"]["role"]) == ("bob", "USER")


async def test_every_resource_refuses_a_grant_body_naming_another_user_than_its_url(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    # One rule for apps, systems, jobs and metadata (agave.md §6.5): the body's
    # username may be omitted, but if present it must be the URL's.
    record = await agave.meta.add_metadata({"name": "grants", "value": {"n": 1}})
    job = await agave.jobs.submit({"name": "grants", "appId": SEEDED_APP})
    mismatch = "The username in the body does not match the one in the URL"
    for path, key in (
        (f"apps/v2/{SEEDED_APP}/pems/bob", "permission"),
        (f"systems/v2/{DEFAULT_STORAGE_SYSTEM}/roles/bob", "role"),
        (f"jobs/v2/{job.id}/pems/bob", "permission"),
        (f"meta/v2/data/{record.uuid}/pems/bob", "permission"),
    ):
        level = "USER" if key == "role" else "READ"
        status, body = await _post(platform, path, {"username": "eve", key: level})
        assert (status, body["message"]) == (400, mismatch), path
    granted = await platform.store.run(
        lambda conn: [
            *conn.execute("SELECT username FROM agave_apps_pems WHERE username IN ('bob', 'eve')"),
            *conn.execute("SELECT username FROM agave_systems_roles WHERE username IN ('bob', 'eve')"),
        ]
    )
    assert granted == []


async def test_a_metadata_grant_naming_another_user_than_its_url_is_refused(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    record = await agave.meta.add_metadata({"name": "grants", "value": {"n": 1}})
    pems = f"meta/v2/data/{record.uuid}/pems"
    status, body = await _post(platform, f"{pems}/bob", {"username": "eve", "permission": "READ"})
    assert (status, body["message"]) == (400, "The username in the body does not match the one in the URL")
    status, body = await _post(platform, f"{pems}/bob", {"permission": "EXECUTE"})
    assert status == 400
    assert body["message"] == "Invalid permission value 'EXECUTE': READ, WRITE, READ_WRITE, ALL or NONE"
    assert (await agave.meta.update_metadata_permissions_for_user(record.uuid, "bob", "read")) is not None
    assert (await agave.meta.list_metadata_permissions_for_user(record.uuid, "bob")).read


async def test_file_permissions_of_a_missing_path_are_a_404(platform: LocalPlatform) -> None:
    status, body = await _post(
        platform, f"files/v2/pems/system/{DEFAULT_STORAGE_SYSTEM}/no/such/file",
        {"username": "bob", "permission": "READ"},
    )  # fmt: skip
    assert (status, body["message"]) == (404, "File/folder does not exist: /no/such/file")
