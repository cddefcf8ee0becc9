"""Batch commands under failure: the breaker's one line, JSON lines streamed as outcomes
complete and kept on Ctrl-C, --keep-going.

Real processes (``python -m aioplatform.cli``) against a refused port or the threaded
embedded platform.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid

from aioplatform.testing import LocalPlatform

from .conftest import cli_env, create_instances, run

REFUSED = "http://127.0.0.1:1/api/"
IDS = [str(uuid.UUID(int=i + 1, version=4)) for i in range(300)]


def test_a_refused_port_stops_clone_many_with_one_clear_line_and_exit_1() -> None:
    env = {"SALTANT_API_URL": REFUSED, "SALTANT_AUTH_TOKEN": "t" * 40}
    started = time.monotonic()
    out = run(["saltant", "clone-many", "--from-file", "-"], env=env, stdin="\n".join(IDS))
    assert out.code == 1, out
    assert time.monotonic() - started < 30  # not one connection attempt (and retries) per id
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    stop = "stopped after 20 consecutive connection failures to http://127.0.0.1:1 — is the server running?"
    assert lines.count(stop) == 1
    assert not any("ConnectError" in line for line in lines)  # the line above says it once
    assert len(lines) == 2 and lines[-1].startswith("clone: 0 ok, 300 failed (")
    assert lines[-1].endswith("not attempted)")
    assert out.stdout == ""


def test_with_json_every_input_still_gets_its_line_and_not_attempted_says_why() -> None:
    env = {"SALTANT_API_URL": REFUSED, "SALTANT_AUTH_TOKEN": "t" * 40}
    out = run(["saltant", "terminate-many", "--json", "--concurrency", "4", *IDS[:100]], env=env)
    assert out.code == 1, out
    records = out.records
    assert [r["input"] for r in records] == IDS[:100]
    errors = [r["error"] for r in records]
    assert 20 <= errors.count("ConnectError") <= 23 and errors.count("NotAttempted") == 100 - errors.count(
        "ConnectError"
    )
    skipped = next(r for r in records if r["error"] == "NotAttempted")
    assert "stopped after 20 consecutive connection failures" in skipped["message"]
    assert "stopped after 20 consecutive connection failures" in out.stderr


def test_keep_going_tries_every_item() -> None:
    env = {"SALTANT_API_URL": REFUSED, "SALTANT_AUTH_TOKEN": "t" * 40}
    out = run(["saltant", "terminate-many", "--json", "--keep-going", *IDS[:30]], env=env)
    assert out.code == 1, out
    assert [r["error"] for r in out.records] == ["ConnectError"] * 30
    assert "stopped after" not in out.stderr


def test_a_rejected_token_stops_after_20_rejections_on_a_real_server(
    platform: LocalPlatform, saltant_env: dict[str, str]
) -> None:
    before = platform.stats.count("POST", "/saltant/api/containertaskinstances/*/clone/")
    env = {**saltant_env, "SALTANT_AUTH_TOKEN": "0" * 40}
    out = run(["saltant", "clone-many", "--concurrency", "1", *IDS[:200]], env=env)
    assert out.code == 1, out
    sent = platform.stats.count("POST", "/saltant/api/containertaskinstances/*/clone/") - before
    assert sent == 20  # one at a time: exactly the threshold reached the server
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 2 and lines[0].startswith(
        "stopped after 20 consecutive rejections of the credentials"
    )
    assert lines[1] == "clone: 0 ok, 200 failed (180 not attempted)"


def test_json_lines_are_streamed_and_survive_ctrl_c_with_a_summary_and_exit_130(
    platform: LocalPlatform, saltant_env: dict[str, str]
) -> None:
    platform.saltant.publish_delay = 10_000.0  # nothing finishes: wait polls until interrupted
    platform.saltant.run_delay = 10_000.0
    uuids = create_instances(platform, 6)
    # Four of six terminated: their wait settles at once; two stay waiting until Ctrl-C.
    first = run(["saltant", "terminate-many", *uuids[:4]], env=saltant_env)
    assert first.code == 0, first
    args = ["saltant", "wait", *uuids[:4], *uuids[4:], "--refresh-period", "100", "--json"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aioplatform.cli", *args],
        env=cli_env(saltant_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        streamed = [proc.stdout.readline() for _ in range(4)]  # before the batch ends
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    records = [json.loads(line) for line in streamed + rest.splitlines() if line.strip()]
    assert [r["input"] for r in records] == uuids[:4]
    assert all(r["state"] == "terminated" for r in records)
    assert "wait: interrupted — 0 ok, 4 failed, 2 not attempted (or cancelled in flight)" in err
    assert "Traceback" not in err


def test_a_bad_serial_is_named_in_the_usage_error() -> None:
    env = {"ASTAKOS_AUTH_URL": "http://127.0.0.1:1/identity/v2.0", "ASTAKOS_TOKEN": "t" * 32}
    out = run(["astakos", "resolve", "--accept", "1-3"], env=env)
    assert out.code == 2
    assert "'1-3' is not one" in out.text


def test_as_completed_prints_a_line_the_moment_it_finishes_even_before_earlier_inputs(
    platform: LocalPlatform, saltant_env: dict[str, str]
) -> None:
    platform.saltant.publish_delay = 10_000.0  # nothing finishes on its own
    platform.saltant.run_delay = 10_000.0
    uuids = create_instances(platform, 3)
    first = run(["saltant", "terminate-many", uuids[2]], env=saltant_env)
    assert first.code == 0, first
    # The first two never finish: in input order nothing could be printed; as completed, the third is.
    args = ["saltant", "wait", *uuids, "--refresh-period", "100", "--json", "--as-completed"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aioplatform.cli", *args],
        env=cli_env(saltant_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = json.loads(proc.stdout.readline())
        assert line["input"] == uuids[2] and line["index"] == 2 and line["state"] == "terminated"
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130 and rest.strip() == ""  # printed once, not again at the end
    assert "wait: interrupted — 0 ok, 1 failed, 2 not attempted (or cancelled in flight)" in err
