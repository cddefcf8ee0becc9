"""Task types, queues, whitelists and users: every saltant-py operation, and the models' methods.

Runs on the embedded service and on the real saltant server (see conftest.py).
"""

from __future__ import annotations

import pytest

from aioplatform import BadRequest, NotFound
from aioplatform.saltant import ContainerTaskType, ExecutableTaskType, SaltantClient, TaskQueue, User

from .conftest import Backend, unique

BACKENDS = ("embedded", "real")


async def test_container_task_types_create_get_put_sync(backend: Backend, client: SaltantClient) -> None:
    types = client.container_task_types
    name = unique("build")
    created = await types.create(
        name, "make", "gcc:13", "docker", description="compile", logs_path="/logs",
        environment_variables=["HOME"], required_arguments=["target"],
        required_arguments_default_values={"target": "all"},
    )  # fmt: skip
    assert isinstance(created, ContainerTaskType) and created.user == backend.admin
    assert created.environment_variables == ["HOME"] and created.required_arguments_default_values == {
        "target": "all"
    }
    assert (created.logs_path, created.results_path) == ("/logs", "")
    created.container_image = "gcc:14"
    updated = await created.put()
    assert updated.container_image == "gcc:14" and updated.id == created.id
    stale = await types.get(id=created.id)
    await types.put(
        created.id, name, "compile", "make -j", None, None, None, None, None, "gcc:14", "singularity"
    )  # fmt: skip
    assert (await stale.sync()).container_type == "singularity" and stale.command_to_run == "make -j"
    with pytest.raises(ValueError, match="container_type"):
        await types.create("x", "y", "z", "podman")


async def test_executable_task_types_create_get_put(client: SaltantClient) -> None:
    types = client.executable_task_types
    script = unique("script")
    created = await types.create(script, f"./{script}.sh", json_file_option="--json")
    assert isinstance(created, ExecutableTaskType) and created.json_file_option == "--json"
    created.json_file_option = None
    assert (await created.put()).json_file_option is None
    assert [t.name async for t in types.list({"command_to_run__endswith": f"{script}.sh"})] == [script]


async def test_task_queues_create_patch_put_and_model_methods(client: SaltantClient) -> None:
    queues = client.task_queues
    gpu = unique("gpu")
    queue = await queues.create(gpu, description="fast", runs_executable_tasks=False)
    assert isinstance(queue, TaskQueue)
    assert (queue.private, queue.runs_executable_tasks, queue.active, queue.whitelists) == (
        False,
        False,
        True,
        [],
    )
    patched = await queues.patch(queue.id, private=True)
    assert patched.private and patched.description == "fast"  # untouched fields stay
    queue.active = False
    assert (await queue.patch()).active is False
    whitelist = await client.task_whitelists.create(unique("wl"))
    put = await queues.put(queue.id, gpu + "2", "", False, True, True, True, True, [whitelist.id])
    assert (put.name, put.whitelists, put.active) == (gpu + "2", [whitelist.id], True)
    assert (await queue.sync()).name == gpu + "2"
    queue.description, queue.whitelists = "via put", []
    assert (await queue.put()).description == "via put"
    assert (await queues.get(id=queue.id)).whitelists == []
    with pytest.raises(BadRequest, match='whitelists: Invalid pk "999999999"'):
        await queues.patch(queue.id, whitelists=[999_999_999])
    with pytest.raises(TypeError, match="private"):
        await queues.create(unique("q"), private="yes")  # type: ignore[arg-type]


async def test_task_queue_filters_on_booleans_and_owner(backend: Backend, client: SaltantClient) -> None:
    prefix = unique("f")
    await client.task_queues.create(prefix + "-on")
    await client.task_queues.create(prefix + "-off", active=False)
    mine = {"name__startswith": prefix}
    assert [q.name async for q in client.task_queues.list({**mine, "active": False})] == [prefix + "-off"]
    assert [
        q.name
        async for q in client.task_queues.list({**mine, "active": True, "user__username": backend.admin})
    ] == [prefix + "-on"]
    assert [q.name async for q in client.task_queues.list({"user__username__startswith": "nob"})] == []


async def test_task_whitelists_create_patch_put(client: SaltantClient) -> None:
    a = await client.container_task_types.create(unique("a"), "true", "busybox", "docker")
    b = await client.executable_task_types.create(unique("b"), "true")
    whitelists = client.task_whitelists
    both = unique("both")
    whitelist = await whitelists.create(both, whitelisted_container_task_types=[a.id])
    patched = await whitelists.patch(whitelist.id, whitelisted_executable_task_types=[b.id])
    assert (patched.whitelisted_container_task_types, patched.whitelisted_executable_task_types) == (
        [a.id],
        [b.id],
    )
    emptied = await whitelists.patch(whitelist.id, whitelisted_container_task_types=[])
    assert emptied.whitelisted_container_task_types == []  # JSON can say "empty"; a form could not
    whitelist.description = "described"
    assert (await whitelist.put()).description == "described"
    renamed = unique("renamed")
    whitelist.name = renamed
    assert (await whitelist.patch()).name == renamed  # saltant-py's alias of put()
    whitelist.name = "stale"
    assert (await whitelist.sync()) is whitelist and whitelist.name == renamed
    await whitelists.patch(whitelist.id, name=both)
    assert (await whitelists.get(name=both)).whitelisted_container_task_types == [a.id]
    with pytest.raises(BadRequest, match="whitelisted_executable_task_types"):
        await whitelists.put(whitelist.id, both, "", [], [b.id + 100_000])


async def test_users_list_get_and_sync(backend: Backend, client: SaltantClient) -> None:
    tag = unique("u")
    zoe_name, amy_name = f"zoe-{tag}", f"amy-{tag}"
    await backend.add_user(zoe_name, f"{tag}@example.org")
    await backend.add_user(amy_name)
    users = [u.username async for u in client.users.list()]
    assert users == sorted(users) and backend.admin in users  # ordered by username
    assert [u for u in users if u.endswith(tag)] == [amy_name, zoe_name]
    zoe = await client.users.get(zoe_name)
    assert isinstance(zoe, User) and zoe.email == f"{tag}@example.org"
    assert (await zoe.sync()) is zoe
    assert [u.username async for u in client.users.list({"email__contains": tag})] == [zoe_name]
    with pytest.raises(NotFound):
        await client.users.get(unique("nobody"))


async def test_listing_more_than_a_page_of_queues(client: SaltantClient) -> None:
    prefix = unique("q")
    for i in range(7):
        await client.task_queues.create(f"{prefix}{i}")
    mine = {"name__startswith": prefix}
    pager = client.task_queues.list(mine, page_size=3)
    assert [len(p.items) async for p in pager.pages()] == [3, 3, 1]
    assert [q.name for q in await pager.to_list(max_items=4)] == [f"{prefix}{i}" for i in range(4)]
    assert [q.name async for q in client.task_queues.list({**mine, "page": 2, "page_size": 3})] == [
        f"{prefix}{i}" for i in range(3, 7)
    ]
    with pytest.raises(TypeError, match="filters"):
        client.task_queues.list({"name": object()})
