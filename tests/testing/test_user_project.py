"""docs/testing.md's conftest.py and test file pass in a fresh project, in both pytest-asyncio modes.

The files are copied out of the page into an empty directory and run by a separate pytest
process with this interpreter (aioplatform is installed in it, so its pytest11 entry point
registers the plugin exactly as in a user's project).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TITLED = re.compile(r'```(?:python|toml) title="([^"]+)"\n(.*?)```', re.S)


def documented_project() -> dict[str, str]:
    return dict(TITLED.findall((ROOT / "docs" / "testing.md").read_text()))


def test_the_page_shows_a_complete_project() -> None:
    assert set(documented_project()) == {"pyproject.toml", "conftest.py", "test_example.py"}


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_the_documented_project_passes_in_a_fresh_directory(mode: str, tmp_path: Path) -> None:
    for name, text in documented_project().items():
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", f"asyncio_mode={mode}"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert re.search(r"\b4 passed\b", out), out
    # Nothing skipped, nothing merely warned about (an unmarked async test in strict mode
    # would be reported, not run).
    assert not re.search(r"skipped|warning|error", out, re.I), out


KEPT_AND_LEFT_ALONE = '''
import asyncio

import pytest

loops = []


@pytest.mark.asyncio(loop_scope="module")
async def test_first(local_platform):
    loops.append(asyncio.get_running_loop())


@pytest.mark.asyncio(loop_scope="module")
async def test_second_shares_the_module_loop(local_platform):
    assert loops == [asyncio.get_running_loop()]


async def test_without_the_platform_is_left_to_pytest_asyncio():
    pass
'''


def test_in_strict_mode_a_users_own_mark_is_kept_and_other_async_tests_are_left_alone(
    tmp_path: Path,
) -> None:
    (tmp_path / "pyproject.toml").write_text(documented_project()["pyproject.toml"])
    (tmp_path / "test_marks.py").write_text(KEPT_AND_LEFT_ALONE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "asyncio_mode=strict", "-rA"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )
    out = done.stdout + done.stderr
    assert re.search(r"PASSED test_marks.py::test_first\b", out), out
    assert re.search(r"PASSED test_marks.py::test_second_shares_the_module_loop\b", out), out
    # Not marked by the plugin: pytest-asyncio's strict mode does not run it.
    assert not re.search(r"PASSED test_marks.py::test_without_the_platform", out), out
