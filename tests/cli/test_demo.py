"""``aioplatform demo`` end to end in a real process: exit 0 and every store check ``ok``.

Small N and no latency keep each run to a few seconds; the default run (N=1000, a sweep
of 100 Agave jobs, 20 ms, 5 % faults) is what the README shows.
"""

from __future__ import annotations

import ast
import concurrent.futures
import contextlib
import re
import sqlite3
from pathlib import Path

import pytest

from .conftest import Outcome, run

CHECK = re.compile(r"^\s+(ok|FAILED)\s+(\w+): (.+): expected (\d+), got (\d+)$", re.M)
# Checks per store: saltant 4, Agave 11 (jobs, notifications, outputs), flowserv 3,
# Astakos 4, and the shared pool's 1.
CHECKS_PER_STORE = {"saltant": 4, "agave": 11, "flowserv": 3, "astakos": 4, "pool": 1}
PHASES = (
    ("saltant", "create"),
    ("saltant", "clone"),
    ("saltant", "terminate"),
    ("saltant", "wait"),
    ("astakos", "issue"),
    ("agave", "submit"),
    ("agave", "wait"),
    ("agave", "notified"),
    ("agave", "download"),
    ("flowserv", "upload"),
    ("astakos", "resolve"),
    ("astakos", "reconcile"),
    ("saltant", "page"),
)
ROW = r"^{service}\s+{phase}\s+(\d+)\s+([\d.]+)\s+([\d,]+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$"
TOTAL = re.compile(r"^total\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", re.M)


def phase_row(out: Outcome, service: str, phase: str) -> dict[str, int]:
    """One phase's row of the summary table: items, requests, retries, TCP, failed."""
    match = re.search(ROW.format(service=service, phase=phase), out.stdout, re.M)
    assert match is not None, f"no {service} {phase} row in the summary:\n{out.stdout}"
    items, _wall, _rate, requests, retries, tcp, failed = match.groups()
    return {
        "items": int(items),
        "requests": int(requests),
        "retries": int(retries),
        "tcp": int(tcp),
        "failed": int(failed),
    }


def assert_consistent(out: Outcome, context: str = "") -> None:
    """Exit 0, every check of every store printed and holding, every phase in the table."""
    text = f"{context}\n{out.stdout}{out.stderr}"
    assert out.code == 0, text
    checks = CHECK.findall(out.stdout)
    per_store = {store: sum(1 for c in checks if c[1] == store) for store in CHECKS_PER_STORE}
    assert per_store == CHECKS_PER_STORE, text  # every store's checks were printed
    assert [c for c in checks if c[0] != "ok" or c[3] != c[4]] == [], text
    assert "consistent: nothing lost, nothing duplicated" in out.stdout, text
    assert "INCONSISTENT" not in out.stdout, text
    for service, phase in PHASES:
        phase_row(out, service, phase)
    # one pool: the four services' request counts add up to the pool's total
    total = TOTAL.search(out.stdout)
    assert total is not None, text
    by_service = {
        s: int(n)
        for s, n in re.findall(r"^(saltant|astakos|agave|flowserv): (\d+) requests;", out.stdout, re.M)
    }
    assert set(by_service) == {"saltant", "astakos", "agave", "flowserv"}, text
    assert all(n > 0 for n in by_service.values()), text
    assert sum(by_service.values()) == int(total.group(2)), text
    pool = re.search(r"^shared pool: one Session for the four clients, (\d+) requests", out.stdout, re.M)
    assert pool is not None and int(pool.group(1)) == int(total.group(2)), text


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
    assert_consistent(out)
    # the sweep's default size is N/10: 10 commissions, 10 jobs submitted
    assert phase_row(out, "astakos", "issue")["items"] == 10
    assert "sweep of 10 jobs" in out.stdout


def test_demo_without_faults_has_no_failures_and_no_retries() -> None:
    out = run(["demo", "-n", "50", "--jobs", "6", "--latency-ms", "0", "--fault-rate", "0"])
    assert_consistent(out)
    assert "faults injected by the platform: none" in out.stdout
    total = TOTAL.search(out.stdout)
    assert total is not None, out.stdout
    assert total.group(3) == "0" and total.group(5) == "0", total.group(0)  # retries, failed
    # no fault: every sweep point has its commission and job, and every job notified each
    # status it entered (PENDING ... FINISHED or FAILED: 10 or 9 statuses)
    assert phase_row(out, "agave", "submit")["items"] == 6
    received = re.search(r"; (\d+) notifications received", out.stdout)
    assert received is not None and 6 * 9 <= int(received.group(1)) <= 6 * 10, out.stdout
    assert "pool: connections still checked out after the last batch: expected 0, got 0" in out.stdout


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["-n", "1"], "-n"),
        (["--jobs", "1"], "--jobs"),
        (["--fault-rate", "2"], "--fault-rate"),
        (["--latency-ms", "-1"], "--latency-ms"),
    ],
)
def test_demo_rejects_bad_options_before_starting(options: list[str], message: str) -> None:
    out = run(["demo", *options])
    assert out.code == 2
    assert message in out.text
    assert "embedded platform on" not in out.stdout


def run_side_by_side(options: list[str], seeds: tuple[str, ...]) -> list[Outcome]:
    """The demo once per seed, the processes side by side to keep the test short."""
    with concurrent.futures.ThreadPoolExecutor(len(seeds)) as pool:
        return list(pool.map(lambda seed: run([*options, "--seed", seed]), seeds))


