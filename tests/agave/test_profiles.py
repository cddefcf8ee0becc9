"""Agave profiles: me, by username, the snake_case filters, admin create/update/delete (403 otherwise)."""

from __future__ import annotations

import sqlite3

import aiohttp
import pytest

from aioplatform import BadRequest, Forbidden, NotFound
from aioplatform.agave import AgaveClient
from aioplatform.agave.models import Profile, structure
from aioplatform.testing import LocalPlatform

from .conftest import client_for

PROFILE_FIELDS = {
    "username", "email", "first_name", "last_name", "full_name", "phone", "mobile_phone", "nonce", "status",
    "uid",
}  # fmt: skip


def users(platform: LocalPlatform) -> dict[str, sqlite3.Row]:
    rows = platform.store.run_sync(lambda conn: conn.execute("SELECT * FROM agave_users").fetchall())
    return {row["username"]: row for row in rows}


async def test_me_is_the_token_user_with_the_real_services_fields_and_no_password(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    me = await agave.profiles.get()
    assert me.username == platform.agave.username
    assert set(me.raw) == PROFILE_FIELDS
    assert me.first_name == "Test" and me.last_name == "User" and me.full_name == "Test User"
    assert me.email == f"{platform.agave.username}@example.org"
    assert me.status == "Active" and isinstance(me.uid, int)
    assert platform.agave.password not in str(me.raw)
    assert (await agave.profiles.me()).username == me.username


async def test_list_by_username_is_one_object_and_unknown_is_404(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    await platform.agave.add_user("bob", "bob-password")
    bob = await agave.profiles.list_by_username("bob")
    assert bob.username == "bob" and bob.email == "bob@example.org"
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {platform.agave.access_token}"}
        async with http.get(f"{platform.agave_url}/profiles/v2/bob", headers=headers) as response:
            body = await response.json()
    assert isinstance(body["result"], dict) and body["result"]["username"] == "bob"
    with pytest.raises(NotFound, match="nobody"):
        await agave.profiles.list_by_username("nobody")


async def test_list_filters_by_each_snake_case_field(platform: LocalPlatform, agave: AgaveClient) -> None:
    for name in ("ann", "anna", "carl"):
        await platform.agave.add_user(name, f"{name}-password")
    await agave.profiles.update("ann", {"first_name": "Ann", "last_name": "Lee", "phone": "555-1"})
    await agave.profiles.update("anna", {"firstName": "Anna", "lastName": "Lee", "status": "Inactive"})
    await agave.profiles.update("carl", {"first_name": "Carl", "last_name": "Ito", "email": "c@lab.org"})

    async def names(**filters: str) -> list[str]:
        return [p.username async for p in agave.profiles.list(**filters)]  # type: ignore[arg-type]

    assert await names(last_name="lee") == ["ann", "anna"]
    assert await names(first_name="Ann") == ["ann"]
    assert await names(full_name="Carl Ito") == ["carl"]
    assert await names(email="c@lab.org") == ["carl"]
    assert await names(status="Inactive") == ["anna"]
    assert await names(username="an*") == ["ann", "anna"]
    assert await names(name="ito") == ["carl"]  # name: any of the names
    assert await names(last_name="Lee", status="Active") == ["ann"]
    everyone = await names()
    assert set(everyone) == set(users(platform)) and everyone == sorted(everyone)
    # Paged: one profile a page still yields them all.
    assert [p.username async for p in agave.profiles.list(limit=1)] == everyone


async def test_admin_creates_updates_and_deletes_users_and_the_store_agrees(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    created = await agave.profiles.create(
        {"username": "dana", "password": "dana-secret", "email": "dana@lab.org",
         "first_name": "Dana", "last_name": "Ross", "mobile_phone": "555-9"}
    )  # fmt: skip
    assert created.username == "dana" and created.full_name == "Dana Ross" and created.mobile_phone == "555-9"
    assert "password" not in created.raw and "dana-secret" not in str(created.raw)
    row = users(platform)["dana"]
    # Stored salted and hashed, never as given; the login below proves it is the same password.
    assert "dana-secret" not in row["password"] and row["password"].startswith("sha256$")
    assert row["is_admin"] == 0
    # The new user can log in with the password grant and sees herself as "me".
    async with client_for(
        platform, token=None, refresh_token=None, username="dana", password="dana-secret"
    ) as dana:
        assert (await dana.profiles.get()).username == "dana"
    updated = await agave.profiles.update("dana", {"email": "ross@lab.org", "status": "Inactive"})
    assert updated.email == "ross@lab.org" and updated.status == "Inactive" and updated.first_name == "Dana"
    assert users(platform)["dana"]["email"] == "ross@lab.org"
    with pytest.raises(BadRequest, match="already exists"):
        await agave.profiles.create({"username": "dana", "password": "x", "email": "d@lab.org"})
    await agave.profiles.delete("dana")
    assert "dana" not in users(platform)
    with pytest.raises(NotFound):
        await agave.profiles.list_by_username("dana")
    with pytest.raises(NotFound):
        await agave.profiles.delete("dana")


async def test_non_admins_get_403_on_create_update_delete(platform: LocalPlatform) -> None:
    await platform.agave.add_user("bob", "bob-password")
    access, refresh = await platform.agave.issue_token("bob")
    before = dict(users(platform)[platform.agave.username])
    async with client_for(platform, token=access, refresh_token=refresh) as bob:
        with pytest.raises(Forbidden):
            await bob.profiles.create({"username": "eve", "password": "pw", "email": "eve@lab.org"})
        with pytest.raises(Forbidden):
            await bob.profiles.update(platform.agave.username, {"email": "bob@evil.org"})
        with pytest.raises(Forbidden):
            await bob.profiles.delete(platform.agave.username)
        # Reading is open to every user of the tenant.
        assert (
            await bob.profiles.list_by_username(platform.agave.username)
        ).username == platform.agave.username
    assert "eve" not in users(platform)
    assert dict(users(platform)[platform.agave.username]) == before


async def test_bad_requests(platform: LocalPlatform, agave: AgaveClient) -> None:
    with pytest.raises(BadRequest, match="password"):
        await agave.profiles.create({"username": "zed", "email": "z@lab.org"})
    with pytest.raises(BadRequest, match="own account"):
        await agave.profiles.delete(platform.agave.username)


async def test_bad_arguments_fail_before_any_request(agave: AgaveClient) -> None:
    with pytest.raises(ValueError, match="username"):
        await agave.profiles.list_by_username("..")
    with pytest.raises(TypeError, match="username"):
        await agave.profiles.list_by_username(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="last_name"):
        agave.profiles.list(last_name=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="body"):
        await agave.profiles.update("bob", ["email"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="username"):
        await agave.profiles.create({"email": "x@lab.org"})


def test_profile_reads_the_old_camel_case_schema_too() -> None:
    old = structure(
        {"username": "jdoe", "firstName": "J", "lastName": "Doe", "mobilePhone": "1", "uid": "42"}, Profile
    )
    assert (old.first_name, old.last_name, old.full_name, old.mobile_phone, old.uid) == (
        "J",
        "Doe",
        "J Doe",
        "1",
        42,
    )
