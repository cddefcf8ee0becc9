"""The real saltant server's harness: a cached build outside the repo, found sources, a loopback server."""

from __future__ import annotations

import io
import json
import tarfile
import urllib.request
from pathlib import Path

import pytest
from _pytest.outcomes import Failed, Skipped

from . import saltant_server as harness
from .saltant_server import SaltantServer, SaltantUnavailable

REPO = Path(__file__).resolve().parents[2]


def test_the_source_is_found_beside_the_repo_or_where_the_variable_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AIOPLATFORM_SALTANT_SRC", raising=False)
    default = REPO.parent / "shared" / "realservers" / harness.TARBALL
    if default.is_file():
        assert harness.find_source() == default
    tarball = tmp_path / harness.TARBALL
    tarball.write_bytes(b"x")
    for value in (tmp_path, tarball):
        monkeypatch.setenv("AIOPLATFORM_SALTANT_SRC", str(value))
        assert harness.find_source() == tarball
    monkeypatch.setenv("AIOPLATFORM_SALTANT_SRC", str(tmp_path / "nowhere"))
    with pytest.raises(SaltantUnavailable, match="AIOPLATFORM_SALTANT_SRC"):
        harness.find_source()


def test_the_build_is_cached_outside_the_repo_and_keyed_by_the_tarball(tmp_path: Path) -> None:
    one, two = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    one.write_bytes(b"one")
    two.write_bytes(b"two")
    path = harness.build_dir(one)
    assert REPO not in path.parents
    assert path.parent.name == "aioplatform" and path.name.startswith("saltant-")
    assert harness.build_dir(two) != path and harness.build_dir(one) == path


def test_a_failed_build_leaves_nothing_half_built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    try:
        harness.find_python()
    except SaltantUnavailable as exc:
        pytest.skip(str(exc))
    tarball = tmp_path / "broken.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:  # a source tree without its requirements file
        info = tarfile.TarInfo("saltant/manage.py")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"#"))
    stale = tmp_path / "cache" / "aioplatform" / (harness.build_dir(tarball).name + ".building-killed")
    (stale / "venv").mkdir(parents=True)  # what a build killed half-way leaves behind
    with pytest.raises(OSError):
        harness.ensure_build(tarball)
    left = sorted(p.name for p in (tmp_path / "cache" / "aioplatform").iterdir())
    assert left == [harness.build_dir(tarball).name + ".lock"]


def test_an_unavailable_server_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match="under CI"):
        harness.unavailable("no PostgreSQL")
    monkeypatch.setenv("CI", "")
    with pytest.raises(Skipped, match="no PostgreSQL"):
        harness.unavailable("no PostgreSQL")


def test_the_server_runs_django_2_1_on_loopback_with_two_users(saltant_server: SaltantServer) -> None:
    assert saltant_server.url.startswith("http://127.0.0.1:") and saltant_server.url.endswith("/api/")
    request = urllib.request.Request(
        saltant_server.url + "users/", headers={"Authorization": f"Token {saltant_server.user_token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        names = [u["username"] for u in json.load(response)["results"]]
    assert {"admin", "alice"} <= set(names)
    assert (saltant_server.build / ".complete").is_file()
    version = saltant_server.manage("shell", "-c", "import django, rest_framework; "
                                    "print(django.get_version(), rest_framework.VERSION)")  # fmt: skip
    assert version.stdout.split() == ["2.1.11", "3.9.4"]
