"""The Agave batches and streamed transfers: aioplatform vs raw aiohttp vs agavepy 0.9.5.

- jobs: ``jobs.submit_many`` of N jobs then ``jobs.wait_many`` until every one is
  terminal, vs raw aiohttp (the same POSTs and ``/status`` polls under a semaphore, the
  envelope parsed by hand) vs agavepy's sequential ``jobs.submit`` then a
  ``jobs.getStatus`` loop per job, as its users write it;
- uploads: ``files.upload_many`` of N files from disk vs raw aiohttp's multipart POSTs vs
  agavepy's sequential ``files.importData``;
- actors: ``actors.send_many`` of N messages to one actor then ``actors.wait_executions``
  until every execution is COMPLETE, vs raw aiohttp (the same message POSTs, then rounds of
  execution GETs) vs agavepy's sequential ``actors.sendMessage`` then a
  ``actors.getExecution`` loop per execution;
- meta: ``meta.create_many`` of N metadata records vs raw aiohttp's JSON POSTs vs agavepy's
  sequential ``meta.addMetadata``;
- streaming: the peak RSS a 200 MB ``files.upload`` / ``files.download`` adds to the
  client process, vs agavepy's ``importData`` / ``files.download`` (both build or read
  the whole body in memory), each in a fresh process.

agavepy speaks only HTTPS on port 443 at the root of a host, so the platform serves
Agave's TLS site on a loopback address (root needed; :func:`.servers.serve_agave`);
all three clients then face that same site. When it cannot be bound, aioplatform and
raw aiohttp run against the plain-HTTP mount and agavepy's figures are skipped with the
reason. agavepy runs in a child process (its token cache goes to a temporary ``HOME``)
and times itself, so its start-up and its password grant are not counted against it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from aioplatform import Limits
from aioplatform.agave import AgaveClient

from .servers import ServedPlatform

__all__ = [
    "POLL_SECONDS", "Setup", "agavepy", "agavepy_actors", "agavepy_jobs", "agavepy_meta", "agavepy_uploads",
    "ours_actors", "ours_jobs", "ours_meta", "ours_uploads", "raw_actors", "raw_jobs", "raw_meta", "raw_uploads",
    "source_files", "stream_memory",
]  # fmt: skip

STORAGE = "agave-storage"  # the embedded Agave's seeded default storage system
APP = "wc-1.00"  # its seeded app
TERMINAL = frozenset({"FINISHED", "FAILED", "STOPPED", "KILLED"})  # agave.md §6.4
EXECUTION_DONE = frozenset({"COMPLETE", "ERROR"})  # an Abaco execution's last statuses (agave.md §6.1)
IMAGE = "abacosamples/wc"  # what the actors run (the embedded Abaco runs no container)
# The pause between status polls, the same for all three (aioplatform's does not grow past it).
POLL_SECONDS = 0.1


def message(tag: str, i: int) -> str:
    return f"{tag}: count the words of message {i}"


def metadata_record(tag: str, i: int) -> dict[str, Any]:
    return {"name": f"{tag}-{i}", "value": {"index": i, "sample": tag, "depth": i % 7, "tags": ["bench", "meta"]}}


def job_request(name: str) -> dict[str, Any]:
    return {
        "name": name, "appId": APP, "archive": False,
        "inputs": {"query1": f"agave://{STORAGE}/bench/in.txt"}, "parameters": {"printLongestLine": True},
    }  # fmt: skip


class Setup:
    """Where and how every implementation reaches Agave on the served platform."""

    def __init__(self, platform: ServedPlatform):
        creds = platform.credentials
        self.agavepy_skipped = creds.get("agave_tls_skipped", "")
        self.tls = not self.agavepy_skipped
        # All three face the TLS site when there is one (a real Agave is HTTPS only).
        self.base = (creds["agave_tls_url"] if self.tls else creds["agave_url"]).rstrip("/") + "/"
        self.ca = creds.get("agave_ca_pem", "") if self.tls else ""
        self.token = creds["agave_token"]
        self.transport = "https" if self.tls else "http"
        self.agavepy_login = {
            "api_server": self.base.rstrip("/"), "api_key": creds["agave_client_key"],
            "api_secret": creds["agave_client_secret"], "username": creds["agave_username"],
            "password": creds["agave_password"], "verify": self.ca,
        }  # fmt: skip

    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.ca) if self.tls else None

    def client(self, concurrency: int) -> AgaveClient:
        return AgaveClient(
            self.base, token=self.token, ssl=self.ca or None, limits=Limits(max_connections=concurrency)
        )

    def raw_session(self, concurrency: int) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self.token}"},
            connector=aiohttp.TCPConnector(limit=concurrency, ssl=self.ssl_context() or True),
        )

    async def mkdir(self, name: str) -> str:
        """A fresh directory on the storage system (raw HTTP: independent of the clients)."""
        async with self.raw_session(1) as s:
            url = f"{self.base}files/v2/media/system/{STORAGE}/"
            async with s.put(url, json={"action": "mkdir", "path": name}) as r:
                if r.status >= 400:
                    raise RuntimeError(f"mkdir {name}: {r.status} {await r.text()}")
        return name

    async def add_actor(self, name: str) -> str:
        """A fresh actor's id (raw HTTP), so no run polls or lists another's executions."""
        async with self.raw_session(1) as s, s.post(self.base + "actors/v2", json={"image": IMAGE, "name": name}) as r:
            actor = _envelope(r.status, await r.json(content_type=None))
            if actor is None or not actor.get("id"):
                raise RuntimeError(f"add actor {name}: {r.status} {await r.text()}")
            return str(actor["id"])


def unique(prefix: str) -> str:
    return f"{prefix}-{time.monotonic_ns()}-{random.randrange(10**6)}"


def _envelope(status: int, body: Any) -> dict[str, Any] | None:
    """The ``result`` of a success envelope, None for anything else (a failure)."""
    if status >= 400 or not isinstance(body, dict) or body.get("status") != "success":
        return None
    result = body.get("result")
    return result if isinstance(result, dict) else None


async def _raw_wait(
    pending: list[str], status: Callable[[str], Awaitable[str | None]], terminal: frozenset[str], success: str
) -> int:
    """Rounds of ``status`` polls (each bounded by the caller's semaphore) until every id is
    terminal, :data:`POLL_SECONDS` apart; the failures (a failed poll, a terminal status other
    than ``success``)."""
    failures = 0
    while pending:
        statuses = await asyncio.gather(*(status(i) for i in pending))
        failures += sum(st is None or (st in terminal and st != success) for st in statuses)
        pending = [i for i, st in zip(pending, statuses, strict=True) if st is not None and st not in terminal]
        if pending:
            await asyncio.sleep(POLL_SECONDS)
    return failures


# -- jobs: submit N, wait for all ------------------------------------------------------------


async def raw_jobs(setup: Setup, n: int, concurrency: int) -> tuple[float, int]:
    """Hand-written: a semaphore over the same POSTs, then rounds of ``/status`` polls."""
    tag = unique("raw")
    sem = asyncio.Semaphore(concurrency)
    async with setup.raw_session(concurrency) as s:

        async def submit(i: int) -> str | None:
            async with sem, s.post(setup.base + "jobs/v2", json=job_request(f"{tag}-{i}")) as r:
                job = _envelope(r.status, await r.json(content_type=None))
                return str(job["id"]) if job else None

        async def status(job_id: str) -> str | None:
            async with sem, s.get(f"{setup.base}jobs/v2/{job_id}/status") as r:
                found = _envelope(r.status, await r.json(content_type=None))
                return str(found["status"]) if found else None

        started = time.perf_counter()
        ids = await asyncio.gather(*(submit(i) for i in range(n)))
        pending = [i for i in ids if i is not None]
        failures = n - len(pending) + await _raw_wait(pending, status, TERMINAL, "FINISHED")
        return time.perf_counter() - started, failures


async def ours_jobs(setup: Setup, n: int, concurrency: int) -> tuple[float, int]:
    """``submit_many`` then ``wait_many``. Wall seconds and failures (errors, jobs not FINISHED)."""
    tag = unique("ours")
    async with setup.client(concurrency) as client:
        started = time.perf_counter()
        submitted = await client.jobs.submit_many(
            [job_request(f"{tag}-{i}") for i in range(n)], concurrency=concurrency
        )
        waited = await client.jobs.wait_many(
            [job.id for job in submitted.values], poll_interval=POLL_SECONDS, max_interval=POLL_SECONDS,
            concurrency=concurrency,
        )  # fmt: skip
        wall = time.perf_counter() - started
        unfinished = sum(status.status != "FINISHED" for status in waited.values)
        return wall, len(submitted.errors) + len(waited.errors) + unfinished


# -- actors: send N messages to one actor, wait for every execution ----------------------------


async def raw_actors(setup: Setup, n: int, concurrency: int) -> tuple[float, int]:
    """Hand-written: a semaphore over the same message POSTs, then rounds of execution GETs."""
    tag = unique("raw")
    actor = f"{setup.base}actors/v2/{await setup.add_actor(tag)}"
    sem = asyncio.Semaphore(concurrency)
    async with setup.raw_session(concurrency) as s:

        async def send(i: int) -> str | None:
            async with sem, s.post(actor + "/messages", json={"message": message(tag, i)}) as r:
                receipt = _envelope(r.status, await r.json(content_type=None))
                return str(receipt["executionId"]) if receipt and receipt.get("executionId") else None

        async def status(execution_id: str) -> str | None:
            async with sem, s.get(f"{actor}/executions/{execution_id}") as r:
                found = _envelope(r.status, await r.json(content_type=None))
                return str(found["status"]) if found else None

        started = time.perf_counter()
        ids = await asyncio.gather(*(send(i) for i in range(n)))
        pending = [i for i in ids if i is not None]
        failures = n - len(pending) + await _raw_wait(pending, status, EXECUTION_DONE, "COMPLETE")
        return time.perf_counter() - started, failures


async def ours_actors(setup: Setup, n: int, concurrency: int) -> tuple[float, int]:
    """``send_many`` then ``wait_executions``. Wall seconds and failures (errors, executions
    not COMPLETE). ``send_many`` also lists the actor's executions once before sending (to
    name orphans should an answer be lost): one request more than the others make."""
    tag = unique("ours")
    actor_id = await setup.add_actor(tag)
    async with setup.client(concurrency) as client:
        started = time.perf_counter()
        sent = await client.actors.send_many(actor_id, [message(tag, i) for i in range(n)], concurrency=concurrency)
        waited = await client.actors.wait_executions(
            actor_id, sent.values, poll_interval=POLL_SECONDS, max_interval=POLL_SECONDS, concurrency=concurrency,
        )  # fmt: skip
        wall = time.perf_counter() - started
        unfinished = sum(execution.status != "COMPLETE" for execution in waited.values)
        return wall, len(sent.errors) + len(waited.errors) + unfinished


# -- meta: create N metadata records ---------------------------------------------------------


async def raw_meta(setup: Setup, n: int, concurrency: int) -> tuple[float, int]:
    """Hand-written: a semaphore over the same JSON POSTs to ``/meta/v2/data``."""
    tag = unique("raw")
    sem = asyncio.Semaphore(concurrency)
    async with setup.raw_session(concurrency) as s:

        async def create(i: int) -> bool:
            async with sem, s.post(setup.base + "meta/v2/data", json=metadata_record(tag, i)) as r:
                made = _envelope(r.status, await r.json(content_type=None))
                return bool(made and made.get("uuid"))

        started = time.perf_counter()
        done = await asyncio.gather(*(create(i) for i in range(n)))
        return time.perf_counter() - started, done.count(False)


async def ours_meta(setup: Setup, n: int, concurrency: int) -> tuple[float, int]:
    """``meta.create_many`` (without ``reconcile``: no listing before the batch)."""
    tag = unique("ours")
    records = [metadata_record(tag, i) for i in range(n)]
    async with setup.client(concurrency) as client:
        started = time.perf_counter()
        result = await client.meta.create_many(records, concurrency=concurrency)
        return time.perf_counter() - started, len(result.errors)


# -- uploads: N files from disk --------------------------------------------------------------


@contextmanager
def source_files(n: int, size: int) -> Iterator[list[Path]]:
    """``n`` files of ``size`` random bytes in a temporary folder, removed after."""
    folder = Path(tempfile.mkdtemp(prefix="aioplatform-bench-files-"))
    try:
        paths = []
        for i in range(n):
            path = folder / f"f{i:04d}.bin"
            path.write_bytes(os.urandom(size))
            paths.append(path)
        yield paths
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def raw_uploads(setup: Setup, paths: list[Path], concurrency: int) -> tuple[float, int]:
    """Hand-written: a semaphore over the same multipart POSTs (``fileToUpload`` + ``fileName``)."""
    folder = await setup.mkdir(unique("raw"))
    url = f"{setup.base}files/v2/media/system/{STORAGE}/{folder}"
    sem = asyncio.Semaphore(concurrency)
    async with setup.raw_session(concurrency) as s:

        async def one(path: Path) -> bool:
            async with sem:
                with path.open("rb") as fh:
                    form = aiohttp.FormData()
                    form.add_field("fileToUpload", fh, filename=path.name)
                    form.add_field("fileName", path.name)
                    async with s.post(url, data=form) as r:
                        return _envelope(r.status, await r.json(content_type=None)) is not None

        started = time.perf_counter()
        done = await asyncio.gather(*(one(p) for p in paths))
        return time.perf_counter() - started, done.count(False)


async def ours_uploads(setup: Setup, paths: list[Path], concurrency: int) -> tuple[float, int]:
    folder = await setup.mkdir(unique("ours"))
    async with setup.client(concurrency) as client:
        started = time.perf_counter()
        result = await client.files.upload_many(STORAGE, folder, paths, concurrency=concurrency)
        return time.perf_counter() - started, len(result.errors)


# -- agavepy, in a child process -------------------------------------------------------------

# Peak RSS around one transfer, shared by both child scripts. On Linux the kernel's peak
# mark is reset to the current RSS first (``/proc/self/clear_refs``), so what imports and
# set-up held before cannot hide a rise; elsewhere the rise of ``ru_maxrss``.
RSS = """
import resource, sys
def _status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))
def _maxrss():
    used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return used if sys.platform == "darwin" else used * 1024
