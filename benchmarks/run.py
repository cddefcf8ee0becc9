"""Side-by-side benchmarks: aioplatform vs raw aiohttp vs the sync SDK, in one run.

    python -m benchmarks.run            # the full set (about forty minutes on 2 cores)
    python -m benchmarks.run --quick    # small sizes, to check that everything runs

Against the embedded platform started in a separate process (``aioplatform serve``).
Writes ``benchmarks/results/latest.json``, ``latest.md`` and ``batch.png``; a run of some
sections replaces only those sections' rows there and keeps the others'.
"""

from __future__ import annotations

import asyncio
import json
import platform as host
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import typer

from aioplatform import Limits, RetryPolicy
from aioplatform.saltant import SaltantClient

from . import agave, commissions, instructions, listing, rig, speedups
from .listing import server_cpu
from .servers import ServedPlatform, serve, serve_agave, serve_trivial

RESULTS = Path(__file__).resolve().parent / "results"
PERFORMANCE_PAGE = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
MARKERS = ("<!-- results:start -->", "<!-- results:end -->")
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

TARGETS = {
    "batch_vs_raw": "batch wall <= 1.10x raw aiohttp",
    "batch_vs_sync": ">= 45x faster than saltant-py at 20 ms / N=1000 / C=50",
    "cpu_vs_raw": "CPU per request <= 1.25x raw aiohttp",
    "memory": "listing memory flat in N",
    "agave_vs_raw": "Agave batches <= 1.10x raw aiohttp at 20 ms / C=50",
    "agave_vs_sync": ">= 10x faster than agavepy on Agave batches at 20 ms / C=50",
    "agave_streaming": "a 200 MB files.upload / files.download raises peak RSS <= 16 MiB",
    **rig.TARGETS,
    **{f"listing_{k}": v for k, v in listing.LISTING_TARGETS.items()},
    **speedups.TARGETS,
}
# The Agave rows judged against those targets: (case prefix, N) of each batch at full size.
AGAVE_HEADLINE = (
    ("submit_many+wait_many", 1000), ("upload_many", 200), ("send_many+wait_executions", 1000), ("create_many", 1000),
)  # fmt: skip


# -- fixtures over the wire (independent of the client under test) -------------------------


async def make_instances(platform: ServedPlatform, n: int, concurrency: int = 100) -> list[str]:
    """A queue, a whitelist, a task type and ``n`` task instances, created with raw HTTP."""
    url, token = platform.credentials["saltant_url"], platform.credentials["saltant_token"]
    headers = {"Authorization": f"Token {token}"}
    tag = f"bench{time.monotonic_ns()}"
    async with aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=concurrency)) as s:

        async def post(path: str, data: Any) -> dict[str, Any]:
            async with s.post(url + path, data=data) as r:
                body = await r.json()
                if r.status != 201:
                    raise RuntimeError(f"{path}: {r.status} {body}")
                return dict(body)

        ttype = await post("containertasktypes/", {
            "name": tag, "command_to_run": "true", "container_image": "busybox",
            "container_type": "docker", "environment_variables": "[]",
            "required_arguments": "[]", "required_arguments_default_values": "{}",
        })  # fmt: skip
        wl = await post("taskwhitelists/", {"name": tag, "whitelisted_container_task_types": ttype["id"]})
        queue = await post("taskqueues/", {
            "name": tag, "whitelists": wl["id"], "active": "True", "runs_docker_container_tasks": "True",
        })  # fmt: skip
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> str:
            async with sem:
                body = await post("containertaskinstances/", {
                    "name": f"{tag}-{i}", "task_type": ttype["id"], "task_queue": queue["id"],
                    "arguments": "{}",
                })  # fmt: skip
                return str(body["uuid"])

        return list(await asyncio.gather(*(one(i) for i in range(n))))


# -- the three implementations ---------------------------------------------------------------


async def raw_batch(platform: ServedPlatform, action: str, uuids: list[str], concurrency: int) -> int:
    """The floor of our stack: aiohttp, a semaphore, asyncio.gather. Returns failures."""
    url, token = platform.credentials["saltant_url"], platform.credentials["saltant_token"]
    sem = asyncio.Semaphore(concurrency)
    failures = 0
    async with aiohttp.ClientSession(
        headers={"Authorization": f"Token {token}"},
        connector=aiohttp.TCPConnector(limit=concurrency),
    ) as s:

        async def one(uuid: str) -> None:
            nonlocal failures
            async with sem, s.post(f"{url}containertaskinstances/{uuid}/{action}/") as r:
                await r.read()
                failures += r.status >= 400

        await asyncio.gather(*(one(u) for u in uuids))
    return failures


