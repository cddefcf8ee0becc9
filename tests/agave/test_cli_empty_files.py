"""The Agave batch commands refuse a file with nothing in it (usage error, exit 2, no
request), each naming what it reads: job requests, records, messages. A real process
against the embedded platform."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aioplatform.testing import LocalPlatform


@pytest.mark.parametrize(
    ("command", "named"),
    [
        (["jobs", "submit-many"], "no job requests in the file"),
        (["meta", "create-many"], "no records in the file"),
        (["actors", "send-many", "some-actor"], "no messages in the file"),
    ],
)
async def test_an_empty_file_is_refused_in_the_words_of_its_command(
    platform: LocalPlatform, tmp_path: Path, command: list[str], named: str
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n   \n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGAVE_", "TAPIS_"))}
    env.update(AGAVE_BASE_URL=platform.agave_url, AGAVE_TOKEN=platform.agave.access_token, COLUMNS="200")
    before = platform.stats.requests
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "aioplatform.cli", "agave", *command, str(empty)],
        capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    said = " ".join((done.stdout + done.stderr).translate({ord(c): " " for c in "│╭╮╰╯─"}).split())
    assert done.returncode == 2, said
    assert named in said and (named == "no job requests in the file" or "job requests" not in said), said
    assert platform.stats.requests == before
