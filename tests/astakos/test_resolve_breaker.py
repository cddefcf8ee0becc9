"""A chunked ``resolve_commissions`` takes a ``breaker``: when the component's token is
rejected, it stops sending chunks after the threshold, reports every serial of a chunk not
sent as ``NotAttempted`` (never re-sent), and loses none; a wrong type is a TypeError naming
the argument, raised before any request."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aioplatform import Breaker, NotAttempted, Unauthorized
from aioplatform.astakos import AstakosClient
from aioplatform.testing import FaultRule, LocalPlatform

from .conftest import FAST

VM = "cyclades.vm"
RESOLVE_ROUTE = "POST /astakos/account/v1.0/commissions/action"


async def rotate_component_token(platform: LocalPlatform) -> None:
    """Give the ``cyclades`` component a new token: the client's one is rejected from now on."""
    await platform.astakos.renew_component_token("cyclades")


async def room(platform: LocalPlatform) -> None:
    u = platform.astakos.user_uuid
    await platform.astakos.set_limit(f"user:{u}", f"project:{u}", VM, 10**6)
    await platform.astakos.set_limit(f"project:{u}", None, VM, 10**6)


async def test_the_breaker_stops_sending_chunks_and_every_serial_has_one_entry(
    platform: LocalPlatform,
) -> None:
    u = platform.astakos.user_uuid
    await room(platform)
    async with AstakosClient(platform.astakos_service_token, platform.astakos_auth_url, retry=FAST) as client:
        serials = [await client.issue_one_commission(u, u, {VM: 1}) for _ in range(20)]
        # each resolve request waits before its handler; the token is rotated during the first
        platform.faults.add(FaultRule(match=RESOLVE_ROUTE, latency=0.3))

        async def revoke_when_the_first_chunk_arrives() -> None:
            for _ in range(2000):  # at most 10 s
                if platform.stats.count("POST", "*/commissions/action") >= 1:
                    break
                await asyncio.sleep(0.005)
            await rotate_component_token(platform)

        revoking = asyncio.ensure_future(revoke_when_the_first_chunk_arrives())
        result = await client.resolve_commissions(
            serials[:12], serials[12:], chunk_size=2, concurrency=1, breaker=Breaker(3)
        )
        await revoking

    assert result.accepted == [] and result.rejected == []
    # exactly one entry per serial, nothing lost, nothing twice
    assert sorted(s for s, _ in result.failed) == sorted(serials)
    by_serial = {s: fault for s, fault in result.failed}
    sent, not_sent = serials[:6], serials[6:]  # three chunks of two went out before the stop
    assert all(isinstance(by_serial[s].exception, Unauthorized) for s in sent)
    assert all(isinstance(by_serial[s].exception, NotAttempted) for s in not_sent)
    cause = by_serial[not_sent[0]].exception
    assert isinstance(cause, NotAttempted) and isinstance(cause.cause, Unauthorized)
    assert "3 consecutive rejections of the credentials" in by_serial[not_sent[0]].message
    # three chunks sent, none re-sent (the pending list could not be read with a rejected token)
    assert platform.stats.count("POST", "*/commissions/action") == 3
    assert sorted(await platform.astakos.commissions()) == sorted(serials)  # all still pending


async def test_credentials_rejected_from_the_start_fail_the_pending_list_read_before_any_chunk(
    platform: LocalPlatform,
) -> None:
    u = platform.astakos.user_uuid
    await room(platform)
    async with AstakosClient(platform.astakos_service_token, platform.astakos_auth_url, retry=FAST) as client:
        serials = [await client.issue_one_commission(u, u, {VM: 1}) for _ in range(6)]
        await rotate_component_token(platform)
        with pytest.raises(Unauthorized):  # the pending list is read first, with the same token
            await client.resolve_commissions(serials, [], chunk_size=2, breaker=Breaker(1))
    assert platform.stats.count("POST", "*/commissions/action") == 0


async def test_a_breaker_that_never_trips_changes_nothing(platform: LocalPlatform) -> None:
    u = platform.astakos.user_uuid
    await room(platform)
    async with AstakosClient(platform.astakos_service_token, platform.astakos_auth_url, retry=FAST) as client:
        serials = [await client.issue_one_commission(u, u, {VM: 1}) for _ in range(6)]
        result = await client.resolve_commissions(
            serials[:4], serials[4:], chunk_size=2, concurrency=2, breaker=Breaker(1)
        )
        one = await client.issue_one_commission(u, u, {VM: 1})
        single = await client.resolve_commissions([one], [], breaker=Breaker(1))  # one request
    assert sorted(result.accepted) == serials[:4] and result.rejected == serials[4:] and result.failed == []
    assert single.accepted == [one] and single.failed == []


@pytest.mark.parametrize("chunk_size", [None, 2])
@pytest.mark.parametrize("breaker", [20, "Breaker(3)", object()])
async def test_a_wrong_breaker_type_is_a_type_error_before_any_request(
    platform: LocalPlatform, service: AstakosClient, chunk_size: int | None, breaker: Any
) -> None:
    before = platform.stats.count()
    with pytest.raises(TypeError, match="breaker"):
        await service.resolve_commissions([1, 2], [3], chunk_size=chunk_size, breaker=breaker)
    assert platform.stats.count() == before
