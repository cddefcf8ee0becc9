"""Drive the real astakosclient 0.19 (Python 2 only) from Python 3 tests.

:func:`python27` finds an interpreter that really runs (pyenv shims for 2.7 may exist
without one), :func:`install_astakosclient` pip-installs astakosclient 0.19 (and objpool)
once into a cache folder outside the repo, and :class:`Astakos27` runs :data:`SCRIPT` in
a Python 2.7 subprocess: a line-oriented RPC where every line on stdin names a client
(by token name) and an ``AstakosClient`` method, and every line on stdout is its JSON
result or the astakosclient exception it raised. The library is only imported and
called, never patched.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, TypeVar

K = TypeVar("K", bound=tuple[str, ...])

ASTAKOSCLIENT = "astakosclient==0.19"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aioplatform"
SITE = CACHE / "astakosclient-0.19-py27"

# Python 2.7 source. Arguments arrive as JSON; strings are turned into UTF-8 byte strings
# (what Python 2 callers pass) and {"__tuple_keys__": [[[k1, k2...], v], ...]} into the
# tuple-keyed dicts the commission helpers take.
SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import astakosclient
from astakosclient import AstakosClient
from astakosclient.errors import AstakosClientException


def native(value):
    if isinstance(value, unicode):
        return value.encode("utf-8")
    if isinstance(value, list):
        return [native(v) for v in value]
    if isinstance(value, dict):
        if value.keys() == ["__tuple_keys__"]:
            return dict((tuple(native(k)), native(v)) for k, v in value["__tuple_keys__"])
        return dict((native(k), native(v)) for k, v in value.items())
    return value


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


config = json.loads(sys.stdin.readline())
clients = {}
reply({"ready": astakosclient.__file__})
for line in iter(sys.stdin.readline, ""):
    call = native(json.loads(line))
    who = call["client"]
    try:
        if who not in clients:
            clients[who] = AstakosClient(config["tokens"][who], config["auth_url"],
                                         use_pool=who in config.get("pooled", []))
        target = getattr(clients[who], call["method"])
        result = target(*call["args"], **call["kwargs"]) if callable(target) else target
        reply({"result": result})
    except AstakosClientException as err:
        reply({"error": {"type": type(err).__name__, "status": err.status, "message": err.message,
                         "details": err.details, "response": err.response}})
"""


class Astakos27Error(Exception):
    """An astakosclient exception, as raised inside the Python 2 process."""

    def __init__(self, type: str, status: int, message: str, details: str, response: Any):
        super().__init__(f"{type} {status}: {message} {details}".strip())
        self.type, self.status, self.message, self.details, self.response = (
            type, status, message, details, response,
        )  # fmt: skip


def tuple_keys(mapping: dict[K, int]) -> dict[str, Any]:
    """A tuple-keyed dict (astakosclient's provisions) in the form :data:`SCRIPT` rebuilds."""
    return {"__tuple_keys__": [[list(k), v] for k, v in mapping.items()]}


def python27() -> tuple[str | None, str]:
    """A Python 2.7 interpreter that really runs, or why none was found."""
    candidates = [os.environ.get("AIOPLATFORM_PYTHON27", "")]
    candidates += [shutil.which(name) or "" for name in ("python2.7", "python2")]
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/2.7*/bin/python"), reverse=True)
    for candidate in filter(None, candidates):
        try:
            done = subprocess.run(
                [candidate, "-E", "-s", "-c", "import sys; print(sys.version_info[:2] == (2, 7))"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip() == "True":
            return candidate, ""
    why = "no Python 2.7 interpreter found (astakosclient 0.19 is Python 2 only; set AIOPLATFORM_PYTHON27)"
    return None, why


def install_astakosclient(python: str) -> tuple[Path | None, str]:
    """astakosclient 0.19 + objpool in :data:`SITE`, built in a temporary folder and renamed into place."""
    if (SITE / "astakosclient" / "__init__.py").exists():
        return SITE, ""
    SITE.parent.mkdir(parents=True, exist_ok=True)
    tmp = SITE.with_name(f".{SITE.name}.{os.getpid()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        done = subprocess.run(
            [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-cache-dir",
             "--target", str(tmp), ASTAKOSCLIENT],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        return None, f"pip could not install {ASTAKOSCLIENT} for Python 2.7: {exc}"
    if done.returncode != 0 or not (tmp / "astakosclient" / "__init__.py").exists():
        shutil.rmtree(tmp, ignore_errors=True)
        return None, f"pip could not install {ASTAKOSCLIENT} for Python 2.7: {done.stderr.strip()[-300:]}"
    try:
        tmp.rename(SITE)  # atomic; fails if a concurrent run got there first
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (SITE / "astakosclient" / "__init__.py").exists():
            raise
    return SITE, ""


class Astakos27:
    """One Python 2.7 process holding ``AstakosClient`` objects, one per named token.

    >>> async with Astakos27(python, site, auth_url, {"user": token}) as py2:
    ...     access = await py2.call("user", "authenticate")
    """

    def __init__(
        self, python: str, site: Path, auth_url: str, tokens: dict[str, str], *, pooled: tuple[str, ...] = ()
    ):
        self._argv = [python, "-E", "-s", "-c", SCRIPT, str(site)]
        self._config = {"auth_url": auth_url, "tokens": tokens, "pooled": list(pooled)}
        self._proc: asyncio.subprocess.Process | None = None
        self.loaded_from = ""

    async def __aenter__(self) -> Astakos27:
        self._proc = await asyncio.create_subprocess_exec(
            *self._argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self.loaded_from = (await self._send(self._config))["ready"]
        return self

    async def __aexit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()

    async def _send(self, message: dict[str, Any]) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps(message) + "\n").encode())
        await proc.stdin.drain()
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if not line:
            assert proc.stderr is not None
            err = (await proc.stderr.read()).decode(errors="replace")
            raise RuntimeError(f"the Python 2.7 astakosclient process died:\n{err[-3000:]}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def call(self, client: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """``AstakosClient(tokens[client], auth_url).<method>(*args, **kwargs)`` in Python 2.7.

        A property (``account_url``) is read instead of called. An astakosclient exception
        is raised here as :class:`Astakos27Error`.
        """
        answer = await self._send({"client": client, "method": method, "args": args, "kwargs": kwargs})
        if "error" in answer:
            raise Astakos27Error(**answer["error"])
        return answer["result"]
