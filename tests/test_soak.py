"""Soak: the batch operations of three services at scale under every kind of injected fault.

Each test runs one service's batches under 5% 429 + 5% 503 + 1% drop-before + 1% drop-after
on every route, then checks the outcome against the embedded platform's own store:
0 lost, 0 duplicated, 0 wrong outcomes, 0 unreported orphans, quota arithmetic exact and
bytes equal. A 429/503 is answered before the handler runs (safe to retry); drop-before
closes the connection before it (nothing happened, but a POST cannot know that); drop-after
closes it after the handler committed (the work is done, the answer lost) — the case the
reconciliations exist for. The only failures allowed are POSTs dropped before the handler:
provably nothing was made, and the outcome says so.
"""

from __future__ import annotations

import collections
import random
import sqlite3
from pathlib import Path

from aioplatform import RetryPolicy, TransportError
from aioplatform.astakos import AstakosClient, CommissionRequest
from aioplatform.flowserv import FlowservClient
from aioplatform.saltant import SaltantClient
from aioplatform.testing import FaultRule, LocalPlatform

# Every route, every service: the faults the issue names.
SOAK = FaultRule(rate_429=0.05, rate_503=0.05, drop_before=0.01, drop_after=0.01, retry_after=0.01)
# Ten attempts: a 429/503 (10% of requests) outlasts them with probability 1e-10 per call.
POLICY = RetryPolicy(max_attempts=10, backoff_base=0.01, backoff_cap=0.1)

SALTANT_N = 2000
ASTAKOS_N = 1000
FLOWSERV_N = 200


async def test_saltant_clone_many_and_terminate_many_of_2000_under_faults() -> None:
    clone_route = "POST /saltant/api/containertaskinstances/*/clone/"
    async with LocalPlatform(seed=101) as platform:
        platform.saltant.publish_delay = 10_000.0  # instances stay `created` until terminated
        async with SaltantClient(platform.saltant_url, platform.saltant_token, retry=POLICY) as client:
            task_type = await client.container_task_types.create("soak", "true", "busybox", "docker")
            whitelist = await client.task_whitelists.create(
                "soak", whitelisted_container_task_types=[task_type.id]
            )
            queue = await client.task_queues.create("soak", whitelists=[whitelist.id])
            spec = {"task_type_id": task_type.id, "task_queue_id": queue.id}
            specs = [{**spec, "name": f"soak-{i}", "arguments": {"i": i}} for i in range(SALTANT_N)]
            made = await client.container_task_instances.create_many(specs, concurrency=50)
            assert made.ok
            originals = made.values
            uuids = [o.uuid for o in originals]

            platform.faults.add(SOAK)
            cloned = await client.container_task_instances.clone_many(uuids, concurrency=50, reconcile=True)
            terminated = await client.container_task_instances.terminate_many(uuids, concurrency=50)
            assert client.session.pool_status()["in_use"] == 0

        faults = platform.faults
        assert faults.count("drop_after", clone_route) > 0 and faults.count("drop_before", clone_route) > 0
        assert faults.count("drop_after", "POST */terminate/") > 0
        assert faults.count("drop_before", "POST */terminate/") > 0

        def stored(conn: sqlite3.Connection) -> dict[str, list[tuple[str, str]]]:
            by_name: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
            rows = conn.execute("SELECT uuid, name, state FROM saltant_containertaskinstances")
            for uuid, name, state in rows:
                by_name[name].append((uuid, state))
            return by_name

        store = platform.store.run_sync(stored)

        # clone_many: one outcome per input; each success is the one clone the store holds for
        # its original; each failure a POST dropped before the handler, with no clone behind it
        assert len(cloned) == SALTANT_N
        assert all(isinstance(e.exception, TransportError) for e in cloned.errors)
        assert len(cloned.errors) == faults.count("drop_before", clone_route)
        reported = [c.uuid for c in cloned.values]
        assert len(set(reported)) == len(reported)  # 0 duplicated outcomes
        for index, original in enumerate(originals):
            rows = dict(store[original.name])
            clones = set(rows) - {original.uuid}
            outcome = cloned.outcomes[index]
            if isinstance(outcome, BaseException):
                assert clones == set(), index  # 0 unreported orphans
            else:
                assert clones == {outcome.uuid}, index  # 0 lost, 0 duplicated, 0 wrong
                assert (outcome.name, outcome.arguments) == (original.name, {"i": index})
                assert rows[outcome.uuid] == "created"  # terminate_many touched only its inputs
        assert sum(len(rows) for rows in store.values()) == SALTANT_N + len(reported)

        # terminate_many: idempotent, so every instance is terminated and every outcome a success
        assert terminated.ok and [t.uuid for t in terminated.values] == uuids
        assert all(dict(store[o.name])[o.uuid] == "terminated" for o in originals)


