"""The embedded platform's shell: lifecycle, SQLite store, fault injection, counters, serve."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from aioplatform.testing import FaultRule, LocalPlatform


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, await r.text()


async def test_the_platform_listens_on_a_free_loopback_port_and_describes_its_services() -> None:
    async with LocalPlatform() as platform:
        assert platform.url.startswith("http://127.0.0.1:")
        status, body = await get(platform.url + "/")
        assert status == 200
        described = json.loads(body)
        assert described["stats"] == {"requests": 1, "connections": 1, "faults": {}}
        services = described["services"]
        assert set(services) == {"saltant", "astakos", "flowserv", "agave"}
        assert services["saltant"] == platform.url + "/saltant/api/"
        assert services["agave"] == platform.url + "/agave/"
    with pytest.raises(aiohttp.ClientConnectionError):
        await get(platform.url + "/")


async def test_a_file_database_survives_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "p.sqlite3")
    async with LocalPlatform(db) as platform:
        await platform.store.run(lambda c: c.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT, v TEXT)"))
        await platform.store.run(lambda c: c.execute("INSERT INTO kv VALUES ('a', 'b')"))
    async with LocalPlatform(db) as platform:
        rows = await platform.store.run(lambda c: c.execute("SELECT k, v FROM kv").fetchall())
        assert [tuple(r) for r in rows] == [("a", "b")]


async def test_the_same_platform_can_be_stopped_and_started_again(tmp_path: Path) -> None:
    platform = LocalPlatform(str(tmp_path / "p.sqlite3"))
    async with platform:
        await platform.store.run(lambda c: c.execute("CREATE TABLE kv (k TEXT)"))
        await platform.store.run(lambda c: c.execute("INSERT INTO kv VALUES ('kept')"))
    with pytest.raises(RuntimeError, match="not open"):
        await platform.store.run(lambda c: None)
    async with platform:
        assert (await get(platform.url + "/"))[0] == 200
        rows = await platform.store.run(lambda c: c.execute("SELECT k FROM kv").fetchall())
        assert [r[0] for r in rows] == ["kept"]


async def test_a_store_transaction_is_all_or_nothing() -> None:
    async with LocalPlatform() as platform:
        await platform.store.run(lambda c: c.execute("CREATE TABLE t (x INTEGER)"))

        def half_then_fail(c):  # type: ignore[no-untyped-def]
            c.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await platform.store.run(half_then_fail)
        assert await platform.store.run(lambda c: c.execute("SELECT COUNT(*) FROM t").fetchone()[0]) == 0


async def fault_sequence(seed: int) -> list[int]:
    rule = FaultRule(rate_429=0.2, rate_503=0.2, rate_500=0.1, retry_after=0.01)
    async with LocalPlatform(faults=rule, seed=seed) as platform, aiohttp.ClientSession() as s:
        statuses = []
        for _ in range(40):
            async with s.get(platform.url + "/") as r:
                statuses.append(r.status)
        return statuses


async def test_faults_are_seeded_and_repeatable() -> None:
    first, again, other = await fault_sequence(1), await fault_sequence(1), await fault_sequence(2)
    assert first == again
    assert first != other
    assert {429, 503, 500, 200} <= set(first)


@pytest.mark.parametrize("status", [429, 503])
async def test_injected_429_and_503_carry_retry_after(status: int) -> None:
    rule = FaultRule(**{f"rate_{status}": 1.0}, retry_after=7)  # type: ignore[arg-type]
    async with LocalPlatform(faults=rule) as platform:
        async with aiohttp.ClientSession() as s, s.get(platform.url + "/") as r:
            assert r.status == status and r.headers["Retry-After"] == "7"
        assert platform.faults.injected[str(status)] == 1


async def test_retry_after_can_be_an_http_date_and_500s_carry_none() -> None:
    when = "Wed, 21 Oct 2037 07:28:00 GMT"
    faults = [
        FaultRule(match="GET /a", rate_429=1.0, retry_after=when),
        FaultRule(match="GET /b", rate_500=1.0),
    ]
    async with LocalPlatform(faults=faults) as platform, aiohttp.ClientSession() as s:
        async with s.get(platform.url + "/a") as r:
            assert r.status == 429 and r.headers["Retry-After"] == when
        async with s.get(platform.url + "/b") as r:
            assert r.status == 500 and "Retry-After" not in r.headers


async def test_rules_apply_only_to_matching_routes() -> None:
    rule = FaultRule(match="POST /saltant/*", rate_503=1.0)
    async with LocalPlatform(faults=rule) as platform, aiohttp.ClientSession() as s:
        async with s.get(platform.url + "/") as r:
            assert r.status == 200
        async with s.post(platform.url + "/saltant/api/x") as r:
            assert r.status == 503
        assert platform.faults.count("503", "POST /saltant/*") == 1
        assert platform.faults.count("503", "GET *") == 0
        assert platform.faults.count() == 1


async def test_dropped_connections_end_without_an_answer() -> None:
    # Whether the handler ran (after) or not (before) is pinned in tests/core/test_retry.py,
    # where a scripted server with the same middleware counts its handlers.
    async with LocalPlatform() as platform, aiohttp.ClientSession() as s:
        s._retry_connection = False  # aiohttp would otherwise re-send the GET by itself
        platform.faults.script("GET /", ["drop_before", "drop_after"])
        for _ in range(2):
            with pytest.raises(aiohttp.ServerDisconnectedError):
                async with s.get(platform.url + "/") as r:
                    await r.read()
        assert platform.stats.count("GET", "/") == 2
        assert platform.faults.injected == {"drop_before": 1, "drop_after": 1}


async def test_latency_is_added_to_every_request() -> None:
    async with LocalPlatform(latency=0.1) as platform:
        started = time.monotonic()
        await get(platform.url + "/")
        assert time.monotonic() - started >= 0.1


async def test_a_rule_adds_latency_only_to_its_routes() -> None:
    async with LocalPlatform(faults=FaultRule(match="GET /slow*", latency=0.3)) as platform:
        started = time.monotonic()
        await get(platform.url + "/slow/x")
        assert time.monotonic() - started >= 0.3
        started = time.monotonic()
        await get(platform.url + "/")
        assert time.monotonic() - started < 0.3


async def test_a_script_forces_exact_outcomes_then_normal_answers() -> None:
    async with LocalPlatform() as platform, aiohttp.ClientSession() as s:
        platform.faults.script("GET /", [503, "ok", 500])
        statuses = []
        for _ in range(4):
            async with s.get(platform.url + "/") as r:
                statuses.append(r.status)
                assert "Retry-After" not in r.headers  # scripts leave the backoff to the client
        assert statuses == [503, 200, 500, 200]
        with pytest.raises(ValueError, match="unknown fault"):
            platform.faults.script("GET /", ["explode"])


async def test_stats_count_requests_routes_and_connections() -> None:
    async with LocalPlatform() as platform:
        async with aiohttp.ClientSession() as s:
            for _ in range(3):
                async with s.get(platform.url + "/") as r:
                    await r.read()
        async with aiohttp.ClientSession() as s, s.get(platform.url + "/saltant/api/zz") as r:
            await r.read()
        assert platform.stats.requests == 4
        assert platform.stats.connections == 2
        assert platform.stats.count("GET", "/saltant/*") == 1
        assert platform.stats.count() == 4


def test_the_platform_runs_on_its_own_thread_for_blocking_clients() -> None:
    with LocalPlatform.in_thread() as platform:
        with urllib.request.urlopen(platform.url + "/") as r:
            assert json.load(r)["platform"] == "aioplatform"
        assert platform.stats.requests == 1


@pytest.mark.local_platform(latency=0.01, seed=5)
def test_the_pytest_fixture_takes_its_arguments_from_the_marker(local_platform: LocalPlatform) -> None:
    assert local_platform.faults.latency == 0.01 and local_platform.seed == 5
    with urllib.request.urlopen(local_platform.url + "/") as r:
        assert r.status == 200


@pytest.mark.local_platform(faults=FaultRule(match="GET /x", rate_503=1.0))
async def test_the_pytest_fixture_serves_async_tests_too(local_platform: LocalPlatform) -> None:
    from aioplatform import RetryPolicy, ServerError, Session

    async with Session(retry=RetryPolicy.none()) as session:
        assert (await session.request("GET", local_platform.url + "/")).status == 200
        with pytest.raises(ServerError):
            await session.request("GET", local_platform.url + "/x")
    assert local_platform.stats.requests == 2
    assert local_platform.faults.count("503") == 1


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="latency"):
        LocalPlatform(latency=-1)
    with pytest.raises(ValueError, match="port"):
        LocalPlatform(port=70000)
    with pytest.raises(ValueError, match="rate_503"):
        FaultRule(rate_503=2)


def test_serve_runs_the_platform_from_the_shell_until_interrupted(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aioplatform.cli", "serve", "--port", str(port),
         "--db", str(tmp_path / "s.sqlite3"), "--credentials-file", str(tmp_path / "creds.json")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in first, first
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as r:
            assert r.status == 200
        creds = tmp_path / "creds.json"
        assert creds.stat().st_mode & 0o777 == 0o600
        assert json.loads(creds.read_text())["saltant_url"] == f"http://127.0.0.1:{port}/saltant/api/"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, out
        assert "stopping: 1 requests" in out
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_applies_latency_and_fault_rate(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aioplatform.cli", "serve", "--port", str(port), "--latency-ms", "200",
         "--fault-rate", "1", "--seed", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert f"127.0.0.1:{port}" in proc.stdout.readline()
        outcomes: list[int | str] = []
        for _ in range(8):
            started = time.monotonic()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
                    outcomes.append(r.status)
            except urllib.error.HTTPError as exc:
                outcomes.append(exc.code)
                assert exc.headers["Retry-After"]  # every injected 429/503 says when to come back
            except (urllib.error.URLError, ConnectionError, http.client.HTTPException):
                outcomes.append("dropped")
            assert time.monotonic() - started >= 0.2
        assert 200 not in outcomes  # --fault-rate 1: every request is faulted
        assert set(outcomes) <= {429, 503, "dropped"} and {429, 503} <= set(outcomes)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_asyncio_is_not_left_with_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_request_counts_per_path_stay_bounded_and_totals_exact() -> None:
    from aioplatform.testing import platform as platform_module

    stats = platform_module.PlatformStats()
    kept = platform_module.ROUTES_KEPT
    for i in range(kept + 500):  # a long-lived platform: every clone is a new path
        stats.record("POST", f"/saltant/api/containertaskinstances/{i}/clone/")
    stats.record("POST", "/saltant/api/containertaskinstances/0/clone/")  # a path already counted
    assert len(stats.by_route) == kept + 1  # the kept paths and one overflow key
    assert stats.by_route[("POST", platform_module.OTHER_PATHS)] == 500
    assert stats.count("POST", "/saltant/api/containertaskinstances/0/clone/") == 2
    assert stats.count("POST") == stats.requests == kept + 501
