"""``aioplatform flowserv upload-many``: the flowserv batch command, on the shared runner
(one JSON line per path, exit 0/1/2, the breaker)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aioplatform.flowserv import FlowservClient
from aioplatform.testing import LocalPlatform

from .conftest import run


def logged_in_group(platform: LocalPlatform) -> tuple[str, str]:
    """A fresh user's API key and a group of theirs."""

    async def make() -> tuple[str, str]:
        async with FlowservClient(platform.flowserv_url) as client:
            await client.users.register("cli-uploader", "pw-uploader")
            user = await client.users.login("cli-uploader", "pw-uploader")
            group = await client.groups.create(platform.flowserv.workflow_id, "cli-group")
            assert user.token is not None
            return user.token, group.id

    return asyncio.run(make())


def test_upload_many_uploads_each_path_with_one_json_line_each(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    token, group_id = logged_in_group(platform)
    paths = []
    for i in range(3):
        path = tmp_path / f"data-{i}.csv"
        path.write_text(f"a,b\n{i},{i}\n")
        paths.append(str(path))
    env = {"FLOWSERV_ACCESS_TOKEN": token}
    out = run(
        ["flowserv", "upload-many", group_id, *paths, "--url", platform.flowserv_url, "--json"], env=env
    )
    assert out.code == 0, out
    assert [r["input"] for r in out.records] == paths
    assert [r["name"] for r in out.records] == ["data-0.csv", "data-1.csv", "data-2.csv"]
    assert "upload: 3 ok, 0 failed" in out.stderr
    assert token not in out.stdout + out.stderr


def test_upload_many_stops_with_one_line_when_the_server_refuses_connections(tmp_path: Path) -> None:
    paths = []
    for i in range(40):
        path = tmp_path / f"f{i}.txt"
        path.write_bytes(b"x")
        paths.append(str(path))
    env = {"FLOWSERV_ACCESS_TOKEN": "k" * 32}
    out = run(
        ["flowserv", "upload-many", "g" * 32, *paths, "--url", "http://127.0.0.1:1/flowserv/api/v1"], env=env
    )
    assert out.code == 1, out
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert (
        lines[0]
        == "stopped after 20 consecutive connection failures to http://127.0.0.1:1 — is the server running?"
    )
    assert len(lines) == 2 and lines[1].startswith("upload: 0 ok, 40 failed (")


def test_upload_many_without_a_token_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"x")
    args = ["flowserv", "upload-many", "g" * 32, str(path), "--url", "http://127.0.0.1:1/flowserv/api/v1"]
    out = run(args, env={"FLOWSERV_ACCESS_TOKEN": ""})
    assert out.code == 2 and "FLOWSERV_ACCESS_TOKEN" in out.text
