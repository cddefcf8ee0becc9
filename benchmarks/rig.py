"""The server-free rig: client CPU per call against canned answers, no platform in the way.

A canned keep-alive server (``benchmarks/stub_server.py``) runs in its own process, pinned
to the other core where the OS allows, and answers each route with a body captured once
from the embedded platform at the start of the run (a saltant instance, a listing page of
100 instances, an Astakos quota document and commission serial, Agave job envelopes and a
page of 100 job summaries), so the bodies are the real shapes at their real sizes.

Per operation and implementation the client process's CPU time (``time.process_time``) over
``n`` sequential calls on one kept-alive connection, in interleaved rounds (every
implementation once per round, in turn) so that drifting load lands on all of them alike.
The verdict of a ratio target comes from the per-round ratios, not from one median:
"met" when even the worst round meets it, "missed" when even the best round misses it,
"within noise" otherwise.

The baselines: ``raw`` is aiohttp reading the body; ``raw+json+cattrs`` also parses it with
``json.loads`` and structures it with the service's own converter into the same models the
client returns (the fair floor for a typed client).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp

from aioplatform import Session, Timeouts
from aioplatform.agave import AgaveClient
from aioplatform.agave.models.common import structure as agave_structure
from aioplatform.agave.models.jobs import Job, JobSummary
from aioplatform.astakos import AstakosClient
from aioplatform.astakos.models import Quota
from aioplatform.astakos.models import converter as astakos_converter
from aioplatform.core import defaults
from aioplatform.core import session as session_module
from aioplatform.core.batch import gather
from aioplatform.saltant import SaltantClient
from aioplatform.saltant.models import ContainerTaskInstance
from aioplatform.saltant.models import converter as saltant_converter

from .servers import free_port

__all__ = ["TARGETS", "rig_section", "verdict"]

ORIGIN = "{origin}"  # the captured platform's origin in bodies, replaced by the stub's
PAGE = 100  # items on a captured listing page

TARGETS = {
    "rig_session": "Session.request <= 1.05x raw aiohttp (client CPU per call)",
    "rig_methods": "every service method <= 1.10x raw aiohttp + json + cattrs",
    "rig_items": "a listed item <= 6 µs client CPU",
    "rig_batch": "batch bookkeeping per item at N=50k within 10% of N=1k",
}


# -- capturing realistic bodies from the embedded platform ---------------------------------


@dataclass
class Captured:
    routes: dict[str, tuple[int, str]]  # "METHOD /path" -> (status, body with {origin})
    saltant_uuid: str
    agave_job: str
    astakos_user: str
    bases: dict[str, str]  # service -> its root, relative to the origin


async def capture() -> Captured:
    """Start the embedded platform in this process, make the objects, record the answers."""
    from aioplatform.testing import LocalPlatform
    from aioplatform.testing.agave.defaults import DEFAULT_STORAGE_SYSTEM, SEEDED_APP

    routes: dict[str, tuple[int, str]] = {}
    async with LocalPlatform() as platform, aiohttp.ClientSession() as http:
        platform.agave.job_step_seconds = 10_000.0  # jobs stay PENDING: one shape throughout
        origin = platform.saltant_url.split("/saltant/", 1)[0]

        async def record(method: str, url: str, key: str | None = None, **kwargs: Any) -> Any:
            async with http.request(method, url, **kwargs) as r:
                text = await r.text()
                if r.status >= 400:
                    raise RuntimeError(f"capture {method} {url}: {r.status} {text[:300]}")
            path = url.replace(origin, "").split("?", 1)[0]
            routes[key or f"{method} {path}"] = (r.status, text.replace(origin, ORIGIN))
            return json.loads(text)

        saltant = {"Authorization": f"Token {platform.saltant_token}"}
        base = platform.saltant_url
        ttype = await record("POST", base + "containertasktypes/", headers=saltant, data={
            "name": "rig", "command_to_run": "true", "container_image": "busybox", "container_type": "docker",
            "environment_variables": "[]", "required_arguments": "[]", "required_arguments_default_values": "{}",
        })  # fmt: skip
        wl = await record("POST", base + "taskwhitelists/", headers=saltant,
                          data={"name": "rig", "whitelisted_container_task_types": ttype["id"]})  # fmt: skip
        queue = await record("POST", base + "taskqueues/", headers=saltant, data={
            "name": "rig", "whitelists": wl["id"], "active": "True", "runs_docker_container_tasks": "True",
        })  # fmt: skip
        for i in range(PAGE):
            created = await record("POST", base + "containertaskinstances/", headers=saltant, data={
                "name": f"rig-{i}", "task_type": ttype["id"], "task_queue": queue["id"], "arguments": '{"n": 1}',
            })  # fmt: skip
        uuid = created["uuid"]
        await record("GET", base + f"containertaskinstances/?page_size={PAGE}", headers=saltant)
        await record("GET", base + f"containertaskinstances/{uuid}/", headers=saltant)
        await record("POST", base + f"containertaskinstances/{uuid}/clone/", headers=saltant)

        astakos = {"X-Auth-Token": platform.astakos_user_token}
        auth = await record("POST", platform.astakos_auth_url + "/tokens", headers=astakos,
                            json={"auth": {"token": {"id": platform.astakos_user_token}}})  # fmt: skip
        user = auth["access"]["user"]["id"]
        account = next(
            e["publicURL"]
            for s in auth["access"]["serviceCatalog"]
            if s["type"] == "account"
            for e in s["endpoints"]
        )
        await record("GET", account + "/quotas", headers=astakos)
        service = {"X-Auth-Token": platform.astakos_service_token}
        await record("POST", account + "/commissions", headers=service, json={
            "force": False, "auto_accept": False, "name": "rig", "provisions": [
                {"holder": f"user:{user}", "source": f"project:{user}", "resource": "cyclades.vm", "quantity": 1},
                {"holder": f"project:{user}", "source": None, "resource": "cyclades.vm", "quantity": 1},
            ],
        })  # fmt: skip

        agave = {"Authorization": f"Bearer {platform.agave_token}"}
        job_request = {
            "name": "rig", "appId": SEEDED_APP, "parameters": {"printLongestLine": True},
            "inputs": {"query1": f"agave://{DEFAULT_STORAGE_SYSTEM}/data/rig.txt"},
        }  # fmt: skip
        for _ in range(PAGE):
            job = await record("POST", platform.agave_url + "/jobs/v2/", headers=agave, json=job_request)
        job_id = job["result"]["id"]
        await record("GET", platform.agave_url + f"/jobs/v2/?limit={PAGE + 1}&offset=0", headers=agave)
        await record("GET", platform.agave_url + f"/jobs/v2/{job_id}", headers=agave)
        bases = {
            "saltant": base, "astakos_auth": platform.astakos_auth_url, "account": account,
            "agave": platform.agave_url,
        }  # fmt: skip
    return Captured(routes, uuid, job_id, user, {k: v.replace(origin, "") for k, v in bases.items()})


@contextlib.contextmanager
def stub(captured: Captured) -> Iterator[str]:
    """The canned server in its own process; yields its origin."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    routes = {k: (status, body.replace(ORIGIN, origin)) for k, (status, body) in captured.routes.items()}
    with tempfile.TemporaryDirectory(prefix="aioplatform-rig-") as folder:
        spec = Path(folder) / "routes.json"
        spec.write_text(json.dumps(routes))
        argv = [sys.executable, "-m", "benchmarks.stub_server", str(spec), str(port)]
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if len(cpus) > 1:
            argv.append(str(cpus[-1]))
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent
        )
        try:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError("the stub server did not start")
            yield origin
        finally:
            process.terminate()
            process.wait(timeout=10)


