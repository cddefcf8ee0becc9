"""Task types, queues, whitelists and users: every saltant-py operation, and the models' methods."""

from __future__ import annotations

import pytest

from aioplatform import BadRequest, NotFound
from aioplatform.saltant import ContainerTaskType, ExecutableTaskType, SaltantClient, TaskQueue, User
from aioplatform.testing import LocalPlatform


async def test_container_task_types_create_get_put_sync(client: SaltantClient) -> None:
    types = client.container_task_types
    created = await types.create(
        "build", "make", "gcc:13", "docker", description="compile", logs_path="/logs",
        environment_variables=["HOME"], required_arguments=["target"],
        required_arguments_default_values={"target": "all"},
    )  # fmt: skip
    assert isinstance(created, ContainerTaskType) and created.user == "admin"
    assert created.environment_variables == ["HOME"] and created.required_arguments_default_values == {
        "target": "all"
    }
    assert (created.logs_path, created.results_path) == ("/logs", "")
    created.container_image = "gcc:14"
    updated = await created.put()
    assert updated.container_image == "gcc:14" and updated.id == created.id
    stale = await types.get(id=created.id)
    await types.put(
        created.id, "build", "compile", "make -j", None, None, None, None, None, "gcc:14", "singularity"
    )  # fmt: skip
    assert (await stale.sync()).container_type == "singularity" and stale.command_to_run == "make -j"
    with pytest.raises(ValueError, match="container_type"):
        await types.create("x", "y", "z", "podman")


async def test_executable_task_types_create_get_put(client: SaltantClient) -> None:
    types = client.executable_task_types
    created = await types.create("script", "./run.sh", json_file_option="--json")
    assert isinstance(created, ExecutableTaskType) and created.json_file_option == "--json"
    created.json_file_option = None
    assert (await created.put()).json_file_option is None
    assert [t.name async for t in types.list({"command_to_run__endswith": ".sh"})] == ["script"]


async def test_task_queues_create_patch_put_and_model_methods(client: SaltantClient) -> None:
    queues = client.task_queues
    queue = await queues.create("gpu", description="fast", runs_executable_tasks=False)
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
    whitelist = await client.task_whitelists.create("wl")
    put = await queues.put(queue.id, "gpu2", "", False, True, True, True, True, [whitelist.id])
    assert (put.name, put.whitelists, put.active) == ("gpu2", [whitelist.id], True)
    assert (await queue.sync()).name == "gpu2"
    queue.description, queue.whitelists = "via put", []
    assert (await queue.put()).description == "via put"
    assert (await queues.get(id=queue.id)).whitelists == []
    with pytest.raises(BadRequest, match='whitelists: Invalid pk "99"'):
        await queues.patch(queue.id, whitelists=[99])
    with pytest.raises(TypeError, match="private"):
        await queues.create("q", private="yes")  # type: ignore[arg-type]


async def test_task_queue_filters_on_booleans_and_owner(client: SaltantClient) -> None:
    await client.task_queues.create("on")
    await client.task_queues.create("off", active=False)
    assert [q.name async for q in client.task_queues.list({"active": False})] == ["off"]
    assert [q.name async for q in client.task_queues.list({"active": True, "user__username": "admin"})] == [
        "on"
    ]
    assert [q.name async for q in client.task_queues.list({"user__username__startswith": "nob"})] == []


async def test_task_whitelists_create_patch_put(client: SaltantClient) -> None:
    a = await client.container_task_types.create("a", "true", "busybox", "docker")
    b = await client.executable_task_types.create("b", "true")
    whitelists = client.task_whitelists
    whitelist = await whitelists.create("both", whitelisted_container_task_types=[a.id])
    patched = await whitelists.patch(whitelist.id, whitelisted_executable_task_types=[b.id])
    assert (patched.whitelisted_container_task_types, patched.whitelisted_executable_task_types) == (
        [a.id],
        [b.id],
    )
    emptied = await whitelists.patch(whitelist.id, whitelisted_container_task_types=[])
    assert emptied.whitelisted_container_task_types == []  # JSON can say "empty"; a form could not
    whitelist.description = "described"
    assert (await whitelist.put()).description == "described"
    whitelist.name = "renamed"
    assert (await whitelist.patch()).name == "renamed"  # saltant-py's alias of put()
    whitelist.name = "stale"
    assert (await whitelist.sync()) is whitelist and whitelist.name == "renamed"
    await whitelists.patch(whitelist.id, name="both")
    assert (await whitelists.get(name="both")).whitelisted_container_task_types == [a.id]
    with pytest.raises(BadRequest, match="whitelisted_executable_task_types"):
        await whitelists.put(whitelist.id, "both", "", [], [b.id + 100])


async def test_users_list_get_and_sync(platform: LocalPlatform, client: SaltantClient) -> None:
    await platform.saltant.add_user("zoe", "zoe@example.org")
    await platform.saltant.add_user("amy")
    users = [u async for u in client.users.list()]
    assert [u.username for u in users] == ["admin", "amy", "zoe"]
    zoe = await client.users.get("zoe")
    assert isinstance(zoe, User) and zoe.email == "zoe@example.org"
    assert (await zoe.sync()) is zoe
    assert [u.username async for u in client.users.list({"email__contains": "example"})] == ["zoe"]
    with pytest.raises(NotFound):
        await client.users.get("nobody")


async def test_listing_more_than_a_page_of_queues(client: SaltantClient) -> None:
    for i in range(7):
        await client.task_queues.create(f"q{i}")
    pager = client.task_queues.list(page_size=3)
    assert [len(p.items) async for p in pager.pages()] == [3, 3, 1]
    assert [q.name for q in await pager.to_list(max_items=4)] == ["q0", "q1", "q2", "q3"]
    assert [q.name async for q in client.task_queues.list({"page": 2, "page_size": 3})] == [
        "q3",
        "q4",
        "q5",
        "q6",
    ]
    with pytest.raises(TypeError, match="filters"):
        client.task_queues.list({"name": object()})
