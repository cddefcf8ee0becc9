"""``aioplatform demo``: a realistic high-concurrency job against the embedded platform.

Through the public API only: set up a saltant queue and task type, submit N task
instances with ``create_many``, ``clone_many`` them (reconciling the clones whose
answers were lost), ``terminate_many`` half of the
clones, ``wait_many`` for the rest, issue N Astakos commissions with ``issue_many``
(reconciling the commissions whose answers were lost to dropped connections) and
settle them with a chunked concurrent ``resolve_commissions``, then page through the
results with ``async for``. Faults are injected on purpose so the retry machinery is
visibly at work; the reads the demo cannot do without (setup, waits, listings, checks)
retry until their deadline. At the end the platform's own store is checked: nothing
lost, nothing duplicated — the demo exits 1 if that does not hold, and 2 (no verdict)
if a call outside the batches fails past its retries.

Needs the ``cli`` extra (rich).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from . import BatchResult, Limits, NotFound, PlatformError, RetryPolicy, Session, TransportError
from .astakos import AstakosClient, CommissionRequest
from .saltant import SaltantClient
from .testing import FaultRule, LocalPlatform

__all__ = ["run_demo"]

T = TypeVar("T")
QUANTITY = 1  # of the resource each commission takes
RESOURCE = "cyclades.vm"


@attrs.define
class Phase:
    name: str
    items: int = 0
    wall: float = 0.0
    requests: int = 0
    retries: int = 0
    connections: int = 0
    failures: int = 0


@attrs.define
class Check:
    what: str
    expected: int
    actual: int

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


class Demo:
    def __init__(self, platform: LocalPlatform, session: Session, n: int, console: Console):
        self.platform = platform
        self.session = session
        self.n = n
        self.console = console
        self.phases: list[Phase] = []
        self.checks: list[Check] = []
        self.tag = f"demo{int(time.time())}"
        self.saltant = SaltantClient(platform.saltant_url, platform.saltant_token, session=session)
        self.astakos = AstakosClient(
            platform.astakos_service_token, platform.astakos_auth_url, session=session
        )
        # Patient copies for the calls the demo cannot do without (its setup, waits, reads
        # and final checks): retried, under the same safe rules, until their deadline. The
        # batches keep the session's bounded policy, so their failures show in the table.
        patient = session.retry.until_deadline()
        self.patient_saltant = self.saltant.with_options(retry=patient)
        self.patient_astakos = self.astakos.with_options(retry=patient)

    async def phase(
        self,
        name: str,
        total: int,
        run: Callable[[Callable[[int, int | None, Any], None]], Awaitable[T]],
        failures: Callable[[T], int] = lambda result: (
            len(result.errors) if isinstance(result, BatchResult) else 0
        ),
    ) -> T:
        """Run one phase with a progress bar and record its counters."""
        before = self.session.stats.snapshot()
        progress = Progress(
            f"[bold]{name:>10}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        with progress:
            task = progress.add_task(name, total=total)

            def advance(done: int, _total: int | None, _outcome: Any) -> None:
                progress.update(task, completed=done)

            started = time.perf_counter()
            result = await run(advance)
            wall = time.perf_counter() - started
            progress.update(task, completed=total)
        after = self.session.stats.snapshot()
        self.phases.append(
            Phase(
                name,
                total,
                wall,
                after["requests"] - before["requests"],
                after["retries"] - before["retries"],
                after["connections_opened"] - before["connections_opened"],
                failures(result),
            )
        )
        return result

    def drops(self, pattern: str) -> int:
        """Requests on a route whose answer the platform dropped after doing the work."""
        return self.platform.faults.count("drop_after", pattern)

    async def run(self) -> bool:
        instances = self.saltant.container_task_instances
        prefix = "POST /saltant/api/containertaskinstances/"

        # -- saltant ---------------------------------------------------------------------
        whitelist_name, queue_name = f"{self.tag}-wl", f"{self.tag}-q"
        types, whitelists, queues = (
            self.patient_saltant.container_task_types,
            self.patient_saltant.task_whitelists,
            self.patient_saltant.task_queues,
        )
        ttype = await create_once(
            lambda: types.create(
                name=f"{self.tag}-type",
                command_to_run="echo {{ n }}",
                container_image="busybox",
                container_type="docker",
                required_arguments=["n"],
            ),
            lambda: types.get(name=f"{self.tag}-type"),
        )
        whitelist = await create_once(
            lambda: whitelists.create(name=whitelist_name, whitelisted_container_task_types=[ttype.id]),
            lambda: whitelists.get(name=whitelist_name),
        )
        queue = await create_once(
            lambda: queues.create(name=queue_name, whitelists=[whitelist.id]),
            lambda: queues.get(name=queue_name),
        )
        specs = [
            {
                "task_type_id": ttype.id,
                "task_queue_id": queue.id,
                "arguments": {"n": i},
                "name": f"{self.tag}-{i}",
            }
            for i in range(self.n)
        ]
        created = await self.phase(
            "create", self.n, lambda p: instances.create_many(specs, concurrency=50, on_progress=p)
        )
        originals = [i.uuid for i in created.values]
        cloned = await self.phase(
            "clone",
            len(originals),
            # reconcile: a clone whose answer the platform dropped is looked up, not lost
            lambda p: instances.clone_many(originals, concurrency=50, on_progress=p, reconcile=True),
        )
        clones = [i.uuid for i in cloned.values]
        half = len(clones) // 2
        await self.phase(
            "terminate",
            half,
            lambda p: instances.terminate_many(clones[:half], concurrency=50, on_progress=p),
        )
        # Polls are GETs, harmless to repeat: the patient client retries each one until its
        # deadline, so a faulted poll never passes for an instance that did not finish.
        waited = await self.phase(
            "wait",
            len(clones) - half,
            lambda p: self.patient_saltant.container_task_instances.wait_many(
                clones[half:], refresh_period=0.25, concurrency=50, on_progress=p
            ),
        )

        # -- Astakos ------------------------------------------------------------------------
        astakos = self.platform.astakos
        user, project = astakos.user_uuid, astakos.system_project
        await astakos.set_limit(f"user:{user}", f"project:{project}", RESOURCE, 10 * self.n)
        await astakos.set_limit(f"project:{project}", None, RESOURCE, 10 * self.n)
        before = await astakos.holding(f"user:{user}", f"project:{project}", RESOURCE)
        requests = [
            CommissionRequest.one(user, project, {RESOURCE: QUANTITY}, name=f"{self.tag}-{i}")
            for i in range(self.n)
        ]
        issued = await self.phase(
            "issue",
            self.n,
            # reconcile: a commission whose answer the platform dropped is found, not orphaned
            lambda p: self.astakos.issue_many(requests, concurrency=50, on_progress=p, reconcile=True),
        )
        serials = issued.values
        accept, reject = serials[: len(serials) * 9 // 10], serials[len(serials) * 9 // 10 :]

        async def resolve(progress: Callable[[int, int | None, Any], None]) -> Any:
            result = await self.astakos.resolve_commissions(accept, reject, chunk_size=100, concurrency=10)
            progress(len(serials), len(serials), result)
            return result

        resolved = await self.phase("resolve", len(serials), resolve, lambda r: len(r.failed))

        async def reconcile(progress: Callable[[int, int | None, Any], None]) -> Any:
            # A commission pending now was made but reported to no one (issue_many's
            # reconciliation found every lost answer it could): reject it, as a careful
            # component would. There should be none.
            orphans = await self.patient_astakos.get_pending_commissions()
            # Chunked: a lost answer is reconciled against the pending list, never guessed.
            result = await self.astakos.resolve_commissions([], orphans, chunk_size=100) if orphans else None
            progress(1, 1, result)
            return orphans

        orphans = await self.phase("reconcile", 1, reconcile, lambda _: 0)

        # -- paging -------------------------------------------------------------------------
        async def page(progress: Callable[[int, int | None, Any], None]) -> int:
            seen = 0
            listing = self.patient_saltant.container_task_instances.list(
                {"name__startswith": self.tag}, page_size=100
            )
            async for _ in listing:
                seen += 1
                progress(seen, None, None)
            return seen

        # -- the platform's store is the judge --------------------------------------------------
        def count_rows(conn: Any) -> int:
            query = "SELECT COUNT(*) FROM saltant_containertaskinstances WHERE name LIKE ?"
            return int(conn.execute(query, (f"{self.tag}-%",)).fetchone()[0])

        stored = await self.platform.store.run(count_rows)
        paged = await self.phase("page", stored, page, lambda _: 0)
        known = set(originals) | set(clones)

        def missing(conn: Any) -> int:
            found = 0
            for chunk in _chunks(sorted(known), 500):
                marks = ",".join("?" * len(chunk))
                found += conn.execute(
                    f"SELECT COUNT(*) FROM saltant_containertaskinstances WHERE uuid IN ({marks})", chunk
                ).fetchone()[0]
            return len(known) - int(found)

        # Creates whose answer was dropped made an instance nobody was told of; clones
        # whose answer was dropped were reconciled, so every stored clone is a success.
        ambiguous = self.drops(prefix)
        self.checks += [
            Check(
                "task instances lost (a success missing from the store)",
                0,
                await self.platform.store.run(missing),
            ),
            Check(
                "task instances duplicated (store minus successes minus dropped create answers)",
                0,
                stored - len(known) - ambiguous,
            ),
            Check("task instances paged with async for == stored", stored, paged),
            Check("waited clones that did not finish", 0, len(waited.errors)),
        ]
        after = await astakos.holding(f"user:{user}", f"project:{project}", RESOURCE)
        assert before is not None and after is not None
        self.checks += [
            Check("commission serials lost (issued, not resolved)", 0, len(resolved.failed)),
            Check("orphaned commissions (made, pending, reported to no one)", 0, len(orphans)),
            Check(
                "quota usage == quantity x accepted (nothing applied twice)",
                QUANTITY * len(resolved.accepted),
                after["usage_min"] - before["usage_min"],
            ),
            Check("commissions still pending", 0, len(await self.patient_astakos.get_pending_commissions())),
        ]
        return all(c.ok for c in self.checks)

    def report(self) -> None:
        table = Table(title=f"aioplatform demo — N={self.n}, platform {self.platform.url}")
        for column in ("phase", "items", "wall s", "items/s", "requests", "retries", "TCP", "failed"):
            table.add_column(column, justify="right" if column != "phase" else "left")
        for p in self.phases:
            rate = p.items / p.wall if p.wall else 0.0
            table.add_row(
                p.name,
                str(p.items),
                f"{p.wall:.2f}",
                f"{rate:,.0f}",
                str(p.requests),
                str(p.retries),
                str(p.connections),
                str(p.failures),
            )
        total = self.session.stats
        table.add_row(
            "[bold]total",
            "",
            f"{sum(p.wall for p in self.phases):.2f}",
            "",
            str(total.requests),
            str(total.retries),
            str(total.connections_opened),
            str(sum(p.failures for p in self.phases)),
        )
        self.console.print(table)
        injected = dict(self.platform.faults.injected)
        self.console.print(f"faults injected by the platform: {injected or 'none'}")
        self.console.print(
            "failures: calls whose answer the platform dropped after doing the work (a POST is never "
            "blindly re-sent), or that were still rate-limited when their retries ran out."
        )
        for check in self.checks:
            mark = "[green]ok[/green]" if check.ok else "[red]FAILED[/red]"
            self.console.print(f"  {mark}  {check.what}: expected {check.expected}, got {check.actual}")


async def create_once(create: Callable[[], Awaitable[T]], find: Callable[[], Awaitable[T]]) -> T:
    """Create a uniquely named object exactly once, even if the answer to the POST is lost.

    A POST whose connection dropped after sending may or may not have created the
    object, so it is never blindly re-sent: look it up by its unique name first, and
    create it again only if it provably does not exist.
    """
    for _ in range(5):
        try:
            return await create()
        except TransportError:
            try:
                return await find()
            except NotFound:
                continue  # provably not created: safe to send again
    return await create()


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def run_demo(
    n: int = 1000,
    *,
    db: str | None = None,
    latency: float = 0.02,
    fault_rate: float = 0.05,
    seed: int = 0,
    console: Console | None = None,
) -> int:
    """Run the demo; return the exit status (0 when the store check holds)."""
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    if not 0 <= fault_rate <= 1:
        raise ValueError(f"fault_rate must be between 0 and 1, got {fault_rate!r}")
    console = console or Console(soft_wrap=True)  # one line per check, even in a pipe
    rules = [FaultRule.uniform(fault_rate, retry_after=0.05)] if fault_rate else []
    with tempfile.TemporaryDirectory(prefix="aioplatform-demo-") as tmp:
        path = db or str(Path(tmp) / "platform.sqlite3")
        platform = LocalPlatform(path, latency=latency, faults=rules, seed=seed)
        session = Session(
            limits=Limits(max_connections=100),
            retry=RetryPolicy(max_attempts=6, backoff_base=0.05, backoff_cap=1.0),
        )
        async with platform, session:
            console.print(
                f"embedded platform on {platform.url} (SQLite {path}), latency {latency * 1000:.0f} ms, "
                f"fault rate {fault_rate:.0%}"
            )
            demo = Demo(platform, session, n, console)
            try:
                consistent = await demo.run()
            except PlatformError as exc:  # a fault outside any batch outlasted its retries
                console.print(f"[red]the demo stopped (no verdict): {exc}")
                return 2
            demo.report()
    console.print(
        "[green]consistent: nothing lost, nothing duplicated" if consistent else "[red]INCONSISTENT"
    )
    return 0 if consistent else 1
