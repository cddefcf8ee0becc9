"""The package a user installs: built by ``python -m build``, installed into a fresh virtualenv.

The fresh virtualenv gets the wheel with ``--no-deps --no-index`` (nothing is fetched for it);
its runtime dependencies are the ones already installed here, reached through a ``.pth``
line placed *after* its own site-packages, so ``import aioplatform`` finds the wheel's copy,
never this checkout. Building needs hatchling in pip's isolated build environment (from the
index, as any sdist build does).
"""

from __future__ import annotations

import email
import re
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import aioplatform

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "https://github.com/aioplatform/aioplatform"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def wheel_of(dist: Path) -> Path:
    [wheel] = dist.glob("aioplatform-*.whl")
    return wheel


def test_the_version_is_written_in_one_place() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert not re.search(r"^version\s*=", pyproject, re.M)  # no second copy in [project]
    assert re.search(r'^dynamic = \["version"\]', pyproject, re.M)
    assert re.search(r'^\[tool\.hatch\.version\]\npath = "aioplatform/__init__\.py"', pyproject, re.M)
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", aioplatform.__version__)


def test_the_readme_renders_anywhere() -> None:
    """The README is the long description on an index: no link or image may be relative."""
    targets = re.findall(r"\]\(([^)\s]+)\)", (ROOT / "README.md").read_text())
    assert targets
    assert [t for t in targets if not t.startswith(("https://", "http://", "#"))] == []


def test_the_sdist_and_wheel_carry_the_version_license_and_metadata(dist: Path) -> None:
    [sdist] = dist.glob("aioplatform-*.tar.gz")
    assert sdist.name == f"aioplatform-{aioplatform.__version__}.tar.gz"
    with tarfile.open(sdist) as tar:
        top = f"aioplatform-{aioplatform.__version__}"
        names = {Path(n).relative_to(top).as_posix() for n in tar.getnames()}
    assert {"LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "aioplatform/py.typed"} <= names

    wheel = wheel_of(dist)
    assert wheel.name == f"aioplatform-{aioplatform.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        info = f"aioplatform-{aioplatform.__version__}.dist-info"
        files = set(zf.namelist())
        meta = email.message_from_bytes(zf.read(f"{info}/METADATA"))
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    assert "aioplatform/py.typed" in files and f"{info}/licenses/LICENSE" in files
    assert meta["Version"] == aioplatform.__version__
    classifiers = meta.get_all("Classifier")
    for wanted in ("Framework :: AsyncIO", "Typing :: Typed", "License :: OSI Approved :: MIT License",
                   "Programming Language :: Python :: 3.10"):  # fmt: skip
        assert wanted in classifiers
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert urls["Source"] == REPOSITORY and "Changelog" in urls
    assert {"testing", "docs", "cli"} <= set(meta.get_all("Provides-Extra"))
    assert "aioplatform = aioplatform.cli:main" in entry_points
    assert "aioplatform = aioplatform.testing.pytest_plugin" in entry_points


def test_the_wheel_installs_into_a_fresh_virtualenv_and_every_module_imports(
    dist: Path, tmp_path: Path
) -> None:
    wheel = wheel_of(dist)
    with zipfile.ZipFile(wheel) as zf:
        modules = sorted(
            n.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            for n in zf.namelist() if n.startswith("aioplatform/") and n.endswith(".py")
        )  # fmt: skip
    assert {"aioplatform", "aioplatform.agave", "aioplatform.testing.pytest_plugin"} <= set(modules)

    env = tmp_path / "venv"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    site = Path(subprocess.check_output(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
    ).strip())  # fmt: skip
    # The runtime dependencies already installed here, after the fresh site-packages.
    (site / "zz_runtime_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
         str(wheel)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

    check = (
        "import importlib, sys\n"
        f"modules = {modules!r}\n"
        "for name in modules:\n"
        "    importlib.import_module(name)\n"
        "import aioplatform\n"
        "print(aioplatform.__file__)\n"
        "print(aioplatform.__version__)\n"
    )
    done = subprocess.run([python, "-c", check], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    where, version = done.stdout.split()
    assert Path(where).is_relative_to(site), where  # the wheel's copy, not this checkout
    assert version == aioplatform.__version__

    done = subprocess.run(
        [env / "bin" / "aioplatform", "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "serve" in done.stdout and "demo" in done.stdout
