"""The embedded Agave validates a metadata value against its schema off the store's thread.

A schema's ``pattern`` is one RE2 match, linear in the value but long for a value of
megabytes: run inside the write transaction it held the store (which every service
shares) for all of it. Now the schema is read in one store job, the value validated on a
worker thread, and the record written in a second job only if the schema is unchanged.
These tests pin the answers (statuses and messages, unchanged), that another service is
served while a long validation runs (fails on the old code), and what a schema changed or
deleted during the validation gives.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from aioplatform.testing import LocalPlatform

# RE2 runs this slowly (many DFA states) over random a/b text, and it can only match at a
# final "c": an unanchored search reads the whole value whether or not it matches.
SLOW = "[ab]*a[ab]{20}c"
WIDTH = 4_000_000  # ~0.5 s of matching on an idle machine
SLOW_SCHEMA = {"type": "object", "properties": {"s": {"type": "string", "pattern": SLOW}}}
CODE_SCHEMA = {
    "type": "object",
    "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"}, "depth": {"type": "number"}},
    "required": ["code"],
}
_AB = bytes(97 + (i & 1) for i in range(256))  # each byte -> "a" or "b"


def long_text(seed: int, *, matching: bool) -> str:
    """Random a and b (a periodic text would keep RE2 in a few DFA states: fast)."""
    text = random.Random(seed).randbytes(WIDTH).translate(_AB).decode()
    return text + "a" + "b" * 20 + "c" if matching else text


class Agave:
    """Raw HTTP to the embedded Agave: each answer's status and envelope exactly as sent."""

    def __init__(self, http: aiohttp.ClientSession, platform: LocalPlatform, token: str):
        self.http, self.root = http, platform.agave_url.rstrip("/") + "/"
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        async with self.http.request(method, self.root + path, json=body, headers=self.headers) as response:
            payload: dict[str, Any] = await response.json()
            return response.status, payload

    async def schema(self, schema: dict[str, Any]) -> str:
        status, payload = await self.call("POST", "meta/v2/schemas", schema)
        assert status == 201, payload
        uuid: str = payload["result"]["uuid"]
        return uuid


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def admin(http: aiohttp.ClientSession, platform: LocalPlatform) -> Agave:
    return Agave(http, platform, platform.agave.access_token)


async def user(http: aiohttp.ClientSession, platform: LocalPlatform, name: str) -> Agave:
    await platform.agave.add_user(name, f"{name}-password")
    access, _ = await platform.agave.issue_token(name)
    return Agave(http, platform, access)


def stored_names(platform: LocalPlatform) -> list[str]:
    rows = platform.store.run_sync(lambda conn: conn.execute("SELECT name FROM agave_meta_data").fetchall())
    return sorted(r[0] for r in rows)


async def test_answers_of_a_write_with_a_schema(
    platform: LocalPlatform, http: aiohttp.ClientSession, admin: Agave
) -> None:
    schema = await admin.schema(CODE_SCHEMA)
    nonconforming = f"Metadata value does not conform to schema {schema}: "
    # Valid: 201, the record names its schema.
    status, payload = await admin.call(
        "POST", "meta/v2/data", {"name": "ok", "value": {"code": "ABC-1"}, "schemaId": schema}
    )
    assert status == 201 and payload["result"]["schemaId"] == schema
    assert payload["result"]["value"] == {"code": "ABC-1"}
    record = payload["result"]["uuid"]
    # Invalid by pattern, by type, by a missing property: 400 naming each problem.
    cases = [
        ({"code": "abc-1"}, "value.code must match '^[A-Z]{3}-[0-9]+$'"),
        ({"code": "ABC-1", "depth": "deep"}, "value.depth must be of type number"),
        ({"code": 7}, "value.code must be of type string"),
        ({"depth": 1}, "value.code is required"),
        ("ABC-1", "value must be of type object"),
    ]
    for value, problem in cases:
        body = {"name": "bad", "value": value, "schemaId": schema}
        assert await admin.call("POST", "meta/v2/data", body) == (
            400,
            {"status": "error", "message": nonconforming + problem, "version": payload["version"]},
        )
        # An update is validated alike, and leaves the record as it was.
        status, answer = await admin.call("POST", f"meta/v2/data/{record}", body)
        assert (status, answer["message"]) == (400, nonconforming + problem)
    # An unknown schema, a malformed schemaId.
    unknown = {"name": "x", "value": {"code": "ABC-1"}, "schemaId": "0000-0001-013"}
    status, answer = await admin.call("POST", "meta/v2/data", unknown)
    assert (status, answer["message"]) == (400, "Invalid schemaId 0000-0001-013: no such schema")
    status, answer = await admin.call("POST", "meta/v2/data", {**unknown, "schemaId": 12})
    assert (status, answer["message"]) == (400, "schemaId must be a schema uuid")
    # A valid update replaces the record.
    body = {"name": "renamed", "value": {"code": "XYZ-22"}, "schemaId": schema}
    status, answer = await admin.call("POST", f"meta/v2/data/{record}", body)
    assert status == 200 and answer["result"]["value"] == {"code": "XYZ-22"}
    assert stored_names(platform) == ["renamed"]
    # A missing record is a 404 before anything wrong with the body; a schema bob cannot
    # read is no schema to him; write permission (401) comes before the body's 400s.
    status, answer = await admin.call(
        "POST", "meta/v2/data/missing-012", {"name": "x", "value": {}, "schemaId": schema}
    )
    assert (status, answer["message"]) == (404, "No metadata item found with uuid missing-012")
    status, answer = await admin.call("POST", "meta/v2/data/missing-012", {"value": 1})
    assert (status, answer["message"]) == (404, "No metadata item found with uuid missing-012")
    bob = await user(http, platform, "bob")
    status, answer = await bob.call(
        "POST", "meta/v2/data", {"name": "b", "value": {"code": "ABC-1"}, "schemaId": schema}
    )
    assert (status, answer["message"]) == (400, f"Invalid schemaId {schema}: no such schema")
    status, _ = await admin.call("POST", f"meta/v2/data/{record}/pems/bob", {"permission": "READ"})
    assert status == 201
    refused: list[dict[str, Any]] = [
        {"name": "b", "value": {"code": "bad"}, "schemaId": schema},
        {"value": 1},
    ]
    for wrong in refused:
        status, answer = await bob.call("POST", f"meta/v2/data/{record}", wrong)
        assert (status, answer["message"]) == (
            401,
            f"User bob does not have permission to modify metadata item {record}",
        )
    assert stored_names(platform) == ["renamed"]


