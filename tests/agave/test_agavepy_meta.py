"""agavepy 0.9.5's meta operations, unmodified, against the embedded Agave's TLS site.

Each result agavepy returns is checked against the embedded store. Uses the harness of
test_agavepy_interop.py (a platform of its own: agavepy needs port 443 at a host's root).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from aioplatform.testing import LocalPlatform

from .agavepy_harness import agavepy_client, agavepy_platform, query


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    with agavepy_platform(tmp_path_factory.mktemp("agavepy-meta-home")) as p:
        yield p


@pytest.fixture(scope="module")
def ag(platform: LocalPlatform) -> Any:
    return agavepy_client(platform)


def _record(platform: LocalPlatform, uuid: str) -> tuple[Any, ...] | None:
    rows = query(
        platform, "SELECT name, value, association_ids, owner FROM agave_meta_data WHERE uuid = ?", uuid
    )
    return rows[0] if rows else None


def test_metadata_add_get_update_list_with_q_and_delete(platform: LocalPlatform, ag: Any) -> None:
    made = ag.meta.addMetadata(body={"name": "agavepy sample", "value": {"depth": 3, "kind": "rock"}})
    assert made["uuid"].endswith("-012") and made["value"] == {"depth": 3, "kind": "rock"}
    name, value, _, owner = _record(platform, made["uuid"])  # type: ignore[misc]
    assert (name, json.loads(value), owner) == (
        "agavepy sample",
        {"depth": 3, "kind": "rock"},
        platform.agave.username,
    )
    # A string body is sent verbatim, labelled application/json.
    text = ag.meta.addMetadata(
        body=json.dumps({"name": "agavepy text", "value": [1, 2], "associationIds": "j-1"})
    )
    assert json.loads(_record(platform, text["uuid"])[2]) == ["j-1"]  # type: ignore[index]

    got = ag.meta.getMetadata(uuid=made["uuid"])
    assert got["name"] == "agavepy sample" and got["value"]["depth"] == 3

    # q with spaces: agavepy encodes them as '+'.
    found = ag.meta.listMetadata(q=json.dumps({"name": "agavepy sample"}))
    assert [m["uuid"] for m in found] == [made["uuid"]]
    deep = ag.meta.listMetadata(q=json.dumps({"value.depth": {"$gte": 3}, "value.kind": {"$in": ["rock"]}}))
    assert [m["uuid"] for m in deep] == [made["uuid"]]
    regex = ag.meta.listMetadata(q=json.dumps({"name": {"$regex": "^AGAVEPY ", "$options": "i"}}), limit=10)
    assert {m["uuid"] for m in regex} == {made["uuid"], text["uuid"]}
    paged = ag.meta.listMetadata(q=json.dumps({"name": {"$regex": "^agavepy"}}), limit=1, offset=1)
    assert len(paged) == 1

    updated = ag.meta.updateMetadata(
        uuid=made["uuid"], body={"name": "agavepy sample", "value": {"depth": 4}}
    )
    assert updated["value"] == {"depth": 4}
    assert json.loads(_record(platform, made["uuid"])[1]) == {"depth": 4}  # type: ignore[index]

    with pytest.raises(requests.HTTPError) as caught:
        ag.meta.listMetadata(q="{not json")
    assert caught.value.response.status_code == 400
    assert caught.value.response.json()["message"] == "Malformed JSON Query"

    assert ag.meta.deleteMetadata(uuid=made["uuid"]) is None
    assert ag.meta.deleteMetadata(uuid=text["uuid"]) is None
    assert _record(platform, made["uuid"]) is None and _record(platform, text["uuid"]) is None


def test_metadata_permissions(platform: LocalPlatform, ag: Any) -> None:
    made = ag.meta.addMetadata(body={"name": "shared by agavepy", "value": 1})
    uuid = made["uuid"]
    granted = ag.meta.updateMetadataPermissions(uuid=uuid, body={"username": "bob", "permission": "READ"})
    assert granted["permission"] == {"read": True, "write": False}
    pems = query(platform, "SELECT username, read, write FROM agave_meta_pems WHERE uuid = ?", uuid)
    assert pems == [("bob", 1, 0)]
    listed = ag.meta.listMetadataPermissions(uuid=uuid)
    assert {p["username"] for p in listed} == {platform.agave.username, "bob"}
    one = ag.meta.listMetadataPermissionsForUser(uuid=uuid, username="bob")
    assert one["username"] == "bob" and one["permission"] == {"read": True, "write": False}
    ag.meta.updateMetadataPermissionsForUser(uuid=uuid, username="carol", body={"permission": "READ_WRITE"})
    assert ("carol", 1, 1) in query(
        platform, "SELECT username, read, write FROM agave_meta_pems WHERE uuid = ?", uuid
    )
    ag.meta.deleteMetadataPermissionsForUser(uuid=uuid, username="carol")
    assert query(platform, "SELECT username FROM agave_meta_pems WHERE uuid = ?", uuid) == [("bob",)]
    ag.meta.deleteMetadataPermission(uuid=uuid)
    assert query(platform, "SELECT username FROM agave_meta_pems WHERE uuid = ?", uuid) == []
    ag.meta.deleteMetadata(uuid=uuid)


def test_schemas_and_their_permissions(platform: LocalPlatform, ag: Any) -> None:
    document = {"type": "object", "properties": {"depth": {"type": "number"}}, "required": ["depth"]}
    schema = ag.meta.addSchema(body=document)
    uuid = schema["uuid"]
    assert uuid.endswith("-013") and schema["schema"] == document
    stored = query(platform, "SELECT schema FROM agave_meta_schemas WHERE uuid = ?", uuid)
    assert [json.loads(s[0]) for s in stored] == [document]
    assert ag.meta.getSchema(uuid=uuid)["schema"] == document
    # searchSchema is declared as one schema and needs a dummy uuid (agave.md §8): agavepy
    # hands back the envelope, whose result is the list.
    searched = ag.meta.searchSchema(uuid="unused")
    result = searched["result"] if isinstance(searched, dict) and "result" in searched else searched
    assert uuid in {s["uuid"] for s in result}

    valid = ag.meta.addMetadata(body={"name": "checked", "value": {"depth": 1}, "schemaId": uuid})
    assert valid["schemaId"] == uuid
    with pytest.raises(requests.HTTPError) as caught:
        ag.meta.addMetadata(body={"name": "checked", "value": {"depth": "deep"}, "schemaId": uuid})
    assert caught.value.response.status_code == 400

    updated = ag.meta.updateSchema(uuid=uuid, body={"type": "object"})
    assert updated["schema"] == {"type": "object"}
    ag.meta.updateSchemaPermissions(uuid=uuid, body={"username": "bob", "permission": "READ"})
    assert {p["username"] for p in ag.meta.listSchemaPermissions(uuid=uuid)} == {
        platform.agave.username,
        "bob",
    }
    ag.meta.updateSchemaPermissionsForUser(uuid=uuid, username="carol", body={"permission": "ALL"})
    assert ag.meta.listSchemaPermissionsForUser(uuid=uuid, username="carol")["permission"]["write"]
    ag.meta.deleteSchemaPermissionsForUser(uuid=uuid, username="carol")
    assert query(
        platform, "SELECT username FROM agave_meta_pems WHERE kind = 'schemas' AND uuid = ?", uuid
    ) == [("bob",)]
    ag.meta.deleteSchemaPermissions(uuid=uuid)
    assert query(platform, "SELECT 1 FROM agave_meta_pems WHERE kind = 'schemas' AND uuid = ?", uuid) == []
    ag.meta.deleteMetadata(uuid=valid["uuid"])
    ag.meta.deleteSchema(uuid=uuid)
    assert query(platform, "SELECT 1 FROM agave_meta_schemas WHERE uuid = ?", uuid) == []