async def test_astakos_issue_many_and_chunked_resolve_of_1000_under_faults() -> None:
    issue_route = "POST /astakos/account/v1.0/commissions"
    resources = ("cyclades.vm", "cyclades.cpu")
    async with LocalPlatform(seed=202) as platform:
        astakos = platform.astakos
        users = [astakos.uuids[k] for k in ("user", "admin", "other")]
        for u in users:
            for res in resources:
                await astakos.set_limit(f"user:{u}", f"project:{u}", res, 10**9)
                await astakos.set_limit(f"project:{u}", None, res, 10**9)
        rng = random.Random(7)
        requests = [
            CommissionRequest.one(u, u, {res: rng.randint(1, 5) for res in resources}, name=f"soak-{i % 10}")
            for i, u in enumerate(rng.choice(users) for _ in range(ASTAKOS_N))
        ]
        before = await astakos.holdings()
        async with AstakosClient(astakos.service_token, platform.astakos_auth_url, retry=POLICY) as client:
            assert await client.get_pending_commissions() == []  # the catalog is discovered before the faults
            platform.faults.add(SOAK)
            issued = await client.issue_many(requests, concurrency=32, reconcile=True)
            pending = await astakos.commissions()

            serials = issued.values
            accept, reject = serials[::2], serials[1::2]
            resolved = await client.resolve_commissions(accept, reject, chunk_size=50, concurrency=8)
            assert client.session.pool_status()["in_use"] == 0

        faults = platform.faults
        assert faults.count("drop_after", issue_route) > 0 and faults.count("drop_before", issue_route) > 0

        # issue_many: every pending commission is exactly one item's outcome, with its provisions
        assert len(issued) == ASTAKOS_N
        assert len(set(serials)) == len(serials)
        assert set(pending) == set(serials)  # 0 unreported orphans, 0 lost
        for index, serial in enumerate(issued.outcomes):
            if not isinstance(serial, BaseException):
                assert pending[serial] == [p.to_wire() for p in requests[index].provisions], index
        assert all(isinstance(e.exception, TransportError) for e in issued.errors)
        assert len(issued.errors) == faults.count("drop_before", issue_route)

        # resolve: every serial resolved as asked, once; nothing left pending
        assert resolved.failed == []
        assert sorted(resolved.accepted) == sorted(accept) and len(resolved.accepted) == len(accept)
        assert sorted(resolved.rejected) == sorted(reject) and len(resolved.rejected) == len(reject)
        assert await astakos.commissions() == {}

        # quota arithmetic, exactly: usage grew by the accepted quantities and nothing else
        grown: collections.Counter[tuple[str, str | None, str]] = collections.Counter()
        for serial in accept:
            for p in pending[serial]:
                grown[(p["holder"], p["source"], p["resource"])] += p["quantity"]
        after = await astakos.holdings()
        assert set(after) == set(before)
        for key, holding in after.items():
            old = before[key]
            assert holding["usage_min"] - old["usage_min"] == grown[key], key
            assert holding["usage_max"] - old["usage_max"] == grown[key], key


async def test_flowserv_upload_many_of_200_files_under_faults(tmp_path: Path) -> None:
    uploads = "POST /flowserv/api/v1/uploads/*/files"
    rng = random.Random(3)
    sources: list[tuple[bytes, str] | Path] = []
    for i in range(FLOWSERV_N):
        content = rng.randbytes(rng.randint(1, 64 * 1024))
        if i % 2:
            sources.append((content, f"f{i:03d}.bin"))
        else:
            path = tmp_path / f"f{i:03d}.bin"
            path.write_bytes(content)
            sources.append(path)
    async with LocalPlatform(seed=303) as platform:
        async with FlowservClient(platform.flowserv_url, retry=POLICY) as client:
            user = await client.users.register("soak", "soak-password-1")
            await client.users.login(user.username, "soak-password-1")
            group = await client.groups.create(platform.flowserv.workflow_id, "soak")
            platform.faults.add(SOAK)
            result = await client.groups.upload_many(group.id, sources, concurrency=8, reconcile=True)
            assert client.session.pool_status()["in_use"] == 0

        faults = platform.faults
        # (200 uploads meet ~4 drops; the reconciliation of those is pinned in tests/flowserv)
        assert faults.count("429", uploads) > 0 and faults.count("503", uploads) > 0

        def stored(conn: sqlite3.Connection) -> dict[str, tuple[str, int]]:
            rows = conn.execute("SELECT id, name, size FROM flowserv_files WHERE group_id = ?", (group.id,))
            return {fid: (name, size) for fid, name, size in rows}

        files = platform.store.run_sync(stored)
        assert len(result) == FLOWSERV_N
        handles = result.values
        assert len({h.id for h in handles}) == len(handles)  # 0 duplicated
        assert set(files) == {h.id for h in handles}  # 0 lost, 0 unreported orphans
        assert all(isinstance(e.exception, TransportError) for e in result.errors)
        assert len(result.errors) == faults.count("drop_before", uploads)
        for index, outcome in enumerate(result.outcomes):
            if isinstance(outcome, BaseException):
                continue
            source = sources[index]
            content = source.read_bytes() if isinstance(source, Path) else source[0]
            assert files[outcome.id] == (f"f{index:03d}.bin", len(content)), index  # 0 wrong outcomes
            assert (platform.flowserv.files_dir / outcome.id).read_bytes() == content, index  # bytes equal
