"""The embedded platform in a separate process, as the benchmarks measure against it.

Running the server in its own process keeps its CPU out of the client's process time
and lets the sync SDKs (blocking) and aioplatform face exactly the same server.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServedPlatform:
    """``aioplatform serve`` in a child process; ``describe()`` reads its live counters."""

    def __init__(self, url: str, process: subprocess.Popen[str], credentials: dict[str, str]):
        self.url = url
        self.process = process
        self.credentials = credentials

    def describe(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/") as response:
            return dict(json.load(response))

    @property
    def connections(self) -> int:
        return int(self.describe()["stats"]["connections"])


@contextlib.contextmanager
def running(
    name: str,
    argv: list[str],
    url: str,
    ready: Callable[[], bool] = lambda: True,
    env: dict[str, str] | None = None,
    start_timeout: float = 30.0,
) -> Iterator[subprocess.Popen[str]]:
    """``argv`` in a child process, yielded once ``url + "/"`` answers 2xx and ``ready()``; stopped after.

    ``env``: variables set for the child on top of this process's environment. A child not
    ready within ``start_timeout`` seconds is killed and its output raised in a RuntimeError.
    """
    child_env = {**os.environ, **env} if env else None
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                with urllib.request.urlopen(url + "/", timeout=1):
                    pass
                if ready():
                    break
            except OSError:  # not listening yet
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                # A child still running at the deadline never closes its stdout: stop it
                # before reading what it said, or the read blocks for ever.
                process.kill()
                out, _ = process.communicate(timeout=10)
                raise RuntimeError(f"{name} did not start:\n{out or ''}")
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def serve(
    latency_ms: float = 0.0, db: str = ":memory:", fault_rate: float = 0.0, uvloop: bool | None = None
) -> Iterator[ServedPlatform]:
    """``aioplatform serve``; ``uvloop=False`` keeps it on asyncio's loop even where uvloop is
    installed (``AIOPLATFORM_UVLOOP=0``), None lets the CLI choose (uvloop when installed)."""
    port = free_port()
    creds = Path(tempfile.mkdtemp(prefix="aioplatform-bench-")) / "credentials.json"
    argv = [sys.executable, "-m", "aioplatform.cli", "serve", "--port", str(port), "--db", db,
            "--latency-ms", str(latency_ms), "--fault-rate", str(fault_rate), "--credentials-file", str(creds)]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        env = None if uvloop is None else {"AIOPLATFORM_UVLOOP": "1" if uvloop else "0"}
        ready = lambda: creds.exists() and creds.stat().st_size > 0  # noqa: E731
        with running("the platform", argv, url, ready, env) as process:
            yield ServedPlatform(url, process, json.loads(creds.read_text()))
    finally:
        shutil.rmtree(creds.parent, ignore_errors=True)  # the seeded tokens do not outlive the run


# A server that does nothing but wait out the latency and answer a fixed instance: what
# the client stack achieves when the server costs (almost) nothing — the rig's ceiling.
TRIVIAL_SERVER = """
import asyncio, sys
from aiohttp import web
latency = float(sys.argv[2]) / 1000
body = {"uuid": "00000000-0000-4000-8000-000000000000", "name": "", "state": "created", "user": "admin",
        "task_queue": 1, "task_type": 1, "datetime_created": "2026-01-01T00:00:00.000000Z",
        "datetime_finished": None, "arguments": {}}
async def answer(request):
    await request.read()
    if latency:
        await asyncio.sleep(latency)
    return web.json_response(body, status=201)
app = web.Application()
app.router.add_route("*", "/{tail:.*}", answer)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


@contextlib.contextmanager
def serve_trivial(latency_ms: float = 0.0) -> Iterator[ServedPlatform]:
    """:data:`TRIVIAL_SERVER` in a child process, shaped like a served platform."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-c", TRIVIAL_SERVER, str(port), str(latency_ms)]
    with running("the do-nothing server", argv, url) as process:
        yield ServedPlatform(url, process, {"saltant_url": url + "/saltant/api/", "saltant_token": "unused"})


# The platform with Agave's TLS site for agavepy (a loopback address's port 443: root) and a
# short job step and actor step, so a batch's wait measures the clients rather than the
# simulated jobs and executions.
# Credentials for agavepy's password grant are written with the others, to a mode-600 file.
AGAVE_SERVER = """
import asyncio, errno, json, os, random, signal, sys
from aioplatform.cli import platform_credentials
from aioplatform.testing import LocalPlatform
port, latency_ms, step, actor_step, path = (
    int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
sys.setswitchinterval(0.0005)  # as `aioplatform serve` does

async def start():
    # 127.0.0.2 first; another loopback address when a test run holds its 443.
    hosts = ["127.0.0.2"] + ["127.0.43.%d" % n for n in random.sample(range(2, 255), 4)]
    reason = ""
    for host in hosts:
        platform = LocalPlatform(port=port, latency=latency_ms / 1000, agave_tls_host=host)
        try:
            await platform.start()
            return platform, ""
        except PermissionError as exc:
            reason = "binding %s:443 needs root (CI runs as root): %s" % (host, exc)
            break
        except OSError as exc:
            reason = "the TLS site could not start on %s:443: %s" % (host, exc)
            if exc.errno != errno.EADDRINUSE:
                break
        except RuntimeError as exc:  # trustme missing
            reason = str(exc)
            break
    platform = LocalPlatform(port=port, latency=latency_ms / 1000)
    await platform.start()
    return platform, reason

async def main():
    platform, tls_skipped = await start()
    platform.agave.job_step_seconds = step
    platform.agave.actor_step_seconds = actor_step
    agave = platform.agave
    creds = dict(platform_credentials(platform), agave_username=agave.username,
                 agave_password=agave.password, agave_client_key=agave.client_key,
                 agave_client_secret=agave.client_secret, agave_tls_skipped=tls_skipped)
    fd = os.open(path + ".part", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(creds, out)
    os.replace(path + ".part", path)  # complete when it appears
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await platform.close()

asyncio.run(main())
"""


@contextlib.contextmanager
def serve_agave(
    latency_ms: float = 0.0, job_step_seconds: float = 0.005, actor_step_seconds: float = 0.005
) -> Iterator[ServedPlatform]:
    """The platform with Agave's TLS site when it can bind one (else ``agave_tls_skipped`` says why).
    An execution then starts within twice ``actor_step_seconds`` of its message and runs for
    half to one and a half times that (the embedded Abaco's draw)."""
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="aioplatform-bench-"))
    creds = folder / "credentials.json"
    argv = [sys.executable, "-c", AGAVE_SERVER, str(port), str(latency_ms), str(job_step_seconds),
            str(actor_step_seconds), str(creds)]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        with running("the platform with Agave's TLS site", argv, url, creds.exists) as process:
            yield ServedPlatform(url, process, json.loads(creds.read_text()))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
