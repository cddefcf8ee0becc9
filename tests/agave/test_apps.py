"""Agave apps: every operation of ``client.apps`` against the embedded Agave.

Besides CRUD and publish/clone/enable/disable/erase, these pin the permission rules (a
second, non-admin user), that an app must name usable systems, and that bad input fails
before any request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from aioplatform.agave import AgaveClient
from aioplatform.core.errors import BadRequest, Conflict, Forbidden, NotFound, TransportError
from aioplatform.core.retry import RetryPolicy
from aioplatform.testing import FaultRule, LocalPlatform
from aioplatform.testing.agave.apps import lookup_app
from aioplatform.testing.agave.defaults import DEFAULT_EXECUTION_SYSTEM, DEFAULT_STORAGE_SYSTEM, SEEDED_APP

from .conftest import client_for
from .test_systems import execution_request


def app_request(name: str = "hello", version: str = "1.0", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "version": version,
        "label": "Hello",
        "shortDescription": "Says hello",
        "executionSystem": DEFAULT_EXECUTION_SYSTEM,
        "executionType": "CLI",
        "deploymentSystem": DEFAULT_STORAGE_SYSTEM,
        "deploymentPath": f"/apps/{name}-{version}",
        "templatePath": "wrapper.sh",
        "testPath": "test.sh",
        "tags": ["greeting", "demo"],
        "ontology": ["http://example.org/hello"],
        "inputs": [{"id": "names", "value": {"default": "names.txt", "required": True}}],
        "parameters": [{"id": "loud", "value": {"type": "bool", "default": False}}],
        "outputs": [{"id": "greetings", "value": {"default": "out.txt"}}],
    }
    body.update(overrides)
    return body


@pytest.fixture
async def bob(platform: LocalPlatform) -> AsyncIterator[AgaveClient]:
    """A second user, not a tenant admin."""
    await platform.agave.add_user("bob", "bob-password")
    access, refresh = await platform.agave.issue_token("bob")
    async with client_for(platform, token=access, refresh_token=refresh) as client:
        yield client


async def test_the_seeded_app_is_public_with_its_input_and_parameter(
    bob: AgaveClient, platform: LocalPlatform
) -> None:
    app = await bob.apps.get(SEEDED_APP)
    assert app.is_public and app.execution_system == DEFAULT_EXECUTION_SYSTEM and app.available
    assert [i.id for i in app.inputs] == ["query1"]
    assert [(p.id, p.value["type"], p.default) for p in app.parameters] == [
        ("printLongestLine", "bool", False)
    ]
    assert app.default_queue == "normal" and app.deployment_system == DEFAULT_STORAGE_SYSTEM
    assert app.last_modified is not None and app.uuid is not None and app.uuid.endswith("-005")
    # The contract jobs use.
    found = await platform.store.run(lambda c: lookup_app(c, SEEDED_APP, "bob"))
    assert found is not None and found["executionSystem"] == DEFAULT_EXECUTION_SYSTEM
    assert found["inputs"][0]["id"] == "query1" and found["deploymentPath"] == "/apps/wc-1.00"
    assert await platform.store.run(lambda c: lookup_app(c, "nope-1.0", "bob")) is None


async def test_statuses_on_the_wire(platform: LocalPlatform) -> None:
    headers = {"Authorization": f"Bearer {platform.agave.access_token}"}
    url = platform.agave_url + "/apps/v2/"
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(url, json=app_request()) as response:
            assert response.status == 201
            created = (await response.json())["result"]
        assert created["_links"]["self"]["href"] == url + "hello-1.0"
        async with http.post(url + "hello-1.0", json=app_request()) as response:
            assert response.status == 201 and (await response.json())["result"]["revision"] == 2
        async with http.put(url + "hello-1.0", json={"action": "publish"}) as response:
            assert response.status == 202 and (await response.json())["result"]["id"] == "hello-1.0u1"
        async with http.put(url + "hello-1.0", json={"action": "clone", "name": "hi"}) as response:
            assert response.status == 202
        async with http.put(url + "hello-1.0", json={"action": "disable"}) as response:
            assert response.status == 200 and (await response.json())["result"]["available"] is False
        async with http.delete(url + "hi-1.0") as response:
            body = await response.json()
            assert response.status == 200 and "result" not in body and body["status"] == "success"
        async with http.get(url + "?publicOnly=True") as response:
            assert {a["id"] for a in (await response.json())["result"]} == {SEEDED_APP, "hello-1.0u1"}


async def test_add_get_update_delete(agave: AgaveClient, platform: LocalPlatform) -> None:
    app = await agave.apps.add(app_request())
    assert (app.id, app.revision, app.owner, app.is_public) == ("hello-1.0", 1, "testuser", False)
    assert app.tags == ["greeting", "demo"] and app.parallelism == "SERIAL"
    assert [i.id for i in app.inputs] == ["names"] and app.outputs[0].default == "out.txt"
    assert app.default_queue == "normal"  # the execution system's default queue
    got = await agave.apps.get("hello-1.0")
    assert got.uuid == app.uuid and got.label == "Hello"

    updated = await agave.apps.update("hello-1.0", app_request(label="Hello again", tags=[]))
    assert updated.revision == 2 and updated.label == "Hello again" and updated.tags == []
    assert updated.uuid == app.uuid
    # Registering the same name and version again updates it too.
    again = await agave.apps.add(app_request(label="Third"))
    assert again.id == "hello-1.0" and again.revision == 3 and again.label == "Third"
    with pytest.raises(BadRequest, match="must match"):
        await agave.apps.update("hello-1.0", app_request(version="2.0"))

    await agave.apps.delete("hello-1.0")
    with pytest.raises(NotFound, match=r"hello-1\.0"):
        await agave.apps.get("hello-1.0")
    deleted = await platform.store.run(
        lambda c: c.execute("SELECT deleted FROM agave_apps_apps WHERE id = 'hello-1.0'").fetchone()[0]
    )
    assert deleted == 1
    # A deleted id can be registered anew.
    assert (await agave.apps.add(app_request())).revision == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": None}, "'name'"),
        ({"version": "one"}, "'version'"),
        ({"executionSystem": None}, "'executionSystem'"),
        ({"deploymentPath": ""}, "'deploymentPath'"),
        ({"templatePath": None}, "'templatePath'"),
        ({"executionSystem": "no-such-system"}, "no-such-system"),
        ({"executionSystem": DEFAULT_STORAGE_SYSTEM}, "not an EXECUTION system"),
        ({"deploymentSystem": DEFAULT_EXECUTION_SYSTEM}, "not a STORAGE system"),
        ({"deploymentSystem": "gone"}, "gone"),
        ({"defaultQueue": "express"}, "defaultQueue express"),
        ({"parallelism": "QUANTUM"}, "parallelism"),
        ({"parameters": [{"id": "x", "value": {"type": "complex"}}]}, "value.type"),
        ({"inputs": [{"id": "a"}, {"id": "a"}]}, "unique"),
        ({"inputs": "nope"}, "'inputs'"),
    ],
)
async def test_add_refuses_an_incomplete_app_or_unusable_systems(
    agave: AgaveClient, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        await agave.apps.add(app_request(**change))
    with pytest.raises(NotFound):
        await agave.apps.get("hello-1.0")


async def test_an_app_cannot_name_another_users_private_system(agave: AgaveClient, bob: AgaveClient) -> None:
    await agave.systems.add(execution_request("admins-hpc"))
    with pytest.raises(BadRequest, match="admins-hpc"):
        await bob.apps.add(app_request(executionSystem="admins-hpc"))
    # With a USER role on it, bob may.
    await agave.systems.update_role("admins-hpc", "bob", "USER")
    app = await bob.apps.add(app_request(executionSystem="admins-hpc"))
    assert app.execution_system == "admins-hpc" and app.execution_type == "CLI"


async def test_publish_makes_numbered_public_copies(agave: AgaveClient, bob: AgaveClient) -> None:
    await agave.apps.add(app_request())
    first = await agave.apps.publish("hello-1.0")
    assert (first.id, first.is_public, first.revision) == ("hello-1.0u1", True, 1)
    second = await agave.apps.manage("hello-1.0", {"action": "PUBLISH"})
    assert second is not None and second.id == "hello-1.0u2"
    assert (await bob.apps.get("hello-1.0u1")).is_public
    with pytest.raises(NotFound):
        await bob.apps.get("hello-1.0")  # the private original stays private
    with pytest.raises(BadRequest, match="public apps cannot be updated"):
        await agave.apps.update("hello-1.0u1", app_request())

    # A public app must run on a public execution system.
    await agave.systems.add(execution_request("private-hpc"))
    await agave.apps.add(app_request("onhpc", executionSystem="private-hpc"))
    with pytest.raises(BadRequest, match="public"):
        await agave.apps.publish("onhpc-1.0")
    moved = await agave.apps.publish("onhpc-1.0", execution_system=DEFAULT_EXECUTION_SYSTEM, name="onexec")
    assert moved.id == "onexec-1.0u1" and moved.execution_system == DEFAULT_EXECUTION_SYSTEM


async def test_publishing_takes_a_tenant_admin_or_a_publisher_role(
    agave: AgaveClient, bob: AgaveClient
) -> None:
    await bob.apps.add(app_request("bobs"))
    with pytest.raises(Forbidden, match="PUBLISHER"):
        await bob.apps.publish("bobs-1.0")
    await agave.systems.update_role(DEFAULT_EXECUTION_SYSTEM, "bob", "PUBLISHER")
    published = await bob.apps.publish("bobs-1.0")
    assert published.id == "bobs-1.0u1" and published.owner == "bob" and published.is_public


async def test_clone_makes_a_private_copy_for_the_caller(agave: AgaveClient, bob: AgaveClient) -> None:
    clone = await bob.apps.clone(SEEDED_APP, name="my-wc")
    assert (clone.id, clone.owner, clone.is_public, clone.revision) == ("my-wc-1.00", "bob", False, 1)
    assert [i.id for i in clone.inputs] == ["query1"]
    assert "my-wc-1.00" not in {a.id async for a in agave.apps.list()}
    with pytest.raises(Conflict, match="already exists"):
        await bob.apps.clone(SEEDED_APP, name="my-wc")
    other = await bob.apps.clone("my-wc-1.00", version="2.0", deployment_path="/apps/v2copy")
    assert other.id == "my-wc-2.0" and other.deployment_path == "/apps/v2copy"


async def test_enable_disable_and_erase(
    agave: AgaveClient, bob: AgaveClient, platform: LocalPlatform
) -> None:
    await agave.apps.add(app_request())
    assert (await agave.apps.disable("hello-1.0")).available is False
    assert (await agave.apps.get("hello-1.0")).available is False
    assert (await agave.apps.enable("hello-1.0")).available is True
    with pytest.raises(Forbidden, match="permission"):
        await bob.apps.disable(SEEDED_APP)
    assert await agave.apps.erase("hello-1.0") is None
    with pytest.raises(NotFound):
        await agave.apps.get("hello-1.0")
    rows = await platform.store.run(
        lambda c: c.execute("SELECT COUNT(*) FROM agave_apps_apps WHERE id = 'hello-1.0'").fetchone()[0]
    )
    assert rows == 0


async def test_permissions_grant_and_revoke_access(agave: AgaveClient, bob: AgaveClient) -> None:
    await agave.apps.add(app_request())
    pems = [(p.username, p.read, p.write, p.execute) async for p in agave.apps.list_permissions("hello-1.0")]
    assert pems == [("testuser", True, True, True)]
    with pytest.raises(NotFound):
        await bob.apps.get("hello-1.0")
    assert "hello-1.0" not in {a.id async for a in bob.apps.list()}

    granted = await agave.apps.update_application_permissions("hello-1.0", "bob", "read_execute")
    assert (granted.username, granted.read, granted.write, granted.execute) == ("bob", True, False, True)
    assert (await bob.apps.get("hello-1.0")).id == "hello-1.0"
    assert "hello-1.0" in {a.id async for a in bob.apps.list()}
    with pytest.raises(Forbidden):
        await bob.apps.update("hello-1.0", app_request())
    with pytest.raises(Forbidden):
        await bob.apps.update_application_permissions("hello-1.0", "carol", "READ")

    await agave.apps.update_permissions_for_user("hello-1.0", "bob", "ALL")
    assert (await bob.apps.update("hello-1.0", app_request(label="bob's"))).label == "bob's"
    mine = await bob.apps.list_permissions_for_user("hello-1.0", "bob").to_list()
    assert [(p.read, p.write, p.execute) for p in mine] == [(True, True, True)]
    nobody = await agave.apps.list_permissions_for_user("hello-1.0", "carol").to_list()
    assert [(p.username, p.read, p.write, p.execute) for p in nobody] == [("carol", False, False, False)]
    with pytest.raises(BadRequest, match="owner"):
        await agave.apps.update_application_permissions("hello-1.0", "testuser", "READ")

    # NONE revokes.
    await agave.apps.update_application_permissions("hello-1.0", "bob", "NONE")
    with pytest.raises(NotFound):
        await bob.apps.get("hello-1.0")

    await agave.apps.update_application_permissions("hello-1.0", "bob", "READ")
    await agave.apps.update_application_permissions("hello-1.0", "carol", "EXECUTE")
    await agave.apps.delete_permissions_for_user("hello-1.0", "bob")
    with pytest.raises(NotFound):
        await bob.apps.get("hello-1.0")
    assert [p.username async for p in agave.apps.list_permissions("hello-1.0")] == ["testuser", "carol"]
    await agave.apps.delete_permissions("hello-1.0")
    assert [p.username async for p in agave.apps.list_permissions("hello-1.0")] == ["testuser"]


async def test_listings_by_name_tag_ontology_and_system(agave: AgaveClient) -> None:
    await agave.systems.add(execution_request("hpc2"))
    await agave.apps.add(app_request("hello", "1.0"))
    await agave.apps.add(app_request("hello", "2.0", tags=["other"], executionSystem="hpc2"))
    await agave.apps.add(app_request("bye", "1.0", ontology=["http://example.org/bye"]))
    await agave.apps.publish("hello-1.0")

    async def ids(pager: Any) -> list[str]:
        return sorted([a.id async for a in pager])

    everything = {SEEDED_APP, "hello-1.0", "hello-2.0", "bye-1.0", "hello-1.0u1"}
    assert set(await ids(agave.apps.list())) == everything
    assert await ids(agave.apps.list(public_only=True)) == ["hello-1.0u1", SEEDED_APP]
    assert await ids(agave.apps.list(private_only=True)) == ["bye-1.0", "hello-1.0", "hello-2.0"]
    assert await ids(agave.apps.list_by_name("hello")) == ["hello-1.0", "hello-1.0u1", "hello-2.0"]
    assert await ids(agave.apps.list_by_name("hello", public_only=True)) == ["hello-1.0u1"]
    assert await ids(agave.apps.list_by_tag("demo")) == ["bye-1.0", "hello-1.0", "hello-1.0u1", SEEDED_APP]
    assert await ids(agave.apps.list_by_tag("other")) == ["hello-2.0"]
    assert await ids(agave.apps.list_by_ontology_term("http://example.org/bye")) == ["bye-1.0"]
    assert await ids(agave.apps.list_by_system_id("hpc2")) == ["hello-2.0"]
    assert await ids(agave.apps.list_by_system_id(DEFAULT_STORAGE_SYSTEM, private_only=True)) == [
        "bye-1.0",
        "hello-1.0",
        "hello-2.0",
    ]
    assert await ids(agave.apps.list(search={"name.like": "hel*", "version.eq": "2.0"})) == ["hello-2.0"]
    assert await ids(agave.apps.list(search={"executionSystem": "hpc2"})) == ["hello-2.0"]
    assert await ids(agave.apps.list(search={"tags.like": "*other*"})) == ["hello-2.0"]
    assert await ids(agave.apps.list(search={"revision.gt": 0, "isPublic": True})) == [
        "hello-1.0u1",
        SEEDED_APP,
    ]
    pages = [len(p) async for p in agave.apps.list(limit=3).pages()]
    assert pages == [3, 2]
    summary = (await agave.apps.list_by_name("bye").to_list())[0]
    assert summary.short_description == "Says hello" and summary.revision == 1 and summary.last_modified


async def test_job_submission_form_names_the_inputs_and_parameters(agave: AgaveClient) -> None:
    form = await agave.apps.get_job_submission_form(SEEDED_APP)
    assert form.startswith("<form") and 'name="inputs.query1"' in form
    assert 'name="parameters.printLongestLine"' in form and 'value="wc-1.00"' in form
    with pytest.raises(NotFound):
        await agave.apps.get_job_submission_form("nope-1.0")


@pytest.mark.parametrize("bad", ["", "..", ".", "%2E."])
async def test_bad_ids_fail_before_any_request(agave: AgaveClient, platform: LocalPlatform, bad: str) -> None:
    before = platform.stats.requests
    calls = [
        lambda: agave.apps.get(bad),
        lambda: agave.apps.delete(bad),
        lambda: agave.apps.update(bad, app_request()),
        lambda: agave.apps.publish(bad),
        lambda: agave.apps.erase(bad),
        lambda: agave.apps.get_job_submission_form(bad),
        lambda: agave.apps.update_application_permissions(SEEDED_APP, bad, "READ"),
        lambda: agave.apps.delete_permissions_for_user(SEEDED_APP, bad),
        lambda: agave.apps.update_permissions_for_user(bad, "bob", "READ"),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"app_id|username"):
            await call()
    for listing in (
        lambda: agave.apps.list_by_name(bad),
        lambda: agave.apps.list_by_tag(bad),
        lambda: agave.apps.list_by_ontology_term(bad),
        lambda: agave.apps.list_by_system_id(bad),
        lambda: agave.apps.list_permissions(bad),
        lambda: agave.apps.list_permissions_for_user(SEEDED_APP, bad),
    ):
        with pytest.raises(ValueError, match=r"name|tag|term|system_id|app_id|username"):
            listing()
    assert platform.stats.requests == before


async def test_bad_arguments_name_themselves_before_any_request(
    agave: AgaveClient, platform: LocalPlatform
) -> None:
    before = platform.stats.requests
    with pytest.raises(TypeError, match="app_id"):
        await agave.apps.get(3.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="body"):
        await agave.apps.add(["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="action"):
        await agave.apps.manage(SEEDED_APP, {"action": "explode"})
    with pytest.raises(ValueError, match="permission"):
        await agave.apps.update_application_permissions(SEEDED_APP, "bob", "OWN")
    with pytest.raises(ValueError, match="new name or version"):
        await agave.apps.clone(SEEDED_APP)
    with pytest.raises(TypeError, match="execution_system"):
        await agave.apps.publish(SEEDED_APP, execution_system=7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="public_only and private_only"):
        agave.apps.list(public_only=True, private_only=True)
    with pytest.raises(TypeError, match="public_only"):
        agave.apps.list(public_only="True")  # type: ignore[arg-type]
    assert platform.stats.requests == before


def test_unknown_enumeration_values_from_a_newer_server_parse() -> None:
    from aioplatform.agave.models import App, structure

    app = structure(
        {
            "id": "x-1.0",
            "parallelism": "GPU_FARM",
            "executionType": "KUBERNETES",
            "parameters": [{"id": "p", "value": {"type": "tensor"}, "details": {}, "semantics": {}}],
            "fromTheFuture": True,
        },
        App,
    )
    assert (app.parallelism, app.execution_type) == ("GPU_FARM", "KUBERNETES")
    assert app.parameters[0].value["type"] == "tensor" and app["fromTheFuture"] is True


async def test_a_lost_answer_re_sends_a_grant_but_never_a_publish(platform: LocalPlatform) -> None:
    policy = RetryPolicy(max_attempts=3, backoff_base=0.01, backoff_cap=0.02)
    async with client_for(platform, retry=policy) as agave:
        await agave.apps.add(app_request())
        pems = "/agave/apps/v2/hello-1.0/pems"
        platform.faults.script(f"POST {pems}", ["drop_after"])
        granted = await agave.apps.update_application_permissions("hello-1.0", "bob", "READ")
        assert granted.read and platform.stats.count("POST", pems) == 2
        assert [p.username async for p in agave.apps.list_permissions("hello-1.0")] == ["testuser", "bob"]

        platform.faults.script("PUT /agave/apps/v2/hello-1.0", ["drop_after"])
        with pytest.raises(TransportError):
            await agave.apps.publish("hello-1.0")
        assert platform.stats.count("PUT", "/agave/apps/v2/hello-1.0") == 1
        # The publish went through once (its answer was lost): one public copy, not two.
        assert [a.id async for a in agave.apps.list_by_name("hello", public_only=True)] == ["hello-1.0u1"]

        platform.faults.script("PUT /agave/apps/v2/hello-1.0", ["drop_after"])
        assert (await agave.apps.disable("hello-1.0")).available is False  # setting a state: re-sent
        assert platform.stats.count("PUT", "/agave/apps/v2/hello-1.0") == 3


async def test_sharing_with_many_users_loses_and_duplicates_nothing_under_faults() -> None:
    users = {f"user{n:02d}": ("READ_EXECUTE" if n % 2 else "READ") for n in range(24)}
    rule = FaultRule(
        match="POST /agave/apps/v2/hello-1.0/pems",
        rate_429=0.15,
        rate_503=0.15,
        drop_after=0.1,
        retry_after=0,
    )
    policy = RetryPolicy(max_attempts=8, backoff_base=0.005, backoff_cap=0.02)
    async with LocalPlatform(faults=rule, seed=5) as platform, client_for(platform, retry=policy) as agave:
        await agave.apps.add(app_request())
        result = await agave.apps.update_permissions_many("hello-1.0", users, concurrency=6)
        assert result.ok and len(result) == len(users)
        assert [p.username for p in result.values] == list(users)
        assert platform.faults.count(match="POST /agave/apps/v2/hello-1.0/pems") > 0
        rows = await platform.store.run(
            lambda c: c.execute(
                "SELECT username, read, write, execute FROM agave_apps_pems WHERE app_id = 'hello-1.0'"
            ).fetchall()
        )
        assert sorted((r[0], bool(r[1]), bool(r[2]), bool(r[3])) for r in rows) == [
            (name, True, False, permission == "READ_EXECUTE") for name, permission in sorted(users.items())
        ]


async def test_sharing_with_many_users_checks_every_entry_first(
    agave: AgaveClient, platform: LocalPlatform
) -> None:
    before = platform.stats.requests
    with pytest.raises(ValueError, match="username"):
        await agave.apps.update_permissions_many(SEEDED_APP, {"alice": "READ", "..": "READ"})
    with pytest.raises(ValueError, match="permission"):
        await agave.apps.update_permissions_many(SEEDED_APP, {"alice": "READ", "bob": "ROOT"})
    with pytest.raises(TypeError, match="permissions"):
        await agave.apps.update_permissions_many(SEEDED_APP, [("alice", "READ")])  # type: ignore[arg-type]
    assert platform.stats.requests == before


async def test_publish_takes_the_older_storage_system_name_for_the_deployment_system(
    agave: AgaveClient,
) -> None:
    from .test_systems import storage_request

    await agave.systems.add(storage_request("lab-store"))
    await agave.apps.add(app_request(deploymentSystem="lab-store"))
    with pytest.raises(BadRequest, match="lab-store is private"):
        await agave.apps.publish("hello-1.0")
    published = await agave.apps.manage(
        "hello-1.0", {"action": "publish", "storageSystem": DEFAULT_STORAGE_SYSTEM}
    )
    assert published is not None and published.deployment_system == DEFAULT_STORAGE_SYSTEM


async def test_may_execute_needs_an_execute_grant_where_lookup_needs_read(
    agave: AgaveClient, bob: AgaveClient, platform: LocalPlatform
) -> None:
    from aioplatform.testing.agave.apps import may_execute

    await agave.apps.add(app_request())

    def check(conn: Any) -> tuple[bool, bool, bool]:
        return (
            lookup_app(conn, "hello-1.0", "bob") is not None,
            may_execute(conn, "hello-1.0", "bob"),
            may_execute(conn, SEEDED_APP, "bob"),
        )

    assert await platform.store.run(check) == (False, False, True)
    await agave.apps.update_application_permissions("hello-1.0", "bob", "READ")
    assert await platform.store.run(check) == (True, False, True)
    await agave.apps.update_application_permissions("hello-1.0", "bob", "READ_EXECUTE")
    assert await platform.store.run(check) == (True, True, True)
