"""``aioplatform demo``: one realistic job across the four services of the embedded platform.

Through the public API only, with every client on ONE shared :class:`~aioplatform.Session`
(one connection pool):

* saltant: set up a queue and task type, submit N task instances with ``create_many``,
  ``clone_many`` them (reconciling the clones whose answers were lost), ``terminate_many``
  half of the clones, ``wait_many`` for the rest, and at the end page through them all
  with ``async for``;
* a parameter sweep of J points: Astakos issues one quota commission per point with
  ``issue_many(reconcile=True)``; Agave submits the points' jobs with
  ``jobs.submit_many(reconcile=True)``, each job asking for a notification of every
  status at a local aiohttp receiver, and waits for them with ``jobs.wait_many`` while
  the notifications arrive; the finished jobs' outputs are downloaded with
  ``jobs.download_outputs``; flowserv uploads them to a group with
  ``upload_many(reconcile=True)``; then the commissions are resolved with a chunked
  ``resolve_commissions`` (accepted for a finished job, rejected otherwise) and any
  commission still pending that no outcome reported is rejected.

Faults are injected on purpose (429s, 503s, answers dropped after the work was done) so
the retry machinery is visibly at work; the reads the demo cannot do without (setup,
waits, downloads, listings, checks) retry until their deadline. The notifications go from
the platform to the receiver, outside the fault injector (which sits in front of the
platform's own routes), so none is lost or repeated by a fault. At the end every service's
store is checked: nothing lost, nothing duplicated, every outcome accounted for — the demo
exits 1 if that does not hold, and 2 (no verdict) if a call outside the batches fails
past its retries.

Needs the ``cli`` extra (rich).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import attrs
from aiohttp import web
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from . import (
    BatchResult,
    Limits,
    NotFound,
    PlatformError,
    RetryPolicy,
    Session,
    TransportError,
    gather,
)
from .agave import AgaveClient, JobStatus
from .astakos import AstakosClient, CommissionRequest
from .flowserv import FileHandle, FlowservClient
from .saltant import SaltantClient
from .testing import FaultRule, LocalPlatform
from .testing.agave.notifications import notifier_of

__all__ = ["run_demo"]

T = TypeVar("T")
QUANTITY = 1  # of the resource each commission takes
RESOURCE = "cyclades.vm"
APP = "wc-1.00"  # the embedded Agave's seeded app
SERVICES = ("saltant", "astakos", "agave", "flowserv")
JOB_FAILURE_RATE = 0.1  # the share of sweep jobs the embedded Agave makes fail (seeded)
NOTIFY_DEADLINE = 30.0  # seconds to wait for the last notifications once the jobs ended
DOWNLOAD_ROUNDS = 5  # a file whose stream broke is fetched again (a GET), at most this often
COLUMNS = ("service", "phase", "items", "wall s", "items/s", "requests", "retries", "TCP", "failed")
Progressed = Callable[[int, int | None, Any], None]


@attrs.define
class Phase:
    service: str
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


class Receiver:
    """A local aiohttp app the embedded Agave posts job notifications to.

    The webhook URL carries Agave's macros (``.../${JOB_ID}/${STATUS}``), expanded by the
    platform; each delivery is counted by (job id, status) and its body (the job's JSON)
    is checked against the URL.
    """

    def __init__(self) -> None:
        self.got: collections.Counter[tuple[str, str]] = collections.Counter()
        self.mismatched = 0  # deliveries whose body names another job or status than the URL
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/notify/{job_id}/{status}", self.hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/notify/${{JOB_ID}}/${{STATUS}}"

    async def hook(self, request: web.Request) -> web.Response:
        job_id, status = request.match_info["job_id"], request.match_info["status"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("id") != job_id or body.get("status") != status:
            self.mismatched += 1
        self.got[(job_id, status)] += 1
        return web.Response(text="ok")

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class Demo:
    def __init__(
        self,
        platform: LocalPlatform,
        session: Session,
        n: int,
        jobs: int,
        console: Console,
        receiver: Receiver,
        workdir: Path,
    ):
        self.platform = platform
        self.session = session
        self.n = n
        self.jobs = jobs
        self.console = console
        self.receiver = receiver
        self.workdir = workdir
        self.phases: list[Phase] = []
        self.checks: list[Check] = []
        self.facts: dict[str, list[str]] = {s: [] for s in SERVICES}
        self.tag = f"demo{int(time.time())}"
        # Four clients, one pool: every request below goes through `session`.
        self.saltant = SaltantClient(platform.saltant_url, platform.saltant_token, session=session)
        self.astakos = AstakosClient(
            platform.astakos_service_token, platform.astakos_auth_url, session=session
        )
        self.agave = AgaveClient(platform.agave_url, token=platform.agave_token, session=session)
        self.flowserv = FlowservClient(platform.flowserv_url, session=session)
        # Patient copies for the calls the demo cannot do without (its setup, waits, reads
        # and final checks): retried, under the same safe rules, until their deadline. The
        # batches keep the session's bounded policy, so their failures show in the table.
        patient = session.retry.until_deadline()
        self.patient_saltant = self.saltant.with_options(retry=patient)
        self.patient_astakos = self.astakos.with_options(retry=patient)
        self.patient_agave = self.agave.with_options(retry=patient)
        self.patient_flowserv = self.flowserv.with_options(retry=patient)

    async def phase(
        self,
        service: str,
        name: str,
        total: int,
        run: Callable[[Progressed], Awaitable[T]],
        failures: Callable[[T], int] = lambda result: (
            len(result.errors) if isinstance(result, BatchResult) else 0
        ),
    ) -> T:
        """Run one phase with a progress bar and record its counters."""
        before = self.session.stats.snapshot()
        progress = Progress(
            f"[bold]{service:>8} {name:>10}",
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
                service,
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
        originals, clones, waited = await self.run_saltant()
        serials, holding = await self.issue_commissions()
        submitted, statuses = await self.run_agave(serials)
        outputs = await self.download_outputs(statuses)
        await self.run_flowserv(outputs)
        await self.resolve_commissions(serials, holding, submitted, statuses)
        await self.check_saltant(originals, clones, waited)
        return all(c.ok for c in self.checks)

    # -- saltant ---------------------------------------------------------------------------

    async def run_saltant(self) -> tuple[list[str], list[str], BatchResult[Any]]:
        instances = self.saltant.container_task_instances
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
            "saltant",
            "create",
            self.n,
            lambda p: instances.create_many(specs, concurrency=50, on_progress=p),
        )
        originals = [i.uuid for i in created.values]
        cloned = await self.phase(
            "saltant",
            "clone",
            len(originals),
            # reconcile: a clone whose answer the platform dropped is looked up, not lost
            lambda p: instances.clone_many(originals, concurrency=50, on_progress=p, reconcile=True),
        )
        clones = [i.uuid for i in cloned.values]
        half = len(clones) // 2
        await self.phase(
            "saltant",
            "terminate",
            half,
            lambda p: instances.terminate_many(clones[:half], concurrency=50, on_progress=p),
        )
        # Polls are GETs, harmless to repeat: the patient client retries each one until its
        # deadline, so a faulted poll never passes for an instance that did not finish.
        waited = await self.phase(
            "saltant",
            "wait",
            len(clones) - half,
            lambda p: self.patient_saltant.container_task_instances.wait_many(
                clones[half:], refresh_period=0.25, concurrency=50, on_progress=p
            ),
        )
        self.facts["saltant"].append(
            f"{len(originals)} created, {len(clones)} cloned, {half} terminated, {len(waited.values)} waited"
        )
        return originals, clones, waited

    async def check_saltant(self, originals: list[str], clones: list[str], waited: BatchResult[Any]) -> None:
        async def page(progress: Progressed) -> int:
            seen = 0
            listing = self.patient_saltant.container_task_instances.list(
                {"name__startswith": self.tag}, page_size=100
            )
            async for _ in listing:
                seen += 1
                progress(seen, None, None)
            return seen

        def count_rows(conn: Any) -> int:
            query = "SELECT COUNT(*) FROM saltant_containertaskinstances WHERE name LIKE ?"
            return int(conn.execute(query, (f"{self.tag}-%",)).fetchone()[0])

        stored = await self.platform.store.run(count_rows)
        paged = await self.phase("saltant", "page", stored, page, lambda _: 0)
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
        ambiguous = self.drops("POST /saltant/api/containertaskinstances/")
        self.checks[:0] = [
            Check(
                "saltant: task instances lost (a success missing from the store)",
                0,
                await self.platform.store.run(missing),
            ),
            Check(
                "saltant: task instances duplicated (store minus successes minus dropped create answers)",
                0,
                stored - len(known) - ambiguous,
            ),
            Check("saltant: task instances paged with async for == stored", stored, paged),
            Check("saltant: waited clones that did not finish", 0, len(waited.errors)),
        ]

    # -- the sweep: Astakos commissions ------------------------------------------------------

    async def issue_commissions(self) -> tuple[list[int | None], dict[str, int]]:
        """One commission per sweep point; the serial of each point (None: not issued)."""
        astakos = self.platform.astakos
        user, project = astakos.user_uuid, astakos.system_project
        await astakos.set_limit(f"user:{user}", f"project:{project}", RESOURCE, 10 * self.jobs)
        await astakos.set_limit(f"project:{project}", None, RESOURCE, 10 * self.jobs)
        before = await astakos.holding(f"user:{user}", f"project:{project}", RESOURCE)
        assert before is not None
        requests = [
            CommissionRequest.one(user, project, {RESOURCE: QUANTITY}, name=f"{self.tag}-sweep-{i:03d}")
            for i in range(self.jobs)
        ]
        issued = await self.phase(
            "astakos",
            "issue",
            self.jobs,
            # reconcile: a commission whose answer the platform dropped is found, not orphaned
            lambda p: self.astakos.issue_many(requests, concurrency=50, on_progress=p, reconcile=True),
        )
        serials: list[int | None] = [
            None if isinstance(o, BaseException) else int(o) for o in issued.outcomes
        ]
        return serials, before

    async def resolve_commissions(
        self,
        serials: list[int | None],
        before: dict[str, int],
        submitted: list[str | None],
        statuses: dict[str, JobStatus],
    ) -> None:
        """Accept the commission of every point whose job FINISHED, reject the others."""
        accept = [
            s for s, j in zip(serials, submitted, strict=True) if s is not None and _finished(j, statuses)
        ]
        reject = [
            s for s, j in zip(serials, submitted, strict=True) if s is not None and not _finished(j, statuses)
        ]

        async def resolve(progress: Progressed) -> Any:
            result = await self.astakos.resolve_commissions(accept, reject, chunk_size=100, concurrency=10)
            progress(len(accept) + len(reject), None, result)
            return result

        resolved = await self.phase(
            "astakos", "resolve", len(accept) + len(reject), resolve, lambda r: len(r.failed)
        )

        async def reconcile(progress: Progressed) -> Any:
            # A commission pending now was made but reported to no one (issue_many's
            # reconciliation found every lost answer it could): reject it, as a careful
            # component would. There should be none.
            orphans = await self.patient_astakos.get_pending_commissions()
            # Chunked: a lost answer is reconciled against the pending list, never guessed.
            result = await self.astakos.resolve_commissions([], orphans, chunk_size=100) if orphans else None
            progress(1, 1, result)
            return orphans

        orphans = await self.phase("astakos", "reconcile", 1, reconcile, lambda _: 0)
        astakos = self.platform.astakos
        holder, source = f"user:{astakos.user_uuid}", f"project:{astakos.system_project}"
        after = await astakos.holding(holder, source, RESOURCE)
        assert after is not None
        job_ids = [j for j in submitted if j is not None]

        def finished_in_store(conn: Any) -> int:
            found = 0
            for chunk in _chunks(sorted(job_ids), 500):
                marks = ",".join("?" * len(chunk))
                found += conn.execute(
                    f"SELECT COUNT(*) FROM agave_jobs_jobs WHERE status = 'FINISHED' AND id IN ({marks})",
                    chunk,
                ).fetchone()[0]
            return int(found)

        finished = await self.platform.store.run(finished_in_store)
        self.facts["astakos"].append(
            f"{sum(s is not None for s in serials)} of {len(serials)} commissions issued, "
            f"{len(resolved.accepted)} accepted, {len(resolved.rejected)} rejected, {len(orphans)} orphans"
        )
        self.checks += [
            Check("astakos: commission serials lost (issued, not resolved)", 0, len(resolved.failed)),
            Check("astakos: orphaned commissions (made, pending, reported to no one)", 0, len(orphans)),
            Check(
                "astakos: quota usage == quantity x jobs FINISHED in the Agave store (each applied once)",
                QUANTITY * finished,
                after["usage_min"] - before["usage_min"],
            ),
            Check(
                "astakos: commissions still pending",
                0,
                len(await self.patient_astakos.get_pending_commissions()),
            ),
        ]

    # -- the sweep: Agave jobs, notifications, outputs -----------------------------------------

    async def run_agave(self, serials: list[int | None]) -> tuple[list[str | None], dict[str, JobStatus]]:
        """Submit a job for every point with a commission; wait for them and their notifications.

        Returns each point's job id (None: no commission, or the submit failed) and the
        final status of every job that ended."""
        points = [i for i, s in enumerate(serials) if s is not None]
        subscription = {"url": self.receiver.url, "event": "*", "persistent": True}
        bodies = [
            {
                "name": f"{self.tag}-sweep-{i:03d}",  # unique: what reconcile looks a lost submit up by
                "appId": APP,
                "inputs": {"query1": f"agave://agave-storage/data/sweep/part-{i:03d}.txt"},
                "parameters": {"printLongestLine": i % 2 == 0},
                "archive": False,
                "notifications": [subscription],
            }
            for i in points
        ]
        submitted = await self.phase(
            "agave",
            "submit",
            len(bodies),
            # reconcile: a submit whose answer was dropped is found by its unique name
            lambda p: self.agave.jobs.submit_many(bodies, concurrency=20, reconcile=True, on_progress=p),
        )
        job_of: list[str | None] = [None] * len(serials)
        for point, outcome in zip(points, submitted.outcomes, strict=True):
            if not isinstance(outcome, BaseException):
                job_of[point] = outcome.id
        ids = [j for j in job_of if j is not None]
        # Polls are GETs: the patient client retries each until its deadline.
        waited = await self.phase(
            "agave",
            "wait",
            len(ids),
            lambda p: self.patient_agave.jobs.wait_many(
                ids, poll_interval=0.1, max_interval=0.5, deadline=120, concurrency=50, on_progress=p
            ),
        )
        statuses = {s.id: s for s in waited.values}
        await self.phase("agave", "notified", len(ids), self.await_notifications, lambda _: 0)
        await self.check_agave(ids, waited)
        ended = collections.Counter(s.status for s in waited.values)
        self.facts["agave"].append(
            f"{len(bodies)} submitted, {len(ids)} jobs, {len(submitted.errors)} refused past retries; "
            + ", ".join(f"{n} {status}" for status, n in sorted(ended.items()))
            + f"; {sum(self.receiver.got.values())} notifications received"
        )
        return job_of, statuses

    def _sweep_jobs(self, conn: Any) -> list[Any]:
        query = "SELECT id, status, next_at, output_system, doc FROM agave_jobs_jobs WHERE name LIKE ?"
        return list(conn.execute(query, (f"{self.tag}-sweep-%",)).fetchall())

    def _sweep_history(self, conn: Any) -> set[tuple[str, str]]:
        rows = conn.execute(
            "SELECT h.job_id, h.status FROM agave_jobs_history h JOIN agave_jobs_jobs j ON j.id = h.job_id"
            " WHERE j.name LIKE ?",
            (f"{self.tag}-sweep-%",),
        ).fetchall()
        return {(str(r[0]), str(r[1])) for r in rows}

    async def await_notifications(self, progress: Progressed) -> int:
        """Until every status each sweep job entered (its history in the store) was received
        and the platform has no delivery in flight; bounded by NOTIFY_DEADLINE."""
        ends = time.monotonic() + NOTIFY_DEADLINE
        while True:
            jobs = await self.platform.store.run(self._sweep_jobs)
            history = await self.platform.store.run(self._sweep_history)
            received = set(self.receiver.got)
            ended = {(str(r["id"]), str(r["status"])) for r in jobs if r["next_at"] is None}
            progress(len(ended & received), None, None)
            if len(ended) == len(jobs) and history <= received:
                break
            if time.monotonic() > ends:
                break  # the checks say what is missing
            await asyncio.sleep(0.05)
        with contextlib.suppress(TimeoutError):  # a delivery in flight lands before the count
            await notifier_of(self.platform.agave).idle(timeout=10)
        return len(received)

    async def check_agave(self, ids: list[str], waited: BatchResult[JobStatus]) -> None:
        jobs = await self.platform.store.run(self._sweep_jobs)
        history = await self.platform.store.run(self._sweep_history)
        stored = {str(r["id"]) for r in jobs}

        def attempts(conn: Any) -> dict[int, int]:
            rows = conn.execute(
                "SELECT a.success, COUNT(*) FROM agave_notifications_attempts a"
                " JOIN agave_jobs_jobs j ON j.id = a.associated_uuid WHERE j.name LIKE ? GROUP BY a.success",
                (f"{self.tag}-sweep-%",),
            ).fetchall()
            return {int(r[0]): int(r[1]) for r in rows}

        tried = await self.platform.store.run(attempts)
        got = self.receiver.got
        self.checks += [
            Check("agave: jobs lost (a Job outcome missing from the store)", 0, len(set(ids) - stored)),
            Check(
                "agave: jobs in the store == Job outcomes (one per successful submit, none per error)",
                len(ids),
                len(stored),
            ),
            Check("agave: waited jobs that did not end", 0, len(waited.errors)),
            Check("agave: job statuses in the store's history never notified", 0, len(history - set(got))),
            Check(
                "agave: notifications received more than once (same job and status)",
                0,
                sum(n - 1 for n in got.values() if n > 1),
            ),
            Check(
                "agave: notifications received for no status in the store's history",
                0,
                len(set(got) - history),
            ),
            Check(
                "agave: notifications whose body is not the job and status of their URL",
                0,
                self.receiver.mismatched,
            ),
            Check(
                "agave: successful webhook attempts the platform recorded == notifications received",
                sum(got.values()),
                tried.get(1, 0),
            ),
            Check("agave: failed webhook attempts", 0, tried.get(0, 0)),
        ]

    async def download_outputs(self, statuses: dict[str, JobStatus]) -> dict[str, list[Path]]:
        """Every FINISHED job's outputs under workdir/<job id>/; checked against the platform's disk."""
        finished = sorted(j for j, s in statuses.items() if s.status == "FINISHED")
        root = self.workdir / "outputs"

        async def download(job_id: str) -> list[Path]:
            # A GET: a file whose stream broke (its connection dropped mid-body) is fetched again.
            include: list[str] | None = None
            got: list[Path] = []
            for _ in range(DOWNLOAD_ROUNDS):
                result = await self.patient_agave.jobs.download_outputs(
                    job_id, root / job_id, include=include, concurrency=4
                )
                got += result.values
                if result.ok:
                    return sorted(got)
                include = [str(e.item) for e in result.errors]
            result.raise_for_errors()
            return sorted(got)

        downloaded = await self.phase(
            "agave",
            "download",
            len(finished),
            lambda p: gather(download, finished, concurrency=16, on_progress=p),
        )
        outputs = dict(zip(downloaded.items, downloaded.outcomes, strict=True))
        files = {j: v for j, v in outputs.items() if not isinstance(v, BaseException)}

        # The platform's disk is the judge: the files it wrote under each job's outputPath
        # (the embedded Agave keeps a system's tree under data_dir/agave/<system id>).
        def written(conn: Any) -> dict[str, tuple[str, str]]:
            return {
                str(r["id"]): (str(r["output_system"]), str(json.loads(r["doc"])["outputPath"]))
                for r in self._sweep_jobs(conn)
                if r["id"] in statuses and statuses[r["id"]].status == "FINISHED"
            }

        places = await self.platform.store.run(written)
        assert self.platform.data_dir is not None
        disk = Path(self.platform.data_dir) / "agave"
        expected = differing = 0
        for job_id in finished:
            system, path = places[job_id]
            where = disk / quote(system, safe="") / path
            stored = {p.relative_to(where).as_posix(): p for p in where.rglob("*") if p.is_file()}
            local = {p.relative_to(root / job_id).as_posix(): p for p in files.get(job_id, [])}
            expected += len(stored)
            differing += sum(
                1
                for rel, p in stored.items()
                if rel not in local or local[rel].read_bytes() != p.read_bytes()
            )
        count = sum(len(v) for v in files.values())
        self.facts["agave"].append(f"{count} output files of {len(finished)} FINISHED jobs downloaded")
        self.checks += [
            Check(
                "agave: output files downloaded == files the platform wrote for FINISHED jobs",
                expected,
                count,
            ),
            Check("agave: output files missing or differing from the platform's disk", 0, differing),
        ]
        return files

    # -- the sweep: flowserv results -------------------------------------------------------------

    async def run_flowserv(self, outputs: dict[str, list[Path]]) -> None:
        """Upload every downloaded output to one group of the seeded workflow."""
        service = self.platform.flowserv
        username, password = f"{self.tag}-user", secrets.token_urlsafe(16)
        await service.create_user(username, password)
        # A login whose answer was lost is simply sent again: a new login replaces the key.
        for attempt in range(5):
            try:
                await self.flowserv.users.login(username, password)
                break
            except TransportError:
                if attempt == 4:
                    raise
        groups = self.patient_flowserv.groups
        name = f"{self.tag}-results"

        async def find() -> Any:
            for group in await groups.list(service.workflow_id).to_list():
                if group.name == name:
                    return group
            raise LookupError(name)

        group = await create_once(lambda: groups.create(service.workflow_id, name), find)
        items: list[tuple[Path, str]] = []
        for job_id, paths in sorted(outputs.items()):
            for path in paths:
                # secure_filename keeps these names as they are, so reconcile can match them
                items.append((path, f"{job_id}-{path.name}"))
        uploaded = await self.phase(
            "flowserv",
            "upload",
            len(items),
            # reconcile: an upload whose answer was dropped is found by name and size
            lambda p: self.flowserv.groups.upload_many(
                group.id, items, concurrency=16, on_progress=p, reconcile=True
            ),
        )

        def files_of(conn: Any) -> dict[str, tuple[str, int]]:
            rows = conn.execute("SELECT id, name, size FROM flowserv_files WHERE group_id = ?", (group.id,))
            return {str(r[0]): (str(r[1]), int(r[2])) for r in rows}

        stored = await self.platform.store.run(files_of)
        handles: list[tuple[FileHandle, Path]] = [
            (o, item[0])
            for o, item in zip(uploaded.outcomes, items, strict=True)
            if not isinstance(o, BaseException)
        ]
        differing = sum(
            1
            for handle, source in handles
            if handle.id in stored and (service.files_dir / handle.id).read_bytes() != source.read_bytes()
        )
        self.facts["flowserv"].append(
            f"{len(handles)} of {len(items)} outputs uploaded to group {name!r}, "
            f"{len(uploaded.errors)} refused past retries"
        )
        self.checks += [
            Check(
                "flowserv: files lost (an upload outcome missing from the group)",
                0,
                sum(1 for handle, _ in handles if handle.id not in stored),
            ),
            Check(
                "flowserv: files in the group == upload outcomes (one per success, none per error)",
                len(handles),
                len(stored),
            ),
            Check("flowserv: stored files whose bytes differ from the downloaded output", 0, differing),
        ]

    # -- the report -----------------------------------------------------------------------------

    def report(self, by_service: collections.Counter[str]) -> None:
        # No vertical rules: nine columns still fit an 80-column terminal.
        table = Table(
            title=f"aioplatform demo — N={self.n}, sweep of {self.jobs} jobs, platform {self.platform.url}",
            box=None,
            pad_edge=False,
        )
        for column in COLUMNS:
            table.add_column(column, justify="left" if column in ("service", "phase") else "right")
        for p in self.phases:
            rate = p.items / p.wall if p.wall else 0.0
            table.add_row(
                p.service,
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
            "",
            f"{sum(p.wall for p in self.phases):.2f}",
            "",
            str(total.requests),
            str(total.retries),
            str(total.connections_opened),
            str(sum(p.failures for p in self.phases)),
        )
        self.console.print(table)
        for service in SERVICES:
            facts = "; ".join(self.facts[service])
            self.console.print(f"{service}: {by_service[service]} requests; {facts}")
        pool = self.session.pool_status()
        self.console.print(
            f"shared pool: one Session for the four clients, {total.requests} requests over "
            f"{total.connections_opened} TCP connections opened (at most "
            f"{self.session.limits.max_connections} at once; a dropped one is replaced); "
            f"now {pool['in_use']} in use, {pool['idle']} idle"
        )
        injected = dict(self.platform.faults.injected)
        self.console.print(f"faults injected by the platform: {injected or 'none'}")
        self.console.print(
            "failures: calls whose answer the platform dropped after doing the work (a POST is never "
            "blindly re-sent), or that were still rate-limited when their retries ran out."
        )
        for check in self.checks:
            mark = "[green]ok[/green]" if check.ok else "[red]FAILED[/red]"
            self.console.print(f"  {mark}  {check.what}: expected {check.expected}, got {check.actual}")


def _finished(job_id: str | None, statuses: dict[str, JobStatus]) -> bool:
    return job_id is not None and job_id in statuses and statuses[job_id].status == "FINISHED"


async def create_once(create: Callable[[], Awaitable[T]], find: Callable[[], Awaitable[T]]) -> T:
    """Create a uniquely named object exactly once, even if the answer to the POST is lost.

    A POST whose connection dropped after sending may or may not have created the
    object, so it is never blindly re-sent: look it up by its unique name first
    (``find`` raises ``NotFound`` or ``LookupError`` when it is absent), and create it
    again only if it provably does not exist.
    """
    for _ in range(5):
        try:
            return await create()
        except TransportError:
            try:
                return await find()
            except (NotFound, LookupError):
                continue  # provably not created: safe to send again
    return await create()


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _counter(by_service: collections.Counter[str]) -> aiohttp.TraceConfig:
    """A trace config counting the pool's requests (attempts) by the service they went to."""
    trace = aiohttp.TraceConfig()

    async def on_start(_session: Any, _context: Any, params: aiohttp.TraceRequestStartParams) -> None:
        first = params.url.path.strip("/").split("/", 1)[0]
        by_service[first if first in SERVICES else "other"] += 1

    trace.on_request_start.append(on_start)
    return trace


async def run_demo(
    n: int = 1000,
    *,
    jobs: int | None = None,
    db: str | None = None,
    latency: float = 0.02,
    fault_rate: float = 0.05,
    seed: int = 0,
    console: Console | None = None,
) -> int:
    """Run the demo; return the exit status (0 when every store check holds).

    ``jobs`` is the size of the parameter sweep (Agave jobs, Astakos commissions, flowserv
    uploads); by default N/10, at least 2.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    if jobs is None:
        jobs = max(2, n // 10)
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 2:
        raise ValueError(f"jobs must be an integer >= 2, got {jobs!r}")
    if not 0 <= fault_rate <= 1:
        raise ValueError(f"fault_rate must be between 0 and 1, got {fault_rate!r}")
    console = console or Console(soft_wrap=True)  # one line per check, even in a pipe
    rules = [FaultRule.uniform(fault_rate, retry_after=0.05)] if fault_rate else []
    by_service: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory(prefix="aioplatform-demo-") as tmp:
        path = db or str(Path(tmp) / "platform.sqlite3")
        platform = LocalPlatform(path, latency=latency, faults=rules, seed=seed)
        session = Session(
            limits=Limits(max_connections=100),
            retry=RetryPolicy(max_attempts=6, backoff_base=0.05, backoff_cap=1.0),
            trace_configs=[_counter(by_service)],
        )
        receiver = Receiver()
        async with platform, session:
            await receiver.start()
            try:
                platform.agave.job_failure_rate = JOB_FAILURE_RATE
                console.print(
                    f"embedded platform on {platform.url} (SQLite {path}), latency {latency * 1000:.0f} ms, "
                    f"fault rate {fault_rate:.0%}; notifications to {receiver.url}"
                )
                demo = Demo(platform, session, n, jobs, console, receiver, Path(tmp))
                try:
                    consistent = await demo.run()
                except PlatformError as exc:  # a fault outside any batch outlasted its retries
                    console.print(f"[red]the demo stopped (no verdict): {exc}")
                    return 2
                pool = session.pool_status()
                demo.checks.append(
                    Check("pool: connections still checked out after the last batch", 0, pool["in_use"])
                )
                consistent = consistent and demo.checks[-1].ok
                demo.report(by_service)
            finally:
                await receiver.close()
    console.print(
        "[green]consistent: nothing lost, nothing duplicated" if consistent else "[red]INCONSISTENT"
    )
    return 0 if consistent else 1
