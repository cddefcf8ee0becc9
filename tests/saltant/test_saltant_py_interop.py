"""saltant-py 0.4.0, unmodified, against the embedded platform: proof it speaks saltant's protocol.

saltant-py is blocking (requests), sends form-encoded bodies (booleans as "True",
lists as repeated keys, JSON fields as text), concatenates filters into the URL
without encoding and asks for everything in one page of 2**63-1 items.
"""

from __future__ import annotations

import pytest
from saltant.client import Client
from saltant.exceptions import AuthenticationError, BadHttpRequestError

from aioplatform.testing import LocalPlatform


@pytest.fixture
def sync_client(local_platform: LocalPlatform) -> Client:
    service = local_platform.saltant
    service.publish_delay, service.run_delay, service.run_duration = 0.01, 0.01, 0.05
    return Client(base_api_url=local_platform.saltant_url, auth_token=local_platform.saltant_token)


def test_saltant_py_rejects_a_bad_token(local_platform: LocalPlatform) -> None:
    with pytest.raises(AuthenticationError):
        Client(base_api_url=local_platform.saltant_url, auth_token="0" * 40)


def test_saltant_py_creates_lists_clones_terminates_and_waits(sync_client: Client) -> None:
    types = sync_client.container_task_types
    task_type = types.create(
        name="hello", command_to_run="echo", container_image="busybox", container_type="docker",
        required_arguments=["who"], required_arguments_default_values={"who": "world"},
    )  # fmt: skip
    whitelist = sync_client.task_whitelists.create(name="wl", whitelisted_container_task_types=[task_type.id])
    queue = sync_client.task_queues.create(name="q", whitelists=[whitelist.id])
    assert queue.active and queue.whitelists == [whitelist.id]

    manager = sync_client.container_task_instances
    instance = manager.create(task_type.id, queue.id, arguments={"n": 1}, name="first run")
    assert instance.state == "created" and instance.arguments == {"n": 1, "who": "world"}
    assert manager.get(instance.uuid).uuid == instance.uuid

    clones = manager.clone_many([instance.uuid, instance.uuid])
    assert len({c.uuid for c in clones} | {instance.uuid}) == 3
    listed = manager.list({"name": "first run"})  # sent unencoded: ?name=first run
    assert {i.uuid for i in listed} == {instance.uuid} | {c.uuid for c in clones}

    finished = instance.wait_until_finished(refresh_period=0.02)
    assert finished.state == "successful" and finished.datetime_finished is not None
    assert manager.terminate(instance.uuid).state == "successful"  # finished: unchanged

    sync_client_queue = sync_client.task_queues.get(name="q")
    sync_client_queue.description = "patched"
    assert sync_client_queue.patch().description == "patched"
    assert sync_client.task_queues.put(
        queue.id, "q", "put", False, True, True, True, True, [whitelist.id]
    ).description == "put"  # fmt: skip


def test_saltant_py_terminate_reaches_terminated(local_platform: LocalPlatform, sync_client: Client) -> None:
    types = sync_client.executable_task_types
    task_type = types.create(name="exe", command_to_run="true", json_file_option="--json")
    whitelist = sync_client.task_whitelists.create(
        name="wl2", whitelisted_executable_task_types=[task_type.id]
    )
    queue = sync_client.task_queues.create(name="q2", whitelists=[whitelist.id])
    local_platform.saltant.publish_delay = 10_000.0
    manager = sync_client.executable_task_instances
    instance = manager.create(task_type.id, queue.id)
    manager.terminate_many([instance.uuid])
    assert instance.wait_until_finished(refresh_period=0.02).state == "terminated"


def test_saltant_py_task_types_whitelists_and_users(sync_client: Client) -> None:
    types = sync_client.container_task_types
    task_type = types.create(
        name="t", command_to_run="a", container_image="img", container_type="singularity"
    )
    task_type.description = "changed"
    assert task_type.put().description == "changed"
    assert types.get(name="t").description == "changed"
    assert [t.id for t in types.list({"container_type": "singularity"})] == [task_type.id]

    whitelists = sync_client.task_whitelists
    whitelist = whitelists.create(name="w", description="d")
    patched = whitelists.patch(whitelist.id, whitelisted_container_task_types=[task_type.id])
    assert patched.whitelisted_container_task_types == [task_type.id]
    assert whitelists.get(id=whitelist.id).whitelisted_container_task_types == [task_type.id]
    with pytest.raises(ValueError):
        whitelists.get(id=1, name="w")

    assert [u.username for u in sync_client.users.list()] == ["admin"]
    assert sync_client.users.get("admin").email == "admin@localhost"
    with pytest.raises(BadHttpRequestError):
        types.create(
            name="t", command_to_run="a", container_image="img", container_type="docker"
        )  # duplicate
