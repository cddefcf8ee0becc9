"""``aioplatform agave meta create-many`` in a real process against the embedded platform:
one JSON line per record in input order, exit codes (0 all ok, 1 any failed, 2 usage
error before any request), and the store afterwards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aioplatform.testing import LocalPlatform

from .conftest import run
from .test_agave_commands import agave_platform, env, home, write_jsonl  # noqa: F401 (fixtures)


def meta_rows(platform: LocalPlatform) -> list[tuple[str, str, Any]]:
    def read(conn: Any) -> list[tuple[str, str, Any]]:
        rows = conn.execute("SELECT uuid, name, value FROM agave_meta_data ORDER BY seq")
        return [(str(r[0]), str(r[1]), json.loads(r[2])) for r in rows]

    rows: list[tuple[str, str, Any]] = platform.store.run_sync(read)
    return rows


def test_create_many_creates_each_line_and_reports_one_record_per_line_in_order(
    agave_platform: LocalPlatform,  # noqa: F811
    env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    lines = [
        {"name": "m-a", "value": {"depth": 1}},
        {"name": "m-bad", "value": 2, "schemaId": "no-such-schema-013"},
        "",
        {"name": "m-b", "value": ["x", "y"], "associationIds": "job-1"},
    ]
    out = run(
        ["agave", "meta", "create-many", str(write_jsonl(tmp_path / "m.jsonl", lines)), "--json"], env=env
    )
    assert out.code == 1, out
    records = out.records
    assert [(r["input"], r["ok"]) for r in records] == [(1, True), (2, False), (3, True)]
    assert records[1]["status"] == 400 and records[1]["error"] == "BadRequest"
    assert meta_rows(agave_platform) == [
        (records[0]["uuid"], "m-a", {"depth": 1}),
        (records[2]["uuid"], "m-b", ["x", "y"]),
    ]
    assert "create: 2 ok, 1 failed" in out.stderr


def test_create_many_reads_stdin_with_reconcile_and_exits_0(
    agave_platform: LocalPlatform,  # noqa: F811
    env: dict[str, str],  # noqa: F811
) -> None:
    stdin = "\n".join(json.dumps({"name": f"s-{i}", "value": i}) for i in range(5))
    out = run(["agave", "meta", "create-many", "-", "--json", "--reconcile"], env=env, stdin=stdin)
    assert out.code == 0, out
    assert [r["name"] for r in out.records] == [f"s-{i}" for i in range(5)]
    assert [name for _, name, _ in meta_rows(agave_platform)] == [f"s-{i}" for i in range(5)]


def test_create_many_refuses_a_bad_line_before_any_request(
    agave_platform: LocalPlatform,  # noqa: F811
    env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    for lines, message in (
        ([{"name": "fine", "value": 1}, "{not json"], "line 2 is not JSON"),
        ([{"name": "fine", "value": 1}, {"name": "no value"}], "record 2 needs a 'name'"),
    ):
        out = run(["agave", "meta", "create-many", str(write_jsonl(tmp_path / "m.jsonl", lines))], env=env)
        assert out.code == 2, out
        assert message in out.text
    assert agave_platform.stats.count(None, "/agave/*") == 0
    assert meta_rows(agave_platform) == []