async def ours_batch(platform: ServedPlatform, action: str, uuids: list[str], concurrency: int) -> int:
    creds = platform.credentials
    async with SaltantClient(
        creds["saltant_url"], creds["saltant_token"], limits=Limits(max_connections=concurrency)
    ) as client:
        manager = client.container_task_instances
        many = manager.clone_many if action == "clone" else manager.terminate_many
        result = await many(uuids, concurrency=concurrency)
        return len(result.errors)


def sync_batch(platform: ServedPlatform, action: str, uuids: list[str]) -> int:
    from saltant.client import Client

    creds = platform.credentials
    client = Client(
        base_api_url=creds["saltant_url"], auth_token=creds["saltant_token"], test_if_authenticated=False
    )
    manager = client.container_task_instances
    (manager.clone_many if action == "clone" else manager.terminate_many)(uuids)
    return 0


# -- measuring -------------------------------------------------------------------------------


BatchRun = Callable[[list[str]], "Coroutine[Any, Any, int] | int"]


def _timed(run: BatchRun, uuids: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    outcome = run(uuids)
    failures = outcome if isinstance(outcome, int) else asyncio.run(outcome)
    return time.perf_counter() - started, failures


def measure_batch(
    platform: ServedPlatform, n: int, run: BatchRun, fake: bool = False
) -> tuple[float, dict[str, float]]:
    """Wall time of ``run(uuids)`` on ``n`` fresh instances, the connections it opened and the
    server's CPU µs per item during the batch alone (not while its instances were made).

    ``fake``: made-up uuids for a server that keeps nothing (its connections are not counted).
    """
    if fake:
        wall, failures = _timed(run, [f"{i:08d}-0000-4000-8000-000000000000" for i in range(n)])
        return wall, {"failures": failures, "connections": -1}
    uuids = asyncio.run(make_instances(platform, n))
    before = platform.connections
    cpu = server_cpu(platform)  # around the batch alone, not the instances made for it
    wall, failures = _timed(run, uuids)
    server_us = (server_cpu(platform) - cpu) / n * 1e6
    # `platform.connections` itself opens one connection to read the counter.
    return wall, {"failures": failures, "connections": platform.connections - before - 1, "server_us": server_us}


def batch_grid(quick: bool) -> tuple[list[int], list[int], int]:
    """Sizes, concurrencies and repeats of every batch-shaped section."""
    if quick:
        return [50, 200], [10, 50], 1
    return [100, 1000], [10, 50, 100], 3


def with_sync(
    case: str, case_rows: list[dict[str, Any]], sdk: str, sync_wall: float | None, skipped: str = ""
) -> list[dict[str, Any]]:
    """The case's rows with the sync SDK's wall time and speedup (or why it was skipped); prints the case."""
    for row in case_rows:
        row.update(sync_sdk=sdk, sync_s=sync_wall)
        row["speedup_vs_sync"] = sync_wall / row["aioplatform_s"] if sync_wall else None
        if sync_wall is None:
            row["sync_skipped"] = skipped
    ours = next(r["aioplatform_s"] for r in case_rows if r["concurrency"] == 50)
    sync_text = f"{sync_wall:.2f}s" if sync_wall else "skipped"
    print(f"  {case}: {sdk} {sync_text}, aioplatform C=50 {ours:.3f}s", flush=True)
    return case_rows


def batch_section(quick: bool, rows: list[dict[str, Any]]) -> None:
    """saltant clone_many / terminate_many vs raw aiohttp vs saltant-py, with the do-nothing
    server's ceiling measured in the same rounds as the rows it bounds.

    Each round runs raw aiohttp, aioplatform and raw aiohttp against the do-nothing server
    back to back, so load that drifts lands on all three; the verdict comes from the
    per-round ratios (``rig.verdict``), never from one median.
    """
    sizes, concurrencies, repeats = batch_grid(quick)
    repeats = max(repeats, 2 if quick else 7)
    for latency in (0, 20):
        with serve_trivial(latency_ms=latency) as trivial, serve(latency_ms=latency) as platform:
            for n in sizes:
                for action in ("clone", "terminate"):
                    case = f"{action}_many N={n} latency={latency}ms"
                    case_rows: list[dict[str, Any]] = []
                    for c in concurrencies:
                        raws, ours, ceilings, servers, runs = [], [], [], [], []
                        for _ in range(repeats):
                            raws.append(measure_batch(platform, n, partial(raw_batch, platform, action, concurrency=c))[0])
                            run = measure_batch(platform, n, partial(ours_batch, platform, action, concurrency=c))
                            servers.append(run[1]["server_us"])
                            runs.append(run)
                            ours.append(run[0])
                            ceilings.append(measure_batch(
                                trivial, n, partial(raw_batch, trivial, "clone", concurrency=c), fake=True
                            )[0])  # fmt: skip
                        ratios = [o / r for o, r in zip(ours, raws, strict=True)]
                        case_rows.append({
                            "section": "batch", "case": case, "concurrency": c, "repeats": repeats,
                            "raw_aiohttp_s": statistics.median(raws), "aioplatform_s": statistics.median(ours),
                            "ratio_vs_raw": statistics.median(ratios), "ratios": ratios, "aioplatform_runs_s": ours,
                            "ratio_spread": rig.spread(ratios), "verdict_vs_raw": rig.verdict(ratios, 1.10),
                            "latency_floor_s": n * latency / 1000 / c,
                            "trivial_server_s": statistics.median(ceilings),
                            "server_us_per_request": statistics.median(servers),
                            "connections": runs[-1][1]["connections"], "failures": runs[-1][1]["failures"],
                        })  # fmt: skip
                    # saltant-py is sequential: one run at N=1000 already takes tens of seconds.
                    sync_repeats = 1 if n >= 1000 or quick else 3
                    sync_wall = statistics.median(
                        measure_batch(platform, n, partial(sync_batch, platform, action))[0]
                        for _ in range(sync_repeats)
                    )
                    rows.extend(with_sync(case, case_rows, "saltant-py", sync_wall))


def commissions_section(quick: bool, rows: list[dict[str, Any]]) -> None:
    """issue_many + one resolve_commissions vs raw aiohttp vs astakosclient 0.19 (Python 2.7)."""
    sizes, concurrencies, repeats = batch_grid(quick)
    python, why = commissions.python27()
    site, why = commissions.install_astakosclient(python) if python else (None, why)
    if site is None:
        print(f"  astakosclient rows skipped: {why}", flush=True)
    for latency in (0, 20):
        with serve(latency_ms=latency) as platform:
            setup = asyncio.run(commissions.Setup.discover(platform))
            for n in sizes:
                case = f"issue_many+resolve N={n} latency={latency}ms"
                case_rows: list[dict[str, Any]] = []
                for c in concurrencies:
                    raw_wall = statistics.median(
                        asyncio.run(commissions.raw(setup, n, c))[0] for _ in range(repeats)
                    )
                    runs = []
                    for _ in range(repeats):
                        before = platform.connections
                        wall, failures = asyncio.run(commissions.ours(setup, n, c))
                        runs.append((wall, failures, platform.connections - before - 1))
                    ours_wall = statistics.median(w for w, _, _ in runs)
                    case_rows.append({
                        "section": "batch", "case": case, "concurrency": c,
                        "raw_aiohttp_s": raw_wall, "aioplatform_s": ours_wall,
                        "ratio_vs_raw": ours_wall / raw_wall,
                        # N issues in rounds of C, then one resolve round trip.
                        "latency_floor_s": (n / c + 1) * latency / 1000,
                        "connections": runs[-1][2], "failures": runs[-1][1],
                    })  # fmt: skip
                sync_wall = commissions.sync(setup, n, python, site) if python and site else None
                rows.extend(with_sync(case, case_rows, "astakosclient", sync_wall, skipped=why))


def overhead_section(quick: bool, rows: list[dict[str, Any]]) -> None:
    n = 500 if quick else 5000
    with serve(latency_ms=0) as platform:
        uuid = asyncio.run(make_instances(platform, 1))[0]
        creds = platform.credentials
        url = f"{creds['saltant_url']}containertaskinstances/{uuid}/"
        headers = {"Authorization": f"Token {creds['saltant_token']}"}

        async def raw() -> None:
            async with aiohttp.ClientSession(headers=headers) as s:
                for _ in range(n):
                    async with s.get(url) as r:
                        await r.json()

        def ours(policy: RetryPolicy | None) -> Callable[[], Coroutine[Any, Any, None]]:
            async def run() -> None:
                async with SaltantClient(creds["saltant_url"], creds["saltant_token"], retry=policy) as c:
                    for _ in range(n):
                        await c.container_task_instances.get(uuid)

            return run

        def sync() -> None:
            from saltant.client import Client

            client = Client(
                base_api_url=creds["saltant_url"], auth_token=creds["saltant_token"],
                test_if_authenticated=False,
            )  # fmt: skip
            for _ in range(n):
                client.container_task_instances.get(uuid)

        impls: dict[str, Callable[[], Any]] = {
            "raw": lambda: asyncio.run(raw()),
            "ours": lambda: asyncio.run(ours(None)()),
            "bare": lambda: asyncio.run(ours(RetryPolicy.none())()),
            "sync": sync,
        }
        # Round-robin rounds, medians: a machine whose load drifts skews every
        # implementation alike instead of whichever happened to run during a spike.
        samples: dict[str, list[float]] = {name: [] for name in impls}
        for _ in range(3 if quick else 7):
            for name, fn in impls.items():
                started = time.process_time()
                fn()
                samples[name].append((time.process_time() - started) / n * 1e6)
        raw_us, ours_us, bare_us, sync_us = (statistics.median(samples[k]) for k in ("raw", "ours", "bare", "sync"))
        rows.append({
            "section": "overhead", "case": f"{n} sequential GETs, latency 0",
            "raw_aiohttp_us": raw_us, "aioplatform_us": ours_us, "aioplatform_no_retry_us": bare_us,
            "saltant_py_us": sync_us, "ratio_vs_raw": ours_us / raw_us,
            "retry_layer_us": ours_us - bare_us, "tenacity_per_call_us": tenacity_cost(),
        })  # fmt: skip


def tenacity_cost() -> float:
    """What wrapping every call in a tenacity AsyncRetrying would cost (we do not, on success)."""
    from tenacity import AsyncRetrying, stop_after_attempt

    async def noop() -> int:
        return 1

    async def run(n: int) -> float:
        started = time.process_time()
        for _ in range(n):
            await AsyncRetrying(stop=stop_after_attempt(4), reraise=True)(noop)
        return (time.process_time() - started) / n * 1e6

    return asyncio.run(run(20000))


MEMORY_SCRIPT = """
import asyncio, json, sys, tracemalloc
import aiohttp, requests
from aioplatform.saltant import SaltantClient
from saltant.client import Client
which, url, token = sys.argv[1:4]
tracemalloc.start()  # after the imports: only what listing allocates counts
if which == "aioplatform":
    async def main():
        n = 0
        async with SaltantClient(url, token) as c:
            async for _ in c.container_task_instances.list(page_size=1000):
                n += 1
        return n
    count = asyncio.run(main())
else:
    count = len(Client(base_api_url=url, auth_token=token, test_if_authenticated=False)
                .container_task_instances.list())
print(json.dumps({"count": count, "peak": tracemalloc.get_traced_memory()[1]}))
"""


def memory_section(quick: bool, rows: list[dict[str, Any]]) -> None:
    sizes = [1000, 5000] if quick else [10_000, 100_000]
    with serve(latency_ms=0) as platform:
        have = 0
        creds = platform.credentials
        for n in sizes:
            asyncio.run(make_instances(platform, n - have))
            have = n
            row: dict[str, Any] = {"section": "memory", "case": f"list {n} task instances"}
            for which in ("aioplatform", "saltant_py"):
                out = subprocess.run(
                    [sys.executable, "-c", MEMORY_SCRIPT, which, creds["saltant_url"], creds["saltant_token"]],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                measured = json.loads(out.stdout)
                if measured["count"] < n:
                    raise RuntimeError(f"{which} listed {measured['count']} of {n}")
                row[f"{which}_peak_mib"] = measured["peak"] / 2**20
            rows.append(row)


AgaveRun = Callable[[int], Coroutine[Any, Any, tuple[float, int]]]


def agave_rows(
    platform: ServedPlatform, case: str, raw: AgaveRun, ours: AgaveRun, concurrencies: list[int], repeats: int,
    serial_requests: int, latency: float,
) -> list[dict[str, Any]]:
    """One row per concurrency C: raw aiohttp's and aioplatform's median walls; the latency floor
    is ``serial_requests`` round trips of ``latency`` seconds, C at a time."""
    case_rows: list[dict[str, Any]] = []
    for c in concurrencies:
        raw_runs = [asyncio.run(raw(c)) for _ in range(repeats)]
        runs = []
        for _ in range(repeats):
            before = platform.connections
            wall, failures = asyncio.run(ours(c))
            runs.append((wall, failures, platform.connections - before - 1))
        raw_wall = statistics.median(w for w, _ in raw_runs)
        ours_wall = statistics.median(w for w, _, _ in runs)
        case_rows.append({
            "section": "agave", "case": case, "concurrency": c,
            "raw_aiohttp_s": raw_wall, "aioplatform_s": ours_wall, "ratio_vs_raw": ours_wall / raw_wall,
            "latency_floor_s": serial_requests * latency / c, "connections": runs[-1][2], "failures": runs[-1][1],
            "raw_failures": max(f for _, f in raw_runs),
        })  # fmt: skip
    return case_rows


def agave_section(quick: bool, rows: list[dict[str, Any]]) -> None:
    """Agave: submit_many+wait_many, upload_many, actors send_many+wait_executions and meta
    create_many vs raw aiohttp vs agavepy 0.9.5; streamed transfers."""
    jobs_n, files_n, stream_mb = (30, 20, 16) if quick else (1000, 200, 200)
    messages_n, records_n = (30, 30) if quick else (1000, 1000)
    concurrencies, repeats = ([10, 50], 1) if quick else ([10, 50, 100], 3)
    with agave.source_files(files_n, 64 * 1024) as paths:
        for latency in (0,) if quick else (0, 20):
            # Each batch on a fresh platform, so neither measures the other's leftovers (a jobs
            # run leaves three output files per job on the storage system the uploads write to).
            with serve_agave(latency_ms=latency) as platform:
                setup = agave.Setup(platform)
                skipped = setup.agavepy_skipped
                if skipped and latency == 0:
                    print(f"  agavepy rows skipped: {skipped}", flush=True)
                # Jobs: N/C rounds of submits, then at least one round of status polls.
                case = f"submit_many+wait_many N={jobs_n} latency={latency}ms ({setup.transport})"
                case_rows = agave_rows(
                    platform, case, partial(agave.raw_jobs, setup, jobs_n), partial(agave.ours_jobs, setup, jobs_n),
                    concurrencies, repeats, 2 * jobs_n, latency / 1000,
                )  # fmt: skip
                sync_wall = None if skipped else checked_agavepy(case, agave.agavepy_jobs(setup, jobs_n))
                rows.extend(with_sync(case, case_rows, "agavepy", sync_wall, skipped=skipped))
            with serve_agave(latency_ms=latency) as platform:
                setup = agave.Setup(platform)
                skipped = setup.agavepy_skipped
                case = f"upload_many N={files_n} x 64 KiB latency={latency}ms ({setup.transport})"
                case_rows = agave_rows(
                    platform, case, partial(agave.raw_uploads, setup, paths), partial(agave.ours_uploads, setup, paths),
                    concurrencies, repeats, files_n, latency / 1000,
                )  # fmt: skip
                sync_wall = None if skipped else checked_agavepy(case, agave.agavepy_uploads(setup, paths))
                rows.extend(with_sync(case, case_rows, "agavepy", sync_wall, skipped=skipped))
                if latency == 0:
                    rows.append(stream_row(setup, stream_mb))
            with serve_agave(latency_ms=latency) as platform:
                setup = agave.Setup(platform)
                skipped = setup.agavepy_skipped
                # Actors: N/C rounds of messages, then at least one round of execution polls
                # (each run on a fresh actor; its creation is one more connection in the count).
                case = f"send_many+wait_executions N={messages_n} latency={latency}ms ({setup.transport})"
                case_rows = agave_rows(
                    platform, case, partial(agave.raw_actors, setup, messages_n),
                    partial(agave.ours_actors, setup, messages_n), concurrencies, repeats, 2 * messages_n,
                    latency / 1000,
                )  # fmt: skip
                sync_wall = None if skipped else checked_agavepy(case, agave.agavepy_actors(setup, messages_n))
                rows.extend(with_sync(case, case_rows, "agavepy", sync_wall, skipped=skipped))
            with serve_agave(latency_ms=latency) as platform:
                setup = agave.Setup(platform)
                skipped = setup.agavepy_skipped
                case = f"create_many N={records_n} metadata latency={latency}ms ({setup.transport})"
                case_rows = agave_rows(
                    platform, case, partial(agave.raw_meta, setup, records_n), partial(agave.ours_meta, setup, records_n),
                    concurrencies, repeats, records_n, latency / 1000,
                )  # fmt: skip
                sync_wall = None if skipped else checked_agavepy(case, agave.agavepy_meta(setup, records_n))
                rows.extend(with_sync(case, case_rows, "agavepy", sync_wall, skipped=skipped))


def checked_agavepy(case: str, measured: tuple[float, int]) -> float:
    wall, failures = measured
    if failures:
        raise RuntimeError(f"agavepy: {failures} failures in {case}")
    return wall


def stream_row(setup: agave.Setup, megabytes: int) -> dict[str, Any]:
    """One file up and down with aioplatform and agavepy: seconds, peak RSS rise, traced peak."""
    size = megabytes * 10**6
    row: dict[str, Any] = {
        "section": "agave_stream", "case": f"{megabytes} MB upload, then download ({setup.transport})",
        "size_mb": megabytes,
        **{f"aioplatform_{k}": v for k, v in agave.stream_memory(setup, "aioplatform", size).items()},
    }  # fmt: skip
    if setup.agavepy_skipped:
        row["agavepy_skipped"] = setup.agavepy_skipped
    else:
        row.update({f"agavepy_{k}": v for k, v in agave.stream_memory(setup, "agavepy", size).items()})
    print(f"  {row['case']}: aioplatform peak RSS +{row['aioplatform_upload_rss_mib']:.1f} / "
          f"+{row['aioplatform_download_rss_mib']:.1f} MiB", flush=True)  # fmt: skip
    return row


# -- reporting -----------------------------------------------------------------------------


def target_status(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Each target with the figure it is judged on and whether that figure meets it."""

    def at(case: str, c: int) -> dict[str, Any] | None:
        return next((r for r in rows if r["section"] == "batch" and r["case"] == case and r["concurrency"] == c), None)

    found: list[tuple[str, str, str]] = []
    headline = [r for r in (at(f"{a}_many N=1000 latency=20ms", 50) for a in ("clone", "terminate")) if r]
    if headline:
        worst_row = max(headline, key=lambda r: r["ratio_vs_raw"])
        worst = worst_row["ratio_vs_raw"]
        figure = f"{worst:.2f}x (worst of clone/terminate, N=1000, 20 ms, C=50)"
        verdict = "met" if worst <= 1.10 else "missed"
        if all("ratios" in r for r in headline):  # rounds measured: judged on their spread
            figure += f", rounds {worst_row['ratio_spread']}"
            verdicts = {r["verdict_vs_raw"] for r in headline}
            verdict = "missed" if "missed" in verdicts else "within noise" if "within noise" in verdicts else "met"
        found.append((TARGETS["batch_vs_raw"], figure, verdict))
        speed = min(r["speedup_vs_sync"] for r in headline)
        figure = f"{speed:.0f}x (worst of clone/terminate)"
        verdict = "met" if speed >= 45 else "missed"
        if all("aioplatform_runs_s" in r for r in headline):
            # saltant-py runs once (tens of seconds); the spread is that of our rounds.
            speeds = [r["sync_s"] / wall for r in headline for wall in r["aioplatform_runs_s"]]
            figure += f", rounds {min(speeds):.0f}-{max(speeds):.0f}x"
            verdict = rig.verdict([-x for x in speeds], -45.0)
        if all(r.get("trivial_server_s") for r in headline):
            ceiling = min(r["sync_s"] / r["trivial_server_s"] for r in headline)
            figure += f"; a do-nothing server would allow {ceiling:.0f}x"
        found.append((TARGETS["batch_vs_sync"], figure, verdict))
    for r in (r for r in rows if r["section"] == "overhead"):
        found.append((TARGETS["cpu_vs_raw"], f"{r['ratio_vs_raw']:.2f}x", "met" if r["ratio_vs_raw"] <= 1.25 else "missed"))
    memory = [r["aioplatform_peak_mib"] for r in rows if r["section"] == "memory"]
    if len(memory) > 1:
        growth = max(memory) / min(memory)
        found.append((TARGETS["memory"], f"{min(memory):.1f}-{max(memory):.1f} MiB across N ({growth:.2f}x)",
                      "met" if growth <= 1.5 else "missed"))  # fmt: skip
    return (
        found + agave_target_status(rows) + rig.rig_target_status(rows)
        + instructions.instructions_target_status(rows) + listing.listing_target_status(rows)
        + speedups.speedups_target_status(rows)
    )  # fmt: skip


def agave_target_status(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """The Agave targets, judged on the full-size batches at 20 ms / C=50 and the 200 MB transfers."""
    found: list[tuple[str, str, str]] = []
    headline = [
        r for r in rows
        if r["section"] == "agave" and r["concurrency"] == 50 and "latency=20ms" in r["case"]
        and any(r["case"].startswith(f"{prefix} N={n} ") for prefix, n in AGAVE_HEADLINE)
    ]  # fmt: skip
    if headline:
        worst = max(headline, key=lambda r: r["ratio_vs_raw"])
        found.append((TARGETS["agave_vs_raw"], f"{worst['ratio_vs_raw']:.2f}x (worst: {worst['case'].split(' ')[0]})",
                      "met" if worst["ratio_vs_raw"] <= 1.10 else "missed"))  # fmt: skip
        measured = [r for r in headline if r.get("speedup_vs_sync")]
        if measured:
            slowest = min(measured, key=lambda r: r["speedup_vs_sync"])
            speed = slowest["speedup_vs_sync"]
            found.append((TARGETS["agave_vs_sync"], f"{speed:.0f}x (worst: {slowest['case'].split(' ')[0]})",
                          "met" if speed >= 10 and len(measured) == len(headline) else "missed"))  # fmt: skip
        else:
            found.append((TARGETS["agave_vs_sync"], f"agavepy skipped: {headline[0].get('sync_skipped', '')}",
                          "not measured"))  # fmt: skip
    streams = [r for r in rows if r["section"] == "agave_stream" and r["size_mb"] >= 200]
    if streams:
        rise = max(max(r["aioplatform_upload_rss_mib"], r["aioplatform_download_rss_mib"]) for r in streams)
        found.append((TARGETS["agave_streaming"], f"+{rise:.1f} MiB (the larger of upload and download)",
                      "met" if rise <= 16 else "missed"))  # fmt: skip
    return found


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    out = [f"# Benchmark results ({meta['date']}, {meta['machine']})", ""]
    runs = meta.get("sections", {})
    if len(set(runs.values())) > 1:
        out += ["Sections measured in different runs: " + ", ".join(f"{k} {v}" for k, v in runs.items()), ""]
    status = target_status(rows)
    if status:
        out += ["## Targets", "", "| target | measured | status |", "|---|---|---|"]
        out += [f"| {target} | {figure} | {verdict} |" for target, figure, verdict in status]
    out += rig.rig_markdown(rows)
    out += instructions.instructions_markdown(rows)
    out += batch_table([r for r in rows if r["section"] == "batch"], "Batch (wall seconds, medians)")
    for r in (r for r in rows if r["section"] == "overhead"):
        out += ["", f"## Overhead: client CPU per request ({r['case']})", "",
                "| aioplatform | raw aiohttp | ratio vs raw | saltant-py | retry layer on success | tenacity per call (avoided) |",
                "|---|---|---|---|---|---|",
                f"| {r['aioplatform_us']:.0f} µs | {r['raw_aiohttp_us']:.0f} µs | {r['ratio_vs_raw']:.2f}x | "
                f"{r['saltant_py_us']:.0f} µs | {r['retry_layer_us']:+.1f} µs | {r['tenacity_per_call_us']:.1f} µs |"]  # fmt: skip
    out += listing.listing_markdown(rows)
    out += speedups.speedups_markdown(rows)
    memory = [r for r in rows if r["section"] == "memory"]
    if memory:
        out += ["", "## Memory: peak Python allocations while listing", "",
                "| case | aioplatform (async for) | saltant-py list() |", "|---|---|---|"]  # fmt: skip
        for r in memory:
            out.append(f"| {r['case']} | {r['aioplatform_peak_mib']:.1f} MiB | {r['saltant_py_peak_mib']:.1f} MiB |")
    out += batch_table([r for r in rows if r["section"] == "agave"], "Agave batches (wall seconds, medians)")
    out += stream_table([r for r in rows if r["section"] == "agave_stream"])
    return "\n".join(out) + "\n"


def batch_table(batch: list[dict[str, Any]], title: str) -> list[str]:
    """The batch-shaped rows (saltant, Astakos, Agave) as one table, then why a sync SDK was skipped."""
    if not batch:
        return []
    out = ["", f"## {title}", "",
           "| case | C | aioplatform | raw aiohttp | ratio vs raw (rounds) | sync SDK | sync SDK s | speedup vs sync | floor N·lat/C | raw vs a do-nothing server | server µs/request | connections |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in batch:
        sync_s = f"{r['sync_s']:.2f}" if r.get("sync_s") else "skipped"
        speedup = f"{r['speedup_vs_sync']:.0f}x" if r.get("speedup_vs_sync") else "-"
        trivial = f"{r['trivial_server_s']:.3f}" if r.get("trivial_server_s") else "-"
        rounds = f" ({r['ratio_spread']}, {r['repeats']} rounds)" if r.get("ratio_spread") else ""
        server = f"{r['server_us_per_request']:.0f}" if r.get("server_us_per_request") else "-"
        out.append(
            f"| {r['case']} | {r['concurrency']} | {r['aioplatform_s']:.3f} | {r['raw_aiohttp_s']:.3f} | "
            f"{r['ratio_vs_raw']:.2f}x{rounds} | {r['sync_sdk']} | {sync_s} | {speedup} | "
            f"{r['latency_floor_s']:.3f} | {trivial} | {server} | {r['connections']} |"
        )
    skipped = sorted({(r["sync_sdk"], r["sync_skipped"]) for r in batch if r.get("sync_skipped")})
    return out + [f"\n{sdk} rows skipped: {why}" for sdk, why in skipped]


def stream_table(streams: list[dict[str, Any]]) -> list[str]:
    if not streams:
        return []

    def cell(r: dict[str, Any], who: str, what: str) -> str:
        if f"{who}_{what}_s" not in r:
            return "skipped"
        return f"+{r[f'{who}_{what}_rss_mib']:.1f} MiB ({r[f'{who}_{what}_traced_mib']:.1f} MiB traced), {r[f'{who}_{what}_s']:.2f} s"

    out = ["", "## Agave streaming: peak RSS rise of the client process during one transfer", "",
           "| case | aioplatform files.upload | aioplatform files.download | agavepy importData | agavepy files.download |",
           "|---|---|---|---|---|"]  # fmt: skip
    for r in streams:
        out.append(f"| {r['case']} | {cell(r, 'aioplatform', 'upload')} | {cell(r, 'aioplatform', 'download')} | "
                   f"{cell(r, 'agavepy', 'upload')} | {cell(r, 'agavepy', 'download')} |")  # fmt: skip
    skipped = sorted({r["agavepy_skipped"] for r in streams if r.get("agavepy_skipped")})
    return out + [f"\nagavepy rows skipped: {why}" for why in skipped]


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    batch = [r for r in rows if r["section"] == "batch" and r["concurrency"] == 50]
    if not batch:
        return
    try:
        import matplotlib
    except ImportError:  # the test extra has no matplotlib; the bench extra does
        print(f"no chart: matplotlib is not installed (pip install -e '.[bench]'); {path} not written")
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["case"].replace("issue_many+resolve", "issue+resolve").replace(" latency=", "\n") for r in batch]
    xs = range(len(batch))
    width = 0.27
    fig, ax = plt.subplots(figsize=(max(8, len(batch) * 1.6), 5))
    ax.bar([x - width for x in xs], [r.get("sync_s") or 0 for r in batch], width, label="sync SDK (saltant-py, astakosclient)")
    ax.bar(list(xs), [r["raw_aiohttp_s"] for r in batch], width, label="raw aiohttp, C=50")
    ax.bar([x + width for x in xs], [r["aioplatform_s"] for r in batch], width, label="aioplatform, C=50")
    ceiling = [(x, r["trivial_server_s"]) for x, r in zip(xs, batch, strict=True) if r.get("trivial_server_s")]
    if ceiling:
        ax.scatter([x for x, _ in ceiling], [y for _, y in ceiling], marker="_", s=400, color="black",
                   zorder=3, label="raw aiohttp vs a do-nothing server (rig ceiling)")  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylabel("wall time (s, log scale)")
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_title("Batches against the embedded platform (saltant clone/terminate, Astakos issue+resolve)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


SECTIONS: dict[str, Callable[[bool, list[dict[str, Any]]], None]] = {
    "rig": rig.rig_section,
    "instructions": instructions.instructions_section,
    "overhead": overhead_section,
    "batch": batch_section,
    "commissions": commissions_section,
    "memory": memory_section,
    "listing": listing.listing_section,
    "speedups": speedups.speedups_section,
    "agave": agave_section,
}


def suite_of(row: dict[str, Any]) -> str:
    """The runner section that wrote ``row`` (the Astakos rows are batch-shaped: section "batch")."""
    section = str(row.get("section", ""))
    if section == "batch" and str(row.get("case", "")).startswith("issue_many"):
        return "commissions"
    if section == "rig_batch":
        return "rig"
    return "agave" if section == "agave_stream" else section


def merge_report(
    earlier: dict[str, Any], meta: dict[str, Any], rows: list[dict[str, Any]], ran: set[str]
) -> dict[str, Any]:
    """This run's rows with the earlier report's rows of the sections not run now (in section
    order); ``meta["sections"]`` says when each section was measured."""
    before = earlier.get("meta", {})
    previous = list(earlier.get("rows", []))
    dates = {suite_of(r): str(before.get("date", "")) for r in previous}
    dates.update(before.get("sections", {}))
    meta = dict(meta, sections={k: v for k, v in dates.items() if k not in ran} | dict.fromkeys(sorted(ran), meta["date"]))
    order = list(SECTIONS)
    kept = [r for r in previous if suite_of(r) not in ran]
    merged = sorted(kept + rows, key=lambda r: order.index(suite_of(r)) if suite_of(r) in order else len(order))
    return {"meta": meta, "rows": merged}


@app.command()
def main(
    quick: Annotated[bool, typer.Option(help="Small sizes: check that everything runs.")] = False,
    sections: Annotated[
        str,
        typer.Option(
            help="Comma-separated: rig,instructions,batch,commissions,overhead,memory,listing,speedups,agave"
        ),
    ] = "rig,instructions,batch,commissions,overhead,memory,listing,speedups,agave",
    out: Annotated[Path, typer.Option(help="Where to write the results.")] = RESULTS,
) -> None:
    """Run the benchmarks and write JSON, Markdown and a PNG chart."""
    rows: list[dict[str, Any]] = []
    wanted = {s.strip() for s in sections.split(",") if s.strip()}
    unknown = wanted - set(SECTIONS)
    if unknown:
        raise typer.BadParameter(f"unknown sections: {sorted(unknown)}", param_hint="--sections")
    for name, fn in SECTIONS.items():
        if name in wanted:
            print(f"{name} ...", flush=True)
            fn(quick, rows)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{host.machine()}, {host.python_implementation()} {host.python_version()}",
        "quick": quick,
        "targets": TARGETS,
    }
    out.mkdir(parents=True, exist_ok=True)
    stem = "quick" if quick else "latest"
    earlier = json.loads((out / f"{stem}.json").read_text()) if (out / f"{stem}.json").exists() else {}
    report = merge_report(earlier, meta, rows, wanted)
    rows = report["rows"]
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2))
    table = markdown(rows, report["meta"])
    (out / f"{stem}.md").write_text(table)
    chart(rows, out / f"{stem if quick else 'batch'}.png")
    if not quick and out == RESULTS:
        refresh_docs(table)
    print(table)


def refresh_docs(table: str) -> None:
    """Put the latest full run's tables into docs/performance.md, between its markers."""
    page = PERFORMANCE_PAGE.read_text()
    start, end = page.index(MARKERS[0]) + len(MARKERS[0]), page.index(MARKERS[1])
    body = table.split("\n", 1)[1]  # the page has its own title
    PERFORMANCE_PAGE.write_text(page[:start] + "\n" + body + "\n" + page[end:])


if __name__ == "__main__":
    app()
