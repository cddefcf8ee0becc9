"""The chunked Astakos calls check their chunking options like every batch: a wrong type is a
TypeError naming the argument, a wrong value a ValueError, both before any request."""

from __future__ import annotations

from typing import Any

import pytest

from aioplatform.astakos import AstakosClient
from aioplatform.testing import LocalPlatform


@pytest.mark.parametrize(
    ("options", "error", "named"),
    [
        ({"concurrency": "4"}, TypeError, "concurrency"),
        ({"concurrency": 2.0}, TypeError, "concurrency"),
        ({"concurrency": True}, TypeError, "concurrency"),
        ({"concurrency": 0}, ValueError, "concurrency"),
        ({"chunk_size": "500"}, TypeError, "chunk_size"),
        ({"chunk_size": 0}, ValueError, "chunk_size"),
    ],
)
async def test_catalog_lookups_check_their_options_before_any_request(
    platform: LocalPlatform, service: AstakosClient, options: dict[str, Any], error: type, named: str
) -> None:
    before = platform.stats.count()
    for lookup in (
        service.get_usernames,
        service.service_get_usernames,
        service.get_uuids,
        service.service_get_uuids,
    ):
        with pytest.raises(error, match=named):
            await lookup(["x"], **options)
    assert platform.stats.count() == before


@pytest.mark.parametrize(
    ("options", "error", "named"),
    [
        ({"chunk_size": "2"}, TypeError, "chunk_size"),
        ({"chunk_size": 2.5}, TypeError, "chunk_size"),
        ({"chunk_size": 0}, ValueError, "chunk_size"),
        ({"concurrency": "8"}, TypeError, "concurrency"),
        ({"concurrency": -1}, ValueError, "concurrency"),
    ],
)
async def test_resolve_commissions_checks_its_options_before_any_request(
    platform: LocalPlatform, service: AstakosClient, options: dict[str, Any], error: type, named: str
) -> None:
    before = platform.stats.count()
    with pytest.raises(error, match=named):
        await service.resolve_commissions([1], [2], **options)
    assert platform.stats.count() == before
