"""Instructions per call on the server-free rig: the noise-free cross-check of its CPU ratios.

The rig's CPU times move with whatever else the machine runs; instruction counts do not.
``valgrind --tool=callgrind`` counts every instruction the client process executes; the
interpreter's start-up and imports cost far more than the calls, so each implementation runs
twice under it, with ``SMALL`` and ``LARGE`` calls on one kept-alive connection to the
rig's canned server (which runs natively, outside valgrind), and the difference divided by
``LARGE - SMALL`` is the cost of one call, start-up cancelled out. Two counts run at once
(the machine's cores); a full section takes about 15 minutes.

Each operation is counted for aioplatform and for its target's baseline (raw aiohttp for
``Session.request``; raw aiohttp + ``json.loads`` + the same cattrs structuring for the
service methods) and judged against the same targets as the rig. Skipped, with the reason
in the report, where valgrind is not installed.
"""

from __future__ import annotations

import asyncio
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import rig

__all__ = ["instructions_section", "instructions_markdown"]

SMALL, LARGE = 200, 1200
COLLECTED = re.compile(r"Collected : (\d+)")
TOKENS = {"saltant": "rig-saltant", "astakos": "rig-astakos", "agave": "rig-agave"}
ROOT = Path(__file__).resolve().parent.parent


def _count(spec: Path, origin: str, op: str, impl: str, calls: int) -> int:
    """Instructions the client process executes for ``calls`` calls (start-up included)."""
    argv = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, "-m", "benchmarks.instructions", str(spec), origin, op, impl, str(calls),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=1800)
    found = COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind {op} / {impl}: exit {done.returncode}: {done.stderr[-500:]}")
    return int(found.group(1))


def per_call(spec: Path, origin: str, op: str, impl: str) -> float:
    with ThreadPoolExecutor(2) as pool:
        small = pool.submit(_count, spec, origin, op, impl, SMALL)
        large = pool.submit(_count, spec, origin, op, impl, LARGE)
        return (large.result() - small.result()) / (LARGE - SMALL)


def instructions_section(quick: bool, rows: list[dict[str, Any]]) -> None:
    if shutil.which("valgrind") is None:
        rows.append({"section": "instructions", "case": "-", "skipped": "valgrind is not installed"})
        print("  skipped: valgrind is not installed", flush=True)
        return
    captured = asyncio.run(rig.capture())
    with tempfile.TemporaryDirectory(prefix="aioplatform-icount-") as folder, rig.stub(captured) as origin:
        spec = Path(folder) / "captured.pickle"
        spec.write_bytes(pickle.dumps(captured))
        ops = rig.operations(origin, captured, TOKENS)
        if quick:
            ops = ops[:1]
        for op in ops:
            base = "raw" if op.kind == "session" else "raw+json+cattrs"
            ours = per_call(spec, origin, op.name, "aioplatform")
            baseline = per_call(spec, origin, op.name, base)
            target = 1.05 if op.kind == "session" else 1.10
            ratio = ours / baseline
            rows.append({
                "section": "instructions", "case": op.name, "kind": op.kind, "baseline": base,
                "aioplatform_instructions": ours, "baseline_instructions": baseline, "ratio": ratio,
                "target": f"<= {target:.2f}x {base}", "verdict": "met" if ratio <= target else "missed",
                "calls": LARGE - SMALL,
            })  # fmt: skip
            print(f"  {op.name}: {ours / 1e3:.0f}k vs {baseline / 1e3:.0f}k instructions ({ratio:.3f}x)", flush=True)


def instructions_markdown(rows: list[dict[str, Any]]) -> list[str]:
    found = [r for r in rows if r["section"] == "instructions"]
    if not found:
        return []
    out = ["", "## Instructions per call on the rig (callgrind; noise-free)", ""]
    skipped = [r for r in found if "skipped" in r]
    if skipped:
        return [*out, f"Skipped: {skipped[0]['skipped']}."]
    out += ["| operation | aioplatform | baseline | baseline instructions | ratio | target | verdict |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in found:
        out.append(
            f"| {r['case']} | {r['aioplatform_instructions'] / 1e3:.0f}k | {r['baseline']} | "
            f"{r['baseline_instructions'] / 1e3:.0f}k | {r['ratio']:.3f}x | {r['target']} | {r['verdict']} |"
        )
    out.append(f"\nOne call's instructions: the count at {LARGE} calls minus the count at {SMALL}, "
               f"over {LARGE - SMALL} (the interpreter's start-up cancels out).")  # fmt: skip
    return out


def _child(spec: str, origin: str, op_name: str, impl_name: str, calls: int) -> None:
    """Under valgrind: ``calls`` calls of one implementation (no timing: callgrind counts)."""
    captured = pickle.loads(Path(spec).read_bytes())
    op = next(o for o in rig.operations(origin, captured, TOKENS) if o.name == op_name)
    impl = next(i for i in op.impls if i.name == impl_name)
    asyncio.run(rig.cpu_per_call(impl, calls))


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))


def instructions_target_status(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """The rig's two ratio targets judged again on instruction counts (one figure each: no spread)."""
    found = [r for r in rows if r["section"] == "instructions" and "skipped" not in r]
    out: list[tuple[str, str, str]] = []
    labels = {
        "session": "Session.request <= 1.05x raw aiohttp, in instructions per call (callgrind)",
        "method": "every service method <= 1.10x raw aiohttp + json + cattrs, in instructions (callgrind)",
    }
    for kind in ("session", "method"):
        judged = [r for r in found if (r["kind"] == "session") == (kind == "session")]
        if judged:
            worst = max(judged, key=lambda r: r["ratio"])
            missed = sum(r["verdict"] == "missed" for r in judged)
            out.append((
                labels[kind],
                f"worst {worst['ratio']:.3f}x ({worst['case']}); {len(judged) - missed} met, {missed} missed",
                "missed" if missed else "met",
            ))  # fmt: skip
    return out
