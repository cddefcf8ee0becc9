"""The Astakos batch: issue N commissions, then settle them with one resolve.

aioplatform (``issue_many`` + ``resolve_commissions``) vs raw aiohttp (a semaphore over
the same POSTs) vs astakosclient 0.19, the sync SDK. astakosclient is Python 2 only, so
its rows need a Python 2.7 interpreter: found on PATH, under pyenv, or named by
``AIOPLATFORM_PYTHON27``; it is installed once into a cache folder outside the repo
(the interop tests' harness, ``tests/astakos/astakosclient27.py``, does both). Without
one its rows are skipped with the reason in the report.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

from aioplatform import Limits
from aioplatform.astakos import AstakosClient, CommissionRequest

# The interop tests' harness finds the interpreter and installs astakosclient (cached).
from tests.astakos.astakosclient27 import install_astakosclient, python27

from .servers import ServedPlatform

__all__ = ["Setup", "install_astakosclient", "ours", "python27", "raw", "sync"]

# One byte of RAM per commission: the seeded system project allows 40 GiB, so repeated
# runs never hit the limit and every commission is accepted.
RESOURCE, QUANTITY = "cyclades.ram", 1

# Runs under Python 2.7 with astakosclient on sys.path; times itself, so interpreter
# start-up is not counted against it. (A string: the linters target Python 3.)
SYNC_SCRIPT = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from astakosclient import AstakosClient
cfg = json.loads(sys.stdin.read())
client = AstakosClient(cfg["service_token"], cfg["auth_url"])
client.get_endpoints()  # discovery before the clock, as for the other two
started = time.time()
serials = [client.issue_one_commission(cfg["user"], {(cfg["user"], cfg["resource"]): cfg["quantity"]},
                                       name="sync-" + str(i)) for i in range(cfg["n"])]
result = client.resolve_commissions(serials, [])
wall = time.time() - started
print(json.dumps({"wall": wall, "accepted": len(result["accepted"]), "failed": len(result["failed"])}))
"""


class Setup:
    """What every implementation needs: the served platform's Astakos credentials and user."""

    def __init__(self, platform: ServedPlatform, user: str, account_url: str):
        creds = platform.credentials
        self.auth_url, self.token = creds["astakos_auth_url"], creds["astakos_service_token"]
        self.user, self.account_url = user, account_url

    @classmethod
    async def discover(cls, platform: ServedPlatform) -> Setup:
        creds = platform.credentials
        async with AstakosClient(creds["astakos_user_token"], creds["astakos_auth_url"]) as client:
            user = (await client.authenticate()).user_id
            account_url = await client.account_url()
        return cls(platform, user, account_url)

    def provisions(self) -> list[dict[str, Any]]:
        """astakosclient's ``issue_one_commission`` shape: the user and the project holding."""
        return [
            {"holder": f"user:{self.user}", "source": f"project:{self.user}", "resource": RESOURCE,
             "quantity": QUANTITY},
            {"holder": f"project:{self.user}", "source": None, "resource": RESOURCE, "quantity": QUANTITY},
        ]  # fmt: skip


async def raw(setup: Setup, n: int, concurrency: int) -> tuple[float, int]:
    """The floor: aiohttp, a semaphore, the same JSON POSTs. Wall seconds and failures."""
    sem = asyncio.Semaphore(concurrency)
    provisions = setup.provisions()
    async with aiohttp.ClientSession(
        headers={"X-Auth-Token": setup.token}, connector=aiohttp.TCPConnector(limit=concurrency)
    ) as s:

        async def one(i: int) -> int | None:
            body = {"force": False, "auto_accept": False, "name": f"raw-{i}", "provisions": provisions}
            async with sem, s.post(setup.account_url + "commissions", json=body) as r:
                answer = await r.json()
                return int(answer["serial"]) if r.status == 201 else None

        started = time.perf_counter()
        serials = await asyncio.gather(*(one(i) for i in range(n)))
        issued = [s for s in serials if s is not None]
        async with s.post(
            setup.account_url + "commissions/action", json={"accept": issued, "reject": []}
        ) as r:
            resolved = await r.json()
        return time.perf_counter() - started, n - len(resolved["accepted"])


async def ours(setup: Setup, n: int, concurrency: int) -> tuple[float, int]:
    """``issue_many`` then one ``resolve_commissions``. Wall seconds and failures."""
    async with AstakosClient(
        setup.token, setup.auth_url, limits=Limits(max_connections=concurrency)
    ) as client:
        await client.account_url()  # discovery before the clock, as for the other two
        requests = [
            CommissionRequest.one(setup.user, setup.user, {RESOURCE: QUANTITY}, name=f"ours-{i}")
            for i in range(n)
        ]
        started = time.perf_counter()
        issued = await client.issue_many(requests, concurrency=concurrency)
        resolved = await client.resolve_commissions(issued.values, [])
        return time.perf_counter() - started, len(issued.errors) + len(resolved.failed)


def sync(setup: Setup, n: int, python: str, site: Path) -> float:
    """astakosclient's sequential issue + one resolve; its own wall time, in seconds."""
    cfg = {"service_token": setup.token, "auth_url": setup.auth_url, "user": setup.user,
           "resource": RESOURCE, "quantity": QUANTITY, "n": n}  # fmt: skip
    done = subprocess.run(
        [python, "-c", SYNC_SCRIPT, str(site)], input=json.dumps(cfg), capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"astakosclient failed: {done.stderr.strip()[-2000:]}")
    measured = json.loads(done.stdout)
    if measured["accepted"] != n:
        raise RuntimeError(f"astakosclient settled {measured['accepted']} of {n} commissions")
    return float(measured["wall"])
