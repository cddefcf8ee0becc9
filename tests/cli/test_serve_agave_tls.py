"""``aioplatform serve --agave-tls-host``: Agave also at the root of an HTTPS site whose CA
the credentials file names (what agavepy, in another process, needs)."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from .conftest import cli_env, invoke


def test_serve_with_agave_tls_host_serves_agave_over_tls_and_names_its_ca(tmp_path: Path) -> None:
    creds = tmp_path / "creds.json"
    command = [
        sys.executable,
        "-m",
        "aioplatform.cli",
        "serve",
        "--port",
        "0",
        "--credentials-file",
        str(creds),
    ]
    command += ["--agave-tls-host", "127.0.0.2", "--agave-tls-port", "0"]
    proc = subprocess.Popen(
        command, env=cli_env({}), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # printed once the credentials are written
        found = json.loads(creds.read_text())
        line = ""
        for _ in range(10):  # after one line per mounted service
            line = proc.stdout.readline()
            if line.startswith("  agave tls"):
                break
        assert line == f"  agave tls {found['agave_tls_url']} (CA: {found['agave_ca_pem']})\n"
        assert found["agave_tls_url"].startswith("https://127.0.0.2:")
        trust = ssl.create_default_context(cafile=found["agave_ca_pem"])
        # Agave at the root of the site: its gateway answers a tokenless call with its fault.
        try:
            urllib.request.urlopen(found["agave_tls_url"] + "/jobs/v2/", timeout=10, context=trust)
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
            assert json.load(exc)["fault"]["code"] == 900902
        else:
            raise AssertionError("a tokenless call was answered")
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopping:" in rest


def test_serve_refuses_a_remote_agave_tls_host_without_allow_remote() -> None:
    out = invoke(["serve", "--port", "0", "--agave-tls-host", "192.0.2.1"])
    assert out.code == 2
    assert "--agave-tls-host" in out.text and "loopback" in out.text
    assert "embedded platform on" not in out.stdout
