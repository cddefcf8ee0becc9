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