def rss_mark():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return ("VmHWM", _status("VmRSS"))
    except (OSError, StopIteration):
        return ("maxrss", _maxrss())
def rss_rise(mark):
    how, before = mark
    return (_status("VmHWM") if how == "VmHWM" else _maxrss()) - before
"""

# Runs agavepy 0.9.5 as its users do: one call after another. The password grant and a
# first call (imports, the TLS handshake) happen before the clock. Prints one JSON line.
AGAVEPY_SCRIPT = RSS + """
import json, os, sys, time, tracemalloc
cfg = json.loads(sys.stdin.read())
from agavepy.agave import Agave
ag = Agave(**cfg["login"])
STORAGE, TERMINAL, DONE, what = cfg["storage"], set(cfg["terminal"]), set(cfg["execution_done"]), cfg["what"]
ag.files.list(systemId=STORAGE, filePath="")


if what == "jobs":
    started = time.perf_counter()
    ids = [ag.jobs.submit(body=body)["id"] for body in cfg["requests"]]
    failures = 0
    for job_id in ids:
        while True:
            status = ag.jobs.getStatus(jobId=job_id)["status"]
            if status in TERMINAL:
                failures += status != "FINISHED"
                break
            time.sleep(cfg["poll"])
    print(json.dumps({"wall": time.perf_counter() - started, "failures": failures}))
