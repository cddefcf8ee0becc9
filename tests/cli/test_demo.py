"""``aioplatform demo`` end to end in a real process: exit 0 and every store check ``ok``.

Small N and no latency keep each run to a few seconds; the default run (N=1000, 20 ms,
5 % faults) is what the README shows.
"""

from __future__ import annotations

import ast
import concurrent.futures
import re

import pytest

from .conftest import run

CHECK = re.compile(r"^\s+(ok|FAILED)\s+(.+): expected (\d+), got (\d+)$", re.M)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param([], id="default-faults"),
        pytest.param(["--fault-rate", "0"], id="no-faults"),
        # 20% faults: dropped answers also hit the single setup POSTs and the reconcile
        # (this seed used to stop the demo); they are reconciled, never blindly re-sent.
        pytest.param(["--fault-rate", "0.2", "--seed", "3"], id="heavy-faults"),
    ],
)
def test_demo_finishes_consistent(options: list[str]) -> None:
    out = run(["demo", "-n", "100", "--latency-ms", "0", *options])
    assert out.code == 0, out.stdout + out.stderr
    checks = CHECK.findall(out.stdout)
    assert len(checks) == 8, out.stdout  # every store check was printed
    assert [c for c in checks if c[0] != "ok" or c[2] != c[3]] == []
    assert "consistent: nothing lost, nothing duplicated" in out.stdout
    assert "INCONSISTENT" not in out.stdout
    for phase in ("create", "clone", "terminate", "wait", "issue", "resolve", "page"):
        assert re.search(rf"^│ {phase}\s+│", out.stdout, re.M), f"no {phase} row in the summary"


def test_demo_without_faults_has_no_failures_and_no_retries() -> None:
    out = run(["demo", "-n", "50", "--latency-ms", "0", "--fault-rate", "0"])
    assert out.code == 0, out.stdout + out.stderr
    assert "faults injected by the platform: none" in out.stdout
    total = re.search(r"^│ total\s+│.*$", out.stdout, re.M)
    assert total is not None, out.stdout
    cells = [c.strip() for c in total.group(0).strip("│").split("│")]
    assert cells[5] == "0" and cells[7] == "0", cells  # retries, failed


@pytest.mark.parametrize(
    ("options", "message"),
    [(["-n", "1"], "-n"), (["--fault-rate", "2"], "--fault-rate"), (["--latency-ms", "-1"], "--latency-ms")],
)
def test_demo_rejects_bad_options_before_starting(options: list[str], message: str) -> None:
    out = run(["demo", *options])
    assert out.code == 2
    assert message in out.text
    assert "embedded platform on" not in out.stdout


def test_demo_holds_its_store_check_at_half_the_requests_faulted() -> None:
    # These seeds used to exit 1: the reconcile look-ups (GETs) were faulted too and gave up,
    # so made clones counted as duplicates and unanswered polls as unfinished instances.
    # The four processes run side by side to keep the test short.
    seeds = ("1", "2", "3", "7")
    options = ["demo", "-n", "300", "--fault-rate", "0.5", "--latency-ms", "5", "--seed"]
    with concurrent.futures.ThreadPoolExecutor(len(seeds)) as pool:
        outs = list(pool.map(lambda seed: run([*options, seed]), seeds))
    for seed, out in zip(seeds, outs, strict=True):
        text = f"seed {seed}:\n{out.stdout}{out.stderr}"
        assert out.code == 0, text
        checks = CHECK.findall(out.stdout)
        assert len(checks) == 8, text
        assert [c for c in checks if c[0] != "ok" or c[2] != c[3]] == [], text
        assert "consistent: nothing lost, nothing duplicated" in out.stdout and "INCONSISTENT" not in text
        # the verdict was earned under fire: answers were dropped after the work was done
        injected = re.search(r"faults injected by the platform: (\{.*\})", out.stdout)
        assert injected is not None, text
        counts = ast.literal_eval(injected.group(1))
        assert counts["drop_after"] > 20 and counts["429"] > 200 and counts["503"] > 200, text