# -- the implementations -------------------------------------------------------------------

Call = Callable[[], Awaitable[Any]]


@dataclass
class Impl:
    """``open()`` returns (the call to repeat, the closer)."""

    name: str
    open: Callable[[], Awaitable[tuple[Call, Callable[[], Awaitable[None]]]]]


def raw_impl(method: str, url: str, headers: dict[str, str], body: Any = None,
             read: Callable[[bytes], Any] | None = None, name: str = "raw",
             timeout: aiohttp.ClientTimeout | None = None) -> Impl:  # fmt: skip
    async def open_() -> tuple[Call, Callable[[], Awaitable[None]]]:
        session = aiohttp.ClientSession(headers=headers, timeout=timeout or aiohttp.ClientTimeout(total=300))

        async def call() -> Any:
            async with session.request(method, url, json=body) as r:
                data = await r.read()
                if r.status >= 400:
                    raise RuntimeError(f"{method} {url}: {r.status}")
            return read(data) if read else data

        return call, session.close

    return Impl(name, open_)


def client_impl(
    make: Callable[[], Any], call_on: Callable[[Any], Awaitable[Any]], name: str = "aioplatform"
) -> Impl:
    async def open_() -> tuple[Call, Callable[[], Awaitable[None]]]:
        client = make()
        await client.__aenter__()

        async def close() -> None:
            await client.__aexit__(None, None, None)

        return (lambda: call_on(client)), close

    return Impl(name, open_)


