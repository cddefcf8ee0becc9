"""Every complete example in README.md and docs/ runs (a block with ``asyncio.run(``).

Pages in sub-folders of docs/ count too, and a block indented inside a list or a tab runs
dedented. Where the page shows what the example prints — a line ``Output:`` right after the
block, then a ``text`` block — the printed output must match it (``...`` stands for any text,
e.g. an id that differs per run).
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"```python\n(.*?)```(?:[ \t]*\n\s*Output:[ \t]*\n\s*```text\n(.*?)```)?", re.S)


def examples() -> list[tuple[str, str, str | None]]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for i, (code, output) in enumerate(BLOCK.findall(path.read_text())):
            if "asyncio.run(" in code:
                found.append((f"{path.relative_to(ROOT)}#{i}", textwrap.dedent(code), output or None))
    return found


def printed_as_shown(shown: str, printed: str) -> bool:
    """``printed`` is ``shown`` line for line (trailing spaces aside), ``...`` matching any text."""
    def tidy(text: str) -> str:
        return "\n".join(line.rstrip() for line in textwrap.dedent(text).strip().splitlines())

    pattern = ".*?".join(re.escape(part) for part in tidy(shown).split("..."))
    return re.fullmatch(pattern, tidy(printed), re.S) is not None


def test_an_output_block_is_matched_exactly_but_for_ellipses() -> None:
    assert printed_as_shown("a 1\nid ... done\n", "a 1  \nid 7f3e done\n")
    assert not printed_as_shown("a 1\n", "a 2\n")
    assert not printed_as_shown("a 1\n", "a 1\nb 2\n")
    [(code, output)] = BLOCK.findall("```python\nprint(1)\n```\n\nOutput:\n\n```text\n1\n```\n")
    assert (code, output) == ("print(1)\n", "1\n")


@pytest.mark.parametrize(("where", "code", "output"), examples(), ids=[w for w, _, _ in examples()])
def test_documented_example_runs(where: str, code: str, output: str | None, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr}"
    if output is not None:
        shown = f"{where} printed:\n{done.stdout}\nthe page shows:\n{output}"
        assert printed_as_shown(output, done.stdout), shown