elif what == "actors":
    actor = cfg["actor"]
    started = time.perf_counter()
    ids = [ag.actors.sendMessage(actorId=actor, body={"message": m})["executionId"] for m in cfg["messages"]]
    failures = 0
    for execution_id in ids:
        while True:
            status = ag.actors.getExecution(actorId=actor, executionId=execution_id)["status"]
            if status in DONE:
                failures += status != "COMPLETE"
                break
            time.sleep(cfg["poll"])
    print(json.dumps({"wall": time.perf_counter() - started, "failures": failures}))
elif what == "meta":
    started = time.perf_counter()
    failures = sum(not ag.meta.addMetadata(body=record).get("uuid") for record in cfg["records"])
    print(json.dumps({"wall": time.perf_counter() - started, "failures": failures}))
elif what == "uploads":
    started = time.perf_counter()
    failures = 0
    for path in cfg["paths"]:
        with open(path, "rb") as fh:
            done = ag.files.importData(systemId=STORAGE, filePath=cfg["folder"], fileToUpload=fh)
        failures += done.get("name") != os.path.basename(path)
    print(json.dumps({"wall": time.perf_counter() - started, "failures": failures}))
else:  # upload or download of one big file, after a small one of the same kind
    def transfer(source, remote, dest):
        if what == "upload":
            with open(source, "rb") as fh:
                ag.files.importData(systemId=STORAGE, filePath=cfg["folder"], fileToUpload=fh)
        else:
            with open(dest, "wb") as out:
                out.write(ag.files.download(systemId=STORAGE, filePath=remote).content)
    transfer(cfg["small"], cfg["small_remote"], cfg["dest"])
    tracemalloc.start()
    mark = rss_mark()
    started = time.perf_counter()
    transfer(cfg["source"], cfg["remote"], cfg["dest"])
    wall = time.perf_counter() - started
    print(json.dumps({"wall": wall, "rss_delta": rss_rise(mark), "traced_peak": tracemalloc.get_traced_memory()[1]}))
