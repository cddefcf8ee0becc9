"""1,000 commissions under injected faults: one outcome each, nothing issued twice, holdings consistent."""

from __future__ import annotations

import asyncio
import random

import pytest

from aioplatform import TransportError
from aioplatform.astakos import AstakosClient, CommissionRequest
from aioplatform.testing import FaultRule, LocalPlatform

from .conftest import FAST

ISSUE = "POST /astakos/account/v1.0/commissions"
RESOLVE = "POST /astakos/account/v1.0/commissions/action"
LOOKUPS = "GET /astakos/account/v1.0/commissions*"  # the pending list and each commission's info
RESOURCES = ("cyclades.vm", "cyclades.cpu")


async def test_issue_many_under_faults_never_issues_twice_and_resolve_leaves_holdings_consistent() -> None:
    faults = [
        FaultRule(match=ISSUE, rate_429=0.05, rate_503=0.05, drop_after=0.02, retry_after=0.05),
        FaultRule(match=RESOLVE, rate_429=0.1, rate_503=0.1, retry_after=0.05),
    ]
    async with LocalPlatform(faults=faults, seed=7) as platform:
        astakos = platform.astakos
        users = [astakos.uuids[k] for k in ("user", "admin", "other")]
        for u in users:
            for res in RESOURCES:
                await astakos.set_limit(f"user:{u}", f"project:{u}", res, 10**9)
                await astakos.set_limit(f"project:{u}", None, res, 10**9)
        rng = random.Random(1)
        owners = [rng.choice(users) for _ in range(1000)]
        requests = [
            CommissionRequest.one(u, u, {res: rng.randint(1, 3) for res in RESOURCES}) for u in owners
        ]
        progress: list[int] = []
        async with AstakosClient(astakos.service_token, platform.astakos_auth_url, retry=FAST) as client:
            result = await client.issue_many(
                requests, concurrency=32, on_progress=lambda done, total, outcome: progress.append(done)
            )

            assert client.session.pool_status()["in_use"] == 0
            # exactly one outcome per input, in order
            assert len(result) == 1000 and progress == list(range(1, 1001))
            drops = platform.faults.count("drop_after", ISSUE)
            throttled = platform.faults.count("429", ISSUE) + platform.faults.count("503", ISSUE)
            assert drops > 0 and throttled > 0
            # every failure is a connection dropped after the handler ran: reported, never re-sent
            assert len(result.errors) == drops
            assert all(isinstance(e.exception, TransportError) for e in result.errors)
            # each request reached the server once, plus one re-send per 429/503 (never processed)
            assert platform.stats.count("POST", "/astakos/account/v1.0/commissions") == 1000 + throttled

            pending = await astakos.commissions()
            successes = result.values
            assert len(set(successes)) == len(successes)
            # one commission per success, plus the one each dropped answer left behind
            assert len(pending) == len(successes) + drops
            assert set(successes) <= set(pending)

            for serial, request in zip(
                successes, [r for i, r in enumerate(requests) if result.succeeded(i)], strict=True
            ):
                assert pending[serial] == [p.to_wire() for p in request.provisions]

            # and each dropped answer left exactly the commission its input asked for
            def key(provisions: list[dict[str, object]]) -> str:
                return repr(provisions)

            lost = sorted(key([p.to_wire() for p in requests[e.index].provisions]) for e in result.errors)
            assert sorted(key(pending[s]) for s in set(pending) - set(successes)) == lost

            accept, reject = successes[: len(successes) // 2], successes[len(successes) // 2 :]
            resolved = await client.resolve_commissions(accept, reject, chunk_size=50, concurrency=8)
            # the chunks were throttled too, and retried (429/503 are provably unprocessed)
            assert platform.faults.count("429", RESOLVE) + platform.faults.count("503", RESOLVE) > 0

        assert resolved.failed == []
        assert resolved.accepted == accept and resolved.rejected == reject
        orphans = await astakos.commissions()
        assert set(orphans) == set(pending) - set(successes)

        expected: dict[tuple[str, str | None, str], dict[str, int]] = {}
        for serial in accept:
            for p in pending[serial]:
                h = expected.setdefault((p["holder"], p["source"], p["resource"]), {"min": 0, "max": 0})
                h["min"] += p["quantity"]
                h["max"] += p["quantity"]
        for provisions in orphans.values():
            for p in provisions:
                h = expected.setdefault((p["holder"], p["source"], p["resource"]), {"min": 0, "max": 0})
                h["max"] += p["quantity"]
        holdings = await astakos.holdings()
        assert set(expected) <= set(holdings)
        for key, h in holdings.items():
            want = expected.get(key, {"min": 0, "max": 0})
            assert (h["usage_min"], h["usage_max"]) == (want["min"], want["max"]), key


async def test_cancelling_issue_many_leaves_no_connection_in_use() -> None:
    async with LocalPlatform(latency=0.02) as platform:
        u = platform.astakos.user_uuid
        await platform.astakos.set_limit(f"user:{u}", f"project:{u}", "cyclades.vm", 10**6)
        await platform.astakos.set_limit(f"project:{u}", None, "cyclades.vm", 10**6)
        async with AstakosClient(platform.astakos_service_token, platform.astakos_auth_url) as client:
            requests = [CommissionRequest.one(u, u, {"cyclades.vm": 1}) for _ in range(500)]
            some_done = asyncio.Event()

            def progress(done: int, total: int | None, outcome: object) -> None:
                if done >= 20:
                    some_done.set()

            task = asyncio.ensure_future(client.issue_many(requests, concurrency=16, on_progress=progress))
            await some_done.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert client.session.pool_status()["in_use"] == 0
            sent = platform.stats.count("POST", "/astakos/account/v1.0/commissions")
            assert sent < 500
            await asyncio.sleep(0.1)  # handlers of cancelled requests may still finish
            assert len(await client.get_pending_commissions()) <= sent


async def test_reconciled_issue_many_leaves_no_unreported_orphan_under_dropped_connections() -> None:
    # drop_after: the commission is made, its answer lost -> found and reported as the item's serial;
    # drop_before: sent, never made -> stays a failure; 429/503: retried (never processed).
    faults = [
        FaultRule(
            match=ISSUE, rate_429=0.05, rate_503=0.05, drop_before=0.02, drop_after=0.03, retry_after=0.01
        ),
        FaultRule(match=LOOKUPS, rate_503=0.3, drop_after=0.1, retry_after=0.01),
    ]
    async with LocalPlatform(faults=faults, seed=5) as platform:
        astakos = platform.astakos
        users = [astakos.uuids[k] for k in ("user", "admin", "other")]
        for u in users:
            for res in RESOURCES:
                await astakos.set_limit(f"user:{u}", f"project:{u}", res, 10**9)
                await astakos.set_limit(f"project:{u}", None, res, 10**9)
        rng = random.Random(2)
        twin = CommissionRequest.one(users[0], users[0], {"cyclades.vm": 1})  # one input, many times
        requests = [
            twin if i % 2 else CommissionRequest.one(
                u, u, {res: rng.randint(1, 3) for res in RESOURCES}, name=f"c{i % 7}"
            )
            for i, u in enumerate(rng.choice(users) for _ in range(1000))
        ]  # fmt: skip
        async with AstakosClient(astakos.service_token, platform.astakos_auth_url, retry=FAST) as client:
            platform.faults.clear()
            # made before the batch with the same inputs as half the items: never claimed
            earlier = [await client.issue_commission(twin) for _ in range(3)]
            for rule in faults:
                platform.faults.add(rule)
            result = await client.issue_many(requests, concurrency=32, reconcile=True)
            assert client.session.pool_status()["in_use"] == 0

        assert platform.faults.count("drop_after", ISSUE) > 0
        assert platform.faults.count("drop_before", ISSUE) > 0
        assert platform.faults.count(None, LOOKUPS) > 0  # the look-ups were faulted too
        assert len(result) == 1000
        serials = result.values
        assert len(set(serials)) == len(serials) and not set(serials) & set(earlier)
        pending = await astakos.commissions()
        # 0 unreported orphans: every pending commission is an earlier one or some item's outcome
        assert set(pending) == set(earlier) | set(serials)
        for index, serial in enumerate(result.outcomes):
            if not isinstance(serial, BaseException):
                assert pending[serial] == [p.to_wire() for p in requests[index].provisions], index
        # each failure is an item whose commission was never made
        assert all(isinstance(e.exception, TransportError) for e in result.errors)
        assert len(result.errors) == platform.faults.count("drop_before", ISSUE)
