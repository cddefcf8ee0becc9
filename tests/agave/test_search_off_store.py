"""The embedded Agave's regular expression searches (``.rlike`` terms, meta's ``$regex``) give
the same rows, order and pages as a Python filter over the whole listing, and match off the
store's thread: a long match holds up no request to any service."""

from __future__ import annotations

import asyncio
import json
import random
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from aioplatform.agave import AgaveClient
from aioplatform.testing import LocalPlatform
from aioplatform.testing.agave.defaults import DEFAULT_STORAGE_SYSTEM, SEEDED_APP
from aioplatform.testing.agave.files import put_file

# (limit, offset) pairs: pages inside, across and past the matching rows.
PAGES = [(1, 0), (1, 1), (2, 1), (2, 2), (3, 0), (3, 3), (100, 0), (100, 2), (2, 100)]


async def result(agave: AgaveClient, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    response = await agave._request("GET", path, params=params)
    found: list[dict[str, Any]] = response.json()["result"]
    return found


def rows(items: list[dict[str, Any]], field: str) -> list[tuple[Any, Any]]:
    """Which rows, in which order (a job's status and times move on between two listings)."""
    return [(i.get("id") or i.get("uuid") or i.get("path"), i.get(field)) for i in items]


async def make_jobs(platform: LocalPlatform, agave: AgaveClient, names: list[str]) -> None:
    body = {"appId": SEEDED_APP, "inputs": {"query1": f"agave://{DEFAULT_STORAGE_SYSTEM}/data/in.txt"}}
    made = await agave.jobs.submit_many([{**body, "name": n} for n in names])
    assert made.ok


async def make_systems(platform: LocalPlatform, agave: AgaveClient, names: list[str]) -> None:
    for name in names:
        storage = {
            "protocol": "SFTP", "host": "data.example.org", "port": 22, "rootDir": "/data",
            "homeDir": "/home", "auth": {"type": "PASSWORD", "username": "svc", "password": "pw"},
        }  # fmt: skip
        body = {"id": name, "name": f"{name} storage", "type": "STORAGE", "storage": storage}
        await agave.systems.add(body)


async def make_apps(platform: LocalPlatform, agave: AgaveClient, names: list[str]) -> None:
    from aioplatform.testing.agave.defaults import DEFAULT_EXECUTION_SYSTEM

    for name in names:
        await agave.apps.add(
            {
                "name": name, "version": "1.0", "label": name, "shortDescription": "x",
                "executionSystem": DEFAULT_EXECUTION_SYSTEM, "executionType": "CLI",
                "deploymentSystem": DEFAULT_STORAGE_SYSTEM, "deploymentPath": f"/apps/{name}",
                "templatePath": "wrapper.sh", "testPath": "test.sh",
            }
        )  # fmt: skip


async def make_notifications(platform: LocalPlatform, agave: AgaveClient, names: list[str]) -> None:
    made = await agave.notifications.create_many(
        [{"associatedUuid": "0001-job", "url": f"https://example.org/{n}", "event": "*"} for n in names]
    )
    assert made.ok


async def make_files(platform: LocalPlatform, agave: AgaveClient, names: list[str]) -> None:
    for name in names:
        await put_file(platform.agave, DEFAULT_STORAGE_SYSTEM, f"many/{name}", b"x", platform.agave.username)


async def make_meta(platform: LocalPlatform, agave: AgaveClient, names: list[str]) -> None:
    made = await agave.meta.create_many([{"name": n, "value": {"n": n}} for n in names])
    assert made.ok


# resource -> (how to make items named so, listing path, the field the regex reads,
#              query params for a pattern, one more term narrowing in the store)
Make = Callable[[LocalPlatform, AgaveClient, list[str]], Awaitable[None]]
RESOURCES: dict[str, tuple[Make, str, str, Callable[[str], dict[str, str]], dict[str, str]]] = {
    "jobs": (
        make_jobs, "jobs/v2/", "name", lambda p: {"name.rlike": p}, {"name.like": "*", "archive.neq": "maybe"}
    ),
    "systems": (make_systems, "systems/v2", "id", lambda p: {"id.rlike": p}, {"type.eq": "STORAGE"}),
    "apps": (make_apps, "apps/v2", "name", lambda p: {"name.rlike": p}, {"executionType.eq": "CLI"}),
    "notifications": (
        make_notifications, "notifications/v2/", "url", lambda p: {"url.rlike": p}, {"event.eq": "*"}
    ),
    "files": (
        make_files, f"files/v2/listings/system/{DEFAULT_STORAGE_SYSTEM}/many", "name",
        lambda p: {"name.rlike": p}, {"type.eq": "file"},
    ),
    "meta": (
        make_meta, "meta/v2/data", "name",
        lambda p: {"q": json.dumps({"name": {"$regex": p}})}, {},
    ),
}  # fmt: skip


@pytest.mark.parametrize("resource", sorted(RESOURCES))
async def test_a_selective_regex_pages_like_a_filter_over_the_whole_listing(
    platform: LocalPlatform, agave: AgaveClient, resource: str
) -> None:
    make, path, field, params, narrow = RESOURCES[resource]
    names = [f"{'keep' if i % 6 == 1 else 'drop'}-{i:02d}" for i in range(30)]
    await make(platform, agave, names)
    everything = await result(agave, path, {"limit": 100})
    pattern = "keep-[0-9]+$"
    # (a file listing's "." entry, first, is kept whatever the terms)
    wanted = [i for i in everything if re.search(pattern, str(i.get(field))) or i.get(field) == "."]
    assert len([i for i in wanted if i.get(field) != "."]) == 5  # 5 of the 30, and nothing else
    for limit, offset in PAGES:
        got = await result(agave, path, {**params(pattern), "limit": limit, "offset": offset})
        assert rows(got, field) == rows(wanted[offset : offset + limit], field), (limit, offset)
        if resource != "jobs":  # the very same answers, field for field
            assert got == wanted[offset : offset + limit]
        both = await result(agave, path, {**params(pattern), **narrow, "limit": limit, "offset": offset})
        assert rows(both, field) == rows(wanted[offset : offset + limit], field), (limit, offset)
    nothing = await result(agave, path, {**params("^nothing$"), "limit": 100})
    assert rows(nothing, field) == rows([i for i in wanted if i.get(field) == "."], field)


# -- the store is not held while matching -------------------------------------------------------

# Linear in the text but slow for RE2 (its DFA cache thrashes: a few MB/s), over ROWS values
# of WIDTH characters that never match: seconds of matching, milliseconds of reading.
SLOW = "[ab]*a[ab]{20}c"
ROWS, WIDTH = 200, 12_000


def long_text(i: int) -> str:
    """Random a and b (a periodic text would keep RE2 in a few DFA states: fast)."""
    rng = random.Random(i)
    return "".join(rng.choice("ab") for _ in range(WIDTH))


async def many_long_jobs(platform: LocalPlatform, agave: AgaveClient) -> tuple[str, dict[str, str]]:
    """ROWS jobs with long names (copied in SQL from one submitted job; no lifecycle left)."""
    await make_jobs(platform, agave, ["template"])

    def copy(conn: sqlite3.Connection) -> None:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(agave_jobs_jobs)") if r[1] != "seq"]
        row = conn.execute("SELECT * FROM agave_jobs_jobs WHERE name = 'template'").fetchone()
        marks = ",".join("?" * len(columns))
        copies = []
        for i in range(ROWS):
            values = dict(zip(columns, (row[c] for c in columns), strict=True))
            values.update(id=f"{row['id']}-{i}", name=long_text(i), next_at=None)
            copies.append([values[c] for c in columns])
        conn.execute("UPDATE agave_jobs_jobs SET next_at = NULL")
        conn.executemany(f"INSERT INTO agave_jobs_jobs ({','.join(columns)}) VALUES ({marks})", copies)

    await platform.store.run(copy)
    return "jobs/v2/", {"name.rlike": SLOW, "limit": "100"}


async def many_long_records(platform: LocalPlatform, agave: AgaveClient) -> tuple[str, dict[str, str]]:
    owner, now = platform.agave.username, time.time()
    rows = [
        (f"long-{i}-012", owner, f"r{i}", json.dumps({"s": long_text(i)}), None, "[]", now + i, now + i)
        for i in range(ROWS)
    ]
    await platform.store.run(
        lambda conn: conn.executemany(
            "INSERT INTO agave_meta_data (uuid, owner, name, value, schema_id, association_ids, created,"
            " last_updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    )
    return "meta/v2/data", {"q": json.dumps({"value.s": {"$regex": SLOW}}), "limit": "100"}


@pytest.mark.parametrize("setup", [many_long_jobs, many_long_records], ids=["rlike", "meta-regex"])
async def test_other_services_are_served_while_a_long_regex_is_matched(
    platform: LocalPlatform,
    agave: AgaveClient,
    setup: Callable[[LocalPlatform, AgaveClient], Awaitable[tuple[str, dict[str, str]]]],
) -> None:
    path, params = await setup(platform, agave)
    saltant = {"Authorization": f"Token {platform.saltant_token}"}
    async with aiohttp.ClientSession() as http:

        async def saltant_get() -> float:
            started = time.monotonic()
            async with http.get(platform.saltant_url + "users/", headers=saltant) as response:
                assert response.status == 200
                await response.read()
            return time.monotonic() - started

        await saltant_get()  # warm: the connection and the saltant service are up
        started = time.monotonic()
        listing = asyncio.ensure_future(result(agave, path, params))
        waits: list[float] = []
        while not listing.done():
            waits.append(await saltant_get())
            await asyncio.sleep(0.02)
        assert await listing == []
        took = time.monotonic() - started
    # The listing matched for a long while (it would hold the store for all of it) ...
    assert took > 0.5, f"the match took only {took:.2f}s: too short to tell"
    # ... and meanwhile saltant answered many times, each promptly (its request queued at
    # most behind a read of the candidate rows, never behind the matching).
    assert len(waits) >= 5, (took, waits)
    assert max(waits) < took / 3, (took, max(waits), waits)


async def test_rlike_reads_a_field_as_each_resource_did(platform: LocalPlatform, agave: AgaveClient) -> None:
    # Jobs: an object field is matched as its JSON text.
    await make_jobs(platform, agave, ["j-1", "j-2"])
    every_job = await result(agave, "jobs/v2/", {"limit": 100})
    by_input = await result(agave, "jobs/v2/", {"inputs.rlike": '^[{]"query1": ', "limit": 100})
    assert [j["id"] for j in by_input] == [j["id"] for j in every_job] and len(every_job) == 2
    assert await result(agave, "jobs/v2/", {"inputs.rlike": "^nothing", "limit": 100}) == []
    # Systems: a boolean is matched as true/false, as the eq term compares it.
    await make_systems(platform, agave, ["private-1"])
    public = await result(agave, "systems/v2", {"public.rlike": "^true$", "limit": 100})
    by_eq = await result(agave, "systems/v2", {"public.eq": "true"})
    assert [s["id"] for s in public] == [s["id"] for s in by_eq]
    assert public and "private-1" not in {s["id"] for s in public}
    private = await result(agave, "systems/v2", {"public.rlike": "^f", "limit": 100})
    assert [s["id"] for s in private] == ["private-1"]


async def test_an_rlike_page_spans_store_chunks_in_order(platform: LocalPlatform, agave: AgaveClient) -> None:
    # 1,200 jobs (more than two chunks of candidate rows): 12 match, one per hundred.
    await make_jobs(platform, agave, ["template"])

    def copy(conn: sqlite3.Connection) -> None:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(agave_jobs_jobs)") if r[1] != "seq"]
        row = conn.execute("SELECT * FROM agave_jobs_jobs WHERE name = 'template'").fetchone()
        copies = []
        for i in range(1200):
            values = dict(zip(columns, (row[c] for c in columns), strict=True))
            values.update(id=f"{row['id']}-{i}", name=f"n-{i}", next_at=None)
            copies.append([values[c] for c in columns])
        conn.execute("UPDATE agave_jobs_jobs SET next_at = NULL")
        marks = ",".join("?" * len(columns))
        conn.executemany(f"INSERT INTO agave_jobs_jobs ({','.join(columns)}) VALUES ({marks})", copies)

    await platform.store.run(copy)
    newest_first = [f"n-{i}" for i in range(1100, -1, -100)]
    search = {"name.rlike": "^n-(0|[1-9][0-9]*00)$"}
    for limit, offset in [(5, 0), (5, 5), (5, 10), (100, 0), (1, 11), (3, 12)]:
        got = await result(agave, "jobs/v2/", {**search, "limit": limit, "offset": offset})
        assert [j["name"] for j in got] == newest_first[offset : offset + limit], (limit, offset)
    assert [j.name async for j in agave.jobs.list(search=search, limit=4)] == newest_first