"""


def agavepy(setup: Setup, action: str, **cfg: Any) -> dict[str, Any]:
    """Run :data:`AGAVEPY_SCRIPT` for ``action`` (jobs, actors, meta, uploads, upload, download); its JSON answer."""
    home = Path(tempfile.mkdtemp(prefix="aioplatform-bench-agavepy-"))
    env = dict(os.environ, HOME=str(home), AGAVE_CACHE_DIR=str(home / ".agave"))
    payload = {"login": setup.agavepy_login, "storage": STORAGE, "terminal": sorted(TERMINAL),
               "execution_done": sorted(EXECUTION_DONE), "what": action, "poll": POLL_SECONDS, **cfg}  # fmt: skip
    try:
        done = subprocess.run(
            [sys.executable, "-c", AGAVEPY_SCRIPT], input=json.dumps(payload), capture_output=True,
            text=True, env=env, timeout=1800,
        )  # fmt: skip
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"agavepy {action} failed: {done.stderr.strip()[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def agavepy_jobs(setup: Setup, n: int) -> tuple[float, int]:
    tag = unique("agavepy")
    measured = agavepy(setup, "jobs", requests=[job_request(f"{tag}-{i}") for i in range(n)])
    return float(measured["wall"]), int(measured["failures"])


def agavepy_actors(setup: Setup, n: int) -> tuple[float, int]:
    tag = unique("agavepy")
    actor_id = asyncio.run(setup.add_actor(tag))
    measured = agavepy(setup, "actors", actor=actor_id, messages=[message(tag, i) for i in range(n)])
    return float(measured["wall"]), int(measured["failures"])


def agavepy_meta(setup: Setup, n: int) -> tuple[float, int]:
    tag = unique("agavepy")
    measured = agavepy(setup, "meta", records=[metadata_record(tag, i) for i in range(n)])
    return float(measured["wall"]), int(measured["failures"])


def agavepy_uploads(setup: Setup, paths: list[Path]) -> tuple[float, int]:
    folder = asyncio.run(setup.mkdir(unique("agavepy")))
    measured = agavepy(setup, "uploads", paths=[str(p) for p in paths], folder=folder)
    return float(measured["wall"]), int(measured["failures"])


# -- streaming memory: one big file up and down, each in a fresh process ----------------------

OURS_STREAM_SCRIPT = RSS + """
import asyncio, json, sys, time, tracemalloc
from pathlib import Path
from aioplatform.agave import AgaveClient
cfg = json.loads(sys.stdin.read())
STORAGE, what = cfg["storage"], cfg["what"]


