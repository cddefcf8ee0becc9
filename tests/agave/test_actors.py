"""Agave actors (Abaco): every operation against the embedded platform, its envelope and
lifecycles, binary messages and raw results, permissions, nonces and aliases."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any

import aiohttp
import pytest

from aioplatform import BadRequest, Forbidden, NotFound
from aioplatform.agave import AgaveClient
from aioplatform.agave.models import (
    Actor,
    ActorPermissions,
    Execution,
    ExecutionsSummary,
    MessageReceipt,
    Nonce,
    Worker,
    structure,
)
from aioplatform.testing import LocalPlatform

from .conftest import client_for

IMAGE = "abacosamples/wc"


def stored(platform: LocalPlatform, sql: str, *args: Any) -> list[sqlite3.Row]:
    return platform.store.run_sync(lambda conn: conn.execute(sql, args).fetchall())


def fast(platform: LocalPlatform, seconds: float = 0.01) -> None:
    platform.agave.actor_step_seconds = seconds


async def finished(agave: AgaveClient, actor_id: str, execution_ids: list[str]) -> list[Execution]:
    result = await agave.actors.wait_executions(actor_id, execution_ids, deadline=20, poll_interval=0.01)
    result.raise_for_errors()
    return result.values


async def second_user(platform: LocalPlatform, name: str = "bob") -> AgaveClient:
    await platform.agave.add_user(name, "pw-" + name)
    access, _ = await platform.agave.issue_token(name)
    return client_for(platform, token=access, refresh_token=None)


# -- actors ------------------------------------------------------------------------------------


async def test_add_answers_200_with_the_abaco_envelope_and_the_actor_submitted(
    platform: LocalPlatform,
) -> None:
    platform.agave.actor_step_seconds = 10_000.0
    async with client_for(platform) as agave:
        response = await agave._request("POST", "actors/v2", json={"image": IMAGE, "name": "wc"})
        body = response.json()
        assert response.status == 200  # Abaco creates answer 200, not 201
        assert body["status"] == "success" and body["message"] == "Actor created successfully."
        assert body["version"] and body["result"]["status"] == "SUBMITTED"
        actor_id = body["result"]["id"]
        assert len(actor_id) == 13 and actor_id.isalnum()
        assert body["result"]["createTime"].endswith("Z") and "defaultEnvironment" in body["result"]
        gone = await agave._request("DELETE", f"actors/v2/{actor_id}")
        assert gone.json() == {
            "status": "success", "message": "Actor deleted successfully.", "version": body["version"],
            "result": None,
        }  # fmt: skip
        with pytest.raises(NotFound, match="actor not found"):
            await agave.actors.get(actor_id)
    assert stored(platform, "SELECT * FROM agave_actors_actors") == []


async def test_errors_carry_result_null_and_raise_typed(platform: LocalPlatform, agave: AgaveClient) -> None:
    with pytest.raises(NotFound, match="actor not found"):
        await agave.actors.get("NoSuchActor12")
    with pytest.raises(BadRequest, match="image is required"):
        await agave._call("POST", "actors/v2", json={"name": "no image"})


async def test_actor_lifecycle_get_list_update_delete(platform: LocalPlatform, agave: AgaveClient) -> None:
    fast(platform, 0.05)
    actor = await agave.actors.add(
        {"image": IMAGE, "name": "wc", "defaultEnvironment": {"MODE": "fast"}, "description": "words"}
    )
    assert isinstance(actor, Actor) and actor.status == "SUBMITTED" and actor.stateless
    assert actor.default_environment == {"MODE": "fast"} and actor.owner == platform.agave.username
    assert actor.create_time is not None and actor["_links"]["executions"].endswith("/executions")
    await asyncio.sleep(0.06)
    again = await agave.actors.get(actor.id)
    assert again.ready and again.name == "wc"
    listed = [a.id async for a in agave.actors.list()]
    assert listed == [actor.id]
    updated = await agave.actors.update(actor.id, {"image": "abacosamples/wc:2", "description": "new"})
    assert updated.status == "SUBMITTED" and updated.description == "new"  # a new image restarts it
    row = stored(platform, "SELECT doc FROM agave_actors_actors WHERE id = ?", actor.id)[0]
    assert json.loads(row["doc"])["image"] == "abacosamples/wc:2"
    await agave.actors.delete(actor.id)
    assert [a async for a in agave.actors.list()] == []


async def test_paging_the_actor_listing(platform: LocalPlatform, agave: AgaveClient) -> None:
    ids = [(await agave.actors.add({"image": IMAGE, "name": f"a{i}"})).id for i in range(5)]
    assert [a.id async for a in agave.actors.list(limit=2)] == ids
    assert [a.id async for a in agave.actors.list(limit=2, offset=3)] == ids[3:]


async def test_bad_arguments_fail_before_any_request(platform: LocalPlatform, agave: AgaveClient) -> None:
    before = platform.stats.requests
    with pytest.raises(ValueError, match="image"):
        await agave.actors.add({"name": "x"})
    with pytest.raises(ValueError, match="actor_id"):
        await agave.actors.get("..")
    with pytest.raises(TypeError, match="message"):
        await agave.actors.send_message("abc", {1, 2})
    with pytest.raises(ValueError, match="environment"):
        await agave.actors.send_message("abc", "hi", environment={"x-nonce": "steal"})
    with pytest.raises(ValueError, match="level"):
        await agave.actors.update_permissions("abc", "bob", "ADMIN")
    with pytest.raises(ValueError, match="max_uses"):
        await agave.actors.add_nonce("abc", max_uses=0)
    with pytest.raises(ValueError, match="level"):
        await agave.actors.add_nonce("abc", level="UPDATE")
    with pytest.raises(ValueError, match="nonce"):
        await agave.actors.get("abc", nonce="a&b")
    with pytest.raises(TypeError, match="messages"):
        await agave.actors.send_many("abc", "one string")
    with pytest.raises(ValueError, match=r"messages\[1\]"):
        await agave.actors.send_many("abc", ["ok", b""])
    with pytest.raises(ValueError, match="deadline"):
        await agave.actors.wait_executions("abc", ["e"], deadline=-1)
    assert platform.stats.requests == before


# -- messages, executions, logs, results -------------------------------------------------------


async def test_json_message_with_environment_runs_to_complete_with_logs_and_result(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    fast(platform)
    actor = await agave.actors.add({"image": IMAGE})
    receipt = await agave.actors.post_message(actor.id, {"words": 3}, environment={"FOO": "bar", "N": 2})
    assert isinstance(receipt, MessageReceipt) and receipt.msg == {"words": 3}
    row = stored(platform, "SELECT * FROM agave_actors_executions WHERE id = ?", receipt.execution_id)[0]
    assert json.loads(row["environment"]) == {"FOO": "bar", "N": "2"}  # the query became the environment
    execution_id = await agave.actors.send_message(actor.id, "count these words")
    done = await finished(agave, actor.id, [receipt.execution_id, execution_id])
    assert [e.status for e in done] == ["COMPLETE", "COMPLETE"]
    assert done[0].actor_id == actor.id and done[0].exit_code == 0 and done[0].finish_time is not None
    assert done[0].start_time is not None and done[0].message_received_time is not None
    logs = await agave.actors.get_execution_logs(actor.id, receipt.execution_id)
    assert "{'words': 3}" in logs.logs and '"FOO": "bar"' in logs.logs
    assert await agave.actors.get_execution_result(actor.id, receipt.execution_id) == b'{"words": 3}'
    assert await agave.actors.get_execution_result(actor.id, execution_id) == b"count these words"
    summary = await agave.actors.list_executions(actor.id)
    assert isinstance(summary, ExecutionsSummary) and summary.total_executions == 2
    assert sorted(summary.ids) == sorted([receipt.execution_id, execution_id])
    assert {e.status for e in summary.executions} == {"COMPLETE"}


async def test_binary_message_is_omitted_in_the_answer_and_returned_as_the_result(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    fast(platform)
    actor = await agave.actors.add({"image": IMAGE})
    payload = bytes(range(256)) * 4
    response = await agave._request(
        "POST", f"actors/v2/{actor.id}/messages", data=payload,
        headers={"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert response.json()["result"]["msg"] == "binary - omitted"
    execution_id = await agave.actors.send_binary_message(actor.id, payload)
    [row] = stored(platform, "SELECT binary, message FROM agave_actors_executions WHERE id = ?", execution_id)
    assert bytes(row["binary"]) == payload and row["message"] is None
    await finished(agave, actor.id, [execution_id])
    assert await agave.actors.get_execution_result(actor.id, execution_id) == payload
    assert "1024 bytes" in (await agave.actors.get_execution_logs(actor.id, execution_id)).logs


async def test_a_result_is_empty_until_the_execution_completes(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    platform.agave.actor_step_seconds = 10_000.0
    actor = await agave.actors.add({"image": IMAGE})
    execution_id = await agave.actors.send_message(actor.id, "later")
    assert (await agave.actors.get_execution(actor.id, execution_id)).status == "SUBMITTED"
    assert await agave.actors.get_execution_result(actor.id, execution_id) == b""
    assert (await agave.actors.get_execution_logs(actor.id, execution_id)).logs == ""
    with pytest.raises(NotFound, match="Execution not found"):
        await agave.actors.get_execution(actor.id, "NoSuchExec123")


async def test_one_actors_executions_do_not_finish_in_message_order(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    fast(platform, 0.02)
    actor = await agave.actors.add({"image": IMAGE})
    ids = [await agave.actors.send_message(actor.id, f"m{i}") for i in range(20)]
    done = await finished(agave, actor.id, ids)
    finishes = [e.finish_time for e in done]
    assert all(f is not None for f in finishes)
    assert finishes != sorted(finishes)  # type: ignore[type-var]  # abaco#13: no FIFO promise


async def test_mailbox_count_and_purge(platform: LocalPlatform, agave: AgaveClient) -> None:
    platform.agave.actor_step_seconds = 10_000.0
    actor = await agave.actors.add({"image": IMAGE})
    ids = [await agave.actors.send_message(actor.id, i) for i in range(3)]
    assert (await agave.actors.get_messages(actor.id)).messages == 3
    await agave.actors.delete_messages(actor.id)
    assert (await agave.actors.get_messages(actor.id)).messages == 0
    statuses = [(await agave.actors.get_execution(actor.id, i)).status for i in ids]
    assert statuses == ["ERROR"] * 3


# -- state, permissions, workers ---------------------------------------------------------------


async def test_state_of_stateful_and_stateless_actors(platform: LocalPlatform, agave: AgaveClient) -> None:
    stateful = await agave.actors.add({"image": IMAGE, "stateless": False})
    assert not stateful.stateless
    updated = await agave.actors.update_state(stateful.id, {"count": 7, "seen": ["a"]})
    assert updated.state == {"count": 7, "seen": ["a"]}
    assert (await agave.actors.get_state(stateful.id)).state == {"count": 7, "seen": ["a"]}
    stateless = await agave.actors.add({"image": IMAGE})
    with pytest.raises(NotFound, match=r"actor is stateless\."):
        await agave.actors.update_state(stateless.id, {"x": 1})
    with pytest.raises(BadRequest, match="cannot become stateless"):
        await agave.actors.update(stateful.id, {"image": IMAGE, "stateless": True})


async def test_permission_levels_none_read_execute_update(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    fast(platform)
    owner = platform.agave.username
    actor = await agave.actors.add({"image": IMAGE})
    assert (await agave.actors.get_permissions(actor.id)).permissions == {owner: "UPDATE"}
    async with await second_user(platform) as bob:
        with pytest.raises(NotFound):
            await bob.actors.get(actor.id)
        perms = await agave.actors.update_permissions(actor.id, "bob", "READ")
        assert isinstance(perms, ActorPermissions) and perms.level("bob") == "READ"
        assert (await bob.actors.get(actor.id)).id == actor.id
        assert [a.id async for a in bob.actors.list()] == [actor.id]
        with pytest.raises(Forbidden):
            await bob.actors.send_message(actor.id, "hi")
        await agave.actors.update_permissions(actor.id, "bob", "EXECUTE")
        execution_id = await bob.actors.send_message(actor.id, "hi")
        [row] = stored(platform, "SELECT executor FROM agave_actors_executions WHERE id = ?", execution_id)
        assert row[0] == "bob"
        with pytest.raises(Forbidden):
            await bob.actors.delete(actor.id)
        await agave.actors.update_permissions(actor.id, "bob", "UPDATE")
        await bob.actors.update(actor.id, {"image": IMAGE, "description": "by bob"})
        revoked = await agave.actors.update_permissions(actor.id, "bob", "NONE")
        assert revoked.level("bob") == "NONE" and "bob" not in revoked.permissions
        with pytest.raises(NotFound):
            await bob.actors.get(actor.id)


async def test_workers_add_list_get_delete(platform: LocalPlatform, agave: AgaveClient) -> None:
    actor = await agave.actors.add({"image": IMAGE})
    workers = await agave.actors.list_workers(actor.id)
    assert len(workers) == 1 and isinstance(workers[0], Worker)
    await agave.actors.add_worker(actor.id, 2)
    workers = await agave.actors.list_workers(actor.id)
    assert len(workers) == 3
    one = await agave.actors.get_worker(actor.id, workers[1].id)
    assert one.id == workers[1].id and one.ch_name and one.host_ip == "127.0.0.1"
    await agave.actors.delete_worker(actor.id, workers[1].id)
    assert len(stored(platform, "SELECT id FROM agave_actors_workers WHERE actor_id = ?", actor.id)) == 2
    with pytest.raises(NotFound):
        await agave.actors.get_worker(actor.id, workers[1].id)
    stateful = await agave.actors.add({"image": IMAGE, "stateless": False})
    with pytest.raises(BadRequest, match="only have 1 worker"):
        await agave.actors.add_worker(stateful.id)


# -- nonces ------------------------------------------------------------------------------------


async def test_nonces_add_list_get_delete(platform: LocalPlatform, agave: AgaveClient) -> None:
    actor = await agave.actors.add({"image": IMAGE})
    nonce = await agave.actors.add_nonce(actor.id, level="READ", max_uses=5, description="dashboard")
    assert isinstance(nonce, Nonce) and nonce.level == "READ" and nonce.max_uses == nonce.remaining_uses == 5
    assert nonce.id not in repr(nonce)  # the nonce is a credential
    assert [n.id for n in await agave.actors.list_nonces(actor.id)] == [nonce.id]
    assert (await agave.actors.get_nonce(actor.id, nonce.id)).description == "dashboard"
    await agave.actors.delete_nonce(actor.id, nonce.id)
    assert await agave.actors.list_nonces(actor.id) == []
    with pytest.raises(NotFound):
        await agave.actors.get_nonce(actor.id, nonce.id)


async def test_a_nonce_authorises_calls_without_a_token_up_to_its_level_and_uses(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    fast(platform)
    actor = await agave.actors.add({"image": IMAGE})
    reader = await agave.actors.add_nonce(actor.id, level="READ")
    runner = await agave.actors.add_nonce(actor.id, level="EXECUTE", max_uses=3)
    # A client whose own token is worthless: every call below passes on the nonce alone.
    async with client_for(platform, token="0" * 32, refresh_token=None) as stranger:
        assert (await stranger.actors.get(actor.id, nonce=reader.id)).id == actor.id
        with pytest.raises(Forbidden, match="Insufficient nonce permission level") as refused:
            await stranger.actors.send_message(actor.id, "hi", nonce=reader.id)
        assert reader.id not in str(refused.value) and reader.id not in refused.value.url
        first = await stranger.actors.send_message(actor.id, "one", nonce=runner.id)
        await stranger.actors.get_execution(actor.id, first, nonce=runner.id)
        await stranger.actors.send_message(actor.id, "two", nonce=runner.id)
        with pytest.raises(Forbidden, match="no remaining uses"):  # maxUses 3 spent
            await stranger.actors.send_message(actor.id, "three", nonce=runner.id)
        async with aiohttp.ClientSession() as http:  # a nonce never updates (nor deletes)
            url = f"{platform.agave_url}/actors/v2/{actor.id}"
            async with http.delete(url, params={"x-nonce": reader.id}) as refused_delete:
                assert refused_delete.status == 403
                assert (await refused_delete.json())["status"] == "error"
        other = await agave.actors.add({"image": IMAGE})
        with pytest.raises(BadRequest, match="not a nonce for this actor"):
            await stranger.actors.get(other.id, nonce=reader.id)
        with pytest.raises(BadRequest, match="no such nonce"):
            await stranger.actors.get(actor.id, nonce="AGAVE_nosuchnonce")
    spent = await agave.actors.get_nonce(actor.id, runner.id)
    assert spent.remaining_uses == 0 and spent.current_uses == 3 and spent.last_use_time is not None
    row = stored(platform, "SELECT remaining_uses FROM agave_actors_nonces WHERE id = ?", runner.id)[0]
    assert row[0] == 0
    executions = stored(platform, "SELECT executor FROM agave_actors_executions WHERE actor_id = ?", actor.id)
    assert [r[0] for r in executions] == [platform.agave.username] * 2  # run as the nonce's owner


# -- aliases -----------------------------------------------------------------------------------


async def test_aliases_name_an_actor_in_every_path(platform: LocalPlatform, agave: AgaveClient) -> None:
    fast(platform)
    actor = await agave.actors.add({"image": IMAGE})
    alias = await agave.actors.add_alias("word-count", actor.id)
    assert alias.alias == "word-count" and alias.actor_id == actor.id
    assert [a.alias for a in await agave.actors.list_aliases()] == ["word-count"]
    assert (await agave.actors.get_alias("word-count")).actor_id == actor.id
    assert (await agave.actors.get("word-count")).id == actor.id
    execution_id = await agave.actors.send_message("word-count", "via the alias")
    row = stored(platform, "SELECT actor_id FROM agave_actors_executions WHERE id = ?", execution_id)[0]
    assert row[0] == actor.id
    with pytest.raises(BadRequest, match="already in use"):
        await agave.actors.add_alias("word-count", actor.id)
    await agave.actors.delete_alias("word-count")
    assert await agave.actors.list_aliases() == []
    with pytest.raises(NotFound):
        await agave.actors.get_alias("word-count")


# -- models read both casings ------------------------------------------------------------------


def test_models_read_camel_and_snake_case_alike() -> None:
    camel = {
        "id": "A1", "image": IMAGE, "defaultEnvironment": {"K": "v"},
        "createTime": "2019-03-28T15:12:13.283Z", "lastUpdateTime": "2019-03-28 15:12:14.000000",
        "useContainerUid": True, "maxWorkers": 3,
    }  # fmt: skip
    snake = {
        "id": "A1", "image": IMAGE, "default_environment": {"K": "v"},
        "create_time": "2019-03-28T15:12:13.283Z", "last_update_time": "2019-03-28 15:12:14.000000",
        "use_container_uid": True, "max_workers": 3,
    }  # fmt: skip
    a, b = structure(camel, Actor), structure(snake, Actor)
    assert a == b and a.default_environment == {"K": "v"} and a.max_workers == 3 and a.use_container_uid
    assert a.create_time is not None and a.create_time.microsecond == 283000 and a.raw == camel
    assert structure({"executionId": "E", "msg": "m"}, MessageReceipt) == structure(
        {"execution_id": "E", "msg": "m"}, MessageReceipt
    )
    worker = structure({"id": "W", "host_id": "h", "last_execution": "2020-01-01T00:00:00Z"}, Worker)
    assert worker.host_id == "h" and worker.last_execution_time is not None
    nonce = structure({"id": "N", "actor_id": "A", "max_uses": 2, "remainingUses": 1}, Nonce)
    assert (nonce.actor_id, nonce.max_uses, nonce.remaining_uses) == ("A", 2, 1)
    run = structure({"id": "E", "actorId": "A", "status": "COMPLETE", "exit_code": 0}, Execution)
    assert run.finished and run.exit_code == 0


def test_executions_summary_reads_the_v15_shape_and_the_older_ids_list() -> None:
    v15 = structure(
        {"actorId": "A", "totalExecutions": 1, "totalRuntime": 1,
         "executions": [{"id": "E1", "status": "COMPLETE", "finishTime": "2020-01-01T00:00:01Z"}]},
        ExecutionsSummary,
    )  # fmt: skip
    older = structure({"actor_id": "A", "ids": ["E1", "E2"], "total_executions": 2}, ExecutionsSummary)
    assert v15.ids == ["E1"] and v15.executions[0].status == "COMPLETE" and v15.executions[0].finish_time
    assert v15.executions[0].raw["finishTime"] == "2020-01-01T00:00:01Z"
    assert older.ids == ["E1", "E2"] and [e.id for e in older.executions] == ["E1", "E2"]
    assert older.total_executions == 2 and older.actor_id == "A"


async def test_the_client_works_against_an_abaco_answering_snake_case(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    platform.agave.actor_case = "snake"  # Abaco's web.case setting
    fast(platform)
    raw = (
        await agave._request("POST", "actors/v2", json={"image": IMAGE, "defaultEnvironment": {"A": "b"}})
    ).json()
    assert "default_environment" in raw["result"] and "defaultEnvironment" not in raw["result"]
    actor = await agave.actors.get(raw["result"]["id"])
    assert actor.default_environment == {"A": "b"} and actor.create_time is not None
    receipt = await agave.actors.post_message(actor.id, "snake")
    assert receipt.execution_id and receipt.raw["execution_id"] == receipt.execution_id
    [done] = await finished(agave, actor.id, [receipt.execution_id])
    assert done.actor_id == actor.id and done.finish_time is not None and done.raw["actor_id"] == actor.id
    summary = await agave.actors.list_executions(actor.id)
    assert summary.ids == [receipt.execution_id] and summary.executions[0].finish_time is not None
    assert "total_executions" in summary.raw
    nonce = await agave.actors.add_nonce(actor.id, max_uses=4)
    assert nonce.max_uses == 4 and nonce.raw["remaining_uses"] == 4
    worker = (await agave.actors.list_workers(actor.id))[0]
    assert worker.host_ip == "127.0.0.1" and "ch_name" in worker.raw
