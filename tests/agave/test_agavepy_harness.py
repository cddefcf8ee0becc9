"""The agavepy interop harness: it fails under CI and skips elsewhere, and agavepy's
token cache goes to a throw-away HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _pytest.outcomes import Failed, Skipped

from . import agavepy_harness as harness


def test_unavailable_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("true", "1"):
        monkeypatch.setenv("CI", value)
        with pytest.raises(Failed, match="agavepy interop unavailable under CI: port 443"):
            harness.unavailable("port 443")
    monkeypatch.delenv("CI")
    with pytest.raises(Skipped, match="port 443"):
        harness.unavailable("port 443")


def test_platform_runs_agavepy_under_a_fresh_home_and_restores_it(tmp_path: Path) -> None:
    home = os.environ.get("HOME")
    with harness.agavepy_platform(tmp_path) as platform:
        assert os.environ["HOME"] == str(tmp_path)
        assert os.environ["AGAVE_CACHE_DIR"] == str(tmp_path / ".agave")
        assert platform.agave_tls_url.startswith("https://127.0.")
        assert ":" not in platform.agave_tls_url.removeprefix("https://")  # port 443, as agavepy needs
    assert os.environ.get("HOME") == home
