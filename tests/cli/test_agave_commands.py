"""The Agave batch commands in a real process against the embedded platform: credentials
(options, AGAVE_* variables, agavepy's cache), JSON lines in input order, exit codes
(0 all ok, 1 any failed, 2 usage error before any request), and the store afterwards."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from aioplatform.agave import AgaveClient
from aioplatform.testing import LocalPlatform

from .conftest import run

STORAGE = "agave-storage"
# Variables the commands read: blanked so the machine's own never leak into a test.
AGAVE_VARIABLES = (
    "AGAVE_BASE_URL", "AGAVE_TENANT_BASEURL", "TAPIS_BASE_URL", "AGAVE_TOKEN", "AGAVE_ACCESS_TOKEN",
    "TAPIS_TOKEN", "AGAVE_REFRESH_TOKEN", "TAPIS_REFRESH_TOKEN", "AGAVE_CLIENT_KEY", "AGAVE_API_KEY",
    "TAPIS_API_KEY", "AGAVE_CLIENT_SECRET", "AGAVE_API_SECRET", "TAPIS_API_SECRET", "AGAVE_USERNAME",
    "TAPIS_USERNAME", "AGAVE_PASSWORD", "TAPIS_PASSWORD", "TAPIS_CACHE_DIR",
)  # fmt: skip


@pytest.fixture
def agave_platform(local_platform: LocalPlatform) -> LocalPlatform:
    local_platform.agave.job_step_seconds = 0.01  # a job finishes within ~0.2 s
    return local_platform


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def agave_env(home: Path, **values: str) -> dict[str, str]:
    env = {name: "" for name in AGAVE_VARIABLES}
    env.update(HOME=str(home), AGAVE_CACHE_DIR=str(home / ".agave"))
    env.update(values)
    return env


@pytest.fixture
def env(agave_platform: LocalPlatform, home: Path) -> dict[str, str]:
    service = agave_platform.agave
    return agave_env(
        home,
        AGAVE_BASE_URL=agave_platform.agave_url,
        AGAVE_TOKEN=service.access_token,
        AGAVE_REFRESH_TOKEN=service.refresh_token,
        AGAVE_CLIENT_KEY=service.client_key,
        AGAVE_CLIENT_SECRET=service.client_secret,
    )


def job_request(name: str, app_id: str = "wc-1.00") -> dict[str, Any]:
    return {"name": name, "appId": app_id, "parameters": {"printLongestLine": True}}


def job_rows(platform: LocalPlatform) -> list[tuple[str, str]]:
    def read(conn: Any) -> list[tuple[str, str]]:
        return [
            (str(r[0]), str(r[1])) for r in conn.execute("SELECT id, name FROM agave_jobs_jobs ORDER BY seq")
        ]

    rows: list[tuple[str, str]] = platform.store.run_sync(read)
    return rows


def submit_jobs(platform: LocalPlatform, names: list[str]) -> list[str]:
    async def submit() -> list[str]:
        service = platform.agave
        async with AgaveClient(platform.agave_url, token=service.access_token) as agave:
            return [(await agave.jobs.submit(job_request(n))).id for n in names]

    return asyncio.run(submit())


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


# -- jobs submit-many ------------------------------------------------------------------------------


def test_submit_many_submits_each_line_and_reports_one_record_per_line_in_order(
    agave_platform: LocalPlatform, env: dict[str, str], tmp_path: Path
) -> None:
    requests = write_jsonl(
        tmp_path / "jobs.jsonl",
        [job_request("cli-a"), job_request("cli-bad", app_id="no-such-app-1.0"), "", job_request("cli-b")],
    )
    out = run(["agave", "jobs", "submit-many", str(requests), "--json"], env=env)
    assert out.code == 1, out
    records = out.records
    assert [r["input"] for r in records] == [1, 2, 3]
    assert [r["ok"] for r in records] == [True, False, True]
    assert records[1]["status"] == 400 and records[1]["error"] == "BadRequest"
    assert [r["name"] for r in (records[0], records[2])] == ["cli-a", "cli-b"]
    # The store holds exactly the two accepted jobs, with the ids reported.
    assert job_rows(agave_platform) == [(records[0]["id"], "cli-a"), (records[2]["id"], "cli-b")]
    assert "submit: 2 ok, 1 failed" in out.stderr


def test_submit_many_refuses_a_line_that_is_not_json_before_any_request(
    agave_platform: LocalPlatform, env: dict[str, str], tmp_path: Path
) -> None:
    requests = write_jsonl(tmp_path / "jobs.jsonl", [job_request("fine"), "{not json"])
    out = run(["agave", "jobs", "submit-many", str(requests)], env=env)
    assert out.code == 2, out
    assert "line 2 is not JSON" in out.text
    assert agave_platform.stats.count(None, "/agave/*") == 0


def test_submit_many_reads_stdin(agave_platform: LocalPlatform, env: dict[str, str]) -> None:
    stdin = "\n".join(json.dumps(job_request(f"stdin-{i}")) for i in range(3))
    out = run(["agave", "jobs", "submit-many", "-", "--json", "--reconcile"], env=env, stdin=stdin)
    assert out.code == 0, out
    assert [r["name"] for r in out.records] == ["stdin-0", "stdin-1", "stdin-2"]
    assert len(job_rows(agave_platform)) == 3


# -- jobs wait / stop-many -------------------------------------------------------------------------


def test_wait_reports_each_job_finished_and_exits_0(
    agave_platform: LocalPlatform, env: dict[str, str]
) -> None:
    ids = submit_jobs(agave_platform, ["w-0", "w-1", "w-2"])
    out = run(["agave", "jobs", "wait", *ids, "--json", "--poll-interval", "0.05"], env=env)
    assert out.code == 0, out
    assert [(r["input"], r["ok"], r["status"]) for r in out.records] == [(i, True, "FINISHED") for i in ids]


def test_wait_with_an_unknown_id_and_a_timeout_exits_1_with_typed_records(
    agave_platform: LocalPlatform, env: dict[str, str], tmp_path: Path
) -> None:
    agave_platform.agave.job_step_seconds = 60.0  # never done within the timeout
    [slow] = submit_jobs(agave_platform, ["slow"])
    unknown = "0000000000000000000-e0bd34dffff8de6-0001-007"
    (tmp_path / "ids.txt").write_text(f"{slow}\n{unknown}\n")
    started = time.monotonic()
    out = run(
        ["agave", "jobs", "wait", "--from-file", str(tmp_path / "ids.txt"), "--json",
         "--timeout", "0.5", "--poll-interval", "0.05"],
        env=env,
    )  # fmt: skip
    assert out.code == 1, out
    assert time.monotonic() - started < 30
    timed_out, missing = out.records
    assert timed_out["input"] == slow and timed_out["error"] == "JobWaitTimeout"
    assert timed_out["job_status"] in ("PENDING", "PROCESSING_INPUTS")
    assert missing["input"] == unknown and missing["error"] == "NotFound" and missing["status"] == 404


def test_stop_many_stops_every_job_in_the_store(agave_platform: LocalPlatform, env: dict[str, str]) -> None:
    agave_platform.agave.job_step_seconds = 60.0
    ids = submit_jobs(agave_platform, ["s-0", "s-1"])
    out = run(["agave", "jobs", "stop-many", *ids, "--json"], env=env)
    assert out.code == 0, out
    assert [(r["input"], r["ok"]) for r in out.records] == [(i, True) for i in ids]

    def statuses(conn: Any) -> list[str]:
        return [
            str(conn.execute("SELECT status FROM agave_jobs_jobs WHERE id = ?", (i,)).fetchone()[0])
            for i in ids
        ]

    assert agave_platform.store.run_sync(statuses) == ["STOPPED", "STOPPED"]


# -- files upload-many / download-many ---------------------------------------------------------------


def test_upload_many_then_download_many_round_trips_the_bytes(
    agave_platform: LocalPlatform, env: dict[str, str], tmp_path: Path
) -> None:
    local = tmp_path / "up"
    local.mkdir()
    contents = {f"part-{i}.txt": f"line {i}\n".encode() * (i + 1) for i in range(3)}
    contents["notes.md"] = b"# notes\n"
    for name, data in contents.items():
        (local / name).write_bytes(data)

    async def mkdir() -> None:
        async with AgaveClient(agave_platform.agave_url, token=agave_platform.agave.access_token) as agave:
            await agave.files.mkdir(STORAGE, "cli-data")

    asyncio.run(mkdir())
    paths = [str(local / name) for name in contents]
    out = run(
        ["agave", "files", "upload-many", "cli-data", *paths, "--system-id", STORAGE, "--json"], env=env
    )
    assert out.code == 0, out
    assert [(r["input"], r["ok"]) for r in out.records] == [(p, True) for p in paths]

    def stored(conn: Any) -> list[str]:
        rows = conn.execute("SELECT path FROM agave_files_entries WHERE system_id = ? AND path LIKE ?",
                            (STORAGE, "%cli-data/%"))  # fmt: skip
        return sorted(str(r[0]).rsplit("/", 1)[-1] for r in rows)

    assert agave_platform.store.run_sync(stored) == sorted(contents)

    dest = tmp_path / "down"
    out = run(
        ["agave", "files", "download-many", "cli-data", str(dest), "--system-id", STORAGE,
         "--include", "*.txt", "--json"],
        env=env,
    )  # fmt: skip
    assert out.code == 0, out
    assert sorted(Path(r["path"]).name for r in out.records) == sorted(
        n for n in contents if n.endswith(".txt")
    )
    for name, data in contents.items():
        if name.endswith(".txt"):
            assert (dest / name).read_bytes() == data
    assert not (dest / "notes.md").exists()


def test_upload_many_of_a_missing_local_file_is_a_usage_error(
    agave_platform: LocalPlatform, env: dict[str, str], tmp_path: Path
) -> None:
    out = run(["agave", "files", "upload-many", "cli-data", str(tmp_path / "absent.txt")], env=env)
    assert out.code == 2, out
    assert "not a file" in out.text
    assert agave_platform.stats.count(None, "/agave/*") == 0


def test_download_many_of_a_missing_directory_exits_1_with_the_reason(
    agave_platform: LocalPlatform, env: dict[str, str], tmp_path: Path
) -> None:
    out = run(["agave", "files", "download-many", "no-such-dir", str(tmp_path / "d"), "--system-id", STORAGE],
              env=env)  # fmt: skip
    assert out.code == 1, out
    assert "NotFound" in out.text


# -- credentials -----------------------------------------------------------------------------------


def test_options_override_the_environment(agave_platform: LocalPlatform, home: Path) -> None:
    [job] = submit_jobs(agave_platform, ["opt"])
    env = agave_env(home, AGAVE_BASE_URL="http://127.0.0.1:1/nowhere", AGAVE_TOKEN="stale-token")
    out = run(
        ["agave", "jobs", "wait", job, "--json", "--poll-interval", "0.05",
         "--base-url", agave_platform.agave_url, "--token", agave_platform.agave.access_token],
        env=env,
    )  # fmt: skip
    assert out.code == 0, out
    assert out.records[0]["status"] == "FINISHED"


def test_the_agavepy_cache_is_used_and_refreshed_tokens_are_written_back(
    agave_platform: LocalPlatform, home: Path
) -> None:
    service = agave_platform.agave
    [job] = submit_jobs(agave_platform, ["cached"])
    access, refresh = asyncio.run(service.issue_token(lifetime=0))
    created = int(time.time()) - 20000
    cache = home / ".agave" / "current"
    cache.parent.mkdir()
    cache.write_text(json.dumps({
        "tenantid": "local", "baseurl": agave_platform.agave_url, "apikey": service.client_key,
        "apisecret": service.client_secret, "username": service.username, "access_token": access,
        "refresh_token": refresh, "created_at": str(created), "expires_in": "14400",
    }))  # fmt: skip
    out = run(["agave", "jobs", "wait", job, "--json", "--poll-interval", "0.05"], env=agave_env(home))
    assert out.code == 0, out
    written = json.loads(cache.read_text())
    assert written["access_token"] != access and written["refresh_token"] != refresh
    assert written["tenantid"] == "local"
    # The refresh token the CLI spent was replaced: the cache still starts a working client.
    again = run(["agave", "jobs", "wait", job, "--json"], env=agave_env(home))
    assert again.code == 0, again


def test_no_credentials_anywhere_is_a_usage_error(home: Path) -> None:
    out = run(["agave", "jobs", "wait", "some-job-007"], env=agave_env(home))
    assert out.code == 2, out
    assert "--base-url" in out.text and "AGAVE_TOKEN" in out.text
