"""The batch commands against the embedded platform: exit codes, JSON lines, inputs, credentials.

Exit status: 0 when every item succeeded, 1 when any failed, 2 for a usage error
(raised before any request). ``--json`` prints one line per input, in input order.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aioplatform.testing import LocalPlatform

from .conftest import (
    UNKNOWN,
    UNKNOWN_2,
    cli_env,
    create_instances,
    instance_count,
    instance_states,
    invoke,
    issue_commissions,
    pending_commissions,
    run,
    vm_usage,
)

CLONE = "/saltant/api/containertaskinstances/*/clone/"
TERMINATE = "/saltant/api/containertaskinstances/*/terminate/"

# -- saltant clone-many ----------------------------------------------------------------------------


def test_clone_many_clones_every_uuid_given_as_arguments_and_exits_0(
    platform: LocalPlatform, saltant_env: dict[str, str], instances: list[str]
) -> None:
    before = instance_count(platform)
    out = invoke(["saltant", "clone-many", *instances, "--json"], env=saltant_env)
    assert out.code == 0, out
    records = out.records
    assert [r["input"] for r in records] == instances
    assert all(r["ok"] for r in records)
    clones = [r["uuid"] for r in records]
    assert len(set(clones)) == 3 and not set(clones) & set(instances)
    assert instance_count(platform) == before + 3
    assert "clone: 3 ok, 0 failed" in out.stderr


def test_clone_many_partial_failure_exits_1_with_one_line_per_input_in_input_order(
    platform: LocalPlatform, saltant_env: dict[str, str], instances: list[str]
) -> None:
    given = [instances[0], UNKNOWN, instances[1], UNKNOWN_2, instances[2]]
    out = run(["saltant", "clone-many", *given, "--json"], env=saltant_env)
    assert out.code == 1, out
    records = out.records
    assert [r["input"] for r in records] == given
    assert [r["ok"] for r in records] == [True, False, True, False, True]
    for failed in (records[1], records[3]):
        assert failed["error"] == "NotFound" and failed["status"] == 404
        assert failed["message"]
    assert platform.stats.count("POST", CLONE) == 5
    assert "clone: 3 ok, 2 failed" in out.stderr


def test_clone_many_reconcile_turns_a_lost_answer_into_the_clone_the_server_made(
    platform: LocalPlatform, saltant_env: dict[str, str], instances: list[str]
) -> None:
    # The second clone is made, then its answer is dropped: without --reconcile that item
    # fails (its clone exists, unreported); with it, the clone is found and reported.
    before = instance_count(platform)
    platform.faults.script("POST " + CLONE, ["ok", "drop_after"])
    plain = invoke(["saltant", "clone-many", *instances, "--json"], env=saltant_env)
    assert plain.code == 1, plain
    assert [r["ok"] for r in plain.records] == [True, False, True]
    assert instance_count(platform) == before + 3  # the lost one was made all the same

    platform.faults.script("POST " + CLONE, ["ok", "drop_after"])
    reconciled = invoke(["saltant", "clone-many", *instances, "--json", "--reconcile"], env=saltant_env)
    assert reconciled.code == 0, reconciled
    records = reconciled.records
    assert [r["input"] for r in records] == instances and all(r["ok"] for r in records)
    assert instance_count(platform) == before + 6  # one clone per ok line, nothing re-sent
    assert len({r["uuid"] for r in records} | {r["uuid"] for r in plain.records if r["ok"]}) == 5
    assert platform.stats.count("POST", CLONE) == 6


def test_clone_many_without_json_keeps_stdout_empty_and_lists_failures_on_stderr(
    saltant_env: dict[str, str], instances: list[str]
) -> None:
    out = invoke(["saltant", "clone-many", instances[0], UNKNOWN], env=saltant_env)
    assert out.code == 1
    assert out.stdout == ""
    assert f"failed {UNKNOWN}: NotFound" in out.stderr
    assert instances[0] not in out.stderr  # successes are only counted
    assert "clone: 1 ok, 1 failed" in out.stderr


def test_executable_flag_sends_to_the_executable_instances_endpoint(
    platform: LocalPlatform, saltant_env: dict[str, str], instances: list[str]
) -> None:
    out = invoke(["saltant", "clone-many", "--executable", instances[0], "--json"], env=saltant_env)
    # A container instance is unknown among executable instances.
    assert out.code == 1
    assert out.records[0]["status"] == 404
    assert platform.stats.count("POST", "/saltant/api/executabletaskinstances/*/clone/") == 1
    assert platform.stats.count("POST", CLONE) == 0


# -- saltant terminate-many: inputs from a file and from stdin ------------------------------------


def test_terminate_many_reads_uuids_from_a_file_one_per_line_or_comma_separated(
    platform: LocalPlatform, saltant_env: dict[str, str], tmp_path: Path
) -> None:
    platform.saltant.publish_delay = 10_000.0  # stay `created` until terminated
    uuids = create_instances(platform, 4)
    listing = tmp_path / "uuids.txt"
    listing.write_text(f"{uuids[0]}\n{uuids[1]},{uuids[2]}\n\n  {uuids[3]}  \n")
    out = invoke(["saltant", "terminate-many", "--from-file", str(listing), "--json"], env=saltant_env)
    assert out.code == 0, out
    assert [r["input"] for r in out.records] == uuids
    assert instance_states(platform, uuids) == ["terminated"] * 4


def test_terminate_many_reads_uuids_from_stdin_and_adds_the_arguments(
    platform: LocalPlatform, saltant_env: dict[str, str]
) -> None:
    platform.saltant.publish_delay = 10_000.0
    uuids = create_instances(platform, 3)
    out = run(
        ["saltant", "terminate-many", uuids[0], "--from-file", "-", "--json"],
        env=saltant_env,
        stdin=f"{uuids[1]}\n{UNKNOWN}\n{uuids[2]}\n",
    )
    assert out.code == 1, out
    assert [r["input"] for r in out.records] == [uuids[0], uuids[1], UNKNOWN, uuids[2]]
    assert [r["ok"] for r in out.records] == [True, True, False, True]
    assert instance_states(platform, uuids) == ["terminated"] * 3
    assert platform.stats.count("POST", TERMINATE) == 4


# -- saltant wait ----------------------------------------------------------------------------------


def test_wait_exits_0_once_every_instance_succeeded(
    platform: LocalPlatform, saltant_env: dict[str, str], instances: list[str]
) -> None:
    out = run(
        ["saltant", "wait", *instances, "--refresh-period", "0.05", "--timeout", "30", "--json"],
        env=saltant_env,
    )
    assert out.code == 0, out
    assert [(r["input"], r["ok"], r["state"]) for r in out.records] == [
        (u, True, "successful") for u in instances
    ]
    assert instance_states(platform, instances) == ["successful"] * 3


def test_wait_times_out_with_exit_1_and_a_wait_timeout_per_unfinished_instance(
    platform: LocalPlatform, saltant_env: dict[str, str]
) -> None:
    platform.saltant.publish_delay = 10_000.0  # never picked up
    uuids = create_instances(platform, 2)
    out = invoke(
        ["saltant", "wait", *uuids, "--refresh-period", "0.05", "--timeout", "0.3", "--json"],
        env=saltant_env,
    )
    assert out.code == 1, out
    assert [r["input"] for r in out.records] == uuids
    assert all(not r["ok"] and r["error"] == "WaitTimeout" for r in out.records)
    assert platform.stats.count("GET", "/saltant/api/containertaskinstances/*/") >= 4  # polled repeatedly


def test_wait_reports_terminated_unknown_and_unfinished_instances_as_failed_in_input_order(
    platform: LocalPlatform, saltant_env: dict[str, str]
) -> None:
    platform.saltant.publish_delay = 10_000.0  # never picked up: only terminate finishes one
    uuids = create_instances(platform, 2)
    assert invoke(["saltant", "terminate-many", uuids[0]], env=saltant_env).code == 0
    out = invoke(
        [
            "saltant",
            "wait",
            uuids[0],
            UNKNOWN,
            uuids[1],
            "--refresh-period",
            "0.05",
            "--timeout",
            "0.3",
            "--json",
        ],
        env=saltant_env,
    )
    assert out.code == 1
    terminated, unknown, unfinished = out.records
    assert (terminated["input"], terminated["ok"], terminated["state"]) == (uuids[0], False, "terminated")
    assert terminated["error"] == "Unsuccessful" and "terminated" in terminated["message"]
    assert (unknown["input"], unknown["ok"], unknown["error"], unknown["status"]) == (
        UNKNOWN,
        False,
        "NotFound",
        404,
    )
    assert (unfinished["input"], unfinished["ok"], unfinished["error"]) == (uuids[1], False, "WaitTimeout")
    assert "wait: 0 ok, 3 failed" in out.stderr


# -- credentials -----------------------------------------------------------------------------------


def test_saltant_credentials_can_be_given_as_options_instead_of_the_environment(
    platform: LocalPlatform, instances: list[str]
) -> None:
    args = ["--url", platform.saltant_url, "--token", platform.saltant_token, instances[0], "--json"]
    out = invoke(["saltant", "clone-many", *args], env={})
    assert out.code == 0, out
    assert out.records[0]["ok"]


@pytest.mark.parametrize("missing", ["SALTANT_API_URL", "SALTANT_AUTH_TOKEN"])
def test_missing_saltant_credentials_are_a_usage_error_naming_the_variable(
    platform: LocalPlatform, saltant_env: dict[str, str], instances: list[str], missing: str
) -> None:
    env = {k: v for k, v in saltant_env.items() if k != missing}
    before = platform.stats.requests
    out = run(["saltant", "clone-many", instances[0]], env=env)
    assert out.code == 2
    assert "Missing option" in out.text and missing in out.text
    assert platform.stats.requests == before


@pytest.mark.parametrize("missing", ["ASTAKOS_AUTH_URL", "ASTAKOS_TOKEN"])
def test_missing_astakos_credentials_are_a_usage_error_naming_the_variable(
    platform: LocalPlatform, astakos_env: dict[str, str], missing: str
) -> None:
    env = {k: v for k, v in astakos_env.items() if k != missing}
    before = platform.stats.requests
    out = invoke(["astakos", "resolve", "--accept", "1"], env=env)
    assert out.code == 2
    assert "Missing option" in out.text and missing in out.text
    assert platform.stats.requests == before


def test_a_bad_url_is_a_usage_error(saltant_env: dict[str, str], instances: list[str]) -> None:
    out = invoke(["saltant", "clone-many", "--url", "not-a-url", instances[0]], env=saltant_env)
    assert out.code == 2
    assert "absolute http(s) URL" in out.text


# -- bad input: a usage error before any request ---------------------------------------------------


@pytest.mark.parametrize("command", ["clone-many", "terminate-many", "wait"])
def test_no_uuids_is_a_usage_error_before_any_request(
    platform: LocalPlatform, saltant_env: dict[str, str], command: str
) -> None:
    before = platform.stats.requests
    out = invoke(["saltant", command], env=saltant_env)
    assert out.code == 2
    assert "no ids given" in out.text
    assert platform.stats.requests == before


def test_empty_stdin_is_a_usage_error(platform: LocalPlatform, saltant_env: dict[str, str]) -> None:
    before = platform.stats.requests
    out = run(["saltant", "clone-many", "--from-file", "-"], env=saltant_env, stdin="\n  \n")
    assert out.code == 2
    assert "no ids given" in out.text
    assert platform.stats.requests == before


def test_a_value_that_is_not_a_uuid_is_a_usage_error_before_any_request(
    platform: LocalPlatform, saltant_env: dict[str, str], instances: list[str]
) -> None:
    before = platform.stats.requests
    out = invoke(["saltant", "clone-many", instances[0], "not-a-uuid"], env=saltant_env)
    assert out.code == 2
    assert "not a UUID" in out.text and "not-a-uuid" in out.text
    assert platform.stats.requests == before


def test_an_unreadable_file_is_a_usage_error(saltant_env: dict[str, str], tmp_path: Path) -> None:
    out = invoke(["saltant", "clone-many", "--from-file", f"{tmp_path}/nope.txt"], env=saltant_env)
    assert out.code == 2
    assert "cannot read" in out.text


# -- output streams and secrets --------------------------------------------------------------------


def test_progress_bar_is_drawn_on_stderr_only_on_a_terminal_and_json_stays_on_stdout(
    saltant_env: dict[str, str], instances: list[str]
) -> None:
    args = ["saltant", "clone-many", *instances, "--json"]
    plain = run(args, env=saltant_env)
    on_terminal = run(args, env={**saltant_env, "TTY_COMPATIBLE": "1"})
    for out in (plain, on_terminal):
        assert out.code == 0, out
        assert [r["input"] for r in out.records] == instances  # stdout: nothing but JSON lines
    assert "━" not in plain.stderr
    assert "━" in on_terminal.stderr and "3/3" in on_terminal.stderr


def test_tokens_never_appear_in_the_output(
    platform: LocalPlatform, saltant_env: dict[str, str], astakos_env: dict[str, str], instances: list[str]
) -> None:
    wrong = "feedfacefeedfacefeedfacefeedfacefeedface"
    outputs = [
        invoke(["saltant", "clone-many", instances[0], UNKNOWN], env=saltant_env),
        invoke(["saltant", "clone-many", instances[0], UNKNOWN, "--json"], env=saltant_env),
        invoke(
            ["saltant", "clone-many", *instances, "--json"], env={**saltant_env, "SALTANT_AUTH_TOKEN": wrong}
        ),
        invoke(["saltant", "clone-many", "--help"], env=saltant_env),
        invoke(["saltant", "wait", "--help"], env=saltant_env),
        invoke(["astakos", "resolve", "--accept", "12345", "--json"], env=astakos_env),
        invoke(["astakos", "resolve", "--accept", "12345"], env={**astakos_env, "ASTAKOS_TOKEN": wrong}),
        invoke(["astakos", "resolve", "--help"], env=astakos_env),
    ]
    rejected = outputs[2]
    assert rejected.code == 1 and {r["status"] for r in rejected.records} == {403}
    for out in outputs:
        for secret in (platform.saltant_token, platform.astakos_service_token, wrong):
            assert secret not in out.stdout + out.stderr


# -- astakos resolve -------------------------------------------------------------------------------


def test_resolve_accepts_and_rejects_every_serial_and_exits_0(
    platform: LocalPlatform, astakos_env: dict[str, str], serials: list[int]
) -> None:
    usage = vm_usage(platform)
    a, b, c, d = (str(s) for s in serials)
    out = run(
        ["astakos", "resolve", "--accept", f"{b},{a}", "--reject", c, "--reject", d, "--json"],
        env=astakos_env,
    )
    assert out.code == 0, out
    assert [(r["serial"], r["action"], r["ok"]) for r in out.records] == [
        (serials[1], "accept", True),
        (serials[0], "accept", True),
        (serials[2], "reject", True),
        (serials[3], "reject", True),
    ]
    assert "resolve: 2 accepted, 2 rejected, 0 failed" in out.stderr
    assert pending_commissions(platform) == []
    assert vm_usage(platform) == usage + 2


@pytest.mark.parametrize("chunk_size", [None, 1])
def test_resolve_partial_failure_exits_1_naming_each_failed_serial(
    platform: LocalPlatform, astakos_env: dict[str, str], serials: list[int], chunk_size: int | None
) -> None:
    a, b, c, _ = serials
    unknown = max(serials) + 1000
    args = ["astakos", "resolve", "--accept", f"{a},{c}", "--reject", f"{b},{c},{unknown}", "--json"]
    out = invoke(args + (["--chunk-size", str(chunk_size)] if chunk_size else []), env=astakos_env)
    assert out.code == 1, out
    records = out.records
    assert [(r["serial"], r["action"], r["ok"]) for r in records] == [
        (a, "accept", True),
        (c, "accept", False),
        (b, "reject", True),
        (c, "reject", False),
        (unknown, "reject", False),
    ]
    assert (records[1]["error"], records[1]["status"]) == ("badRequest", 400)
    assert (records[3]["error"], records[3]["status"]) == ("badRequest", 400)
    assert (records[4]["error"], records[4]["status"]) == ("itemNotFound", 404)
    assert str(unknown) in records[4]["message"]
    assert sorted(pending_commissions(platform)) == sorted([c, serials[3]])  # c was left alone


def test_resolve_without_json_lists_failures_on_stderr(
    astakos_env: dict[str, str], serials: list[int]
) -> None:
    out = invoke(["astakos", "resolve", "--accept", str(serials[0]), "--reject", "999999"], env=astakos_env)
    assert out.code == 1
    assert out.stdout == ""
    assert "failed reject 999999: itemNotFound" in out.stderr


def test_resolve_credentials_can_be_given_as_options(platform: LocalPlatform) -> None:
    (serial,) = issue_commissions(platform, 1)
    args = ["--auth-url", platform.astakos_auth_url, "--token", platform.astakos_service_token]
    out = invoke(["astakos", "resolve", *args, "--reject", str(serial), "--json"], env={})
    assert out.code == 0, out
    assert out.records == [{"serial": serial, "action": "reject", "ok": True}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give at least one serial"),
        (["--accept", ""], "give at least one serial"),
        (["--accept", "1,x"], "serials are integers"),
        (["--reject", "1.5"], "serials are integers"),
        (["--accept", "1", "--chunk-size", "0"], "chunk-size"),
    ],
)
def test_resolve_bad_serials_are_a_usage_error_before_any_request(
    platform: LocalPlatform, astakos_env: dict[str, str], args: list[str], message: str
) -> None:
    before = platform.stats.requests
    out = invoke(["astakos", "resolve", *args], env=astakos_env)
    assert out.code == 2
    assert message in out.text
    assert platform.stats.requests == before


def test_resolve_with_a_rejected_token_fails_every_serial_with_exit_1(
    platform: LocalPlatform, astakos_env: dict[str, str], serials: list[int]
) -> None:
    env = {**astakos_env, "ASTAKOS_TOKEN": "0" * 32}
    out = invoke(
        ["astakos", "resolve", "--accept", str(serials[0]), "--reject", str(serials[1]), "--json"], env=env
    )
    assert out.code == 1, out
    assert [(r["serial"], r["ok"], r["status"]) for r in out.records] == [
        (serials[0], False, 401),
        (serials[1], False, 401),
    ]
    assert sorted(pending_commissions(platform)) == sorted(serials)


def test_ctrl_c_stops_a_wait_with_exit_130_and_no_traceback(
    platform: LocalPlatform, saltant_env: dict[str, str]
) -> None:
    platform.saltant.publish_delay = 10_000.0
    uuids = create_instances(platform, 2)
    polled = platform.stats.count("GET", "/saltant/api/containertaskinstances/*/")
    args = ["saltant", "wait", *uuids, "--refresh-period", "100", "--json"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aioplatform.cli", *args],
        env=cli_env(saltant_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while platform.stats.count("GET", "/saltant/api/containertaskinstances/*/") < polled + 2:
            assert time.monotonic() < deadline and proc.poll() is None, "the wait never polled"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # now asleep until the next round, 100 s away
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in out + err
