"""saltant-py 0.4.0, unmodified, against the embedded platform and the real saltant server.

The same calls run on both (``[embedded]``, ``[real]``), so whatever saltant-py relies
on is pinned on both sides; what needs instances to finish runs on the embedded
service only (the real server here has no worker).

saltant-py is blocking (requests), sends form-encoded bodies (booleans as "True",
lists as repeated keys, JSON fields as text), concatenates filters into the URL
without encoding and asks for everything in one page of 2**63-1 items.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import pytest
from saltant.client import Client
from saltant.exceptions import AuthenticationError, BadHttpRequestError

from aioplatform.testing import LocalPlatform
from tests.interop.saltant_server import SaltantServer

from .conftest import unique


@attrs.frozen
class SyncBackend:
    url: str
    token: str
    platform: LocalPlatform | None  # None: the real server


@pytest.fixture(params=["embedded", "real"])
def sync_backend(request: pytest.FixtureRequest) -> Iterator[SyncBackend]:
    if request.param == "real":
        server: SaltantServer = request.getfixturevalue("saltant_server")
        yield SyncBackend(server.url, server.admin_token, None)
        return
    platform: LocalPlatform = request.getfixturevalue("local_platform")
    service = platform.saltant
    service.publish_delay, service.run_delay, service.run_duration = 0.01, 0.01, 0.05
    yield SyncBackend(platform.saltant_url, platform.saltant_token, platform)


@pytest.fixture
def sync_client(sync_backend: SyncBackend) -> Client:
    return Client(base_api_url=sync_backend.url, auth_token=sync_backend.token)


def test_saltant_py_rejects_a_bad_token(sync_backend: SyncBackend) -> None:
    with pytest.raises(AuthenticationError):
        Client(base_api_url=sync_backend.url, auth_token="0" * 40)


def test_saltant_py_creates_lists_clones_terminates_and_waits(
    sync_backend: SyncBackend, sync_client: Client
) -> None:
    types = sync_client.container_task_types
    task_type = types.create(
        name=unique("hello"), command_to_run="echo", container_image="busybox", container_type="docker",
        required_arguments=["who"], required_arguments_default_values={"who": "world"},
    )  # fmt: skip
    whitelist = sync_client.task_whitelists.create(
        name=unique("wl"), whitelisted_container_task_types=[task_type.id]
    )
    queue_name = unique("q")
    queue = sync_client.task_queues.create(name=queue_name, whitelists=[whitelist.id])
    assert queue.active and queue.whitelists == [whitelist.id]

    manager = sync_client.container_task_instances
    run_name = f"first run {unique()}"
    instance = manager.create(task_type.id, queue.id, arguments={"n": 1}, name=run_name)
    assert instance.state == "created" and instance.arguments == {"n": 1, "who": "world"}
    assert manager.get(instance.uuid).uuid == instance.uuid

    clones = manager.clone_many([instance.uuid, instance.uuid])
    assert len({c.uuid for c in clones} | {instance.uuid}) == 3
    listed = manager.list({"name": run_name})  # sent unencoded: ?name=first run ...
    assert {i.uuid for i in listed} == {instance.uuid} | {c.uuid for c in clones}

    if sync_backend.platform is not None:  # the simulated worker finishes it
        finished = instance.wait_until_finished(refresh_period=0.02)
        assert finished.state == "successful" and finished.datetime_finished is not None
        assert manager.terminate(instance.uuid).state == "successful"  # finished: unchanged
    else:  # no worker: the revoke is sent, the state stays what publishing made it
        assert manager.terminate(instance.uuid).state == "published"

    sync_client_queue = sync_client.task_queues.get(name=queue_name)
    sync_client_queue.description = "patched"
    assert sync_client_queue.patch().description == "patched"
    assert sync_client.task_queues.put(
        queue.id, queue_name, "put", False, True, True, True, True, [whitelist.id]
    ).description == "put"  # fmt: skip


def test_saltant_py_terminate_reaches_terminated(local_platform: LocalPlatform) -> None:
    # embedded only: `terminated` is reported by the worker that receives the revoke
    service = local_platform.saltant
    sync_client = Client(base_api_url=local_platform.saltant_url, auth_token=local_platform.saltant_token)
    types = sync_client.executable_task_types
    task_type = types.create(name="exe", command_to_run="true", json_file_option="--json")
    whitelist = sync_client.task_whitelists.create(
        name="wl2", whitelisted_executable_task_types=[task_type.id]
    )
    queue = sync_client.task_queues.create(name="q2", whitelists=[whitelist.id])
    service.publish_delay = 10_000.0
    manager = sync_client.executable_task_instances
    instance = manager.create(task_type.id, queue.id)
    manager.terminate_many([instance.uuid])
    assert instance.wait_until_finished(refresh_period=0.02).state == "terminated"


def test_saltant_py_task_types_whitelists_and_users(sync_client: Client) -> None:
    types = sync_client.container_task_types
    name = unique("t")
    task_type = types.create(
        name=name, command_to_run=f"a-{name}", container_image="img", container_type="singularity"
    )
    task_type.description = "changed"
    assert task_type.put().description == "changed"
    assert types.get(name=name).description == "changed"
    assert [t.id for t in types.list({"container_type": "singularity", "command_to_run": f"a-{name}"})] == [
        task_type.id
    ]

    whitelists = sync_client.task_whitelists
    w_name = unique("w")
    whitelist = whitelists.create(name=w_name, description="d")
    patched = whitelists.patch(whitelist.id, whitelisted_container_task_types=[task_type.id])
    assert patched.whitelisted_container_task_types == [task_type.id]
    assert whitelists.get(id=whitelist.id).whitelisted_container_task_types == [task_type.id]
    with pytest.raises(ValueError):
        whitelists.get(id=1, name=w_name)

    assert "admin" in [u.username for u in sync_client.users.list()]
    assert sync_client.users.get("admin").email == "admin@localhost"
    with pytest.raises(BadHttpRequestError):
        types.create(
            name=name, command_to_run="a", container_image="img", container_type="docker"
        )  # duplicate
