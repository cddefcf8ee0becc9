"""What agavepy and the Tapis CLI leave behind: the ``AGAVE_*`` variables and ``~/.agave/current``.

``~/.agave/current`` (in ``$AGAVE_CACHE_DIR`` when that is set) is one JSON object
(older CLIs wrote a list of them) in the CLI's spelling::

    {"tenantid": "tacc.prod", "baseurl": "https://api.tacc.utexas.edu", "devurl": "",
     "apikey": "...", "apisecret": "...", "username": "jdoe",
     "access_token": "...", "refresh_token": "...",
     "created_at": "1606906800", "expires_in": "14400", "expires_at": "Wed Dec  2 14:20:00 2020"}

The access token expires at ``created_at + expires_in`` (``expires_at`` is a display
string in local time). :func:`write_tokens` writes a refreshed pair back atomically
(mode 0600), keeping every other key as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .auth import TokenSet

__all__ = ["ENV", "cache_path", "credentials_from_cache", "credentials_from_env", "write_tokens"]

# The variables read by from_env, first found wins: agavepy's and the Agave CLI's AGAVE_*
# names, then agavepy 1.0's TAPIS_* ones.
ENV: dict[str, tuple[str, ...]] = {
    "base_url": ("AGAVE_BASE_URL", "AGAVE_TENANT_BASEURL", "TAPIS_BASE_URL"),
    "token": ("AGAVE_TOKEN", "AGAVE_ACCESS_TOKEN", "TAPIS_TOKEN"),
    "refresh_token": ("AGAVE_REFRESH_TOKEN", "TAPIS_REFRESH_TOKEN"),
    "api_key": ("AGAVE_CLIENT_KEY", "AGAVE_API_KEY", "TAPIS_API_KEY"),
    "api_secret": ("AGAVE_CLIENT_SECRET", "AGAVE_API_SECRET", "TAPIS_API_SECRET"),
    "username": ("AGAVE_USERNAME", "TAPIS_USERNAME"),
    "password": ("AGAVE_PASSWORD", "TAPIS_PASSWORD"),
}
CACHE_DIR_VARIABLES = ("AGAVE_CACHE_DIR", "TAPIS_CACHE_DIR")

# The cache's spellings (the CLI's first, agavepy's .agpy second) of each client argument.
_CACHE_KEYS: dict[str, tuple[str, ...]] = {
    "base_url": ("baseurl", "api_server"),
    "token": ("access_token", "token"),
    "refresh_token": ("refresh_token",),
    "api_key": ("apikey", "api_key"),
    "api_secret": ("apisecret", "api_secret"),
    "username": ("username",),
}


def credentials_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The client arguments found in the environment (empty values count as absent)."""
    env = os.environ if environ is None else environ
    found: dict[str, str] = {}
    for argument, names in ENV.items():
        for name in names:
            value = env.get(name, "").strip()
            if value:
                found[argument] = value
                break
    return found


def cache_path(path: str | os.PathLike[str] | None = None) -> Path:
    """``path``, or ``current`` in ``$AGAVE_CACHE_DIR`` (or ``$TAPIS_CACHE_DIR``), or
    ``~/.agave/current``."""
    if path is not None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a path or None, got {type(path).__name__}")
        return Path(path)
    for name in CACHE_DIR_VARIABLES:
        directory = os.environ.get(name, "").strip()
        if directory:
            return Path(directory).expanduser() / "current"
    return Path("~/.agave/current").expanduser()


def _read(path: Path) -> tuple[Any, dict[str, Any]]:
    """The whole document and the entry in use (the first one of a list)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no Agave credential cache at {path}") from None
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"the Agave credential cache {path} is not JSON") from None
    entry = document[0] if isinstance(document, list) and document else document
    if not isinstance(entry, dict):
        raise ValueError(f"the Agave credential cache {path} holds no credential object")
    return document, entry


def _number(value: object) -> float | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _expiry(entry: Mapping[str, Any]) -> float | None:
    created, lifetime = _number(entry.get("created_at")), _number(entry.get("expires_in"))
    if created is not None and lifetime is not None:
        return created + lifetime
    for key in ("expiration", "expires_at"):
        if (number := _number(entry.get(key))) is not None:
            return number
    text = entry.get("expires_at")
    if isinstance(text, str) and text.strip():
        words = text.split()
        if len(words) == 6:  # "%a %b %d %H:%M:%S %Z %Y": the zone name strptime cannot read
            del words[4]
        try:
            return time.mktime(time.strptime(" ".join(words), "%a %b %d %H:%M:%S %Y"))
        except ValueError:
            return None
    return None


def credentials_from_cache(path: Path) -> dict[str, Any]:
    """The client arguments in the cache file (``expires_at`` as epoch seconds when known)."""
    _, entry = _read(path)
    found: dict[str, Any] = {}
    for argument, keys in _CACHE_KEYS.items():
        for key in keys:
            value = entry.get(key)
            if isinstance(value, str) and value.strip():
                found[argument] = value.strip()
                break
    expires_at = _expiry(entry)
    if expires_at is not None and "token" in found:
        found["expires_at"] = expires_at
    return found


def _like(old: object, value: float) -> object:
    """``value`` written the way the file wrote it (the CLI writes strings, agavepy ints)."""
    return str(int(value)) if isinstance(old, str) else int(value)


def write_tokens(path: Path, tokens: TokenSet) -> None:
    """Write a refreshed pair into the cache at ``path``, atomically and readable by its
    owner only, keeping every other key (a missing file is created)."""
    try:
        document, entry = _read(path)
    except FileNotFoundError:
        document = entry = {}
    token_key = "token" if "token" in entry and "access_token" not in entry else "access_token"
    entry[token_key] = tokens.access_token
    if tokens.refresh_token:
        entry["refresh_token"] = tokens.refresh_token
    created = tokens.created_at if tokens.created_at is not None else time.time()
    entry["created_at"] = _like(entry.get("created_at", ""), created)
    if tokens.expires_in is not None:
        entry["expires_in"] = _like(entry.get("expires_in", ""), tokens.expires_in)
    if tokens.expires_at is not None:
        entry["expires_at"] = time.ctime(tokens.expires_at)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
