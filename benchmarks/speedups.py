"""With and without the ``speedups`` extra, at the key cell: clone_many N=1000 at 20 ms, C=50.

Two platforms run side by side, ``aioplatform serve`` on asyncio's loop
(``AIOPLATFORM_UVLOOP=0``) and on uvloop, and each round clones a fresh set of instances
on each in turn:

* *default install*: the server on asyncio's loop, the client on ``asyncio.run`` reading
  bodies with ``json.loads``;
* *with speedups*: the server on uvloop (the CLI picks it when installed), the client on
  ``aioplatform._loop.run`` (uvloop) reading bodies with orjson.

Per round: the batch's wall time, the server's CPU per request (``/proc/<pid>/stat``: both
its threads, the loop and the store) and the client's CPU per request. The server target
(<= 200 µs per request) is judged on the rounds: met when every round meets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from aioplatform import _loop
from aioplatform.core import session as session_module

from . import rig
from .listing import server_cpu
from .servers import ServedPlatform, serve

TARGETS = {"server_cpu": "embedded server CPU per request <= 200 µs (clone_many N=1000, 20 ms, C=50)"}
SERVER_US = 200.0
LATENCY_MS = 20
CONCURRENCY = 50


@contextlib.contextmanager
def _json(fast: bool) -> Iterator[None]:
    """The client reads bodies with orjson (when installed) only if ``fast``."""
    kept = session_module._fast_loads
    if not fast:
        session_module._fast_loads = None
    try:
        yield
    finally:
        session_module._fast_loads = kept


def _round(
    platform: ServedPlatform, n: int, run: Callable[[Coroutine[Any, Any, int]], int], fast_json: bool
) -> dict[str, float]:
    from .run import make_instances, ours_batch

    uuids = asyncio.run(make_instances(platform, n))
    server, client, started = server_cpu(platform), time.process_time(), time.perf_counter()
    with _json(fast_json):
        failures = run(ours_batch(platform, "clone", uuids, CONCURRENCY))
    wall = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{failures} clones failed")
    return {
        "wall_s": wall,
        "server_us": (server_cpu(platform) - server) / n * 1e6,
        "client_us": (time.process_time() - client) / n * 1e6,
    }


def speedups_section(quick: bool, rows: list[dict[str, Any]]) -> None:
    n, rounds = (200, 2) if quick else (1000, 7)
    have_uvloop = _loop.uvloop_module() is not None
    have_orjson = session_module._fast_loads is not None
    case = f"clone_many N={n} latency={LATENCY_MS}ms C={CONCURRENCY}"
    variants: list[tuple[str, bool, Callable[[Coroutine[Any, Any, int]], int], bool]] = [
        ("default install", False, asyncio.run, False)
    ]
    if have_uvloop or have_orjson:
        variants.append(("with speedups", True, _loop.run, True))
    samples: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in variants}
    with contextlib.ExitStack() as stack:
        platforms = {
            name: stack.enter_context(serve(latency_ms=LATENCY_MS, uvloop=uv and have_uvloop))
            for name, uv, _, _ in variants
        }
        for _ in range(rounds):
            for name, _, run, fast_json in variants:
                samples[name].append(_round(platforms[name], n, run, fast_json and have_orjson))
    for name, uv, _, fast_json in variants:
        got = samples[name]
        server = [s["server_us"] for s in got]
        rows.append({
            "section": "speedups", "case": case, "variant": name, "rounds": rounds,
            "server_loop": "uvloop" if uv and have_uvloop else "asyncio",
            "client_loop": "uvloop" if uv and have_uvloop else "asyncio",
            "client_json": "orjson" if fast_json and have_orjson else "json",
            "wall_s": statistics.median(s["wall_s"] for s in got),
            "server_us_per_request": statistics.median(server), "server_us_rounds": server,
            "client_us_per_request": statistics.median(s["client_us"] for s in got),
            "verdict_server": rig.verdict([v / SERVER_US for v in server], 1.0),
        })  # fmt: skip
        print(f"  {case} {name}: server {statistics.median(server):.0f} µs/request", flush=True)
    if len(variants) == 1:
        rows[-1]["speedups_skipped"] = "neither uvloop nor orjson is installed (pip install -e '.[speedups]')"


def speedups_target_status(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """The server target, judged on the default install; the speedups row is reported beside it."""
    found = {r["variant"]: r for r in rows if r["section"] == "speedups"}
    default = found.get("default install")
    if default is None:
        return []
    rounds = default["server_us_rounds"]
    figure = f"{default['server_us_per_request']:.0f} µs (rounds {min(rounds):.0f}-{max(rounds):.0f})"
    fast = found.get("with speedups")
    if fast is not None:
        spread = fast["server_us_rounds"]
        figure += (
            f"; with speedups ({fast['server_loop']}) {fast['server_us_per_request']:.0f} µs "
            f"(rounds {min(spread):.0f}-{max(spread):.0f}): {fast['verdict_server']}"
        )
    return [(TARGETS["server_cpu"], figure, default["verdict_server"])]


def speedups_markdown(rows: list[dict[str, Any]]) -> list[str]:
    found = [r for r in rows if r["section"] == "speedups"]
    if not found:
        return []
    out = [
        "",
        f"## With and without the speedups extra ({found[0]['case']}, medians of {found[0]['rounds']} rounds)",
        "",
        "| variant | server loop | client loop / JSON | wall | server CPU per request (rounds) | "
        "client CPU per request | server target <= 200 µs |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in found:
        rounds = r["server_us_rounds"]
        out.append(
            f"| {r['variant']} | {r['server_loop']} | {r['client_loop']} / {r['client_json']} | "
            f"{r['wall_s']:.3f} s | {r['server_us_per_request']:.0f} µs ({min(rounds):.0f}-{max(rounds):.0f}) | "
            f"{r['client_us_per_request']:.0f} µs | {r['verdict_server']} |"
        )
    skipped = [r["speedups_skipped"] for r in found if r.get("speedups_skipped")]
    return out + [f"\nwith speedups: not measured, {why}" for why in skipped]
