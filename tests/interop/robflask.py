"""The real flowserv server, rob-flask 0.6.0, in an isolated virtualenv: built once, cached, started.

The virtualenv lives under ``~/.cache/aioplatform/robflask-venv-<hash of PINS>`` (never
inside the repository) and is rebuilt only when the pin set changes. A server gets
its own data folder and SQLite database (``FLOWSERV_API_DIR`` /
``FLOWSERV_DATABASE``), the schema from ``flowserv init``, one workflow from
``flowserv workflows create`` on the tiny template below, and runs ``flask run`` on
127.0.0.1 on a free port.

With ``CI=true`` a server that cannot be built or started fails the tests; elsewhere
they are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PINS", "RobFlask", "RobFlaskUnavailable", "ensure_venv", "start_server", "robflask_or_skip"]

# The known-good set: rob-flask 0.6.0 breaks with newer Flask/Werkzeug/SQLAlchemy, so
# everything it pulls in is pinned to versions it was seen to run with.
PINS = (
    "rob-flask==0.6.0",
    "flowserv-core==0.8.1",
    "Flask==2.0.3",
    "Werkzeug==2.0.3",
    "SQLAlchemy==1.4.54",
    "flask-cors==6.0.5",
    "itsdangerous==2.2.0",
    "Jinja2==3.1.6",
    "MarkupSafe==3.0.4",
    "click==8.5.1",
    "passlib==1.7.4",
    "python-dateutil==4.0.0",
    "PyYAML==6.0.3",
    "jsonschema==4.26.0",
    "GitPython==3.2.1",
    "appdirs==1.4.4",
    "future==1.0.0",
    "greenlet==3.5.6",
    "requests==2.34.2",
)

API_PATH = "/flowserv/api/v1"
WORKFLOW_ID = "hello"
PARAMS_WORKFLOW_ID = "params"

_MANIFEST = """name: Hello
description: A tiny template for the interop tests
specfile: benchmark.yaml
"""
_SPEC = """workflow:
    version: 0.3.0
    inputs:
      files: []
      parameters:
          greeting: $[[greeting]]
    workflow:
      type: serial
      specification:
        steps:
          - environment: 'python:3.9'
            commands:
              - echo $[[greeting]]
    outputs:
      files: []
parameters:
    - name: greeting
      label: Greeting
      dtype: string
      defaultValue: Hello
"""


# A second template, in JSON (flowserv reads both; the embedded service needs no PyYAML
# for it): parameters of every supported type, defaults, ranges, a select, a file target,
# explicit and implied index and isRequired, and instructions from a file.
PARAMS_MANIFEST = {
    "name": "Parameters",
    "description": "A template with parameters of every kind",
    "instructions": "instructions.md",
    "specfile": "benchmark.json",
}
PARAMS_DECLARATIONS: list[dict[str, object]] = [
    {"name": "names", "label": "Input file", "dtype": "file", "target": "data/names.txt"},
    {"name": "sleeptime", "label": "Sleep period", "dtype": "int", "defaultValue": 10, "range": "[0, 100]",
     "help": "Seconds to wait"},
    {"name": "greeting", "dtype": "select", "index": 5, "values": [
        {"name": "Hi", "value": "hi", "isDefault": True}, {"name": "Hello", "value": "hello"}]},
    {"name": "verbose", "dtype": "bool", "defaultValue": False},
    {"name": "ratio", "label": "Ratio", "dtype": "float", "range": "(,1]", "defaultValue": 0.5,
     "isRequired": True},
]  # fmt: skip
PARAMS_SPEC = {
    "workflow": {
        "version": "0.3.0",
        "inputs": {"files": ["$[[names]]"], "parameters": {"greeting": "$[[greeting]]"}},
        "workflow": {"type": "serial", "specification": {"steps": [
            {"environment": "python:3.9", "commands": ["echo $[[greeting]] $[[sleeptime]] $[[ratio]]"]},
        ]}},
        "outputs": {"files": []},
    },
    "parameters": PARAMS_DECLARATIONS,
}  # fmt: skip


def write_params_template(folder: Path) -> Path:
    """The parameters template as a folder ``flowserv workflows create`` (and the embedded
    ``install_template``) reads."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "flowserv.json").write_text(json.dumps(PARAMS_MANIFEST))
    (folder / "benchmark.json").write_text(json.dumps(PARAMS_SPEC))
    (folder / "instructions.md").write_text("Pick a file and a greeting.\n")
    return folder


