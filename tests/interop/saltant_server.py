"""The real saltant server (Django 2.1, DRF 3.9) from its source: built once, cached, started per session.

The source is ``saltant-db498a1.tar.gz`` (saltant-org/saltant, MIT), found at
``$AIOPLATFORM_SALTANT_SRC`` (the tarball or the folder holding it) or in
``../shared/realservers/`` next to the repository. Its virtualenv (Python 3.7 from
pyenv, the server's pinned requirements installed with ``--no-deps``) and the unpacked
source live under ``~/.cache/aioplatform/saltant-<hash of the tarball>/``: built in a
temporary folder and renamed into place, under a file lock, so concurrent runs and an
interrupted build never leave a half-built cache behind.

A session gets a throw-away PostgreSQL 15 cluster (trust auth, 127.0.0.1, a free
port; run as the ``postgres`` user when we are root), ``manage.py migrate``, a
superuser ``admin`` and a normal user ``alice`` with DRF tokens, and
``manage.py runserver 127.0.0.1:PORT --noreload`` with the memory Celery broker (no
worker: instances stay ``created``, then ``published`` once the server's own status
PATCH lands). Everything is stopped and removed at the end.

With ``CI=true`` a missing prerequisite fails the tests; elsewhere they are skipped
with the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = [
    "SaltantServer",
    "SaltantUnavailable",
    "ensure_build",
    "find_source",
    "saltant_or_skip",
    "unavailable",
    "under_ci",
]

TARBALL = "saltant-db498a1.tar.gz"
PYTHON_VERSION = "3.7.16"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
REPO = Path(__file__).resolve().parents[2]
# What pip cannot build or the memory broker never uses (librabbitmq is a C accelerator for amqp).
SKIPPED_REQUIREMENTS = ("librabbitmq",)
BOOTSTRAP = ("setuptools<46", "wheel<0.38")  # MarkupSafe 1.0 builds only with these
ADMIN, USER = "admin", "alice"
PASSWORD = "saltant-interop-pw-1"

# The settings the server reads from .env (a variable in the environment wins).
_DOTENV = """IM_A_CELERY_WORKER=False
DEBUG=False
WORKER_LOGS_DIRECTORY='/tmp'
WORKER_RESULTS_DIRECTORY='/tmp'
WORKER_TEMP_DIRECTORY='/tmp'
WORKER_SINGULARITY_IMAGES_DIRECTORY='/tmp'
CELERY_BROKER_POOL_LIMIT=10
CELERY_BROKER_URL='memory://'
CELERY_TIMEZONE='UTC'
RABBITMQ_USES_SSL=False
SINGULARITY_PULL_TIMEOUT=300
SINGULARITY_PULL_RETRIES=5
PROJECT_USES_ROLLBAR=False
ROLLBAR_ACCESS_TOKEN='none'
PROJECT_NAME='saltant'
ROLLBAR_PROJECT_URL='http://127.0.0.1/'
RABBITMQ_MANAGEMENT_URL='http://127.0.0.1:15672'
FLOWER_URL='http://127.0.0.1:5555'
JWT_ACCESS_TOKEN_LIFETIME=3
JWT_REFRESH_TOKEN_LIFETIME=245
DEFAULT_TASK_CLASS='CONTAINER'
TIME_ZONE='UTC'
EMAIL_HOST='localhost'
EMAIL_HOST_USER=''
EMAIL_HOST_PASSWORD=''
EMAIL_PORT=25
EMAIL_USE_TLS=False
DEFAULT_FROM_EMAIL='noreply@localhost'
AWS_ACCESS_KEY_ID=''
AWS_SECRET_ACCESS_KEY=''
AWS_LOGS_BUCKET_NAME=''
"""

_SEED = """
from rest_framework.authtoken.models import Token
from tasksapi.models import User
admin = User.objects.create_superuser({admin!r}, 'admin@localhost', {password!r})
Token.objects.create(user=admin, key={admin_token!r})
user = User.objects.create_user({user!r}, 'alice@localhost', {password!r})
Token.objects.create(user=user, key={user_token!r})
"""


class SaltantUnavailable(RuntimeError):
    """A prerequisite is missing, the build failed or the server did not start."""


def under_ci() -> bool:
    """``CI`` set to true/1/yes (``.ci/run`` sets it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(reason: str) -> None:
    """Fail under CI (the interop tests must run there), skip elsewhere."""
    if under_ci():
        pytest.fail(f"real saltant server unavailable under CI: {reason}", pytrace=False)
    pytest.skip(f"real saltant server unavailable: {reason}")


def find_source() -> Path:
    """The source tarball: ``$AIOPLATFORM_SALTANT_SRC`` (file or folder) or ``../shared/realservers/``."""
    configured = os.environ.get("AIOPLATFORM_SALTANT_SRC")
    candidates = [Path(configured)] if configured else [REPO.parent / "shared" / "realservers"]
    for candidate in candidates:
        path = candidate / TARBALL if candidate.is_dir() else candidate
        if path.is_file():
            return path
    raise SaltantUnavailable(f"no {TARBALL} at {candidates[0]} (set AIOPLATFORM_SALTANT_SRC)")


def find_python() -> Path:
    """Python 3.7 (the server supports 3.5-3.7): pyenv's 3.7.16, else python3.7 on PATH."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for candidate in (root / "versions" / PYTHON_VERSION / "bin" / "python3.7", shutil.which("python3.7")):
        if candidate and Path(candidate).is_file():
            proc = subprocess.run([str(candidate), "--version"], capture_output=True, text=True, timeout=30)
            if proc.returncode == 0 and proc.stdout.startswith("Python 3.7"):
                return Path(candidate)
    raise SaltantUnavailable(f"no Python 3.7 (looked for pyenv's {PYTHON_VERSION} and python3.7 on PATH)")


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "aioplatform"


def build_dir(tarball: Path) -> Path:
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()[:12]
    return _cache_root() / f"saltant-{digest}"


def _run(cmd: list[str], *, timeout: float = 900, **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        shown = " ".join(cmd[:5])
        raise SaltantUnavailable(
            f"{shown} ... failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-2000:]}"
        )
    return proc  # type: ignore[no-any-return]


def ensure_build(tarball: Path) -> Path:
    """The cached build (``venv/`` and ``src/``), made now if missing. Returns its folder."""
    target = build_dir(tarball)
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / (target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").exists():
            return target
        for stale in target.parent.glob(target.name + ".building-*"):  # a killed build's leftovers:
            shutil.rmtree(stale, ignore_errors=True)  # nobody else builds while we hold the lock
        python = find_python()
        work = Path(tempfile.mkdtemp(prefix=target.name + ".building-", dir=target.parent))
        try:
            with tarfile.open(tarball) as archive:
                archive.extractall(work / "unpacked")  # our own pinned source
            (top,) = (work / "unpacked").iterdir()
            top.rename(work / "src")
            (work / "src" / ".env").write_text(_DOTENV)
            pins = (
                (work / "src" / "requirements" / "requirements-server-python3.txt").read_text().splitlines()
            )
            kept = [p for p in pins if p.strip() and p.split("==")[0].strip() not in SKIPPED_REQUIREMENTS]
            (work / "requirements.txt").write_text("\n".join(kept) + "\n")
            _run([str(python), "-m", "venv", str(work / "venv")])
            # Only bin/python is used (never the scripts' shebangs), so the venv survives the rename.
            pip = [str(work / "venv" / "bin" / "python"), "-m", "pip", "install", "-q",
                   "--disable-pip-version-check", "--no-cache-dir"]  # fmt: skip
            _run([*pip, *BOOTSTRAP])
            _run([*pip, "--no-deps", "-r", str(work / "requirements.txt")])
            (work / ".complete").write_text(f"{tarball.name}\n{PYTHON_VERSION}\n")
            shutil.rmtree(target, ignore_errors=True)
            work.rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Postgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1 (as ``postgres`` when we are root)."""

    def __init__(self) -> None:
        for tool in ("initdb", "pg_ctl", "createdb"):
            if not (PG_BIN / tool).is_file():
                raise SaltantUnavailable(f"PostgreSQL 15 is not installed ({PG_BIN / tool} is missing)")
        self.root = Path(tempfile.mkdtemp(prefix="aioplatform-saltant-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = "postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root
            runuser = shutil.which("runuser")
            if runuser is None:
                raise SaltantUnavailable("running as root without runuser to start PostgreSQL as postgres")
            shutil.chown(self.root, "postgres")
            self._as = [runuser, "-u", "postgres", "--"]
        self.log = self.root / "postgres.log"

    def start(self) -> None:
        _run([*self._as, str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", self.user,
              "-E", "UTF8", "--no-sync"], timeout=120)  # fmt: skip
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c full_page_writes=off"
        _run([*self._as, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
              "-w", "-t", "60", "start"], timeout=120)  # fmt: skip
        _run([*self._as, str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
              "-U", self.user, "saltant"], timeout=60)  # fmt: skip

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [*self._as, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                capture_output=True, timeout=60,
            )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


class SaltantServer:
    """One running saltant server: ``url`` is the API root (``http://127.0.0.1:PORT/api/``)."""

    def __init__(self, build: Path, postgres: Postgres, log: Path) -> None:
        self.build = build
        self.postgres = postgres
        self.log = log
        self.port = _free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = self.root + "/api/"
        self.admin, self.user, self.password = ADMIN, USER, PASSWORD
        self.admin_token = secrets.token_hex(20)
        self.user_token = secrets.token_hex(20)
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "saltant.settings",
            "SECRET_KEY": secrets.token_urlsafe(40),
            "ALLOWED_HOSTS": "'127.0.0.1','localhost',",
            "DATABASE_NAME": "saltant",
            "DATABASE_USER": postgres.user,
            "DATABASE_USER_PASSWORD": "",
            "DATABASE_HOST": "127.0.0.1",
            "DATABASE_PORT": str(postgres.port),
            "DJANGO_BASE_URL": self.root,
            "API_AUTH_TOKEN": self.admin_token,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            self.env.pop(key, None)
        self.proc: subprocess.Popen[bytes] | None = None

    def manage(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        python = str(self.build / "venv" / "bin" / "python")
        return _run([python, "manage.py", *args], timeout=timeout, cwd=str(self.build / "src"), env=self.env)

    def add_user(self, username: str, email: str = "", password: str | None = None) -> str:
        """A new normal user (``manage.py shell``, ~1 s); returns its DRF token."""
        token = secrets.token_hex(20)
        code = (
            "from rest_framework.authtoken.models import Token\n"
            "from tasksapi.models import User\n"
            f"user = User.objects.create_user({username!r}, {email!r}, {password or PASSWORD!r})\n"
            f"Token.objects.create(user=user, key={token!r})\n"
        )
        self.manage("shell", "-c", code, timeout=120)
        return token

    def start(self) -> None:
        self.manage("migrate", "--no-input")
        seed = _SEED.format(admin=ADMIN, user=USER, password=PASSWORD,
                            admin_token=self.admin_token, user_token=self.user_token)  # fmt: skip
        self.manage("shell", "-c", seed)
        python = str(self.build / "venv" / "bin" / "python")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [python, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
                cwd=str(self.build / "src"), env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        request = urllib.request.Request(
            self.url + "users/", headers={"Authorization": f"Token {self.admin_token}"}
        )
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SaltantUnavailable(
                    f"runserver exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}"
                )
            with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
            time.sleep(0.2)
        raise SaltantUnavailable(f"saltant did not answer within 60 s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def saltant_or_skip(log: Path) -> Iterator[SaltantServer]:
    """A running server on a fresh database (skips or fails as :func:`unavailable` says)."""
    postgres: Postgres | None = None
    server: SaltantServer | None = None
    try:
        build = ensure_build(find_source())
        postgres = Postgres()
        postgres.start()
        server = SaltantServer(build, postgres, log)
        server.start()
    except (SaltantUnavailable, OSError, subprocess.SubprocessError, tarfile.TarError, ValueError) as exc:
        if server is not None:
            server.stop()
        if postgres is not None:
            postgres.stop()
        unavailable(str(exc))
        raise  # unreachable: unavailable() always raises
    try:
        yield server
    finally:
        server.stop()
        postgres.stop()
