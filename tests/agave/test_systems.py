"""Agave systems: every operation of ``client.systems`` against the embedded Agave.

Besides CRUD and the manage actions, these pin who may do what (a second, non-admin user),
that credentials' secrets never come back, and that bad input fails before any request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from aioplatform.agave import AgaveClient
from aioplatform.core.errors import BadRequest, Conflict, Forbidden, NotFound, TransportError
from aioplatform.core.retry import RetryPolicy
from aioplatform.testing import LocalPlatform
from aioplatform.testing.agave.defaults import DEFAULT_EXECUTION_SYSTEM, DEFAULT_STORAGE_SYSTEM
from aioplatform.testing.agave.systems import default_storage_system, lookup_system

from .conftest import client_for

SECRET = "pa55-never-shown-Xq9"


def storage_request(system_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": system_id,
        "name": f"{system_id} storage",
        "type": "STORAGE",
        "description": "a test storage system",
        "storage": {
            "protocol": "SFTP",
            "host": "data.example.org",
            "port": 22,
            "rootDir": "/data",
            "homeDir": "/home",
            "auth": {"type": "PASSWORD", "username": "svc", "password": SECRET},
        },
    }
    body.update(overrides)
    return body


def execution_request(system_id: str) -> dict[str, Any]:
    return {
        **storage_request(system_id),
        "type": "EXECUTION",
        "executionType": "HPC",
        "scheduler": "SLURM",
        "workDir": "/work",
        "queues": [{"name": "normal", "default": True, "maxNodes": 4}, {"name": "long"}],
        "login": {
            "protocol": "SSH",
            "host": "login.example.org",
            "port": 22,
            "auth": {"type": "SSHKEYS", "username": "svc", "privateKey": SECRET, "publicKey": "ssh-rsa AAA"},
        },
    }


@pytest.fixture
async def bob(platform: LocalPlatform) -> AsyncIterator[AgaveClient]:
    """A second user, not a tenant admin."""
    await platform.agave.add_user("bob", "bob-password")
    access, refresh = await platform.agave.issue_token("bob")
    async with client_for(platform, token=access, refresh_token=refresh) as client:
        yield client


async def test_seeded_systems_are_public_and_the_storage_one_is_every_users_default(
    agave: AgaveClient, bob: AgaveClient, platform: LocalPlatform
) -> None:
    storage = await agave.systems.get(DEFAULT_STORAGE_SYSTEM)
    assert storage.type == "STORAGE" and storage.public and storage.default and storage.global_default
    assert storage.storage is not None and storage.storage.root_dir == "/"
    execution = await bob.systems.get(DEFAULT_EXECUTION_SYSTEM)
    assert execution.type == "EXECUTION" and execution.public and execution.execution_type == "CLI"
    assert [q.name for q in execution.queues] == ["normal", "debug"] and execution.queues[0].default
    assert execution.login is not None and execution.login.protocol == "LOCAL"
    ids = {s.id async for s in bob.systems.list()}
    assert ids == {DEFAULT_STORAGE_SYSTEM, DEFAULT_EXECUTION_SYSTEM}
    assert await platform.store.run(lambda c: default_storage_system(c, "bob")) == DEFAULT_STORAGE_SYSTEM
    # The contract other resources use: the System as served, links root-relative.
    found = await platform.store.run(lambda c: lookup_system(c, DEFAULT_STORAGE_SYSTEM, "bob"))
    assert found is not None and found["storage"]["rootDir"] == "/" and found["default"] is True
    assert found["_links"]["self"]["href"] == f"/systems/v2/{DEFAULT_STORAGE_SYSTEM}"


async def test_add_answers_201_with_the_system_and_absolute_links(platform: LocalPlatform) -> None:
    headers = {"Authorization": f"Bearer {platform.agave.access_token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            platform.agave_url + "/systems/v2/", json=storage_request("raw-one"), headers=headers
        ) as response,
    ):
        body = await response.json()
    assert response.status == 201
    system = body["result"]
    assert system["id"] == "raw-one" and system["revision"] == 1 and system["owner"] == "testuser"
    assert system["uuid"].endswith("-006") and system["public"] is False and system["default"] is False
    assert system["_links"]["self"]["href"] == platform.agave_url + "/systems/v2/raw-one"
    assert system["storage"]["auth"] == {"type": "PASSWORD"}
    assert SECRET not in json.dumps(body)


async def test_add_get_update_delete(agave: AgaveClient) -> None:
    added = await agave.systems.add(storage_request("mine", site="tacc.utexas.edu"))
    assert added.id == "mine" and added.owner == "testuser" and added.site == "tacc.utexas.edu"
    assert added.last_modified is not None and added.storage is not None and added.storage.port == 22
    got = await agave.systems.get("mine")
    assert got.uuid == added.uuid and got.raw["storage"]["host"] == "data.example.org"

    # An update replaces the whole description: what the new body leaves out is gone.
    replacement = storage_request("mine", name="renamed")
    del replacement["description"]
    updated = await agave.systems.update("mine", replacement)
    assert updated.name == "renamed" and updated.description is None and updated.site is None
    assert updated.revision == 2 and updated.uuid == added.uuid

    with pytest.raises(BadRequest, match="type cannot change"):
        await agave.systems.update("mine", execution_request("mine"))
    with pytest.raises(BadRequest, match="differs"):
        await agave.systems.update("mine", storage_request("other"))

    await agave.systems.delete("mine")
    with pytest.raises(NotFound, match="mine"):
        await agave.systems.get("mine")
    with pytest.raises(NotFound):
        await agave.systems.delete("mine")


async def test_an_execution_system_keeps_its_queues_login_and_scheduler(agave: AgaveClient) -> None:
    system = await agave.systems.add(execution_request("hpc"))
    assert system.type == "EXECUTION" and system.scheduler == "SLURM" and system.execution_type == "HPC"
    assert [(q.name, q.default, q.max_nodes) for q in system.queues] == [
        ("normal", True, 4),
        ("long", False, -1),
    ]
    assert system.login is not None and system.login.host == "login.example.org"
    assert system.login.auth == {"type": "SSHKEYS"} and system.work_dir == "/work"
    assert SECRET not in json.dumps(system.raw) and "ssh-rsa" not in json.dumps(system.raw)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": None}, "'name'"),
        ({"type": "CLOUD"}, "Valid values are: STORAGE, EXECUTION"),
        ({"storage": None}, "'storage'"),
        ({"storage": {"protocol": "SFTP", "host": "h", "port": 22}}, "'storage.auth'"),
        (
            {"storage": {"protocol": "WARP", "host": "h", "port": 22, "auth": {"type": "LOCAL"}}},
            "storage.protocol",
        ),
        ({"storage": {"protocol": "SFTP", "port": 22, "auth": {"type": "LOCAL"}}}, "'storage.host'"),
        ({"id": "bad id/with slash"}, "Invalid 'id'"),
        ({"status": "SIDEWAYS"}, "'status'"),
    ],
)
async def test_add_refuses_an_incomplete_system_with_a_readable_message(
    agave: AgaveClient, change: dict[str, Any], message: str
) -> None:
    body = storage_request("broken")
    body.update(change)
    with pytest.raises(BadRequest, match=message) as caught:
        await agave.systems.add(body)
    assert caught.value.status == 400


async def test_an_execution_system_needs_queues_login_and_scheduler(agave: AgaveClient) -> None:
    for missing, message in (("queues", "queue"), ("login", "'login'"), ("scheduler", "'scheduler'")):
        body = execution_request("exec-broken")
        del body[missing]
        with pytest.raises(BadRequest, match=message):
            await agave.systems.add(body)
    with pytest.raises(NotFound):
        await agave.systems.get("exec-broken")


async def test_an_id_in_use_is_a_conflict(agave: AgaveClient) -> None:
    await agave.systems.add(storage_request("taken"))
    with pytest.raises(Conflict, match="already exists"):
        await agave.systems.add(storage_request("taken"))
    with pytest.raises(Conflict):
        await agave.systems.add(storage_request(DEFAULT_STORAGE_SYSTEM))


async def test_enable_and_disable(agave: AgaveClient) -> None:
    await agave.systems.add(storage_request("toggle"))
    assert (await agave.systems.disable("toggle")).available is False
    assert (await agave.systems.get("toggle")).available is False
    assert (await agave.systems.enable("toggle")).available is True
    # manage() takes agavepy's body; the action is case-insensitive.
    assert (await agave.systems.manage("toggle", {"action": "disable"})).available is False


async def test_set_default_makes_a_system_the_users_default_storage(
    agave: AgaveClient, bob: AgaveClient, platform: LocalPlatform
) -> None:
    await bob.systems.add(storage_request("bob-store"))
    assert (await bob.systems.set_default("bob-store")).default is True
    defaults = [s.id async for s in bob.systems.list(type="STORAGE", default=True)]
    assert defaults == ["bob-store"]
    assert (await bob.systems.get(DEFAULT_STORAGE_SYSTEM)).default is False
    assert await platform.store.run(lambda c: default_storage_system(c, "bob")) == "bob-store"
    # Another user's default is untouched.
    assert await platform.store.run(lambda c: default_storage_system(c, "testuser")) == DEFAULT_STORAGE_SYSTEM
    assert (await agave.systems.get(DEFAULT_STORAGE_SYSTEM)).default is True

    assert (await bob.systems.unset_default("bob-store")).default is False
    assert await platform.store.run(lambda c: default_storage_system(c, "bob")) == DEFAULT_STORAGE_SYSTEM


async def test_publishing_and_the_global_default_take_a_tenant_admin(
    agave: AgaveClient, bob: AgaveClient, platform: LocalPlatform
) -> None:
    await bob.systems.add(storage_request("bob-pub"))
    with pytest.raises(Forbidden, match="tenant administrators"):
        await bob.systems.publish("bob-pub")
    with pytest.raises(Forbidden):
        await bob.systems.set_global_default(DEFAULT_STORAGE_SYSTEM)

    await agave.systems.add(storage_request("shared-store"))
    with pytest.raises(BadRequest, match="public"):
        await agave.systems.set_global_default("shared-store")
    published = await agave.systems.publish("shared-store")
    assert published.public is True
    assert "shared-store" in {s.id async for s in bob.systems.list(public=True)}
    # A public system is changed by tenant admins only, even by its owner's grantees.
    with pytest.raises(Forbidden):
        await bob.systems.update("shared-store", storage_request("shared-store"))

    assert (await agave.systems.set_global_default("shared-store")).global_default is True
    assert (await agave.systems.get(DEFAULT_STORAGE_SYSTEM)).global_default is False
    assert await platform.store.run(lambda c: default_storage_system(c, "bob")) == "shared-store"
    assert (await bob.systems.get("shared-store")).default is True
    with pytest.raises(BadRequest, match="global default"):
        await agave.systems.unpublish("shared-store")

    await agave.systems.unset_global_default("shared-store")
    unpublished = await agave.systems.unpublish("shared-store")
    assert unpublished.public is False
    with pytest.raises(NotFound):
        await bob.systems.get("shared-store")


async def test_clone_makes_a_private_copy_without_credentials(
    agave: AgaveClient, bob: AgaveClient, platform: LocalPlatform
) -> None:
    clone = await bob.systems.clone(DEFAULT_EXECUTION_SYSTEM, "bob-exec")
    assert clone.id == "bob-exec" and clone.owner == "bob" and clone.public is False
    assert clone.type == "EXECUTION" and [q.name for q in clone.queues] == ["normal", "debug"]
    assert [c async for c in bob.systems.list_credentials("bob-exec")] == []
    with pytest.raises(Conflict):
        await bob.systems.clone(DEFAULT_EXECUTION_SYSTEM, "bob-exec")
    # Not in another user's listing, though a tenant admin may read it by id.
    assert "bob-exec" not in {s.id async for s in agave.systems.list()}
    assert (await agave.systems.get("bob-exec")).owner == "bob"


async def test_a_private_system_is_invisible_to_another_user(agave: AgaveClient, bob: AgaveClient) -> None:
    await agave.systems.add(storage_request("private"))
    assert "private" not in {s.id async for s in bob.systems.list()}
    for attempt in (
        bob.systems.get("private"),
        bob.systems.update("private", storage_request("private")),
        bob.systems.delete("private"),
        bob.systems.enable("private"),
        bob.systems.update_role("private", "bob", "ADMIN"),
        bob.systems.list_roles("private").to_list(),
    ):
        with pytest.raises(NotFound, match="private"):
            await attempt
    assert (await agave.systems.get("private")).id == "private"


async def test_roles_grant_and_revoke_access(agave: AgaveClient, bob: AgaveClient) -> None:
    await agave.systems.add(storage_request("team"))
    roles = [(r.username, r.role) async for r in agave.systems.list_roles("team")]
    assert roles == [("testuser", "OWNER")]

    granted = await agave.systems.update_role("team", "bob", "user")
    assert (granted.username, granted.role) == ("bob", "USER")
    assert (await bob.systems.get("team")).id == "team"
    assert "team" in {s.id async for s in bob.systems.list()}
    assert (await bob.systems.get_role_for_user("team", "bob")).role == "USER"
    with pytest.raises(Forbidden):
        await bob.systems.update("team", storage_request("team"))
    with pytest.raises(Forbidden):
        await bob.systems.get_role_for_user("team", "testuser")

    await agave.systems.update_role_for_user("team", "bob", "ADMIN")
    assert (await bob.systems.update("team", storage_request("team", name="by bob"))).name == "by bob"
    roles = [(r.username, r.role) async for r in agave.systems.list_roles("team")]
    assert roles == [("testuser", "OWNER"), ("bob", "ADMIN")]
    assert (await agave.systems.get_role_for_user("team", "testuser")).role == "OWNER"

    with pytest.raises(BadRequest, match="owner"):
        await agave.systems.update_role("team", "testuser", "USER")
    with pytest.raises(BadRequest, match="OWNER"):
        await agave.systems.update_role("team", "carol", "OWNER")

    # NONE revokes.
    await agave.systems.update_role("team", "bob", "NONE")
    with pytest.raises(NotFound):
        await bob.systems.get("team")

    await agave.systems.update_role("team", "bob", "GUEST")
    await agave.systems.update_role("team", "carol", "USER")
    await agave.systems.delete_role_for_user("team", "bob")
    with pytest.raises(NotFound):
        await bob.systems.get("team")
    assert [r.username async for r in agave.systems.list_roles("team")] == ["testuser", "carol"]
    await agave.systems.delete_roles("team")
    assert [r.username async for r in agave.systems.list_roles("team")] == ["testuser"]
    assert (await agave.systems.get_role_for_user("team", "carol")).role == "NONE"


async def test_credentials_are_stored_but_their_secrets_never_served(
    agave: AgaveClient, bob: AgaveClient, platform: LocalPlatform
) -> None:
    await agave.systems.add(execution_request("creds"))
    served: list[Any] = []
    listed = [c async for c in agave.systems.list_credentials("creds")]
    served += [c.raw for c in listed]
    assert {(c.internal_username, c.credential_type, c.type) for c in listed} == {
        (None, "LOGIN", "SSHKEYS"),
        (None, "STORAGE", "PASSWORD"),
    }
    stored = await agave.systems.update_credentials_for_internal_user(
        "creds", "alice-int", {"type": "PASSWORD", "username": "alice", "password": SECRET}
    )
    served.append(stored.raw)
    assert (stored.internal_username, stored.credential_type, stored.username) == (
        "alice-int",
        "LOGIN",
        "alice",
    )
    by_type = await agave.systems.update_credentials_for_internal_user_by_type(
        "creds", "alice-int", "storage", {"type": "X509", "credential": SECRET}
    )
    served.append(by_type.raw)
    assert by_type.credential_type == "STORAGE" and by_type.type == "X509"
    top = await agave.systems.update_credentials(
        "creds", {"type": "PASSWORD", "username": "dave", "password": SECRET, "internalUsername": "dave-int"}
    )
    served.append(top.raw)
    assert top.internal_username == "dave-int"

    mine = [c async for c in agave.systems.list_credentials_for_internal_user("creds", "alice-int")]
    served += [c.raw for c in mine]
    assert sorted(c.credential_type or "" for c in mine) == ["LOGIN", "STORAGE"]
    one = await agave.systems.list_credentials_for_internal_user_by_type("creds", "alice-int", "LOGIN")
    served.append(one.raw)
    assert one.username == "alice"
    served += [c.raw async for c in agave.systems.list_credentials("creds")]
    served.append((await agave.systems.get("creds")).raw)

    text = json.dumps(served)
    assert SECRET not in text and "password" not in text and "privateKey" not in text
    # ... yet they are stored (the secret is kept for the system's use, not shown).
    rows = await platform.store.run(
        lambda c: [
            r[0] for r in c.execute("SELECT doc FROM agave_systems_credentials WHERE system_id = 'creds'")
        ]
    )
    assert sum(SECRET in doc for doc in rows) == 5  # the system's two, alice's two, dave's

    # A user without ADMIN on the system sees no credentials at all.
    await agave.systems.update_role("creds", "bob", "USER")
    with pytest.raises(Forbidden):
        await bob.systems.list_credentials("creds").to_list()
    with pytest.raises(Forbidden):
        await bob.systems.update_credentials("creds", {"type": "PASSWORD", "username": "x", "password": "y"})

    await agave.systems.delete_credentials_for_internal_user_by_type("creds", "alice-int", "STORAGE")
    with pytest.raises(NotFound):
        await agave.systems.list_credentials_for_internal_user_by_type("creds", "alice-int", "STORAGE")
    await agave.systems.delete_credentials_for_internal_user("creds", "alice-int")
    with pytest.raises(NotFound):
        await agave.systems.list_credentials_for_internal_user("creds", "alice-int").to_list()
    # Deleting all credentials removes every internal user's; the system's own stay.
    await agave.systems.delete_credentials("creds")
    left = [(c.internal_username, c.credential_type) async for c in agave.systems.list_credentials("creds")]
    assert sorted(left, key=str) == [(None, "LOGIN"), (None, "STORAGE")]


async def test_listing_filters_search_and_paging(agave: AgaveClient, bob: AgaveClient) -> None:
    for n in range(3):
        await agave.systems.add(storage_request(f"page-{n}"))
    await agave.systems.add(execution_request("page-exec"))

    async def ids(**kwargs: Any) -> list[str]:
        return [s.id async for s in agave.systems.list(**kwargs)]

    assert set(await ids(type="storage")) == {DEFAULT_STORAGE_SYSTEM, "page-0", "page-1", "page-2"}
    assert set(await ids(type="EXECUTION")) == {DEFAULT_EXECUTION_SYSTEM, "page-exec"}
    assert set(await ids(public=False)) == {"page-0", "page-1", "page-2", "page-exec"}
    assert set(await ids(public=True)) == {DEFAULT_STORAGE_SYSTEM, DEFAULT_EXECUTION_SYSTEM}
    assert set(await ids(default=True)) == {DEFAULT_STORAGE_SYSTEM, DEFAULT_EXECUTION_SYSTEM}
    assert set(await ids(default=False)) == {"page-0", "page-1", "page-2", "page-exec"}
    assert await ids(search={"id.like": "page-*", "type.eq": "STORAGE"}) == ["page-0", "page-1", "page-2"]
    assert await ids(search={"storage.host": "data.example.org", "type": "EXECUTION"}) == ["page-exec"]
    assert await ids(search={"public.eq": True}, type="STORAGE") == [DEFAULT_STORAGE_SYSTEM]
    # One page at a time, stopping on the short page.
    pages = [len(p) async for p in agave.systems.list(limit=4).pages()]
    assert pages == [4, 2]
    assert len(await ids(limit=2, offset=3)) == 3
    # filter= projects the answer; the summary still parses.
    projected = await agave.systems.list(filter=["id", "type"], search={"id.eq": "page-0"}).to_list()
    assert [(s.id, s.type, s.name) for s in projected] == [("page-0", "STORAGE", None)]
    assert set(projected[0].raw) == {"id", "type"}
    with pytest.raises(BadRequest, match="system type"):
        await agave.systems.list(type="CLOUD").to_list()


async def test_agavepy_style_booleans_and_trailing_slashes(platform: LocalPlatform) -> None:
    headers = {"Authorization": f"Bearer {platform.agave.access_token}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(
            platform.agave_url + "/systems/v2/?type=STORAGE&default=True", headers=headers
        ) as response:
            body = await response.json()
        assert [s["id"] for s in body["result"]] == [DEFAULT_STORAGE_SYSTEM]
        async with http.get(
            platform.agave_url + f"/systems/v2/{DEFAULT_STORAGE_SYSTEM}/roles/", headers=headers
        ) as r:
            assert r.status == 200 and (await r.json())["result"][0]["role"] == "OWNER"


@pytest.mark.parametrize("bad", ["", "..", ".", "%2e%2e"])
async def test_bad_ids_fail_before_any_request(agave: AgaveClient, platform: LocalPlatform, bad: str) -> None:
    before = platform.stats.count(path="/agave/systems/*")
    calls = [
        lambda: agave.systems.get(bad),
        lambda: agave.systems.delete(bad),
        lambda: agave.systems.update(bad, storage_request("x")),
        lambda: agave.systems.enable(bad),
        lambda: agave.systems.clone(DEFAULT_STORAGE_SYSTEM, bad),
        lambda: agave.systems.get_role_for_user(DEFAULT_STORAGE_SYSTEM, bad),
        lambda: agave.systems.update_role(DEFAULT_STORAGE_SYSTEM, bad, "USER"),
        lambda: agave.systems.delete_role_for_user(bad, "bob"),
        lambda: agave.systems.delete_credentials_for_internal_user(DEFAULT_STORAGE_SYSTEM, bad),
        lambda: agave.systems.list_credentials_for_internal_user_by_type(
            DEFAULT_STORAGE_SYSTEM, bad, "LOGIN"
        ),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"system_id|new_id|username|internal_username|body"):
            await call()
    with pytest.raises(ValueError, match="system_id"):
        agave.systems.list_roles(bad)
    assert platform.stats.count(path="/agave/systems/*") == before


async def test_bad_arguments_name_themselves_before_any_request(
    agave: AgaveClient, platform: LocalPlatform
) -> None:
    before = platform.stats.requests
    with pytest.raises(TypeError, match="system_id"):
        await agave.systems.get(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="body"):
        await agave.systems.add("not a dict")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="action"):
        await agave.systems.manage(DEFAULT_STORAGE_SYSTEM, {"action": "EXPLODE"})
    with pytest.raises(ValueError, match="role"):
        await agave.systems.update_role(DEFAULT_STORAGE_SYSTEM, "bob", "KING")
    with pytest.raises(ValueError, match="credential_type"):
        await agave.systems.list_credentials_for_internal_user_by_type(DEFAULT_STORAGE_SYSTEM, "x", "WEB")
    with pytest.raises(ValueError, match=r"body\['type'\]") as caught:
        await agave.systems.update_credentials(DEFAULT_STORAGE_SYSTEM, {"password": SECRET})
    assert SECRET not in str(caught.value)
    with pytest.raises(TypeError, match="default"):
        agave.systems.list(default="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        agave.systems.list(search={"limit": 5})
    assert platform.stats.requests == before


def test_unknown_enumeration_values_from_a_newer_server_parse() -> None:
    from aioplatform.agave.models import System, structure

    system = structure(
        {
            "id": "future",
            "type": "QUANTUM",
            "status": "HIBERNATING",
            "scheduler": "CUSTOM_FLUX",
            "storage": {"protocol": "IPFS", "auth": {"type": "WEBAUTHN"}, "newField": 1},
            "queues": [{"name": "q", "shiny": True}],
            "brandNew": {"x": 1},
        },
        System,
    )
    assert (system.type, system.status, system.scheduler) == ("QUANTUM", "HIBERNATING", "CUSTOM_FLUX")
    assert system.storage is not None and system.storage.protocol == "IPFS"
    assert system.storage["newField"] == 1 and system.queues[0]["shiny"] is True
    assert system["brandNew"] == {"x": 1}


async def test_a_lost_answer_re_sends_a_role_grant_but_never_a_clone(platform: LocalPlatform) -> None:
    policy = RetryPolicy(max_attempts=3, backoff_base=0.01, backoff_cap=0.02)
    async with client_for(platform, retry=policy) as agave:
        await agave.systems.add(storage_request("lossy"))
        roles = "/agave/systems/v2/lossy/roles"
        platform.faults.script(f"POST {roles}", ["drop_after"])
        assert (await agave.systems.update_role("lossy", "bob", "USER")).role == "USER"
        assert platform.stats.count("POST", roles) == 2
        assert [r.username async for r in agave.systems.list_roles("lossy")] == ["testuser", "bob"]

        platform.faults.script("PUT /agave/systems/v2/lossy", ["drop_after"])
        with pytest.raises(TransportError):
            await agave.systems.clone("lossy", "lossy-copy")
        assert platform.stats.count("PUT", "/agave/systems/v2/lossy") == 1
        assert (await agave.systems.get("lossy-copy")).owner == "testuser"  # made once, answer lost

        platform.faults.script("PUT /agave/systems/v2/lossy", ["drop_after"])
        assert (await agave.systems.disable("lossy")).available is False  # setting a state: re-sent
        assert platform.stats.count("PUT", "/agave/systems/v2/lossy") == 3


async def test_rlike_search_runs_in_linear_time_or_is_refused(agave: AgaveClient) -> None:
    await agave.systems.add(storage_request("re-alpha"))
    await agave.systems.add(storage_request("re-beta"))
    found = [s.id async for s in agave.systems.list(search={"id.rlike": "^re-(al|xx)pha$"})]
    assert found == ["re-alpha"]
    # A backreference cannot run in linear time: refused with a 400, never run by a backtracker.
    with pytest.raises(BadRequest, match="regular expression"):
        await agave.systems.list(search={"id.rlike": r"(a)\1"}).to_list()


async def test_granting_roles_to_many_users_gives_one_outcome_each(
    agave: AgaveClient, bob: AgaveClient, platform: LocalPlatform
) -> None:
    await agave.systems.add(storage_request("crowd"))
    before = platform.stats.requests
    with pytest.raises(ValueError, match="role"):
        await agave.systems.update_roles_many("crowd", {"bob": "USER", "carol": "EMPEROR"})
    assert platform.stats.requests == before

    result = await agave.systems.update_roles_many(
        "crowd", {"bob": "USER", "carol": "ADMIN", "testuser": "GUEST", "dave": "GUEST"}, concurrency=2
    )
    assert len(result) == 4 and not result.ok
    assert [(r.username, r.role) for r in result.values] == [
        ("bob", "USER"),
        ("carol", "ADMIN"),
        ("dave", "GUEST"),
    ]
    assert [type(e.exception).__name__ for e in result.errors] == ["BadRequest"]  # the owner's role stays
    assert (await bob.systems.get("crowd")).id == "crowd"
    assert [r.username async for r in agave.systems.list_roles("crowd")] == [
        "testuser",
        "bob",
        "carol",
        "dave",
    ]
