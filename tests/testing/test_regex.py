"""Regex filters run in linear time and never hold the store's thread (aioplatform/testing/regex.py)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from typing import Any

import aiohttp
import pytest

from aioplatform.testing import LocalPlatform
from aioplatform.testing.regex import BadPattern, RegexRefused, compile_pattern

EVIL = "(b*)*c"
VICTIM = "b" * 24 + "!"  # Python's re needs seconds for this, ~4x more per two characters


def test_a_pattern_that_backtracks_in_python_matches_in_linear_time() -> None:
    started = time.perf_counter()
    assert compile_pattern(EVIL).search(VICTIM * 40) is False
    assert compile_pattern(EVIL).search("bbbc") is True
    assert time.perf_counter() - started < 0.1
    assert compile_pattern("AB", ignore_case=True).search("xab") is True


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=a)b", "(?<!a)b", "x" * 1001])
def test_patterns_without_a_linear_time_engine_are_refused_with_the_reason(pattern: str) -> None:
    with pytest.raises(RegexRefused, match=r"linear time|longer than"):
        compile_pattern(pattern)


def test_a_pattern_no_engine_accepts_is_a_bad_pattern() -> None:
    with pytest.raises(BadPattern):
        compile_pattern("[")


def _insert(platform: LocalPlatform, names: list[str]) -> None:
    def insert(conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT INTO saltant_executabletaskinstances (uuid, name, state, user, task_queue,"
            " task_type, created_ts, arguments, outcome)"
            " VALUES (?, ?, 'successful', 'admin', 1, 1, ?, '{}', 'successful')",
            [(str(uuid.uuid4()), name, time.time()) for name in names],
        )

    platform.store.run_sync(insert)


async def _timed_get(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[float, int, Any]:
    started = time.perf_counter()
    async with session.get(url, headers=headers) as response:
        body = await response.json()
        return time.perf_counter() - started, response.status, body


def test_a_backtracking_filter_answers_fast_and_stalls_no_other_request(
    local_platform: LocalPlatform,
) -> None:
    _insert(local_platform, [VICTIM, "bbbc"])
    saltant = {"Authorization": f"Token {local_platform.saltant_token}"}
    listing = local_platform.saltant_url + "executabletaskinstances/"

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            filtered = asyncio.create_task(
                _timed_get(session, listing + "?name__regex=" + EVIL.replace("*", "%2A"), saltant)
            )
            await asyncio.sleep(0.01)  # the filter is on the store's thread (or done) by now
            other = await _timed_get(session, local_platform.astakos.account_url + "/resources", {})
            waited, status, body = await filtered
            assert status == 200 and [i["name"] for i in body["results"]] == ["bbbc"]
            assert waited < 1.0  # Python's re took ~4 s on this one name
            assert other[1] == 200 and other[0] < 0.5

    asyncio.run(scenario())


def test_a_pattern_the_platform_will_not_run_is_a_400_naming_the_reason(
    local_platform: LocalPlatform,
) -> None:
    _insert(local_platform, ["aa"])
    headers = {"Authorization": f"Token {local_platform.saltant_token}"}

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            url = local_platform.saltant_url + "executabletaskinstances/"
            async with session.get(url, params={"name__regex": r"(a)\1"}, headers=headers) as response:
                assert response.status == 400
                body = json.loads(await response.text())
                assert "linear time" in body["name__regex"][0]
            async with session.get(url, params={"name__regex": "["}, headers=headers) as response:
                assert response.status == 200 and (await response.json())["count"] == 0

    asyncio.run(scenario())


def test_the_benchmark_row_filters_many_long_names_without_holding_other_requests() -> None:
    from benchmarks.regex_filter import measure

    row = measure(n=2000, name_bytes=1024, repeat=1)
    assert row["filter_s"] < 1.0
    assert row["other_request_ms"] < 250  # ~25 ms measured at 10,000 names; loose for a busy CI
