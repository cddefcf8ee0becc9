"""docs/cli.md's ``sh`` blocks run, in order, in one shell (``set -e``): the documented
commands, options and environment variables exist and behave as the page says.

(tests/test_docs.py runs the Python examples; shell blocks are only run here.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .conftest import CONTROLLED

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
BLOCK = re.compile(r"```sh\n(.*?)```", re.S)


def test_every_shell_block_of_the_cli_page_runs(tmp_path: Path) -> None:
    blocks = BLOCK.findall(DOC.read_text())
    assert len(blocks) >= 8
    # Stop a platform left running by a failed block; the page's own `kill` does it otherwise.
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + "\n".join(blocks)
    env = {k: v for k, v in os.environ.items() if k not in CONTROLLED}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "Traceback" not in done.stdout + done.stderr
    assert "consistent: nothing lost, nothing duplicated" in done.stdout
    # What the walk-through left behind matches the page.
    assert len((tmp_path / "uuids.txt").read_text().split()) == 5
    assert len((tmp_path / "clones.txt").read_text().split()) == 5
    assert "exit status 1" in done.stdout  # the partial failures
    assert "clone: 1 ok, 1 failed" in done.stderr
    assert "resolve: 2 accepted, 1 rejected, 0 failed" in done.stderr
    assert "resolve: 0 accepted, 1 rejected, 0 failed" in done.stderr
    creds = (tmp_path / "creds.json").read_text()
    token = re.search(r'"saltant_token": "([^"]+)"', creds)
    assert token is not None and token.group(1) not in done.stdout + done.stderr
