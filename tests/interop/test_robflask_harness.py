"""The interop harness: the pinned rob-flask runs from a cached virtualenv outside the repo."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from _pytest.outcomes import Failed, Skipped

from . import robflask as harness
from .robflask import PINS, RobFlask

REPO = Path(__file__).resolve().parents[2]


def test_the_virtualenv_is_cached_outside_the_repo_and_keyed_by_the_pins() -> None:
    path = harness.venv_dir()
    assert REPO not in path.parents
    assert path.parent.name == "aioplatform" and path.name.startswith("robflask-venv-")
    assert "rob-flask==0.6.0" in PINS and "flowserv-core==0.8.1" in PINS


def test_an_unavailable_server_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("true", "True", "1"):
        monkeypatch.setenv("CI", value)
        with pytest.raises(Failed, match="under CI"):
            harness.unavailable("no network")
    for value in ("false", ""):
        monkeypatch.setenv("CI", value)
        with pytest.raises(Skipped, match="no network"):
            harness.unavailable("no network")
    monkeypatch.delenv("CI")
    with pytest.raises(Skipped, match="no network"):
        harness.unavailable("no network")


def test_the_server_runs_the_pinned_versions_on_loopback(robflask: RobFlask) -> None:
    assert robflask.url.startswith("http://127.0.0.1:") and robflask.url.endswith("/flowserv/api/v1/")
    with urllib.request.urlopen(robflask.url, timeout=10) as response:
        descriptor = json.load(response)
        server = response.headers["Server"]
    assert descriptor["version"] == "0.8.1" and "Werkzeug/2.0.3" in server
    with urllib.request.urlopen(robflask.url + "workflows", timeout=10) as response:
        workflows = json.load(response)["workflows"]
    assert [w["id"] for w in workflows] == [robflask.workflow_id, harness.PARAMS_WORKFLOW_ID]
    frozen = (harness.venv_dir() / ".complete").read_text().split()
    assert frozen == list(PINS)
