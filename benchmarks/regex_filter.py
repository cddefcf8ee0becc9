"""A regex filter over many long names must not stall the platform (issue 10; ``testing/regex.py``).

    python -m benchmarks.regex_filter            # 10,000 instances with 1 KB names
    python -m benchmarks.regex_filter --n 1000   # smaller

Fills saltant's executable task instances straight into the store, then lists them with
``name__regex=(b*)*c`` (seconds per name under Python's backtracking ``re``) while one
unrelated request (Astakos ``GET resources``) is sent 10 ms later; prints one JSON row:
the filter's wall time and how long the unrelated request waited. Targets: the filter
well under a second, the other request under 100 ms.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import time
import uuid
from typing import Annotated, Any

import aiohttp
import typer

from aioplatform.testing import LocalPlatform

PATTERN = "(b*)*c"


def _fill(platform: LocalPlatform, n: int, name_bytes: int) -> None:
    name = "b" * (name_bytes - 1) + "!"  # the worst case for a backtracking engine

    def insert(conn: sqlite3.Connection) -> None:
        now = time.time()
        conn.executemany(
            "INSERT INTO saltant_executabletaskinstances (uuid, name, state, user, task_queue, task_type,"
            " created_ts, arguments, outcome) VALUES (?, ?, 'successful', 'admin', 1, 1, ?, '{}', 'successful')",
            [(str(uuid.uuid4()), name, now) for _ in range(n)],
        )

    platform.store.run_sync(insert)


async def _once(platform: LocalPlatform) -> tuple[float, float, int]:
    listing = platform.saltant_url + "executabletaskinstances/"
    headers = {"Authorization": f"Token {platform.saltant_token}"}

    async def timed(url: str, **kwargs: Any) -> tuple[float, int]:
        started = time.perf_counter()
        async with session.get(url, **kwargs) as response:
            body = await response.json()
            count = body.get("count", 0) if isinstance(body, dict) else 0
            return time.perf_counter() - started, int(count)

    async with aiohttp.ClientSession() as session:
        filtered = asyncio.create_task(timed(listing, params={"name__regex": PATTERN}, headers=headers))
        await asyncio.sleep(0.01)
        other, _ = await timed(platform.astakos.account_url + "/resources")
        spent, count = await filtered
    return spent, other, count


def measure(n: int = 10_000, name_bytes: int = 1024, repeat: int = 3) -> dict[str, Any]:
    """One row: median filter seconds and median wait of the unrelated request (ms)."""
    with LocalPlatform.in_thread() as platform:
        _fill(platform, n, name_bytes)
        runs = [asyncio.run(_once(platform)) for _ in range(repeat)]
    if any(count != 0 for _, _, count in runs):
        raise RuntimeError("the filter matched names it must not match")
    return {
        "section": "regex",
        "case": f"name__regex={PATTERN} over {n} instances, {name_bytes} B names",
        "filter_s": statistics.median(r[0] for r in runs),
        "other_request_ms": statistics.median(r[1] for r in runs) * 1000,
    }


def main(
    n: Annotated[int, typer.Option(min=1, help="Task instances to fill.")] = 10_000,
    name_bytes: Annotated[int, typer.Option(min=2, help="Length of each name.")] = 1024,
) -> None:
    print(json.dumps(measure(n, name_bytes)))


if __name__ == "__main__":
    typer.run(main)
