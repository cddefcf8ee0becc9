"""The embedded Agave's listings matched in Python (a regular expression search on jobs, a
search on notifications) page by offset and limit like the ones SQL answers."""

from __future__ import annotations

from typing import Any

from aioplatform.agave import AgaveClient
from aioplatform.testing import LocalPlatform
from aioplatform.testing.agave.defaults import DEFAULT_STORAGE_SYSTEM, SEEDED_APP


def request(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "appId": SEEDED_APP,
        "inputs": {"query1": f"agave://{DEFAULT_STORAGE_SYSTEM}/data/{name}.txt"},
    }


async def test_a_regex_search_skips_offset_matches_and_stops_at_limit(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    made = await agave.jobs.submit_many([request(n) for n in ("w-0", "x-0", "w-1", "w-2", "x-1", "w-3")])
    assert made.ok
    search = {"name.rlike": "^w-[0-9]$"}  # rlike is matched in Python, not SQL
    newest_first = ["w-3", "w-2", "w-1", "w-0"]
    assert [j.name for j in await agave.jobs.list(search=search, limit=2, offset=1)] == newest_first[1:3]
    assert [j.name for j in await agave.jobs.list(search=search, limit=3, offset=3)] == newest_first[3:]
    assert [j.name async for j in agave.jobs.list(search=search, limit=3)] == newest_first


async def test_a_notification_search_pages_by_offset(agave: AgaveClient) -> None:
    made = await agave.notifications.create_many(
        [{"associatedUuid": "0001-job", "url": f"https://example.org/{i}", "event": "*"} for i in range(5)]
    )
    assert made.ok
    every = [n.url async for n in agave.notifications.list("0001-job", limit=2)]
    assert sorted(every) == [f"https://example.org/{i}" for i in range(5)]
    page = await agave.notifications.list("0001-job", limit=2, offset=3)
    assert [n.url for n in page] == every[3:5]
