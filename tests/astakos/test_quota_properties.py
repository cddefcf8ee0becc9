"""Property tests of the commission arithmetic (astakos.md §5.4) against a reference model.

For any sequence of issues (within, over the limit, forced, releases) and any
accept/reject split, the server's usage_min/usage_max and reported usage/pending
equal what the §5.4 table computes; unknown and conflicting serials are failed;
nothing stays pending once everything is resolved. Each example gets a fresh user
(fresh holdings) on one platform running on its own thread.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from aioplatform.astakos import AstakosClient, CommissionRequest, QuotaLimit
from aioplatform.testing import LocalPlatform

RESOURCES = ("cyclades.vm", "cyclades.cpu")
USER_LIMIT, PROJECT_LIMIT = 10, 12
NAMES = itertools.count()
Example = tuple[Any, ...]

quantity = st.integers(min_value=-4, max_value=7)
issue = st.tuples(
    st.dictionaries(st.sampled_from(RESOURCES), quantity, min_size=1, max_size=2),  # user provisions
    st.dictionaries(st.sampled_from(RESOURCES), quantity, max_size=2),  # project provisions
    st.booleans(),  # force
    st.booleans(),  # repeat the user provisions (merged by the server)
    st.booleans(),  # auto_accept
)
scenario = st.tuples(
    st.lists(issue, min_size=1, max_size=8),
    st.lists(st.booleans(), min_size=8, max_size=8),  # accept (True) or reject each serial
    st.booleans(),  # also ask to reject the first accepted serial (a conflict)
    st.sampled_from([None, 1, 3]),  # chunk_size
)


@pytest.fixture(scope="module")
def platform() -> Iterator[LocalPlatform]:
    with LocalPlatform.in_thread() as p:
        yield p


class Model:
    """The §5.4 table, written independently of the emulator."""

    def __init__(self, user: str):
        self.h: dict[tuple[str, str | None, str], list[int]] = {}
        for res in RESOURCES:
            self.h[(f"user:{user}", f"project:{user}", res)] = [USER_LIMIT, 0, 0]
            self.h[(f"project:{user}", None, res)] = [PROJECT_LIMIT, 0, 0]
        self.pending: dict[int, dict[tuple[str, str | None, str], int]] = {}

    def issue(
        self, lines: list[tuple[tuple[str, str | None, str], int]], force: bool
    ) -> tuple[Any, ...] | None:
        """Apply an issue as the table says, or (nothing applied) return the first failure:
        ``(kind, holder, source, resource, requested, limit, usage)`` as the 413 reports it."""
        merged: dict[tuple[str, str | None, str], int] = {}
        for key, q in lines:
            merged[key] = merged.get(key, 0) + q
        for key, q in merged.items():
            limit, lo, hi = self.h[key]
            if q >= 0 and not force and hi + q > limit:
                return ("NoCapacityError", *key, q, limit, hi)
            if q < 0 and lo + q < 0:
                return ("NoQuantityError", *key, -q, 0, lo)
        for key, q in merged.items():
            if q >= 0:
                self.h[key][2] += q
            else:
                self.h[key][1] += q
        self._last = merged
        return None

    def resolve(self, serial: int, accept: bool) -> None:
        for key, q in self.pending.pop(serial).items():
            if q >= 0:
                self.h[key][1 if accept else 2] += q if accept else -q
            else:
                self.h[key][2 if accept else 1] += q if accept else -q


def fresh_user(platform: LocalPlatform) -> str:
    """A new user whose system-project holdings have the small limits of the model."""
    astakos = platform.astakos
    user: str = platform.call(lambda: astakos.add_user(f"prop{next(NAMES)}@example.org"))[0]

    async def limits() -> None:
        for res in RESOURCES:
            await astakos.set_limit(f"user:{user}", f"project:{user}", res, USER_LIMIT)
            await astakos.set_limit(f"project:{user}", None, res, PROJECT_LIMIT)

    platform.call(limits)
    return user


async def run(platform: LocalPlatform, user: str, example: Example) -> None:
    issues, decisions, conflict, chunk_size = example
    astakos = platform.astakos
    model = Model(user)
    async with AstakosClient(astakos.service_token, platform.astakos_auth_url) as client:
        # some usage to release from: 5 of everything, accepted at once
        start = [(user, {r: 5 for r in RESOURCES}, {r: 5 for r in RESOURCES}, True, False, True)]
        for holder, user_q, project_q, force, repeat, auto in [*start, *((user, *i) for i in issues)]:
            request = CommissionRequest.generic(
                {(holder, user, r): q for r, q in user_q.items()},
                {(user, r): q for r, q in project_q.items()},
                force=force,
                auto_accept=auto,
            )
            if repeat:
                request = CommissionRequest(request.provisions * 2, force=force, auto_accept=auto)
            lines = [((p.holder, p.source, p.resource), p.quantity) for p in request.provisions]
            failure = model.issue(lines, force)
            try:
                serial = await client.issue_commission(request)
            except QuotaLimit as e:
                event(f"{e.kind} ({'forced' if force else 'not forced'})")
                assert (e.kind, e.holder, e.source, e.resource, e.requested, e.limit, e.usage) == failure
            else:
                assert failure is None
                event("issued (forced)" if force else "issued")
                model.pending[serial] = model._last
                if auto:
                    model.resolve(serial, True)
            assert sorted(await client.get_pending_commissions()) == sorted(model.pending)
            await check(client, model, user)

        serials = list(model.pending)
        accept = [s for s, d in zip(serials, decisions, strict=False) if d]
        reject = [s for s, d in zip(serials, decisions, strict=False) if not d]
        conflicting = accept[:1] if conflict else []
        unknown = [10**9 + 1]
        result = await client.resolve_commissions(
            [*accept, *unknown], [*reject, *conflicting], chunk_size=chunk_size
        )
        for s in accept:
            if s not in conflicting:
                model.resolve(s, True)
        for s in reject:
            model.resolve(s, False)
        assert sorted(result.accepted) == sorted(s for s in accept if s not in conflicting)
        assert sorted(result.rejected) == sorted(reject)
        assert sorted((s, f.name) for s, f in result.failed) == sorted(
            [(s, "itemNotFound") for s in unknown] + [(s, "badRequest") for s in conflicting]
        )
        assert sorted(await client.get_pending_commissions()) == sorted(model.pending)
        await check(client, model, user)
        if conflicting:
            await client.reject_commission(conflicting[0])
            model.resolve(conflicting[0], False)
        assert model.pending == {}
        assert await client.get_pending_commissions() == []
        await check(client, model, user)


async def check(client: AstakosClient, model: Model, user: str) -> None:
    quotas = (await client.service_get_quotas(user=user))[user][user]
    for res in RESOURCES:
        limit, lo, hi = model.h[(f"user:{user}", f"project:{user}", res)]
        plimit, plo, phi = model.h[(f"project:{user}", None, res)]
        q = quotas[res]
        assert (q.limit, q.usage, q.pending) == (limit, hi, hi - lo), res
        assert (q.project_limit, q.project_usage, q.project_pending) == (plimit, phi, phi - plo), res


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(example=scenario)
def test_holdings_follow_the_commission_table_for_any_issues_and_any_resolution(
    platform: LocalPlatform, example: Example
) -> None:
    asyncio.run(run(platform, fresh_user(platform), example))
