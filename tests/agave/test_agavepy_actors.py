"""agavepy 0.9.5's actors operations, unmodified, against the embedded Agave's TLS site.

Every one of agavepy's 24 actors operations and its alias ones is called, including a
binary message (agavepy's ``sendBinaryMessage``), the stray ``environment=<keys>``
parameter agavepy adds to ``sendMessage``, and the raw result download
(``getOneExecutionResult``, not enveloped); each result is checked against the store.
Uses the harness of test_agavepy_interop.py (a platform of its own on port 443).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from aioplatform.testing import LocalPlatform

from .agavepy_harness import agavepy_client, agavepy_platform, query


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    with agavepy_platform(tmp_path_factory.mktemp("agavepy-actors-home")) as p:
        p.agave.actor_step_seconds = 0.02
        yield p


@pytest.fixture(scope="module")
def ag(platform: LocalPlatform) -> Any:
    return agavepy_client(platform)


def _wait(ag: Any, actor_id: str, execution_id: str) -> Any:
    for _ in range(200):
        execution = ag.actors.getExecution(actorId=actor_id, executionId=execution_id)
        if execution["status"] == "COMPLETE":
            return execution
        time.sleep(0.02)
    raise AssertionError(f"execution {execution_id} did not complete")


def test_actor_crud_state_permissions_workers(platform: LocalPlatform, ag: Any) -> None:
    actor = ag.actors.add(body={"image": "abacosamples/wc", "name": "agavepy-wc", "stateless": False})
    actor_id = actor["id"]
    assert actor["status"] == "SUBMITTED" and actor["owner"] == platform.agave.username
    assert query(platform, "SELECT owner FROM agave_actors_actors WHERE id = ?", actor_id) == [
        (platform.agave.username,)
    ]
    assert actor_id in [a["id"] for a in ag.actors.list()]
    assert ag.actors.get(actorId=actor_id)["name"] == "agavepy-wc"
    updated = ag.actors.update(
        actorId=actor_id, body={"image": "abacosamples/wc", "description": "via agavepy"}
    )
    assert updated["description"] == "via agavepy"
    [(doc,)] = query(platform, "SELECT doc FROM agave_actors_actors WHERE id = ?", actor_id)
    assert json.loads(doc)["description"] == "via agavepy"

    ag.actors.updateState(actorId=actor_id, body={"seen": 3})
    assert ag.actors.getState(actorId=actor_id)["state"] == {"seen": 3}
    [(state,)] = query(platform, "SELECT state FROM agave_actors_actors WHERE id = ?", actor_id)
    assert json.loads(state) == {"seen": 3}

    platform.call(lambda: platform.agave.add_user("carol", "pw-carol"))
    perms = ag.actors.updatePermissions(actorId=actor_id, body={"user": "carol", "level": "READ"})
    assert perms["carol"] == "READ"
    assert ag.actors.getPermissions(actorId=actor_id) == {platform.agave.username: "UPDATE", "carol": "READ"}
    assert query(platform, "SELECT level FROM agave_actors_permissions WHERE username = 'carol'") == [
        ("READ",)
    ]

    workers = ag.actors.listWorkers(actorId=actor_id)
    assert len(workers) == 1
    assert ag.actors.getWorker(actorId=actor_id, workerId=workers[0]["id"])["id"] == workers[0]["id"]
    stateless = ag.actors.add(body={"image": "abacosamples/wc"})
    # Abaco answers result null: agavepy's model for it (no result field) hands back the envelope.
    added = ag.actors.addWorker(actorId=stateless["id"], body={"num": 2})
    assert added["result"] is None and added["message"].startswith("Scheduled 2 new worker(s)")
    assert (
        len(query(platform, "SELECT id FROM agave_actors_workers WHERE actor_id = ?", stateless["id"])) == 3
    )
    victim = ag.actors.listWorkers(actorId=stateless["id"])[0]["id"]
    ag.actors.deleteWorker(actorId=stateless["id"], workerId=victim)
    assert (
        len(query(platform, "SELECT id FROM agave_actors_workers WHERE actor_id = ?", stateless["id"])) == 2
    )

    ag.actors.delete(actorId=stateless["id"])
    assert query(platform, "SELECT id FROM agave_actors_actors WHERE id = ?", stateless["id"]) == []
    with pytest.raises(requests.HTTPError) as missing:
        ag.actors.get(actorId=stateless["id"])
    assert missing.value.response.status_code == 404 and missing.value.response.json()["result"] is None


def test_messages_json_and_binary_executions_logs_and_raw_results(platform: LocalPlatform, ag: Any) -> None:
    actor_id = ag.actors.add(body={"image": "abacosamples/wc"})["id"]
    sent = ag.actors.sendMessage(
        actorId=actor_id, body={"message": "count these"}, environment={"FOO": "bar"}
    )
    assert sent["msg"] == "count these"
    [(env, message)] = query(
        platform, "SELECT environment, message FROM agave_actors_executions WHERE id = ?", sent["executionId"]
    )
    assert (
        json.loads(env) == {"FOO": "bar"} and json.loads(message) == "count these"
    )  # the stray 'environment' dropped

    payload = b"\x00\x01binary\xff" * 10
    binary = ag.actors.sendBinaryMessage(
        actorId=actor_id, message=payload, headers={"Content-Type": "application/octet-stream"}
    )
    assert binary["msg"] == "binary - omitted"
    [(stored,)] = query(
        platform, "SELECT binary FROM agave_actors_executions WHERE id = ?", binary["executionId"]
    )
    assert bytes(stored) == payload

    assert ag.actors.getMessages(actorId=actor_id)["messages"] >= 0
    for execution_id in (sent["executionId"], binary["executionId"]):
        assert _wait(ag, actor_id, execution_id)["actorId"] == actor_id
    summary = ag.actors.listExecutions(actorId=actor_id)
    assert sorted(e["id"] for e in summary["executions"]) == sorted(
        [sent["executionId"], binary["executionId"]]
    )
    logs = ag.actors.getExecutionLogs(actorId=actor_id, executionId=sent["executionId"])
    assert "count these" in logs["logs"] and "FOO" in logs["logs"]
    raw = ag.actors.getOneExecutionResult(actorId=actor_id, executionId=binary["executionId"])
    assert raw.content == payload  # the raw body, not enveloped
    text = ag.actors.getOneExecutionResult(actorId=actor_id, executionId=sent["executionId"])
    assert text.content == b"count these"

    # agavepy 0.9.5 cannot read any answer to deleteMessages: its spec names a response model
    # it does not define. The purge itself reaches the server.
    platform.agave.actor_step_seconds = 10_000.0
    queued = ag.actors.sendMessage(actorId=actor_id, body={"message": "never runs"})
    with pytest.raises(KeyError, match="ActorMessagesDeleteResponse"):
        ag.actors.deleteMessages(actorId=actor_id)
    platform.agave.actor_step_seconds = 0.02
    assert ag.actors.getExecution(actorId=actor_id, executionId=queued["executionId"])["status"] == "ERROR"


def test_nonces_and_aliases(platform: LocalPlatform, ag: Any) -> None:
    actor_id = ag.actors.add(body={"image": "abacosamples/wc"})["id"]
    nonce = ag.actors.addNonce(actorId=actor_id, body={"maxUses": 5, "level": "READ"})
    assert nonce["remainingUses"] == 5 and nonce["level"] == "READ"
    assert query(platform, "SELECT level, max_uses FROM agave_actors_nonces WHERE id = ?", nonce["id"]) == [
        ("READ", 5)
    ]
    assert [n["id"] for n in ag.actors.listNonces(actorId=actor_id)] == [nonce["id"]]
    assert ag.actors.getNonce(actorId=actor_id, nonceId=nonce["id"])["actorId"] == actor_id
    ag.actors.deleteNonce(actorId=actor_id, nonceId=nonce["id"])
    assert query(platform, "SELECT id FROM agave_actors_nonces WHERE id = ?", nonce["id"]) == []

    alias = ag.actors.addAlias(body={"alias": "agavepy-alias", "actorId": actor_id})
    assert alias["actorId"] == actor_id
    assert "agavepy-alias" in [a["alias"] for a in ag.actors.listAliases()]
    assert ag.actors.getAlias(alias="agavepy-alias")["actorId"] == actor_id
    assert query(platform, "SELECT actor_id FROM agave_actors_aliases WHERE alias = 'agavepy-alias'") == [
        (actor_id,)
    ]
    ag.actors.deleteAlias(alias="agavepy-alias")
    assert query(platform, "SELECT actor_id FROM agave_actors_aliases WHERE alias = 'agavepy-alias'") == []
