"""``aioplatform agave actors send-many`` in a real process against the embedded platform:
one JSON line per message in input order, ``--wait``, ``--env``, exit codes (0 all ok,
1 any failed, 2 usage error before any request) and the store afterwards."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from aioplatform.agave import AgaveClient
from aioplatform.testing import LocalPlatform

from .conftest import run
from .test_agave_commands import agave_env


@pytest.fixture
def env(local_platform: LocalPlatform, tmp_path: Path) -> dict[str, str]:
    local_platform.agave.actor_step_seconds = 0.01
    home = tmp_path / "home"
    home.mkdir()
    service = local_platform.agave
    return agave_env(home, AGAVE_BASE_URL=local_platform.agave_url, AGAVE_TOKEN=service.access_token)


def add_actor(platform: LocalPlatform) -> str:
    async def add() -> str:
        async with AgaveClient(platform.agave_url, token=platform.agave.access_token) as agave:
            return (await agave.actors.add({"image": "abacosamples/wc"})).id

    return asyncio.run(add())


def stored(platform: LocalPlatform, actor_id: str) -> dict[str, tuple[Any, dict[str, str]]]:
    def read(conn: Any) -> dict[str, tuple[Any, dict[str, str]]]:
        rows = conn.execute(
            "SELECT id, message, environment FROM agave_actors_executions WHERE actor_id = ?", (actor_id,)
        ).fetchall()
        return {r[0]: (json.loads(r[1]), json.loads(r[2])) for r in rows}

    found: dict[str, tuple[Any, dict[str, str]]] = platform.store.run_sync(read)
    return found


def test_send_many_sends_each_line_waits_and_reports_one_record_per_line(
    local_platform: LocalPlatform, env: dict[str, str], tmp_path: Path
) -> None:
    actor_id = add_actor(local_platform)
    messages = tmp_path / "messages.jsonl"
    messages.write_text('"first"\n\n{"n": 2}\n[3]\n')
    out = run(
        ["agave", "actors", "send-many", actor_id, str(messages), "--json", "--wait", "--env", "RUN=cli"],
        env=env,
    )
    assert out.code == 0, out
    records = out.records
    assert [(r["input"], r["ok"], r["status"]) for r in records] == [(i, True, "COMPLETE") for i in (1, 2, 3)]
    executions = stored(local_platform, actor_id)
    assert [executions[r["execution_id"]] for r in records] == [
        ("first", {"RUN": "cli"}), ({"n": 2}, {"RUN": "cli"}), ([3], {"RUN": "cli"}),
    ]  # fmt: skip
    assert "send: 3 ok, 0 failed" in out.stderr


def test_send_many_text_lines_to_an_unknown_actor_fail_each_with_exit_1(
    local_platform: LocalPlatform, env: dict[str, str]
) -> None:
    out = run(
        ["agave", "actors", "send-many", "NoSuchActor12", "-", "--text", "--json"],
        env=env,
        stdin="a b\nnot json\n",
    )
    assert out.code == 1, out
    assert [(r["input"], r["ok"], r["error"], r["status"]) for r in out.records] == [
        (1, False, "NotFound", 404), (2, False, "NotFound", 404),
    ]  # fmt: skip
    assert "send: 0 ok, 2 failed" in out.stderr


def test_send_many_refuses_bad_input_before_any_request(
    local_platform: LocalPlatform, env: dict[str, str], tmp_path: Path
) -> None:
    actor_id = add_actor(local_platform)
    before = local_platform.stats.count(None, "/agave/*")
    messages = tmp_path / "messages.jsonl"
    messages.write_text('"fine"\nnot json\n')
    out = run(["agave", "actors", "send-many", actor_id, str(messages)], env=env)
    assert out.code == 2, out
    assert "line 2 is not JSON" in out.text
    bad_env = run(
        ["agave", "actors", "send-many", actor_id, "-", "--env", "NOEQUALS"], env=env, stdin='"x"\n'
    )
    assert bad_env.code == 2 and "KEY=VALUE" in bad_env.text
    assert local_platform.stats.count(None, "/agave/*") == before
    assert stored(local_platform, actor_id) == {}
