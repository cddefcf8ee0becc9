"""Agave meta: every metadata and schema operation, q, ordering, paging, schemas and permissions."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from typing import Any

import pytest

from aioplatform import BadRequest, NotFound, Unauthorized
from aioplatform.agave import AgaveClient
from aioplatform.agave.models import Metadata, MetadataSchema, MetaPermission
from aioplatform.testing import LocalPlatform


def stored(platform: LocalPlatform, sql: str, *args: Any) -> list[sqlite3.Row]:
    return platform.store.run_sync(lambda conn: conn.execute(sql, args).fetchall())


async def other_user(platform: LocalPlatform, name: str = "bob") -> AgaveClient:
    await platform.agave.add_user(name, f"{name}-password")
    access, _ = await platform.agave.issue_token(name)
    return AgaveClient(platform.agave_url, token=access)


async def names(agave: AgaveClient, q: Any, **kw: Any) -> list[str]:
    return [m.name async for m in agave.meta.list_metadata(q, **kw)]


# -- records ----------------------------------------------------------------------------------------


async def test_add_answers_201_and_stores_value_as_json(platform: LocalPlatform, agave: AgaveClient) -> None:
    body = {"name": "sample", "value": {"depth": 12.5, "tags": ["a", "b"]}, "associationIds": ["j-1"]}
    response = await agave._request("POST", "meta/v2/data", json=body)
    assert response.status == 201
    result = response.json()["result"]
    assert result["uuid"].endswith("-012") and result["owner"] == platform.agave.username
    assert result["value"] == body["value"] and result["associationIds"] == ["j-1"]
    [row] = stored(
        platform, "SELECT name, value, association_ids FROM agave_meta_data WHERE uuid = ?", result["uuid"]
    )
    assert json.loads(row["value"]) == body["value"] and json.loads(row["association_ids"]) == ["j-1"]
    assert result["_links"]["self"]["href"].endswith(f"/meta/v2/data/{result['uuid']}")


@pytest.mark.parametrize(
    "value", [[1, 2, {"x": None}], "plain text", 42, 3.5, True, {"nested": {"deep": [1]}}]
)
async def test_value_is_any_json_and_comes_back_parsed(agave: AgaveClient, value: Any) -> None:
    created = await agave.meta.add_metadata({"name": "any", "value": value})
    assert isinstance(created, Metadata) and created.value == value
    assert (await agave.meta.get_metadata(created.uuid)).value == value


async def test_a_single_association_id_string_is_read_as_a_list(agave: AgaveClient) -> None:
    response = await agave._request(
        "POST", "meta/v2/data", json={"name": "one", "value": 1, "associationIds": "job-7"}
    )
    assert response.json()["result"]["associationIds"] == ["job-7"]
    created = await agave.meta.add_metadata({"name": "two", "value": 2, "associationIds": "job-8"})
    assert created.association_ids == ["job-8"]


async def test_get_update_replaces_whole_and_delete(platform: LocalPlatform, agave: AgaveClient) -> None:
    created = await agave.meta.add_metadata({"name": "a", "value": {"x": 1, "y": 2}, "associationIds": ["j"]})
    got = await agave.meta.get_metadata(created.uuid)
    assert got.uuid == created.uuid and got.value == {"x": 1, "y": 2} and got.created is not None
    await asyncio.sleep(0.002)
    updated = await agave.meta.update_metadata(created.uuid, {"name": "b", "value": {"z": 3}})
    assert updated.name == "b" and updated.value == {"z": 3} and updated.association_ids == []
    assert updated.last_updated is not None and updated.created is not None
    assert updated.last_updated > updated.created
    response = await agave._request("DELETE", f"meta/v2/data/{created.uuid}")
    assert response.status == 200 and "result" not in response.json()
    assert stored(platform, "SELECT 1 FROM agave_meta_data WHERE uuid = ?", created.uuid) == []
    with pytest.raises(NotFound):
        await agave.meta.get_metadata(created.uuid)
    with pytest.raises(NotFound):
        await agave.meta.delete_metadata(created.uuid)


async def test_missing_name_or_value_is_refused_by_the_server(agave: AgaveClient) -> None:
    for body in ({"value": 1}, {"name": "x"}, {"name": "x", "value": None}, ["not", "an", "object"]):
        with pytest.raises(BadRequest):
            await agave._request("POST", "meta/v2/data", json=body)


async def test_bad_arguments_fail_before_any_request(platform: LocalPlatform, agave: AgaveClient) -> None:
    before = platform.stats.count(None, "/agave/meta/*")
    bad_calls = [
        lambda: agave.meta.add_metadata({"value": 1}),
        lambda: agave.meta.add_metadata({"name": "x"}),
        lambda: agave.meta.add_metadata({"name": "x", "value": object()}),
        lambda: agave.meta.add_metadata("name=x"),  # type: ignore[arg-type]
        lambda: agave.meta.add_metadata({"name": "x", "value": 1, "associationIds": [1]}),
        lambda: agave.meta.get_metadata(".."),
        lambda: agave.meta.get_metadata(None),  # type: ignore[arg-type]
        lambda: agave.meta.update_metadata_permissions("u", "bob", "EXECUTE"),
        lambda: agave.meta.update_schema_permissions_for_user("u", "..", "READ"),
        lambda: agave.meta.add_schema(["not a schema"]),  # type: ignore[arg-type]
        lambda: agave.meta.list_metadata("{not json").to_list(),
        lambda: agave.meta.list_metadata("[1]").to_list(),
        lambda: agave.meta.list_metadata(42).to_list(),  # type: ignore[arg-type]
        lambda: agave.meta.list_metadata(order="UP").to_list(),
        lambda: agave.meta.list_metadata(privileged="no").to_list(),  # type: ignore[arg-type]
        lambda: agave.meta.create_many({"name": "x", "value": 1}),  # type: ignore[arg-type]
        lambda: agave.meta.create_many([{"name": "x", "value": 1}, {"name": ""}]),
        lambda: agave.meta.delete_many("uuid"),
        lambda: agave.meta.delete_many(["ok", "."]),
    ]
    for call in bad_calls:
        with pytest.raises((ValueError, TypeError)):
            await call()
    assert platform.stats.count(None, "/agave/meta/*") == before


# -- q ------------------------------------------------------------------------------------------------


@pytest.fixture
async def samples(agave: AgaveClient) -> list[Metadata]:
    rows = [
        {
            "name": "alpha one",
            "value": {"x": 1, "kind": "rock", "tags": ["red", "hard"], "where": {"site": "A"}},
        },
        {"name": "beta", "value": {"x": 5, "kind": "Rock", "tags": ["blue"], "where": {"site": "B"}}},
        {"name": "gamma", "value": {"x": 10, "kind": "soil", "extra": True}, "associationIds": ["job-1"]},
        {"name": "delta", "value": "just text"},
    ]
    return [await agave.meta.add_metadata(r) for r in rows]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ({"name": "beta"}, {"beta"}),
        ({"value.kind": "rock"}, {"alpha one"}),
        ({"value.where.site": "B"}, {"beta"}),
        ({"value.tags": "blue"}, {"beta"}),  # an array matches when an element does
        ({"associationIds": "job-1"}, {"gamma"}),
        ({"value": "just text"}, {"delta"}),
        ({"value.x": {"$gt": 1}}, {"beta", "gamma"}),
        ({"value.x": {"$gte": 5, "$lt": 10}}, {"beta"}),
        ({"value.x": {"$lte": 5}}, {"alpha one", "beta"}),
        ({"value.x": {"$ne": 5}}, {"alpha one", "gamma", "delta"}),
        ({"value.kind": {"$in": ["rock", "soil"]}}, {"alpha one", "gamma"}),
        ({"value.kind": {"$nin": ["rock", "soil"]}}, {"beta", "delta"}),
        ({"value.kind": {"$regex": "^ro"}}, {"alpha one"}),
        ({"value.kind": {"$regex": "^ro", "$options": "i"}}, {"alpha one", "beta"}),
        ({"name": {"$regex": "a$"}}, {"beta", "gamma", "delta"}),
        ({"value.extra": {"$exists": True}}, {"gamma"}),
        ({"value.x": {"$exists": False}}, {"delta"}),
        ({"$or": [{"name": "beta"}, {"value.x": 10}]}, {"beta", "gamma"}),
        (
            {"$and": [{"value.x": {"$gt": 0}}, {"value.kind": {"$regex": "r", "$options": "i"}}]},
            {"alpha one", "beta"},
        ),
        ({"$nor": [{"name": "beta"}, {"name": "gamma"}]}, {"alpha one", "delta"}),
        ({"value.x": {"$gt": "1"}}, set()),  # Mongo compares within a type only
        ({}, {"alpha one", "beta", "gamma", "delta"}),
    ],
)
async def test_q_operators(
    agave: AgaveClient, samples: list[Metadata], q: dict[str, Any], expected: set[str]
) -> None:
    assert set(await names(agave, q)) == expected
    assert set(await names(agave, json.dumps(q))) == expected  # a JSON string works the same


async def test_q_with_plus_for_spaces_as_agavepy_sends_it(
    agave: AgaveClient, samples: list[Metadata]
) -> None:
    response = await agave._request("GET", "meta/v2/data?q=%7B%22name%22%3A+%22alpha+one%22%7D")
    assert [m["name"] for m in response.json()["result"]] == ["alpha one"]


@pytest.mark.parametrize(
    "q",
    ["{not json", "[1, 2]", '"name"', '{"$where": "1"}', '{"value.x": {"$near": 1}}', '{"$or": {"a": 1}}',
     '{"name": {"$options": "i"}}', '{"name": {"$regex": 5}}', '{"value.x": {"$in": 3}}', '{"a..b": 1}'],
)  # fmt: skip
async def test_malformed_or_unsupported_q_is_a_400(agave: AgaveClient, q: str) -> None:
    with pytest.raises(BadRequest) as caught:
        await agave._request("GET", "meta/v2/data", params={"q": q})
    assert "Malformed JSON Query" in caught.value.message


async def test_a_catastrophic_regex_is_answered_fast_and_a_backreference_refused(agave: AgaveClient) -> None:
    await agave.meta.add_metadata({"name": "a" * 5000 + "!", "value": {"s": "b" * 30 + "!"}})
    started = time.monotonic()
    assert await names(agave, {"name": {"$regex": "^(a*)*b$"}}) == []
    assert await names(agave, {"value.s": {"$regex": "(b*)*c"}}) == []
    assert time.monotonic() - started < 2.0
    with pytest.raises(BadRequest) as caught:
        await agave.meta.list_metadata({"name": {"$regex": "(a)\\1"}}).to_list()
    assert "regular expression" in caught.value.message


async def test_q_over_10k_records_is_evaluated_in_chunks_and_stays_fast(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    owner, now = platform.agave.username, time.time()
    rows = [
        (f"bulk-{i}-012", owner, f"r{i}", json.dumps({"i": i, "tag": "x" if i % 1000 else "hit"}), None, "[]",
         now + i / 1e4, now + i / 1e4)
        for i in range(10_000)
    ]  # fmt: skip
    await platform.store.run(
        lambda conn: conn.executemany(
            "INSERT INTO agave_meta_data (uuid, owner, name, value, schema_id, association_ids, created,"
            " last_updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    )
    started = time.monotonic()
    hits = await names(agave, {"value.tag": {"$regex": "^h"}})
    assert time.monotonic() - started < 5.0
    assert hits == [f"r{i}" for i in range(9000, -1, -1000)]  # newest (lastUpdated) first
    assert len(await names(agave, {"value.i": {"$gte": 9950}}, limit=20)) == 50

    # Other requests are served between the chunks: a get answers while a full scan runs.
    before = platform.stats.count("GET", "/agave/meta/v2/data")
    scan = asyncio.ensure_future(names(agave, {"value.tag": {"$regex": "nothing matches"}}))
    while platform.stats.count("GET", "/agave/meta/v2/data") == before:  # noqa: ASYNC110 (until it began)
        await asyncio.sleep(0.001)
    got = await agave.meta.get_metadata("bulk-5-012")
    assert got.value == {"i": 5, "tag": "x"} and not scan.done()
    assert await scan == []


# -- ordering and paging --------------------------------------------------------------------------------


async def test_order_by_and_order(agave: AgaveClient, samples: list[Metadata]) -> None:
    assert await names(agave, None) == ["delta", "gamma", "beta", "alpha one"]  # lastUpdated DESC
    assert await names(agave, None, order_by="name", order="asc") == ["alpha one", "beta", "delta", "gamma"]
    assert await names(agave, None, order_by="name", order="DESC") == ["gamma", "delta", "beta", "alpha one"]
    by_x = await names(agave, {"value.x": {"$exists": True}}, order_by="value.x", order="DESC")
    assert by_x == ["gamma", "beta", "alpha one"]
    assert await names(agave, None, order_by="created", order="ASC") == [
        "alpha one",
        "beta",
        "gamma",
        "delta",
    ]
    with pytest.raises(BadRequest):
        await agave._request("GET", "meta/v2/data", params={"orderBy": "value.x');--"})


async def test_paging_past_the_page_size(agave: AgaveClient) -> None:
    result = await agave.meta.create_many([{"name": f"p{i:03d}", "value": i} for i in range(230)])
    assert result.ok
    everything = await agave.meta.list_metadata(order_by="name", order="ASC").to_list()
    assert [m.name for m in everything] == [f"p{i:03d}" for i in range(230)]
    page = await agave.meta.list_metadata(order_by="name", order="ASC", limit=7, offset=100).to_list()
    assert [m.name for m in page][:7] == [f"p{i:03d}" for i in range(100, 107)]
    filtered = [m.name async for m in agave.meta.list_metadata({"value": {"$gte": 150}}, limit=30, offset=5)]
    assert len(filtered) == 75 and "p229" not in filtered[:1]


# -- schemas -----------------------------------------------------------------------------------------------

SAMPLE_SCHEMA = {
    "type": "object",
    "properties": {
        "depth": {"type": "number", "minimum": 0, "maximum": 100},
        "kind": {"enum": ["rock", "soil"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "count": {"type": "integer"},
    },
    "required": ["depth", "kind"],
    "additionalProperties": False,
}


async def test_schema_crud_and_search(platform: LocalPlatform, agave: AgaveClient) -> None:
    response = await agave._request("POST", "meta/v2/schemas", json=SAMPLE_SCHEMA)
    assert response.status == 201 and response.json()["result"]["uuid"].endswith("-013")
    schema = await agave.meta.get_schema(response.json()["result"]["uuid"])
    assert isinstance(schema, MetadataSchema) and schema.schema == SAMPLE_SCHEMA
    other = await agave.meta.add_schema({"type": "string"})
    assert {s.uuid for s in await agave.meta.search_schema().to_list()} == {schema.uuid, other.uuid}
    assert [s.uuid async for s in agave.meta.search_schema({"schema.type": "string"})] == [other.uuid]
    assert [s.uuid async for s in agave.meta.search_schema({"uuid": other.uuid})] == [other.uuid]
    owned = agave.meta.search_schema({"owner": platform.agave.username}, order_by="created", order="ASC")
    assert [s.uuid async for s in owned] == [schema.uuid, other.uuid]
    assert await agave.meta.search_schema({"name": "schemas have no name"}).to_list() == []
    updated = await agave.meta.update_schema(other.uuid, {"type": "array"})
    assert updated.schema == {"type": "array"}
    await agave.meta.delete_schema(other.uuid)
    assert stored(platform, "SELECT 1 FROM agave_meta_schemas WHERE uuid = ?", other.uuid) == []
    with pytest.raises(NotFound):
        await agave.meta.get_schema(other.uuid)
    for bad in ({"type": "rocks"}, {"properties": []}, {"required": "depth"}, {"minimum": "1"}):
        with pytest.raises(BadRequest):
            await agave.meta.add_schema(bad)
    # A count that is no count would make every later validation fail: refused when stored.
    for key in ("minLength", "maxLength", "minItems", "maxItems"):
        for bound in ("3", -1, 1.5, True):
            with pytest.raises(BadRequest, match=f"{key} must be a non-negative integer"):
                await agave.meta.add_schema({"type": "object", "properties": {"x": {key: bound}}})


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ({"depth": 1.5, "kind": "rock"}, True),
        ({"depth": 0, "kind": "soil", "tags": ["a"], "count": 3}, True),
        ({"depth": 1, "kind": "sand"}, False),  # enum
        ({"depth": -1, "kind": "rock"}, False),  # minimum
        ({"depth": 101, "kind": "rock"}, False),  # maximum
        ({"kind": "rock"}, False),  # required
        ({"depth": "1", "kind": "rock"}, False),  # type
        ({"depth": 1, "kind": "rock", "tags": [1]}, False),  # items
        ({"depth": 1, "kind": "rock", "count": 1.5}, False),  # integer
        ({"depth": 1, "kind": "rock", "colour": "red"}, False),  # additionalProperties
        (["depth"], False),
    ],
)
async def test_values_are_validated_against_their_schema(
    agave: AgaveClient, value: Any, accepted: bool
) -> None:
    schema = await agave.meta.add_schema(SAMPLE_SCHEMA)
    body = {"name": "checked", "value": value, "schemaId": schema.uuid}
    if accepted:
        created = await agave.meta.add_metadata(body)
        assert created.schema_id == schema.uuid and created.value == value
    else:
        with pytest.raises(BadRequest) as caught:
            await agave.meta.add_metadata(body)
        assert "does not conform" in caught.value.message
        plain = await agave.meta.add_metadata({"name": "plain", "value": 1})
        with pytest.raises(BadRequest):  # an update is validated too
            await agave.meta.update_metadata(plain.uuid, body)


async def test_an_unknown_schema_id_is_a_400(agave: AgaveClient) -> None:
    with pytest.raises(BadRequest):
        await agave.meta.add_metadata({"name": "x", "value": 1, "schemaId": "0000-0001-013"})


# -- permissions -----------------------------------------------------------------------------------------


async def test_metadata_permissions_across_two_users(platform: LocalPlatform, agave: AgaveClient) -> None:
    record = await agave.meta.add_metadata({"name": "shared", "value": {"v": 1}})
    own = await agave.meta.add_metadata({"name": "mine", "value": 2})
    async with await other_user(platform) as bob:
        assert await bob.meta.list_metadata().to_list() == []
        with pytest.raises(NotFound):
            await bob.meta.get_metadata(record.uuid)

        pem = await agave.meta.update_metadata_permissions(record.uuid, "bob", "READ")
        assert isinstance(pem, MetaPermission) and pem.read and not pem.write
        assert (await bob.meta.get_metadata(record.uuid)).value == {"v": 1}
        assert await names(bob, None) == ["shared"]
        assert await names(bob, None, privileged=False) == ["shared"]
        assert await names(agave, None, privileged=False) == []  # nothing is shared with the owner
        with pytest.raises(Unauthorized):
            await bob.meta.update_metadata(record.uuid, {"name": "taken", "value": 0})
        with pytest.raises(Unauthorized):
            await bob.meta.delete_metadata(record.uuid)
        with pytest.raises(Unauthorized):
            await bob.meta.update_metadata_permissions(record.uuid, "carol", "READ")

        pem = await agave.meta.update_metadata_permissions_for_user(record.uuid, "bob", "READ_WRITE")
        assert pem is not None and pem.read and pem.write
        listed = {
            p.username: p.permission
            for p in await agave.meta.list_metadata_permissions(record.uuid).to_list()
        }
        assert listed == {
            platform.agave.username: {"read": True, "write": True},
            "bob": {"read": True, "write": True},
        }
        mine = await agave.meta.list_metadata_permissions_for_user(record.uuid, platform.agave.username)
        assert mine.read and mine.write
        updated = await bob.meta.update_metadata(record.uuid, {"name": "shared", "value": {"v": 2}})
        assert updated.owner == platform.agave.username and updated.value == {"v": 2}

        assert await agave.meta.update_metadata_permissions_for_user(record.uuid, "bob", "NONE") is None
        assert not (await agave.meta.list_metadata_permissions_for_user(record.uuid, "bob")).read
        with pytest.raises(NotFound):
            await bob.meta.get_metadata(record.uuid)

        await agave.meta.update_metadata_permissions(record.uuid, "bob", "ALL")
        await agave.meta.delete_metadata_permissions_for_user(record.uuid, "bob")
        assert stored(platform, "SELECT 1 FROM agave_meta_pems WHERE uuid = ?", record.uuid) == []
        await agave.meta.update_metadata_permissions(record.uuid, "bob", "WRITE")
        await agave.meta.update_metadata_permissions(own.uuid, "bob", "READ")
        await agave.meta.delete_metadata_permission(record.uuid)
        assert await names(bob, None) == ["mine"]
        await bob.meta.get_metadata(own.uuid)


async def test_the_per_user_grant_checks_the_username_in_the_body(agave: AgaveClient) -> None:
    record = await agave.meta.add_metadata({"name": "r", "value": 1})
    path = f"meta/v2/data/{record.uuid}/pems/bob"
    created = await agave._request("POST", path, json={"permission": "READ"})  # username omitted
    assert created.status == 201 and created.json()["result"]["username"] == "bob"
    again = await agave._request("POST", path, json={"username": "bob", "permission": "WRITE"})
    assert again.status == 200 and again.json()["result"]["permission"] == {"read": False, "write": True}
    with pytest.raises(BadRequest):
        await agave._request("POST", path, json={"username": "carol", "permission": "READ"})
    with pytest.raises(BadRequest):
        await agave._request("POST", path, json={"permission": "EXECUTE"})


async def test_schema_permissions_across_two_users(platform: LocalPlatform, agave: AgaveClient) -> None:
    schema = await agave.meta.add_schema({"type": "object", "required": ["x"]})
    async with await other_user(platform) as bob:
        assert await bob.meta.search_schema().to_list() == []
        with pytest.raises(BadRequest):  # a schema bob cannot read is no schema to him
            await bob.meta.add_metadata({"name": "b", "value": {"x": 1}, "schemaId": schema.uuid})
        pem = await agave.meta.update_schema_permissions(schema.uuid, "bob", "READ")
        assert pem is not None and pem.read and not pem.write
        assert [s.uuid for s in await bob.meta.search_schema().to_list()] == [schema.uuid]
        created = await bob.meta.add_metadata({"name": "b", "value": {"x": 1}, "schemaId": schema.uuid})
        assert created.owner == "bob"
        with pytest.raises(Unauthorized):
            await bob.meta.update_schema(schema.uuid, {"type": "string"})
        with pytest.raises(Unauthorized):
            await bob.meta.delete_schema(schema.uuid)
        pem = await agave.meta.update_schema_permissions_for_user(schema.uuid, "bob", "READ_WRITE")
        assert pem is not None and pem.write
        users = [p.username for p in await agave.meta.list_schema_permissions(schema.uuid).to_list()]
        assert users == [platform.agave.username, "bob"]
        assert (await agave.meta.list_schema_permissions_for_user(schema.uuid, "bob")).write
        assert (await bob.meta.update_schema(schema.uuid, {"type": "object"})).schema == {"type": "object"}
        await agave.meta.delete_schema_permissions_for_user(schema.uuid, "bob")
        assert not (await agave.meta.list_schema_permissions_for_user(schema.uuid, "bob")).read
        await agave.meta.update_schema_permissions(schema.uuid, "bob", "READ")
        await agave.meta.delete_schema_permissions(schema.uuid)
        assert await bob.meta.search_schema().to_list() == []


# -- batches -------------------------------------------------------------------------------------------------


async def test_create_many_and_delete_many_one_outcome_per_input(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    records = [{"name": f"b{i}", "value": {"i": i}} for i in range(20)] + [
        {"name": "bad", "value": 1, "schemaId": "nope"}
    ]
    created = await agave.meta.create_many(records, concurrency=4)
    assert len(created) == 21 and len(created.values) == 20
    assert [e.index for e in created.errors] == [20] and isinstance(created.errors[0].exception, BadRequest)
    assert [m.name for m in created.values] == [f"b{i}" for i in range(20)]
    uuids = [m.uuid for m in created.values]
    deleted = await agave.meta.delete_many([*uuids, "missing-012"], concurrency=4)
    assert deleted.values == uuids
    assert isinstance(deleted[20], NotFound)  # a first answer of 404: nothing was there to delete
    assert stored(platform, "SELECT uuid FROM agave_meta_data") == []
