"""``aioplatform serve`` in a real process: it listens, writes its credentials privately, stops on SIGTERM."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .conftest import cli_env, invoke


def test_serve_writes_credentials_privately_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    creds = tmp_path / "creds.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aioplatform.cli", "serve", "--port", "0", "--credentials-file", str(creds)],
        env=cli_env({}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # printed once the credentials are written
        assert first.startswith("aioplatform embedded platform on http://127.0.0.1:"), first
        found = json.loads(creds.read_text())
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        with urllib.request.urlopen(found["url"] + "/", timeout=10) as answer:
            described = json.load(answer)
        assert set(described["services"]) >= {"saltant", "astakos", "flowserv"}
        assert found["saltant_url"] == described["services"]["saltant"]
        request = urllib.request.Request(
            found["saltant_url"] + "users/", headers={"Authorization": f"Token {found['saltant_token']}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
        # It answered, so its loop is past installing the signal handlers.
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopping:" in rest
    for key in ("saltant_token", "astakos_user_token", "astakos_service_token"):
        assert found[key] not in first + rest + err


@pytest.mark.parametrize(
    ("options", "name"),
    [
        (["--latency-ms", "-5"], "--latency-ms"),
        (["--fault-rate", "2"], "--fault-rate"),
        (["--port", "x"], "--port"),
    ],
)
def test_serve_rejects_bad_options_before_starting(options: list[str], name: str) -> None:
    out = invoke(["serve", *options])
    assert out.code == 2
    assert name in out.text
    assert "embedded platform on" not in out.stdout


def test_serve_refuses_a_remote_host_without_allow_remote() -> None:
    out = invoke(["serve", "--host", "0.0.0.0", "--port", "0"])
    assert out.code == 2
    assert "--allow-remote" in out.text and "loopback" in out.text
    assert "embedded platform on" not in out.stdout


def test_serve_with_allow_remote_warns_what_becomes_reachable(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aioplatform.cli", "serve", "--host", "0.0.0.0", "--port", "0",
         "--allow-remote", "--cors-origin", "http://localhost:3000"],
        env=cli_env({}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("aioplatform embedded platform on http://0.0.0.0:"), first
        port = first.strip().rsplit(":", 1)[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as answer:
            assert answer.status == 200  # its loop is past installing the signal handlers
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "warning: listening on 0.0.0.0" in err
    assert "credentials are reachable" in err


def test_serve_uses_fixed_credentials_from_a_file(tmp_path: Path) -> None:
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps({"saltant_token": "f" * 40, "astakos_service_token": "c" * 32}))
    creds = tmp_path / "creds.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aioplatform.cli", "serve", "--port", "0", "--fixed-credentials", str(fixed),
         "--credentials-file", str(creds)],
        env=cli_env({}), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        found = json.loads(creds.read_text())
        assert found["saltant_token"] == "f" * 40 and found["astakos_service_token"] == "c" * 32
        admin = {"Authorization": "Token " + "f" * 40}
        request = urllib.request.Request(found["saltant_url"] + "users/", headers=admin)
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    finally:
        proc.kill()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"saltant_tokn": "secret-value"}', "saltant_tokn"),
        ('{"saltant_token": 5}', "saltant_token"),
        ("[", ""),
    ],
)
def test_serve_refuses_bad_fixed_credentials_without_echoing_them(
    tmp_path: Path, content: str, message: str
) -> None:
    fixed = tmp_path / "fixed.json"
    fixed.write_text(content)
    out = invoke(["serve", "--port", "0", "--fixed-credentials", str(fixed)])
    assert out.code == 2 and "--fixed-credentials" in out.text and message in out.text
    assert "secret-value" not in out.text
    assert "embedded platform on" not in out.stdout