@pytest.mark.parametrize("matching", [False, True], ids=["invalid", "valid"])
async def test_other_services_are_served_while_a_long_pattern_is_validated(
    platform: LocalPlatform, http: aiohttp.ClientSession, admin: Agave, matching: bool
) -> None:
    schema = await admin.schema(SLOW_SCHEMA)
    body = {"name": "long", "value": {"s": long_text(1, matching=matching)}, "schemaId": schema}
    saltant = {"Authorization": f"Token {platform.saltant_token}"}

    async def saltant_get() -> float:
        started = time.monotonic()
        async with http.get(platform.saltant_url + "users/", headers=saltant) as response:
            assert response.status == 200
            await response.read()
        return time.monotonic() - started

    await saltant_get()  # warm: the connection and the saltant service are up
    started = time.monotonic()
    write = asyncio.ensure_future(admin.call("POST", "meta/v2/data?filter=uuid", body))
    waits: list[float] = []
    while not write.done():
        waits.append(await saltant_get())
        await asyncio.sleep(0.02)
    status, answer = await write
    took = time.monotonic() - started
    if matching:
        assert status == 201 and stored_names(platform) == ["long"]
    else:
        problem = f"value.s must match {SLOW!r}"
        assert (status, answer["message"]) == (
            400,
            f"Metadata value does not conform to schema {schema}: {problem}",
        )
        assert stored_names(platform) == []
    # The validation ran for a long while (it would hold the store for all of it) ...
    assert took > 0.5, f"the write took only {took:.2f}s: too short to tell"
    # ... and meanwhile saltant answered many times, each promptly (queued at most behind
    # the schema's read or the write, never behind the matching).
    assert len(waits) >= 5, (took, waits)
    assert max(waits) < took / 3, (took, max(waits), waits)


async def start_long_write(admin: Agave, schema: str) -> asyncio.Future[tuple[int, dict[str, Any]]]:
    """A write whose value matches SLOW_SCHEMA, started; returns once its validation has begun
    (the body sent and parsed, the schema read; a change landing even earlier gives the same
    answers), and lasts ~0.5 s in all."""
    body = {"name": "long", "value": {"s": long_text(2, matching=True)}, "schemaId": schema}
    write = asyncio.ensure_future(admin.call("POST", "meta/v2/data?filter=uuid", body))
    await asyncio.sleep(0.15)
    assert not write.done()
    return write


async def test_a_schema_changed_during_the_validation_is_validated_against_again(
    platform: LocalPlatform, admin: Agave
) -> None:
    # Changed to one the value breaks: 400 under the new schema, nothing written.
    schema = await admin.schema(SLOW_SCHEMA)
    write = await start_long_write(admin, schema)
    short = {"type": "object", "properties": {"s": {"type": "string", "pattern": SLOW, "maxLength": 10}}}
    status, _ = await admin.call("POST", f"meta/v2/schemas/{schema}", short)
    assert status == 200
    status, answer = await write
    message = f"Metadata value does not conform to schema {schema}: value.s must be at most 10 characters"
    assert (status, answer["message"]) == (400, message)
    assert stored_names(platform) == []
    # From one the value conforms to, changed to another it conforms to: validated again
    # (another ~0.5 s), then written.
    status, _ = await admin.call("POST", f"meta/v2/schemas/{schema}", SLOW_SCHEMA)
    assert status == 200
    write = await start_long_write(admin, schema)
    status, _ = await admin.call("POST", f"meta/v2/schemas/{schema}", {**SLOW_SCHEMA, "required": ["s"]})
    assert status == 200
    status, answer = await write
    assert status == 201, answer
    assert stored_names(platform) == ["long"]


async def test_a_schema_deleted_during_the_validation_is_no_schema(
    platform: LocalPlatform, admin: Agave
) -> None:
    schema = await admin.schema(SLOW_SCHEMA)
    write = await start_long_write(admin, schema)
    status, _ = await admin.call("DELETE", f"meta/v2/schemas/{schema}")
    assert status == 200
    status, answer = await write
    assert (status, answer["message"]) == (400, f"Invalid schemaId {schema}: no such schema")
    assert stored_names(platform) == []
