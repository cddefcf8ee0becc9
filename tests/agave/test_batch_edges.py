"""Agave batches at the edges: result.items are the caller's inputs (not the request bodies
built from them), outcomes are heard as they complete, and a rejected token trips the
breaker."""

from __future__ import annotations

from typing import Any

from aioplatform import Breaker, NotAttempted
from aioplatform.agave import AgaveClient
from aioplatform.agave.errors import AuthenticationError
from aioplatform.testing import LocalPlatform
from aioplatform.testing.agave.defaults import DEFAULT_STORAGE_SYSTEM, SEEDED_APP

from .conftest import client_for


def request(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "appId": SEEDED_APP,
        "inputs": {"query1": f"agave://{DEFAULT_STORAGE_SYSTEM}/data/{name}.txt"},
        "parameters": {"printLongestLine": True},
    }


async def test_items_are_the_inputs_as_given_for_jobs_meta_and_notifications(agave: AgaveClient) -> None:
    heard: list[tuple[int, Any]] = []

    def on_outcome(index: int, item: Any, outcome: Any) -> None:
        heard.append((index, item))

    requests = [request(f"edge-{i}") for i in range(3)]
    jobs = await agave.jobs.submit_many(requests, on_outcome=on_outcome)
    assert (
        jobs.ok and jobs.items == requests and all(a is b for a, b in zip(jobs.items, requests, strict=True))
    )
    assert sorted(i for i, _ in heard) == [0, 1, 2]
    assert all(item is requests[i] for i, item in heard)

    records = [{"name": "edge", "value": {"n": i}} for i in range(3)]
    made = await agave.meta.create_many(records)
    assert made.ok and made.items == records

    job = jobs.values[0]
    subscriptions = [{"associatedUuid": job.id, "url": f"ops{i}@example.org", "event": "*"} for i in range(2)]
    subscribed = await agave.notifications.create_many(subscriptions)
    assert subscribed.ok and subscribed.items == subscriptions


async def test_a_rejected_token_stops_a_batch_after_the_threshold(platform: LocalPlatform) -> None:
    async with client_for(platform, token="0" * 32, refresh_token=None, api_key=None, api_secret=None) as bad:
        result = await bad.jobs.stop_many([f"job-{i}" for i in range(100)], concurrency=2, breaker=Breaker(5))
    assert all(isinstance(o, (AuthenticationError, NotAttempted)) for o in result)
    assert result.not_attempted >= 100 - 5 - 1
    assert result.stopped is not None and "rejections of the credentials" in result.stopped