def test_demo_holds_its_store_check_at_half_the_requests_faulted() -> None:
    # These seeds used to exit 1: the reconcile look-ups (GETs) were faulted too and gave up,
    # so made clones counted as duplicates and unanswered polls as unfinished instances.
    seeds = ("1", "2", "3", "7")
    outs = run_side_by_side(["demo", "-n", "300", "--fault-rate", "0.5", "--latency-ms", "5"], seeds)
    for seed, out in zip(seeds, outs, strict=True):
        text = f"seed {seed}:\n{out.stdout}{out.stderr}"
        assert_consistent(out, f"seed {seed}")
        # the verdict was earned under fire: answers were dropped after the work was done
        injected = re.search(r"faults injected by the platform: (\{.*\})", out.stdout)
        assert injected is not None, text
        counts = ast.literal_eval(injected.group(1))
        assert counts["drop_after"] > 20 and counts["429"] > 200 and counts["503"] > 200, text


def test_demo_sweep_across_the_four_services_is_consistent_under_faults_for_several_seeds() -> None:
    # A bigger sweep than -n alone gives, at a moderate fault rate: Astakos, Agave and
    # flowserv all retried (their routes were faulted) and every store still checks out —
    # jobs one per submit, every status notified once, outputs and uploads equal on disk.
    seeds = ("11", "12", "13")
    options = ["demo", "-n", "60", "--jobs", "40", "--fault-rate", "0.25", "--latency-ms", "2"]
    for seed, out in zip(seeds, run_side_by_side(options, seeds), strict=True):
        text = f"seed {seed}:\n{out.stdout}{out.stderr}"
        assert_consistent(out, f"seed {seed}")
        assert phase_row(out, "astakos", "issue")["items"] == 40, text
        for service, phase in (("astakos", "issue"), ("agave", "submit"), ("flowserv", "upload")):
            assert phase_row(out, service, phase)["retries"] > 0, f"{service} {phase} not faulted\n{text}"
        agave_retries = sum(phase_row(out, "agave", p)["retries"] for p in ("wait", "download"))
        assert agave_retries > 0, text
        # the sweep ran: jobs ended, notifications came, outputs went to flowserv
        received = re.search(r"; (\d+) notifications received", out.stdout)
        uploaded = re.search(r"^flowserv: \d+ requests; (\d+) of (\d+) outputs uploaded", out.stdout, re.M)
        assert received is not None and int(received.group(1)) >= 9 * 30, text
        assert uploaded is not None and int(uploaded.group(2)) >= 3 * 25, text


def test_demo_verdict_agrees_with_the_stores_read_after_the_run(tmp_path: Path) -> None:
    # The demo judges from the stores; here the same SQLite file (and the files beside it)
    # is read again after the process ended, independently of what the demo printed.
    db = tmp_path / "platform.sqlite3"
    options = ["-n", "20", "--jobs", "16", "--fault-rate", "0.2", "--latency-ms", "0", "--seed", "5"]
    out = run(["demo", "--db", str(db), *options])
    assert_consistent(out)
    printed = re.search(r"^agave: \d+ requests; (\d+) submitted, (\d+) jobs,", out.stdout, re.M)
    accepted = re.search(r" (\d+) accepted, (\d+) rejected, 0 orphans", out.stdout)
    uploaded = re.search(r"^flowserv: \d+ requests; (\d+) of (\d+) outputs uploaded", out.stdout, re.M)
    received = re.search(r"; (\d+) notifications received", out.stdout)
    assert printed and accepted and uploaded and received, out.stdout
    with contextlib.closing(sqlite3.connect(db)) as conn:
        jobs = dict(conn.execute("SELECT id, status FROM agave_jobs_jobs WHERE name LIKE '%-sweep-%'"))
        history = conn.execute(
            "SELECT h.job_id, h.status FROM agave_jobs_history h JOIN agave_jobs_jobs j ON j.id = h.job_id"
            " WHERE j.name LIKE '%-sweep-%'"
        ).fetchall()
        delivered = conn.execute(
            "SELECT associated_uuid, event, success FROM agave_notifications_attempts"
        ).fetchall()
        pending = conn.execute("SELECT COUNT(*) FROM astakos_commissions WHERE name LIKE '%-sweep-%'")
        files = conn.execute(
            "SELECT f.id, f.size FROM flowserv_files f JOIN flowserv_groups g ON g.id = f.group_id"
            " WHERE g.name LIKE '%-results'"
        ).fetchall()
        pending_count = pending.fetchone()[0]
    # Agave: one job per reported submit, every one ended, every status delivered once, 2xx
    assert len(jobs) == int(printed.group(2))
    assert set(jobs.values()) <= {"FINISHED", "FAILED"}, jobs
    assert sorted((j, s, 1) for j, s in history) == sorted(delivered)
    assert len(delivered) == int(received.group(1))
    # Astakos: nothing pending; accepted exactly the FINISHED jobs, rejected the rest of the sweep
    finished = sum(1 for s in jobs.values() if s == "FINISHED")
    assert pending_count == 0
    assert int(accepted.group(1)) == finished
    assert int(accepted.group(1)) + int(accepted.group(2)) == int(printed.group(1))
    # flowserv: one stored file per reported upload (three outputs per FINISHED job), whole
    assert len(files) == int(uploaded.group(1)) == int(uploaded.group(2)) == 3 * finished
    stored = Path(f"{db}.files") / "flowserv"
    assert all((stored / file_id).stat().st_size == size for file_id, size in files)