@dataclass
class Operation:
    name: str  # "saltant get"
    kind: str  # "session", "method" or "listing"
    items: int  # models per call (listing pages)
    impls: list[Impl]  # the first is ours; the others are baselines


def operations(origin: str, c: Captured, tokens: dict[str, str]) -> list[Operation]:
    s_url = origin + c.bases["saltant"]
    s_head = {"Authorization": f"Token {tokens['saltant']}"}
    instance = f"{s_url}containertaskinstances/{c.saltant_uuid}/"
    listing = f"{s_url}containertaskinstances/?page_size={PAGE}"
    a_head = {"X-Auth-Token": tokens["astakos"]}
    auth_url = origin + c.bases["astakos_auth"]
    account = origin + c.bases["account"]
    g_url = origin + c.bases["agave"] + "/jobs/v2/"
    g_head = {"Authorization": f"Bearer {tokens['agave']}"}
    job_request = {"name": "rig", "appId": "wc-1.00", "inputs": {}, "parameters": {}}

    def saltant() -> SaltantClient:
        return SaltantClient(s_url, tokens["saltant"])

    def astakos() -> AstakosClient:
        return AstakosClient(tokens["astakos"], auth_url)

    def agave() -> AgaveClient:
        return AgaveClient(origin + c.bases["agave"], token=tokens["agave"])

    async def session_get(session: Session) -> Any:
        return (await session.request("GET", instance, headers=s_head)).body

    async def list_all(pager: Any) -> int:
        n = 0
        async for _ in pager:
            n += 1
        if n != PAGE:
            raise RuntimeError(f"listed {n} of {PAGE}")
        return n

    def s_instance(data: bytes) -> Any:
        return saltant_converter.structure(json.loads(data), ContainerTaskInstance)

    def s_page(data: bytes) -> Any:
        return [saltant_converter.structure(i, ContainerTaskInstance) for i in json.loads(data)["results"]]

    def quotas(data: bytes) -> Any:
        return astakos_converter.structure(json.loads(data), dict[str, dict[str, Quota]])

    def serial(data: bytes) -> int:
        return int(json.loads(data)["serial"])

    def job(data: bytes) -> Any:
        return agave_structure(json.loads(data)["result"], Job)

    def jobs_page(data: bytes) -> Any:
        return [agave_structure(i, JobSummary) for i in json.loads(data)["result"]]

    from aioplatform.astakos import CommissionRequest

    commission = CommissionRequest.one(c.astakos_user, c.astakos_user, {"cyclades.vm": 1}, name="rig")
    fair = "raw+json+cattrs"
    ops = [
        Operation("Session.request GET", "session", 1, [
            client_impl(Session, session_get), raw_impl("GET", instance, s_head),
            # The same request with aioplatform's default timeouts (a read timeout re-armed on
            # every chunk, a deadline): how much of the gap is those timers, not our code.
            raw_impl("GET", instance, s_head, name="raw+timeouts",
                     timeout=Timeouts()._client_timeout(total=defaults.DEADLINE)),
        ]),
        Operation("saltant get", "method", 1, [
            client_impl(saltant, lambda cl: cl.container_task_instances.get(c.saltant_uuid)),
            raw_impl("GET", instance, s_head), raw_impl("GET", instance, s_head, read=s_instance, name=fair),
        ]),
        Operation("saltant clone", "method", 1, [
            client_impl(saltant, lambda cl: cl.container_task_instances.clone(c.saltant_uuid)),
            raw_impl("POST", instance + "clone/", s_head),
            raw_impl("POST", instance + "clone/", s_head, read=s_instance, name=fair),
        ]),
        Operation(f"saltant list page of {PAGE}", "listing", PAGE, [
            client_impl(saltant, lambda cl: list_all(cl.container_task_instances.list(page_size=PAGE))),
            raw_impl("GET", listing, s_head), raw_impl("GET", listing, s_head, read=s_page, name=fair),
        ]),
        Operation("astakos get_quotas", "method", 1, [
            client_impl(astakos, lambda cl: cl.get_quotas()),
            raw_impl("GET", account + "/quotas", a_head),
            raw_impl("GET", account + "/quotas", a_head, read=quotas, name=fair),
        ]),
        Operation("astakos issue_commission", "method", 1, [
            client_impl(astakos, lambda cl: cl.issue_commission(commission)),
            raw_impl("POST", account + "/commissions", a_head, commission.to_wire()),
            raw_impl("POST", account + "/commissions", a_head, commission.to_wire(), read=serial, name=fair),
        ]),
        Operation("agave jobs.get", "method", 1, [
            client_impl(agave, lambda cl: cl.jobs.get(c.agave_job)),
            raw_impl("GET", f"{g_url}{c.agave_job}", g_head),
            raw_impl("GET", f"{g_url}{c.agave_job}", g_head, read=job, name=fair),
        ]),
        Operation("agave jobs.submit", "method", 1, [
            client_impl(agave, lambda cl: cl.jobs.submit(job_request)),
            raw_impl("POST", g_url, g_head, job_request),
            raw_impl("POST", g_url, g_head, job_request, read=job, name=fair),
        ]),
        Operation(f"agave jobs.list page of {PAGE}", "listing", PAGE, [
            client_impl(agave, lambda cl: list_all(cl.jobs.list(limit=PAGE + 1))),
            raw_impl("GET", f"{g_url}?limit={PAGE + 1}&offset=0", g_head),
            raw_impl("GET", f"{g_url}?limit={PAGE + 1}&offset=0", g_head, read=jobs_page, name=fair),
        ]),
    ]  # fmt: skip
    if session_module._fast_loads is not None:
        # The speedups extra is installed: the targets are judged on the default install
        # (json.loads, as the baselines), and the client with orjson is measured beside it.
        for op in ops[1:]:
            ours = op.impls[0]
            op.impls[0] = Impl("aioplatform", partial(_without_speedups, ours))
            op.impls.append(Impl(FAST, ours.open))
    return ops


