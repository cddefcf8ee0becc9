"""The grant batches (``systems.update_roles_many``, ``apps.update_permissions_many``) take
every batch option of ``gather``: ``on_progress`` and ``on_outcome`` hear each user once,
a ``breaker`` stops when the credentials are rejected (the users not started are reported
``NotAttempted``, none is lost), and a wrong type is a TypeError naming the argument,
raised before any request."""

from __future__ import annotations

from typing import Any

import pytest

from aioplatform import Breaker, NotAttempted
from aioplatform.agave import AgaveClient
from aioplatform.agave.errors import AuthenticationError
from aioplatform.testing import LocalPlatform

from .conftest import client_for
from .test_apps import app_request
from .test_systems import storage_request


async def test_the_breaker_stops_granting_roles_and_every_user_has_one_outcome(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    await agave.systems.add(storage_request("crowd"))
    roles = {f"user{n:02d}": "USER" for n in range(10)}
    access, _ = await platform.agave.issue_token()
    heard: list[tuple[int, Any, Any]] = []
    progress: list[tuple[int, int | None]] = []

    async def on_outcome(index: int, item: Any, outcome: Any) -> None:
        heard.append((index, item, outcome))
        if len(heard) == 1:  # the credentials are revoked after the first grant
            await platform.agave.expire_token(access)

    async with client_for(platform, token=access, refresh_token=None, api_key=None, api_secret=None) as c:
        result = await c.systems.update_roles_many(
            "crowd", roles, concurrency=1, breaker=Breaker(2), on_outcome=on_outcome,
            on_progress=lambda done, total, outcome: progress.append((done, total)),
        )  # fmt: skip

    assert len(result) == 10 and result.items == list(roles.items())
    assert result.succeeded(0) and all(isinstance(result[i], AuthenticationError) for i in (1, 2))
    assert all(isinstance(result[i], NotAttempted) for i in range(3, 10)) and result.not_attempted == 7
    assert result.stopped is not None and "2 consecutive rejections of the credentials" in result.stopped
    assert sorted(i for i, _, _ in heard) == list(range(10))
    assert all(item == result.items[i] and outcome is result[i] for i, item, outcome in heard)
    assert progress == [(n, 10) for n in range(1, 11)]
    assert platform.stats.count("POST", "/agave/systems/v2/crowd/roles") == 3
    assert [r.username async for r in agave.systems.list_roles("crowd")][1:] == ["user00"]


async def test_sharing_an_app_reports_progress_once_per_user(agave: AgaveClient) -> None:
    await agave.apps.add(app_request())
    users = {f"user{n:02d}": "READ" for n in range(8)}
    progress: list[int] = []
    heard: list[int] = []
    result = await agave.apps.update_permissions_many(
        "hello-1.0", users, concurrency=3,
        on_progress=lambda done, total, outcome: progress.append(done),
        on_outcome=lambda index, item, outcome: heard.append(index),
    )  # fmt: skip
    assert result.ok and [p.username for p in result.values] == list(users)
    assert progress == list(range(1, 9)) and sorted(heard) == list(range(8))


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"on_progress": 1}, "on_progress"),
        ({"on_progress": "print"}, "on_progress"),
        ({"on_outcome": 3.0}, "on_outcome"),
        ({"breaker": 20}, "breaker"),
    ],
)
async def test_a_wrong_type_is_a_type_error_before_any_request(
    platform: LocalPlatform, agave: AgaveClient, options: dict[str, Any], named: str
) -> None:
    before = platform.stats.count()
    with pytest.raises(TypeError, match=named):
        await agave.systems.update_roles_many("crowd", {"bob": "USER"}, **options)
    with pytest.raises(TypeError, match=named):
        await agave.apps.update_permissions_many("hello-1.0", {"bob": "READ"}, **options)
    assert platform.stats.count() == before