async def main():
    async with AgaveClient(cfg["base"], token=cfg["token"], ssl=cfg["ca"] or None) as client:
        async def transfer(source, remote, dest):
            if what == "upload":
                await client.files.upload(STORAGE, cfg["folder"], Path(source))
            else:
                await client.files.download(STORAGE, remote, Path(dest))
        await transfer(cfg["small"], cfg["small_remote"], cfg["dest"])
        tracemalloc.start()
        mark = rss_mark()
        started = time.perf_counter()
        await transfer(cfg["source"], cfg["remote"], cfg["dest"])
        wall = time.perf_counter() - started
        return {"wall": wall, "rss_delta": rss_rise(mark), "traced_peak": tracemalloc.get_traced_memory()[1]}

print(json.dumps(asyncio.run(main())))
"""


def stream_memory(setup: Setup, which: str, size: int) -> dict[str, float]:
    """Upload then download one ``size``-byte file with ``which`` (each in a fresh process):
    seconds, the peak RSS each added over what the process held before, and tracemalloc's peak."""
    folder = asyncio.run(setup.mkdir(unique(f"stream-{which}")))
    work = Path(tempfile.mkdtemp(prefix="aioplatform-bench-stream-"))
    try:
        source, small = work / "big.bin", work / "small.bin"
        with source.open("wb") as out:  # written in chunks: the benchmark holds no 200 MB either
            for _ in range(size // 2**20):
                out.write(os.urandom(2**20))
            out.write(os.urandom(size % 2**20))
        small.write_bytes(os.urandom(64 * 1024))
        cfg = {"storage": STORAGE, "folder": folder, "source": str(source), "small": str(small),
               "remote": f"{folder}/big.bin", "small_remote": f"{folder}/small.bin"}  # fmt: skip
        found: dict[str, float] = {}
        for what in ("upload", "download"):
            cfg["dest"] = str(work / f"copy-{what}.bin")
            if which == "agavepy":
                measured = agavepy(setup, what, **cfg)
            else:
                payload = dict(cfg, what=what, base=setup.base, token=setup.token, ca=setup.ca)
                done = subprocess.run(
                    [sys.executable, "-c", OURS_STREAM_SCRIPT], input=json.dumps(payload),
                    capture_output=True, text=True, timeout=1800,
                )  # fmt: skip
                if done.returncode != 0:
                    raise RuntimeError(f"aioplatform {what} failed: {done.stderr.strip()[-2000:]}")
                measured = json.loads(done.stdout)
            if what == "download" and (work / "copy-download.bin").stat().st_size != size:
                raise RuntimeError(f"{which} downloaded {(work / 'copy-download.bin').stat().st_size} of {size} bytes")
            found[f"{what}_s"] = float(measured["wall"])
            found[f"{what}_rss_mib"] = measured["rss_delta"] / 2**20
            found[f"{what}_traced_mib"] = measured["traced_peak"] / 2**20
        return found
    finally:
        shutil.rmtree(work, ignore_errors=True)