FAST = "aioplatform with speedups"


async def _without_speedups(ours: Impl) -> tuple[Call, Callable[[], Awaitable[None]]]:
    """``ours`` reading with json.loads instead of orjson, from open to close (the rig runs
    one implementation at a time, so nothing else sees the switch)."""
    fast = session_module._fast_loads
    session_module._fast_loads = None
    call, close = await ours.open()

    async def restore() -> None:
        session_module._fast_loads = fast
        await close()

    return call, restore


# -- measuring -----------------------------------------------------------------------------


async def cpu_per_call(impl: Impl, n: int) -> float:
    """Client CPU µs per call over ``n`` calls, after a few warm-up calls on the same connection."""
    call, close = await impl.open()
    try:
        for _ in range(5):
            await call()
        started = time.process_time()
        for _ in range(n):
            await call()
        return (time.process_time() - started) / n * 1e6
    finally:
        await close()


def verdict(ratios: list[float], target: float) -> str:
    """met if every round meets ``target``, missed if none does, else within noise."""
    if max(ratios) <= target:
        return "met"
    if min(ratios) > target:
        return "missed"
    return "within noise"


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


async def batch_bookkeeping(n: int) -> float:
    """CPU µs per item of :func:`gather` over ``n`` items of a coroutine that does nothing."""

    async def nothing(i: int) -> int:
        return i

    started = time.process_time()
    result = await gather(nothing, range(n), concurrency=50)
    if len(result.values) != n:
        raise RuntimeError("gather lost items")
    return (time.process_time() - started) / n * 1e6


