"""``aioplatform serve`` usage errors are one line on stderr and exit 2 (no traceback), and
boolean flags show no value placeholder in --help."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from .conftest import run


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("aioplatform serve: error: ")
    return lines[0]


def test_a_busy_port_is_one_line_and_exit_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = run(["serve", "--port", str(port)])
    assert out.code == 2, out
    assert f"port {port} on 127.0.0.1 is already in use" in _one_error_line(out.stderr)
    assert out.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "99999"], "--port must be between 0 and 65535"),
        (["--port", "-1"], "--port must be between 0 and 65535"),
        (["--port", "0", "--host", "0.0.0.0"], "is not a loopback address; add --allow-remote"),
        (
            ["--port", "0", "--host", "no-such-host.invalid", "--allow-remote"],
            "is not an address of this machine",
        ),
        (["--port", "0", "--host", "192.0.2.77", "--allow-remote"], "is not an address of this machine"),
    ],
)
def test_bad_ports_and_hosts_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    out = run(["serve", *args])
    assert out.code == 2, out
    assert message in _one_error_line(out.stderr)
    assert "Traceback" not in out.stderr and "embedded platform on" not in out.stdout


def test_an_unwritable_credentials_path_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out = run(["serve", "--port", "0", "--credentials-file", str(tmp_path / "missing" / "c.json")])
    assert out.code == 2, out
    assert "cannot write --credentials-file" in _one_error_line(out.stderr)
    assert "No such file or directory" in out.stderr


def test_boolean_flags_show_no_value_placeholder_in_help() -> None:
    out = run(["saltant", "clone-many", "--help"])
    assert out.code == 0
    # The lines that declare the flags (another option's help may mention --json too).
    declares = re.compile(r"^\W*(--json|--keep-going)\b")
    flags = [line for line in out.stdout.splitlines() if declares.match(line)]
    assert len(flags) == 2 and not any("<bool>" in line for line in flags)
    assert "<str>" in out.stdout  # options that take a value still show its type