class RobFlaskUnavailable(RuntimeError):
    """The virtualenv could not be built or the server did not start."""


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "aioplatform"


def venv_dir() -> Path:
    digest = hashlib.sha256("\n".join((sys.version.split()[0], *PINS)).encode()).hexdigest()[:12]
    return _cache_root() / f"robflask-venv-{digest}"


def ensure_venv() -> Path:
    """The cached virtualenv with rob-flask installed (built under a file lock if missing)."""
    target = venv_dir()
    done = target / ".complete"
    if done.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / (target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return target
        # Built in place; only the marker written last makes it count as complete.
        shutil.rmtree(target, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", str(target)],
            [str(target / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             *PINS],
        ]  # fmt: skip
        for cmd in steps:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                shutil.rmtree(target, ignore_errors=True)
                raise RobFlaskUnavailable(
                    f"{' '.join(cmd[:4])} ... failed ({proc.returncode}): {proc.stderr[-2000:]}"
                )
        done.write_text("\n".join(PINS))
    return target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RobFlask:
    """One running rob-flask server (``url`` is the API root with a trailing slash)."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, env: dict[str, str], log: Path):
        self.proc = proc
        self.url = url
        self.env = env
        self.log = log
        self.workflow_id = WORKFLOW_ID

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def init_data(venv: Path, data: Path) -> dict[str, str]:
    """A fresh flowserv data folder and database with one workflow; returns the server env."""
    data.mkdir(parents=True, exist_ok=True)
    template = data / "template"
    template.mkdir(exist_ok=True)
    (template / "flowserv.yaml").write_text(_MANIFEST)
    (template / "benchmark.yaml").write_text(_SPEC)
    env = {
        **os.environ,
        "FLOWSERV_API_DIR": str(data / "api"),
        "FLOWSERV_DATABASE": f"sqlite:///{data / 'flowserv.db'}",
        "FLASK_APP": "robflask.api",
        "ROB_WEBAPI_LOG": str(data / "log"),
    }
    env.pop("FLASK_ENV", None)
    flowserv = str(venv / "bin" / "flowserv")
    create = [flowserv, "workflows", "create", "-k", WORKFLOW_ID, str(template)]
    params = write_params_template(data / "params-template")
    create_params = [flowserv, "workflows", "create", "-k", PARAMS_WORKFLOW_ID, str(params)]
    for cmd in ([flowserv, "init", "-f"], create, create_params):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RobFlaskUnavailable(f"{' '.join(cmd[1:3])} failed: {proc.stderr[-2000:]}")
    return env


def start_server(venv: Path, env: dict[str, str], log: Path, *, token_ttl: int | None = None) -> RobFlask:
    """``flask run`` on a free port; returns once ``GET /`` answers."""
    port = _free_port()
    env = dict(env)
    if token_ttl is not None:
        env["FLOWSERV_AUTH_TTL"] = str(token_ttl)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(venv / "bin" / "flask"), "run", "--host", "127.0.0.1", "--port", str(port), "--no-reload"],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}{API_PATH}/"
    server = RobFlask(proc, url, env, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RobFlaskUnavailable(f"flask run exited ({proc.returncode}): {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return server
        time.sleep(0.2)
    server.stop()
    raise RobFlaskUnavailable(f"rob-flask did not answer within 60 s: {log.read_text()[-2000:]}")


def under_ci() -> bool:
    """``CI`` set to true/1/yes (GitHub Actions, GitLab and most CIs set ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(reason: str) -> None:
    """Fail under CI (the interop tests must run there), skip elsewhere."""
    if under_ci():
        pytest.fail(f"rob-flask interop server unavailable under CI: {reason}", pytrace=False)
    pytest.skip(f"rob-flask interop server unavailable: {reason}")


@contextlib.contextmanager
def robflask_or_skip(data: Path, *, token_ttl: int | None = None) -> Iterator[RobFlask]:
    """A running server on fresh data (skips or fails as :func:`unavailable` says)."""
    try:
        venv = ensure_venv()
        env = init_data(venv, data)
        server = start_server(venv, env, data / "server.log", token_ttl=token_ttl)
    except (RobFlaskUnavailable, OSError, subprocess.SubprocessError) as exc:
        unavailable(str(exc))
        raise  # unreachable: unavailable() always raises
    try:
        yield server
    finally:
        server.stop()
