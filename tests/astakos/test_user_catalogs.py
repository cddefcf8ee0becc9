"""User catalogs: uuid <-> username, NoUserName/NoUUID, service variants, chunked lookups."""

from __future__ import annotations

import pytest

from aioplatform import PlatformError, Unauthorized
from aioplatform.astakos import AstakosClient, NoUserName, NoUUID
from aioplatform.testing import LocalPlatform


async def test_usernames_and_uuids_round_trip_and_unknown_ones_are_left_out(
    platform: LocalPlatform, user: AstakosClient
) -> None:
    a = platform.astakos
    uuids = [a.uuids["user"], a.uuids["other"], "no-such-uuid"]
    names = await user.get_usernames(uuids)
    assert names == {a.uuids["user"]: "user@example.org", a.uuids["other"]: "other@example.org"}
    assert await user.get_uuids(["USER@example.org", "ghost@example.org"]) == {
        "USER@example.org": a.uuids["user"]
    }
    assert await user.get_username(a.uuids["admin"]) == "admin@example.org"
    assert await user.get_uuid("other@example.org") == a.uuids["other"]


async def test_a_missing_name_or_uuid_raises_as_astakosclient_does(user: AstakosClient) -> None:
    with pytest.raises(NoUserName) as caught:
        await user.get_username("no-such-uuid")
    assert caught.value.uuid == "no-such-uuid" and isinstance(caught.value, PlatformError)
    with pytest.raises(NoUUID):
        await user.get_uuid("ghost@example.org")


async def test_service_variants_need_a_service_token(
    platform: LocalPlatform, service: AstakosClient, user: AstakosClient
) -> None:
    a = platform.astakos
    assert await service.service_get_username(a.uuids["user"]) == "user@example.org"
    assert await service.service_get_uuid("admin@example.org") == a.uuids["admin"]
    assert await service.service_get_uuids(["other@example.org"]) == {"other@example.org": a.uuids["other"]}
    with pytest.raises(NoUserName):
        await service.service_get_username("no-such-uuid")
    with pytest.raises(NoUUID):
        await service.service_get_uuid("ghost@example.org")
    with pytest.raises(Unauthorized):
        await user.service_get_usernames([a.uuids["user"]])
    with pytest.raises(Unauthorized):
        await service.get_usernames([a.uuids["user"]])


async def test_thousands_of_ids_are_looked_up_in_concurrent_chunks(
    platform: LocalPlatform, service: AstakosClient
) -> None:
    a = platform.astakos
    known = [a.uuids[k] for k in ("user", "admin", "other")]
    uuids = [f"missing-{i}" for i in range(2500)] + known
    names = await service.service_get_usernames(uuids, chunk_size=400, concurrency=4)
    assert names == {u: a.usernames[k] for k, u in zip(("user", "admin", "other"), known, strict=True)}
    assert platform.stats.count("POST", "/astakos/account/v1.0/service/user_catalogs") == 7  # 2503 / 400


async def test_a_lone_string_is_refused_before_any_request(
    platform: LocalPlatform, user: AstakosClient
) -> None:
    with pytest.raises(TypeError, match="uuids"):
        await user.get_usernames("abc")
    with pytest.raises(ValueError, match="chunk_size"):
        await user.get_uuids(["a@b.c"], chunk_size=0)
    assert platform.stats.requests == 0


async def test_chunks_of_a_big_lookup_are_in_flight_together(platform: LocalPlatform) -> None:
    platform.faults.latency = 0.05  # every answer takes a while: overlapping chunks need their own connection
    async with AstakosClient(platform.astakos_user_token, platform.astakos_auth_url) as client:
        await client.get_endpoints()
        before = platform.stats.connections
        names = [f"ghost{i}@example.org" for i in range(1200)] + ["user@example.org"]
        found = await client.get_uuids(names, chunk_size=100, concurrency=4)
        assert found == {"user@example.org": platform.astakos.user_uuid}
        assert platform.stats.count("POST", "/astakos/account/v1.0/user_catalogs") == 13
        assert platform.stats.connections - before >= 3  # one connection would mean one chunk at a time
        assert client.session.pool_status()["in_use"] == 0


async def test_an_empty_lookup_sends_nothing_and_a_bad_concurrency_is_refused(
    platform: LocalPlatform, user: AstakosClient
) -> None:
    assert await user.get_usernames([]) == {}
    assert await user.service_get_uuids(()) == {}
    with pytest.raises(ValueError, match="concurrency"):
        await user.get_usernames(["x"], concurrency=0)
    assert platform.stats.requests == 0
