"""Listing N task instances through the embedded platform, a fresh database per N.

Each cell starts ``aioplatform serve`` on a new SQLite file, creates one instance over
HTTP, then copies it to N rows in SQL from this process (finished instances: the
lifecycle has nothing to move), and walks the whole listing with the client's pager in
pages of 100. Reported per cell: the wall time, the mean time of the first and of the
last tenth of the pages (equal when each page costs the same however deep it is), the
server's CPU per page (from ``/proc``), and then the server's CPU per clone of 1,000
clones on that table (a clone must not slow down as the table grows).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aioplatform import Limits
from aioplatform.saltant import SaltantClient

from .servers import ServedPlatform, serve

__all__ = ["listing_section", "server_cpu"]

PAGE = 100
TABLE = "saltant_containertaskinstances"


def server_cpu(platform: ServedPlatform) -> float:
    """CPU seconds the platform's process has used so far (0 where /proc is missing)."""
    try:
        fields = Path(f"/proc/{platform.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fill(db: str, n: int) -> None:
    """Copy the one instance in ``db`` to ``n`` finished instances (new uuids, in order)."""
    conn = sqlite3.connect(db, timeout=30)
    with conn:
        conn.execute(
            f"""WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?)
            INSERT INTO {TABLE} (uuid, name, state, user, task_queue, task_type, created_ts, finished_ts,
                                 arguments, next_at, outcome, seq)
            SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2)
                         || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
                   t.name || '-' || k.i, 'successful', t.user, t.task_queue, t.task_type, t.created_ts - k.i,
                   t.created_ts - k.i + 1, t.arguments, NULL, 'successful', t.seq - k.i
            FROM k, (SELECT * FROM {TABLE} LIMIT 1) AS t""",
            (n - 1,),
        )
    conn.close()


async def walk(platform: ServedPlatform) -> tuple[int, list[float]]:
    """Every instance through the pager; the wall time of each page."""
    creds = platform.credentials
    times: list[float] = []
    count = 0
    async with SaltantClient(creds["saltant_url"], creds["saltant_token"]) as client:
        pager = client.container_task_instances.list(page_size=PAGE)
        started = time.perf_counter()
        async for page in pager.pages():
            now = time.perf_counter()
            times.append(now - started)
            count += len(page)
            started = time.perf_counter()
    return count, times


async def clones(platform: ServedPlatform, n: int) -> int:
    creds = platform.credentials
    async with SaltantClient(
        creds["saltant_url"], creds["saltant_token"], limits=Limits(max_connections=10)
    ) as client:
        newest = await client.container_task_instances.list(page_size=1).to_list(max_items=1)
        result = await client.container_task_instances.clone_many([newest[0].uuid] * n, concurrency=10)
        return len(result.errors)


def listing_section(quick: bool, rows: list[dict[str, Any]]) -> None:
    from .run import make_instances

    sizes = [2_000, 10_000] if quick else [10_000, 100_000, 500_000]
    clone_n = 100 if quick else 1000
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="aioplatform-listing-") as folder:
            db = str(Path(folder) / "platform.sqlite")
            with serve(db=db) as platform:  # a fresh database per cell
                asyncio.run(make_instances(platform, 1))
                time.sleep(1.0)  # the one instance finishes its simulated run
                with contextlib.suppress(Exception):
                    asyncio.run(walk_one(platform))  # the lifecycle sweeps before the copy
                fill(db, n)
                cpu = server_cpu(platform)
                wall = time.perf_counter()
                count, pages = asyncio.run(walk(platform))
                wall = time.perf_counter() - wall
                listing_cpu = server_cpu(platform) - cpu
                if count != n:
                    raise RuntimeError(f"listed {count} of {n}")
                tenth = max(1, len(pages) // 10)
                cpu = server_cpu(platform)
                failures = asyncio.run(clones(platform, clone_n))
                clone_cpu = server_cpu(platform) - cpu
            row: dict[str, Any] = {
                "section": "listing", "case": f"list {n} task instances, pages of {PAGE}", "items": n,
                "wall_s": wall, "pages": len(pages), "first_pages_ms": statistics.mean(pages[:tenth]) * 1e3,
                "last_pages_ms": statistics.mean(pages[-tenth:]) * 1e3,
                "server_cpu_per_page_ms": listing_cpu / len(pages) * 1e3,
                "clone_server_us": clone_cpu / clone_n * 1e6, "clone_failures": failures,
            }  # fmt: skip
            row["page_growth"] = row["last_pages_ms"] / row["first_pages_ms"]
            rows.append(row)
            print(f"  {row['case']}: {wall:.1f} s, first pages {row['first_pages_ms']:.1f} ms, last "
                  f"{row['last_pages_ms']:.1f} ms; clone {row['clone_server_us']:.0f} µs server CPU", flush=True)  # fmt: skip


async def walk_one(platform: ServedPlatform) -> None:
    creds = platform.credentials
    async with SaltantClient(creds["saltant_url"], creds["saltant_token"]) as client:
        await client.container_task_instances.list(page_size=1).to_list(max_items=1)


def listing_markdown(rows: list[dict[str, Any]]) -> list[str]:
    listing = [r for r in rows if r["section"] == "listing"]
    if not listing:
        return []
    out = ["", "## Listing through the embedded platform (a fresh database per size)", "",
           "| case | wall | pages | first tenth of pages | last tenth | server CPU per page | "
           "server CPU per clone on that table |",
           "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in listing:
        out.append(
            f"| {r['case']} | {r['wall_s']:.1f} s | {r['pages']} | {r['first_pages_ms']:.1f} ms | "
            f"{r['last_pages_ms']:.1f} ms ({r['page_growth']:.2f}x) | {r['server_cpu_per_page_ms']:.1f} ms | "
            f"{r['clone_server_us']:.0f} µs |"
        )
    return out


def listing_target_status(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    listing = [r for r in rows if r["section"] == "listing"]
    if len(listing) < 2:
        return []
    found = []
    worst = max(r["page_growth"] for r in listing)
    found.append((LISTING_TARGETS["pages"], f"last/first pages {worst:.2f}x at worst",
                  "met" if worst <= 1.5 else "missed"))  # fmt: skip
    small, large = listing[0], listing[-1]
    growth = large["clone_server_us"] / small["clone_server_us"]
    found.append((LISTING_TARGETS["clones"], f"{small['clone_server_us']:.0f} → {large['clone_server_us']:.0f} µs "
                  f"({growth:.2f}x, N={small['items']} → {large['items']})", "met" if growth <= 1.25 else "missed"))  # fmt: skip
    return found


LISTING_TARGETS = {
    "pages": "a listing's last pages cost what its first do (<= 1.5x)",
    "clones": "server CPU per clone on the largest table <= 1.25x the smallest",
}