def rig_section(quick: bool, rows: list[dict[str, Any]]) -> None:
    n, repeats = (30, 3) if quick else (1000, 7)
    captured = asyncio.run(capture())
    tokens = {"saltant": "rig-saltant", "astakos": "rig-astakos", "agave": "rig-agave"}
    with stub(captured) as origin:
        for op in operations(origin, captured, tokens):
            samples: dict[str, list[float]] = {impl.name: [] for impl in op.impls}
            for _ in range(repeats):
                for impl in op.impls:  # interleaved: every implementation once per round
                    samples[impl.name].append(asyncio.run(cpu_per_call(impl, n)))
            ours = samples["aioplatform"]
            base_name = "raw" if op.kind == "session" else "raw+json+cattrs"
            ratios = [o / b for o, b in zip(ours, samples[base_name], strict=True)]
            row: dict[str, Any] = {
                "section": "rig", "case": op.name, "kind": op.kind, "calls": n, "repeats": repeats,
                "items": op.items, "baseline": base_name,
                **{f"{k}_us": statistics.median(v) for k, v in samples.items()},
                "ratio": statistics.median(ratios), "ratio_spread": spread(ratios), "ratios": ratios,
                "ratio_vs_raw": statistics.median(o / r for o, r in zip(ours, samples["raw"], strict=True)),
                "calls_per_core_s": 1e6 / statistics.median(ours),
                "speedups_measured": f"{FAST}_us" in {f"{k}_us" for k in samples},
            }  # fmt: skip
            target = 1.05 if op.kind == "session" else 1.10
            row["target"] = f"<= {target:.2f}x {base_name}"
            row["verdict"] = verdict(ratios, target)
            if op.items > 1:
                per_item = [(o - r) / op.items for o, r in zip(ours, samples["raw"], strict=True)]
                row["item_us"] = statistics.median(per_item)
                row["item_spread"] = spread(per_item)
                row["item_verdict"] = verdict(per_item, 6.0)
            rows.append(row)
            print(f"  {op.name}: ours {row['aioplatform_us']:.0f} µs, ratio {row['ratio']:.2f}x "
                  f"({row['ratio_spread']}) vs {base_name}: {row['verdict']}", flush=True)  # fmt: skip
    sizes = (1000, 5000) if quick else (1000, 50_000)
    per: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(repeats):
        for size in sizes:
            per[size].append(asyncio.run(batch_bookkeeping(size)))
    growth = [b / a for a, b in zip(per[sizes[0]], per[sizes[1]], strict=True)]
    rows.append({
        "section": "rig_batch", "case": f"gather bookkeeping, N={sizes[0]} vs N={sizes[1]}",
        "small_us": statistics.median(per[sizes[0]]), "large_us": statistics.median(per[sizes[1]]),
        "growth": statistics.median(growth), "growth_spread": spread(growth), "repeats": repeats,
        "verdict": verdict(growth, 1.10),
    })  # fmt: skip


# -- reporting -----------------------------------------------------------------------------


