"""The benchmark runner still runs and writes its reports (no timing is asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_quick_benchmark_writes_json_and_markdown(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--sections", "overhead,memory",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "quick.json").read_text())
    sections = {row["section"] for row in report["rows"]}
    assert sections == {"overhead", "memory"}
    overhead = next(r for r in report["rows"] if r["section"] == "overhead")
    assert overhead["aioplatform_us"] > 0 and overhead["saltant_py_us"] > 0
    memory = [r for r in report["rows"] if r["section"] == "memory"]
    assert all(r["aioplatform_peak_mib"] > 0 and r["saltant_py_peak_mib"] > 0 for r in memory)
    assert "## Overhead" in (tmp_path / "quick.md").read_text()


def test_an_unknown_section_is_refused_by_name() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--sections", "speed"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "speed" in done.stdout + done.stderr