def rig_target_status(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """The rig's four targets, each judged on the spread of its per-round figures."""
    found: list[tuple[str, str, str]] = []
    rig = [r for r in rows if r["section"] == "rig"]
    session = [r for r in rig if r["kind"] == "session"]
    for r in session:
        found.append((TARGETS["rig_session"], f"{r['ratio']:.2f}x ({r['ratio_spread']})", r["verdict"]))
    methods = [r for r in rig if r["kind"] != "session"]
    if methods:
        worst = max(methods, key=lambda r: r["ratio"])
        counts = {v: sum(r["verdict"] == v for r in methods) for v in ("met", "within noise", "missed")}
        overall = "missed" if counts["missed"] else "within noise" if counts["within noise"] else "met"
        tally = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        found.append(
            (TARGETS["rig_methods"], f"worst {worst['ratio']:.2f}x ({worst['case']}); {tally}", overall)
        )
    items = [r for r in rig if "item_us" in r]
    if items:
        worst = max(items, key=lambda r: r["item_us"])
        verdicts = {r["item_verdict"] for r in items}
        overall = (
            "missed" if "missed" in verdicts else "within noise" if "within noise" in verdicts else "met"
        )
        found.append((TARGETS["rig_items"], f"worst {worst['item_us']:.1f} µs ({worst['case']})", overall))
    for r in (r for r in rows if r["section"] == "rig_batch"):
        found.append((TARGETS["rig_batch"], f"{r['growth']:.2f}x ({r['growth_spread']})", r["verdict"]))
    return found


def rig_markdown(rows: list[dict[str, Any]]) -> list[str]:
    rig = [r for r in rows if r["section"] == "rig"]
    if not rig:
        return []
    out = ["", "## Server-free rig: client CPU per call against canned answers (µs, medians)", "",
           "| operation | aioplatform | raw aiohttp | raw + json + cattrs | ratio (per-round spread) | vs raw | "
           "calls/s per core | per listed item | verdict |",
           "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rig:
        fair = r.get("raw+json+cattrs_us")
        item = f"{r['item_us']:.1f} µs ({r['item_spread']}): {r['item_verdict']}" if "item_us" in r else "-"
        out.append(
            f"| {r['case']} | {r['aioplatform_us']:.0f} | {r['raw_us']:.0f} | {f'{fair:.0f}' if fair else '-'} | "
            f"{r['ratio']:.2f}x vs {r['baseline']} ({r['ratio_spread']}) | {r['ratio_vs_raw']:.2f}x | "
            f"{r['calls_per_core_s']:.0f} | {item} | {r['verdict']} |"
        )
    fast = [r for r in rig if f"{FAST}_us" in r]
    if fast:
        out += ["", "The same client with the `speedups` extra (orjson) beside it (same rounds):", "",
                "| operation | default install | with speedups | saved per call |", "|---|---|---|---|"]  # fmt: skip
        for r in fast:
            out.append(f"| {r['case']} | {r['aioplatform_us']:.0f} µs | {r[f'{FAST}_us']:.0f} µs | "
                       f"{r['aioplatform_us'] - r[f'{FAST}_us']:.0f} µs |")  # fmt: skip
    for r in (r for r in rig if "raw+timeouts_us" in r):
        out.append(f"\n{r['case']}: raw aiohttp with aioplatform's default timeouts costs "
                   f"{r['raw+timeouts_us']:.0f} µs per call (plain raw {r['raw_us']:.0f} µs).")  # fmt: skip
    for r in (r for r in rows if r["section"] == "rig_batch"):
        out.append(f"\n{r['case']}: {r['small_us']:.2f} → {r['large_us']:.2f} µs per item "
                   f"({r['growth']:.2f}x, spread {r['growth_spread']}): {r['verdict']}.")  # fmt: skip
    calls, repeats = rig[0]["calls"], rig[0]["repeats"]
    out.append(
        f"\n{calls} sequential calls per measurement, {repeats} interleaved rounds; ratios are per round."
    )
    return out
