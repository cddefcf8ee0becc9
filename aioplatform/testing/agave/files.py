"""The embedded Agave's files service (agave.md §6.3): a tree per storage system on disk,
its metadata (owner, uuid, history, permissions) in SQLite.

Each system's tree lives under ``platform.data_dir / "agave" / <system id>``; file paths
are relative to that root. Both path families are served: ``/files/v2/<kind>/system/
{systemId}/{path}`` and ``/files/v2/<kind>/{path}`` on the user's default storage system.

- Listings answer ``"."`` (the directory itself) first, then the children by name; the
  ``"."`` entry counts against ``limit`` at ``offset`` 0. Listing a file answers just it.
- Uploads (multipart part ``fileToUpload``) are streamed to disk, never held in memory;
  the stored name is the ``fileName`` field if given, else the part's filename. The
  answer is 202 with a ``STAGING_QUEUED`` LogicalFile; the bytes are in place when it is
  sent and the history moves to ``STAGING_COMPLETED`` shortly after (``staging_delay``).
- ``urlToIngest`` imports fetch **only http(s) URLs on a loopback address** (anything
  else is a 400): a local emulator must never be made to fetch from the internet. The
  fetch runs in the background, as Agave's transfers do.
- Paths are checked segment by segment: ``.``/``..`` is a 400 and a symbolic link
  anywhere on the way is a 404, so no request reaches outside the system's root.
- Permissions: a system's owner and a path's owner (or an owner of any directory
  above it) have ALL; others what ``/files/v2/pems`` granted them on the path or,
  ``recursive``, above it; paths nobody owns (a public system's root) are open to all.

Other embedded resources use :func:`put_file`, :func:`listing_for` and
:func:`media_response` (jobs place and serve their outputs with them).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import mimetypes
import os
import secrets
import shutil
import sqlite3
import stat
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import aiohttp
from aiohttp import BodyPartReader, web

from .defaults import DEFAULT_STORAGE_SYSTEM
from .wire import (
    AgaveError,
    agave_uuid,
    api_base,
    iso_millis,
    json_body,
    matches_search,
    ok,
    page,
    page_args,
    rlike_filter,
    search_terms,
    split_rlike,
    user_of,
)

if TYPE_CHECKING:
    from .service import AgaveService

__all__ = ["install", "listing_for", "media_response", "put_file"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS agave_files_entries (
    system_id TEXT NOT NULL, path TEXT NOT NULL, owner TEXT NOT NULL, uuid TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'STAGING_COMPLETED', source TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (system_id, path));
-- Staging events find their entry by uuid (it may have been renamed or moved meanwhile).
CREATE INDEX IF NOT EXISTS agave_files_entries_uuid ON agave_files_entries (system_id, uuid);
CREATE TABLE IF NOT EXISTS agave_files_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, system_id TEXT NOT NULL, path TEXT NOT NULL,
    status TEXT NOT NULL, created TEXT NOT NULL, created_by TEXT NOT NULL, description TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS agave_files_history_path ON agave_files_history (system_id, path);
CREATE TABLE IF NOT EXISTS agave_files_pems (
    system_id TEXT NOT NULL, path TEXT NOT NULL, username TEXT NOT NULL,
    read INTEGER NOT NULL, write INTEGER NOT NULL, execute INTEGER NOT NULL,
    recursive INTEGER NOT NULL, PRIMARY KEY (system_id, path, username));
"""

CHUNK = 256 * 1024
# The most a body read whole (JSON, a form, a multipart text field) may hold.
SMALL_BODY = 1024 * 1024
# Seconds between an upload's 202 and its STAGING_COMPLETED history event.
STAGING_DELAY = 0.05

Bits = tuple[bool, bool, bool]  # read, write, execute
ALL: Bits = (True, True, True)
NONE: Bits = (False, False, False)
_PERMISSION_BITS: dict[str, Bits] = {
    "ALL": ALL,
    "OWNER": ALL,
    "READ_WRITE": (True, True, False),
    "READ_EXECUTE": (True, False, True),
    "WRITE_EXECUTE": (False, True, True),
    "READ": (True, False, False),
    "WRITE": (False, True, False),
    "EXECUTE": (False, False, True),
    "NONE": NONE,
}
_BITS_NAME = {bits: name for name, bits in _PERMISSION_BITS.items() if name != "OWNER"}
_LISTING_SEARCH = ("name", "path", "lastModified", "length", "permissions", "format", "mimeType", "type")
_PEMS_SEARCH = ("username", "recursive")


# -- the per-service state -------------------------------------------------------------------


class _Files:
    """What one AgaveService's files resource keeps besides the store: the disk root,
    background staging tasks."""

    def __init__(self, service: AgaveService):
        assert service.platform.data_dir is not None, "the platform has no data directory"
        self.service = service
        self.root = Path(service.platform.data_dir) / "agave"
        self.staging = self.root / ".staging"
        self.staging_delay = STAGING_DELAY
        self.tasks: set[asyncio.Task[None]] = set()

    def system_dir(self, system_id: str) -> Path:
        # One directory per system; an id can never name a dot directory or contain "/".
        return self.root / quote(system_id, safe="")

    def spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


_STATE: weakref.WeakKeyDictionary[AgaveService, _Files] = weakref.WeakKeyDictionary()


def _state(service: AgaveService) -> _Files:
    state = _STATE.get(service)
    if state is None:
        raise RuntimeError("the files resource is not installed on this Agave service")
    return state


# -- paths -----------------------------------------------------------------------------------


def _rel(raw: str) -> str:
    """A request's file path as the system-relative form ``a/b`` (``""`` = root).

    ``.``/``..`` segments are refused (400), as is a NUL byte."""
    parts = [p for p in raw.replace("\\", "/").split("/") if p]
    for p in parts:
        if p in (".", "..") or "\x00" in p:
            raise AgaveError(400, f"Invalid file path {raw!r}: '.' and '..' segments are not allowed")
    return "/".join(parts)


def _join(*paths: str) -> str:
    return "/".join(p for p in paths if p)


def _parent(rel: str) -> str:
    return rel.rpartition("/")[0]


def _name(rel: str) -> str:
    return rel.rpartition("/")[2]


def _chain(rel: str) -> list[str]:
    """``rel`` and every directory above it, up to the root ``""``."""
    chain = [rel]
    while rel:
        rel = _parent(rel)
        chain.append(rel)
    return chain


def _under(rel: str) -> tuple[str, tuple[Any, ...]]:
    """SQL matching ``path`` equal to ``rel`` or anywhere below it."""
    if not rel:
        return "1", ()
    return "(path = ? OR substr(path, 1, ?) = ?)", (rel, len(rel) + 1, rel + "/")


def _disk(state: _Files, system_id: str, rel: str) -> Path:
    """The on-disk path of ``rel``; a symbolic link on the way is a 404 (never followed)."""
    root = state.system_dir(system_id)
    root.mkdir(parents=True, exist_ok=True)
    current = root
    for part in rel.split("/") if rel else ():
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return root.joinpath(*rel.split("/"))
        if stat.S_ISLNK(mode):
            raise AgaveError(404, f"File/folder does not exist: /{rel}")
    return current


def _kind(path: Path) -> str | None:
    """``"dir"``, ``"file"`` or None (absent or something else)."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    return None


# -- systems and permissions (on the store thread) -------------------------------------------


def _systems() -> Any:
    """The systems resource module if it is installed (it provides ``lookup_system``);
    until then only DEFAULT_STORAGE_SYSTEM exists."""
    try:
        from . import systems  # type: ignore[attr-defined,unused-ignore]
        from .resources import INSTALLERS
    except ImportError:
        return None
    installed = getattr(systems, "install", None) in INSTALLERS
    return systems if installed and hasattr(systems, "lookup_system") else None


def _resolve_system(conn: sqlite3.Connection, system_id: str | None, username: str) -> tuple[str, str | None]:
    """(system id, its owner) for a visible system; None asks for the user's default."""
    systems = _systems()
    if system_id is None:
        default = getattr(systems, "default_storage_system", None) if systems else None
        system_id = default(conn, username) if default else DEFAULT_STORAGE_SYSTEM
        if not system_id:
            raise AgaveError(404, f"No default storage system found for user {username}")
    if systems is None:
        if system_id != DEFAULT_STORAGE_SYSTEM:
            raise AgaveError(404, f"No system found for user {username} with id {system_id}")
        return system_id, None
    doc = systems.lookup_system(conn, system_id, username)
    if doc is None:
        raise AgaveError(404, f"No system found for user {username} with id {system_id}")
    owner = doc.get("owner")
    return system_id, owner if isinstance(owner, str) else None


def _rights(conn: sqlite3.Connection, system_id: str, system_owner: str | None, rel: str, user: str) -> Bits:
    if user == system_owner:
        return ALL
    chain = _chain(rel)
    marks = ",".join("?" * len(chain))
    owners = {
        str(r[0])
        for r in conn.execute(
            f"SELECT owner FROM agave_files_entries WHERE system_id = ? AND path IN ({marks})",
            (system_id, *chain),
        )
    }
    if not owners or user in owners:
        return ALL
    rows = {
        str(r["path"]): r
        for r in conn.execute(
            f"SELECT * FROM agave_files_pems WHERE system_id = ? AND username = ? AND path IN ({marks})",
            (system_id, user, *chain),
        )
    }
    for path in chain:  # the nearest grant wins
        row = rows.get(path)
        if row is not None and (path == rel or row["recursive"]):
            return bool(row["read"]), bool(row["write"]), bool(row["execute"])
    return NONE


def _existing(state: _Files, system_id: str, rel: str) -> tuple[Path, str]:
    """The on-disk path of ``rel`` and its kind (``"dir"``/``"file"``); absent, a 404."""
    target = _disk(state, system_id, rel)
    kind = _kind(target)
    if kind is None:
        raise AgaveError(404, f"File/folder does not exist: /{rel}")
    return target, kind


def _require_all(bits: Bits, user: str, rel: str) -> None:
    """Changing a path's permissions takes them all (its owner's, or a system admin's)."""
    if bits != ALL:
        raise AgaveError(403, f"User {user} does not have permission to change permissions on /{rel}")


def _require(bits: Bits, what: str, rel: str, *, status: int = 403) -> None:
    names = {"read": 0, "write": 1, "execute": 2}
    if not bits[names[what]]:
        raise AgaveError(status, f"User does not have {what} permission on /{rel}")


def _history(conn: sqlite3.Connection, system_id: str, rel: str, status: str, user: str, text: str) -> None:
    conn.execute(
        "INSERT INTO agave_files_history (system_id, path, status, created, created_by, description) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (system_id, rel, status, iso_millis(), user, text),
    )


def _record(
    conn: sqlite3.Connection,
    system_id: str,
    rel: str,
    owner: str,
    *,
    status: str = "STAGING_COMPLETED",
    source: str = "",
) -> tuple[str, bool]:
    """Create (or keep) ``rel``'s entry: (its uuid, whether it is new)."""
    row = conn.execute(
        "SELECT uuid FROM agave_files_entries WHERE system_id = ? AND path = ?", (system_id, rel)
    ).fetchone()
    if row is not None:
        conn.execute(
            "UPDATE agave_files_entries SET status = ?, source = ? WHERE system_id = ? AND path = ?",
            (status, source, system_id, rel),
        )
        return str(row[0]), False
    uuid = agave_uuid("file")
    conn.execute(
        "INSERT INTO agave_files_entries (system_id, path, owner, uuid, status, source) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (system_id, rel, owner, uuid, status, source),
    )
    return uuid, True


def _forget(conn: sqlite3.Connection, system_id: str, rel: str) -> None:
    where, args = _under(rel)
    for table in ("agave_files_entries", "agave_files_history", "agave_files_pems"):
        conn.execute(f"DELETE FROM {table} WHERE system_id = ? AND {where}", (system_id, *args))


def _move_records(conn: sqlite3.Connection, system_id: str, old: str, new: str) -> None:
    _forget(conn, system_id, new)
    where, args = _under(old)
    for table in ("agave_files_entries", "agave_files_history", "agave_files_pems"):
        conn.execute(
            f"UPDATE {table} SET path = ? || substr(path, ?) WHERE system_id = ? AND {where}",
            (new, len(old) + 1, system_id, *args),
        )


# -- wire shapes -----------------------------------------------------------------------------


def _href(base: str, kind: str, system_id: str, rel: str) -> str:
    # Agave's own hrefs carry a double slash between the system and the absolute path.
    return f"{base}/files/v2/{kind}/system/{quote(system_id, safe='')}/{quote('/' + rel)}"


def _permission_name(bits: Bits) -> str:
    return _BITS_NAME[bits]


def _listing_entry(
    base: str, system_id: str, rel: str, path: Path, bits: Bits, *, dot: bool, uuid: str | None
) -> dict[str, Any]:
    st = os.lstat(path)
    is_dir = stat.S_ISDIR(st.st_mode)
    name = "." if dot else (_name(rel) or "/")
    entry: dict[str, Any] = {
        "name": name,
        "path": "/" + rel,
        "lastModified": iso_millis(st.st_mtime),
        "length": 4096 if is_dir else st.st_size,
        "permissions": _permission_name(bits),
        "format": "folder" if is_dir else "raw",
        "mimeType": "text/directory" if is_dir else _mime(rel),
        "type": "dir" if is_dir else "file",
        "system": system_id,
        "_links": {
            "self": {"href": _href(base, "media", system_id, rel)},
            "system": {"href": f"{base}/systems/v2/{quote(system_id, safe='')}"},
        },
    }
    if dot:
        association = quote(f'{{"associationIds":"{uuid or ""}"}}', safe="")
        entry["_links"]["metadata"] = {"href": f"{base}/meta/v2/data?q={association}"}
        entry["_links"]["history"] = {"href": _href(base, "history", system_id, rel)}
    return entry


def _mime(rel: str) -> str:
    return mimetypes.guess_type(_name(rel))[0] or "application/octet-stream"


def _logical_file(
    base: str, system_id: str, rel: str, *, uuid: str, owner: str, status: str, source: str, is_dir: bool
) -> dict[str, Any]:
    return {
        "name": _name(rel) or "/",
        "uuid": uuid,
        "owner": owner,
        "internalUsername": None,
        "lastModified": iso_millis(),
        "source": source,
        "path": "/" + rel,
        "status": status,
        "systemId": system_id,
        "nativeFormat": "dir" if is_dir else "raw",
        "_links": {
            "self": {"href": _href(base, "media", system_id, rel)},
            "system": {"href": f"{base}/systems/v2/{quote(system_id, safe='')}"},
            "profile": {"href": f"{base}/profiles/v2/{quote(owner, safe='')}"},
            "history": {"href": _href(base, "history", system_id, rel)},
            "notification": [],
        },
    }


def _permission_doc(
    base: str, system_id: str, rel: str, username: str, bits: Bits, recursive: bool
) -> dict[str, Any]:
    return {
        "username": username,
        "internalUsername": None,
        "permission": {"read": bits[0], "write": bits[1], "execute": bits[2]},
        "recursive": recursive,
        "_links": {
            "self": {
                "href": _href(base, "pems", system_id, rel) + f"?username.eq={quote(username, safe='')}"
            },
            "file": {"href": _href(base, "media", system_id, rel)},
            "profile": {"href": f"{base}/profiles/v2/{quote(username, safe='')}"},
        },
    }


# -- the contract other resources use -------------------------------------------------------


async def put_file(service: AgaveService, system_id: str, path: str, data: bytes, owner: str) -> None:
    """Write ``data`` at ``path`` on ``system_id`` as ``owner`` (parent directories are
    created and owned by ``owner`` too), with a CREATED or OVERWRITTEN history event."""
    state = _state(service)
    rel = _rel(path)
    if not rel:
        raise ValueError("path must name a file, not the system root")
    target = _disk(state, system_id, rel)
    created_dirs: list[str] = []
    for directory in reversed(_chain(_parent(rel))):
        if directory and _kind(_disk(state, system_id, directory)) is None:
            created_dirs.append(directory)
    await asyncio.to_thread(_write_atomic, state, target, data)

    def record(conn: sqlite3.Connection) -> None:
        for directory in created_dirs:
            _record(conn, system_id, directory, owner)
        _, new = _record(conn, system_id, rel, owner)
        if new:
            _history(conn, system_id, rel, "CREATED", owner, "New file/folder created")
        else:
            _history(conn, system_id, rel, "OVERWRITTEN", owner, "File/folder overwritten")

    await service.store.run(record)


def _write_atomic(state: _Files, target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    state.staging.mkdir(parents=True, exist_ok=True)
    temp = state.staging / secrets.token_hex(8)
    temp.write_bytes(data)
    os.replace(temp, target)


async def listing_for(
    service: AgaveService, request: web.Request, system_id: str | None, path: str, username: str
) -> list[dict[str, Any]]:
    """The FileListing JSON list of ``path`` for ``username``: ``"."`` first for a directory,
    just the file for a file; paged by the request's ``limit``/``offset`` (the ``"."``
    entry counts at offset 0) and filtered by its search terms. ``system_id`` None is the
    user's default storage system. Raises :class:`AgaveError` (404 unknown, 403 denied)."""
    state = _state(service)
    rel = _rel(path)
    base = api_base(request)
    limit, offset = page_args(request)
    every_term = search_terms(request.query, _LISTING_SEARCH)
    terms, patterns = split_rlike(every_term)

    def access(conn: sqlite3.Connection) -> tuple[str, str | None, Bits]:
        sid, owner = _resolve_system(conn, system_id, username)
        return sid, owner, _rights(conn, sid, owner, rel, username)

    sid, system_owner, bits = await service.store.run(access)
    target, kind = _existing(state, sid, rel)
    _require(bits, "read", rel)
    if kind == "file":
        names: list[str] = []
    else:
        names = sorted(
            entry.name
            for entry in await asyncio.to_thread(lambda: list(os.scandir(target)))
            if not entry.is_symlink()
            and (entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False))
        )
    rels = [rel] + [_join(rel, n) for n in names]
    # Without search terms only the page is looked at; with them every entry is.
    window = rels if every_term else rels[offset : offset + limit]

    def rights(conn: sqlite3.Connection) -> list[tuple[Bits, str | None]]:
        out = []
        for r in window:
            row = conn.execute(
                "SELECT uuid FROM agave_files_entries WHERE system_id = ? AND path = ?", (sid, r)
            ).fetchone()
            out.append((_rights(conn, sid, system_owner, r, username), None if row is None else str(row[0])))
        return out

    looked = await service.store.run(rights)
    entries, candidates = [], []
    for index, (r, (r_bits, uuid)) in enumerate(zip(window, looked, strict=True)):
        is_dot = kind == "dir" and r == rel and index == 0 and (bool(every_term) or offset == 0)
        try:
            entry = _listing_entry(base, sid, r, _disk(state, sid, r), r_bits, dot=is_dot, uuid=uuid)
        except (FileNotFoundError, AgaveError):
            continue  # removed while listing
        if is_dot:
            entries.append(entry)  # the "." entry (first) is kept whatever the terms
        elif not terms or matches_search(entry, terms):
            candidates.append((entry, entry))
    # rlike terms are matched on a worker thread: a large directory never stalls the loop.
    entries += await rlike_filter(candidates, patterns)
    return entries[offset : offset + limit] if every_term else entries


async def media_response(
    service: AgaveService, request: web.Request, system_id: str | None, path: str, username: str
) -> web.StreamResponse:
    """A file's bytes, streamed from disk (``Content-Type`` from its name; ranges honoured).
    A directory is a 400, an unknown path a 404, no read permission a 403."""
    state = _state(service)
    rel = _rel(path)

    def access(conn: sqlite3.Connection) -> tuple[str, Bits]:
        sid, owner = _resolve_system(conn, system_id, username)
        return sid, _rights(conn, sid, owner, rel, username)

    sid, bits = await service.store.run(access)
    target, kind = _existing(state, sid, rel)
    _require(bits, "read", rel)
    if kind == "dir":
        raise AgaveError(400, f"/{rel} is a directory: only files can be downloaded")
    return web.FileResponse(target, chunk_size=CHUNK, headers={"Content-Type": _mime(rel)})


# -- handlers --------------------------------------------------------------------------------

Handler = Callable[[web.Request, str | None, str], Awaitable[web.StreamResponse]]



def _check_small(request: web.Request) -> None:
    """Bodies read whole (JSON, forms) must be small and say how small: the service accepts
    uploads of any size, so this is where a huge body read into memory is refused."""
    if request.body_exists and (request.content_length is None or request.content_length > SMALL_BODY):
        raise AgaveError(413, f"A request body other than a file upload must be at most {SMALL_BODY} bytes")


async def _fields(request: web.Request) -> dict[str, Any]:
    """A manage or pems body: JSON, or the same keys form-encoded (the SDK helpers' way)."""
    _check_small(request)
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    body = await json_body(request)
    if not isinstance(body, dict):
        raise AgaveError(400, "The request body must be a JSON object")
    return body


class _Handlers:
    def __init__(self, service: AgaveService, state: _Files):
        self.service = service
        self.state = state

    async def _access(self, system_id: str | None, rel: str, user: str) -> tuple[str, str | None, Bits]:
        def access(conn: sqlite3.Connection) -> tuple[str, str | None, Bits]:
            sid, owner = _resolve_system(conn, system_id, user)
            return sid, owner, _rights(conn, sid, owner, rel, user)

        return await self.service.store.run(access)

    # GET listings
    async def listing(self, request: web.Request, system_id: str | None, path: str) -> web.StreamResponse:
        return ok(request, await listing_for(self.service, request, system_id, path, user_of(request)))

    # GET media
    async def download(self, request: web.Request, system_id: str | None, path: str) -> web.StreamResponse:
        return await media_response(self.service, request, system_id, path, user_of(request))

    # DELETE media
    async def delete(self, request: web.Request, system_id: str | None, path: str) -> web.StreamResponse:
        user, rel = user_of(request), _rel(path)
        sid, _, bits = await self._access(system_id, rel, user)
        target, kind = _existing(self.state, sid, rel)
        if not rel:
            raise AgaveError(403, "The root of a system cannot be deleted")
        _require(bits, "write", rel, status=401)  # Agave answers a denied delete with 401
        await asyncio.to_thread(shutil.rmtree if kind == "dir" else os.unlink, target)
        await self.service.store.run(lambda conn: _forget(conn, sid, rel))
        return ok(request, None)

    # GET history
    async def history(self, request: web.Request, system_id: str | None, path: str) -> web.StreamResponse:
        user, rel = user_of(request), _rel(path)
        sid, _, bits = await self._access(system_id, rel, user)
        limit, offset = page_args(request)

        def events(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            # A path being imported has a history before its bytes arrive.
            known = conn.execute(
                "SELECT 1 FROM agave_files_entries WHERE system_id = ? AND path = ?", (sid, rel)
            ).fetchone()
            if known is None and _kind(_disk(self.state, sid, rel)) is None:
                raise AgaveError(404, f"File/folder does not exist: /{rel}")
            _require(bits, "read", rel)
            rows = conn.execute(
                "SELECT status, created, created_by, description FROM agave_files_history "
                "WHERE system_id = ? AND path = ? ORDER BY id LIMIT ? OFFSET ?",
                (sid, rel, limit, offset),
            ).fetchall()
            return [{"status": r[0], "created": r[1], "createdBy": r[2], "description": r[3]} for r in rows]

        return ok(request, await self.service.store.run(events))

    # GET pems
    async def list_pems(self, request: web.Request, system_id: str | None, path: str) -> web.StreamResponse:
        user, rel = user_of(request), _rel(path)
        sid, system_owner, bits = await self._access(system_id, rel, user)
        _existing(self.state, sid, rel)
        _require(bits, "read", rel)
        base = api_base(request)
        terms, patterns = split_rlike(search_terms(request.query, _PEMS_SEARCH))

        def pems(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            row = conn.execute(
                "SELECT owner FROM agave_files_entries WHERE system_id = ? AND path = ?", (sid, rel)
            ).fetchone()
            owner = str(row[0]) if row is not None else system_owner
            docs = []
            if owner:
                docs.append(_permission_doc(base, sid, rel, owner, ALL, True))
            for r in conn.execute(
                "SELECT * FROM agave_files_pems WHERE system_id = ? AND path = ? ORDER BY username",
                (sid, rel),
            ):
                if r["username"] != owner:
                    bits = (bool(r["read"]), bool(r["write"]), bool(r["execute"]))
                    docs.append(_permission_doc(base, sid, rel, r["username"], bits, bool(r["recursive"])))
            return [d for d in docs if matches_search(d, terms)]

        # rlike terms are matched after the store's transaction, off its thread.
        found = await rlike_filter([(d, d) for d in await self.service.store.run(pems)], patterns)
        return ok(request, page(request, found))

    # POST pems
    async def update_pems(self, request: web.Request, system_id: str | None, path: str) -> web.StreamResponse:
        user, rel = user_of(request), _rel(path)
        body = await _fields(request)
        grantee = body.get("username")
        if not isinstance(grantee, str) or not grantee.strip():
            raise AgaveError(400, "No username specified. Please specify a valid username")
        permission = body.get("permission")
        if not isinstance(permission, str) or permission.upper() not in _PERMISSION_BITS:
            raise AgaveError(
                400, f"Invalid permission value {permission!r}: one of {', '.join(_BITS_NAME.values())}"
            )
        bits = _PERMISSION_BITS[permission.upper()]
        recursive_value = body.get("recursive", False)
        recursive = recursive_value is True or str(recursive_value).lower() in ("true", "1")
        sid, _, caller = await self._access(system_id, rel, user)
        _existing(self.state, sid, rel)
        _require_all(caller, user, rel)
        base = api_base(request)

        def grant(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            if bits == NONE:
                conn.execute(
                    "DELETE FROM agave_files_pems WHERE system_id = ? AND path = ? AND username = ?",
                    (sid, rel, grantee),
                )
                _history(conn, sid, rel, "PERMISSION_REVOKE", user, f"All permissions revoked for {grantee}")
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO agave_files_pems "
                    "(system_id, path, username, read, write, execute, recursive) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (sid, rel, grantee, *map(int, bits), int(recursive)),
                )
                _history(
                    conn, sid, rel, "PERMISSION_GRANT", user,
                    f"{_permission_name(bits)} permission granted to {grantee}",
                )  # fmt: skip
            return [_permission_doc(base, sid, rel, grantee, bits, recursive)]

        return ok(request, await self.service.store.run(grant))

    # DELETE pems
    async def delete_pems(self, request: web.Request, system_id: str | None, path: str) -> web.StreamResponse:
        user, rel = user_of(request), _rel(path)
        sid, _, caller = await self._access(system_id, rel, user)
        _existing(self.state, sid, rel)
        _require_all(caller, user, rel)

        def revoke(conn: sqlite3.Connection) -> None:
            where, args = _under(rel)
            conn.execute(f"DELETE FROM agave_files_pems WHERE system_id = ? AND {where}", (sid, *args))
            _history(conn, sid, rel, "PERMISSION_REVOKE", user, "All permissions revoked")

        await self.service.store.run(revoke)
        return ok(request, None)

    # PUT media
    async def manage(self, request: web.Request, system_id: str | None, path: str) -> web.StreamResponse:
        user, rel = user_of(request), _rel(path)
        body = await _fields(request)
        action = body.get("action")
        if not isinstance(action, str) or not action.strip():
            raise AgaveError(400, "Please provide a file action to perform")
        action = action.strip().lower()
        if action not in ("mkdir", "rename", "copy", "move"):
            raise AgaveError(501, f"Action {action} is not supported")
        target = body.get("path")
        if not isinstance(target, str) or not target.strip("/ "):
            raise AgaveError(400, f"Please provide a path for the {action} action")
        if action == "mkdir":
            return await self._mkdir(request, system_id, _rel(_join(rel, target)), user)
        if action == "rename":
            if "/" in target.strip("/"):
                raise AgaveError(400, "The new name of a rename must not contain '/'")
            destination = _join(_parent(rel), _rel(target))
        else:
            destination = _rel(target)
        return await self._transfer(request, system_id, rel, destination, user, action)

    async def _mkdir(
        self, request: web.Request, system_id: str | None, rel: str, user: str
    ) -> web.StreamResponse:
        state = self.state
        # Write permission is needed on the nearest existing directory above the new one.
        sid = (await self._access(system_id, rel, user))[0]
        existing = next(d for d in _chain(rel) if _kind(_disk(state, sid, d)) is not None)
        kind = _kind(_disk(state, sid, existing))
        base = api_base(request)
        if existing == rel and kind == "dir":
            row = await self.service.store.run(
                lambda conn: conn.execute(
                    "SELECT uuid, owner FROM agave_files_entries WHERE system_id = ? AND path = ?", (sid, rel)
                ).fetchone()
            )
            doc = _logical_file(
                base, sid, rel, uuid=str(row[0]) if row else agave_uuid("file"),
                owner=str(row[1]) if row else user, status="STAGING_COMPLETED", source="", is_dir=True,
            )  # fmt: skip
            return ok(request, doc, message=f"Directory /{rel} already exists")
        if kind != "dir":
            raise AgaveError(400, f"/{existing} is a file: cannot create a directory at /{rel}")
        _require((await self._access(system_id, existing, user))[2], "write", existing)
        created = [d for d in reversed(_chain(rel)) if len(d) > len(existing)]
        await asyncio.to_thread(lambda: _disk(state, sid, rel).mkdir(parents=True, exist_ok=True))

        def record(conn: sqlite3.Connection) -> str:
            uuid = ""
            for d in created:
                uuid, _ = _record(conn, sid, d, user)
                _history(
                    conn, sid, d, "CREATED", user, f"New directory created at {_href(base, 'media', sid, d)}"
                )
            return uuid

        uuid = await self.service.store.run(record)
        doc = _logical_file(
            base, sid, rel, uuid=uuid, owner=user, status="STAGING_COMPLETED", source="", is_dir=True
        )
        return ok(request, doc, status=201)

    async def _transfer(
        self, request: web.Request, system_id: str | None, rel: str, destination: str, user: str, action: str
    ) -> web.StreamResponse:
        state = self.state
        sid, _, bits = await self._access(system_id, rel, user)
        source, kind = _existing(state, sid, rel)
        if not rel:
            raise AgaveError(400, f"The root of a system cannot be the source of a {action}")
        if not destination:
            raise AgaveError(400, f"The root of a system cannot be the destination of a {action}")
        if destination == rel or destination.startswith(rel + "/"):
            raise AgaveError(400, f"Cannot {action} /{rel} into itself")
        _require(bits, "read" if action == "copy" else "write", rel)
        target = _disk(state, sid, destination)
        target_kind = _kind(target)
        if target_kind is not None and (action != "copy" or kind == "dir" or target_kind == "dir"):
            raise AgaveError(400, f"Destination /{destination} already exists")
        existing = next(d for d in _chain(_parent(destination)) if _kind(_disk(state, sid, d)) is not None)
        if _kind(_disk(state, sid, existing)) != "dir":
            raise AgaveError(400, f"/{existing} is a file: cannot place /{destination} under it")
        _require((await self._access(system_id, existing, user))[2], "write", existing)
        created = [d for d in reversed(_chain(_parent(destination))) if len(d) > len(existing)]

        def work() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            if action == "copy":
                if kind == "dir":
                    shutil.copytree(source, target, symlinks=True)
                else:
                    shutil.copyfile(source, target, follow_symlinks=False)
            else:
                os.rename(source, target)

        await asyncio.to_thread(work)
        base = api_base(request)

        def record(conn: sqlite3.Connection) -> tuple[str, str]:
            for d in created:
                _record(conn, sid, d, user)
            if action == "copy":
                uuid, new = _record(conn, sid, destination, user)
                if kind == "dir":  # every copied entry belongs to the copier
                    for dirpath, dirnames, filenames in os.walk(target):
                        for n in [*dirnames, *filenames]:
                            child = Path(dirpath, n).relative_to(state.system_dir(sid)).as_posix()
                            _record(conn, sid, child, user)
                _history(
                    conn, sid, destination, "CREATED" if new else "OVERWRITTEN", user,
                    f"File/folder copied from /{rel}",
                )  # fmt: skip
                return uuid, user
            _move_records(conn, sid, rel, destination)
            row = conn.execute(
                "SELECT uuid, owner FROM agave_files_entries WHERE system_id = ? AND path = ?",
                (sid, destination),
            ).fetchone()
            if row is not None:
                uuid, owner = str(row[0]), str(row[1])
            else:
                uuid, owner = _record(conn, sid, destination, user)[0], user
            if action == "rename":
                _history(
                    conn,
                    sid,
                    destination,
                    "RENAME",
                    user,
                    f"File/folder renamed from /{rel} to /{destination}",
                )
            else:
                _history(
                    conn, sid, destination, "MOVED", user, f"File/folder moved from /{rel} to /{destination}"
                )
            return uuid, owner

        uuid, owner = await self.service.store.run(record)
        doc = _logical_file(
            base, sid, destination, uuid=uuid, owner=owner, status="STAGING_COMPLETED",
            source=_href(base, "media", sid, rel), is_dir=kind == "dir",
        )  # fmt: skip
        return ok(request, doc)

    # POST media
    async def upload(self, request: web.Request, system_id: str | None, path: str) -> web.StreamResponse:
        user, rel = user_of(request), _rel(path)
        state = self.state
        sid, _, bits = await self._access(system_id, rel, user)
        directory = _disk(state, sid, rel)
        kind = _kind(directory)
        if kind is None:
            raise AgaveError(404, f"Destination directory does not exist: /{rel}")
        if kind != "dir":
            raise AgaveError(400, f"Destination /{rel} is a file, not a directory")
        _require(bits, "write", rel)
        fields: dict[str, str] = {}
        staged: Path | None = None
        part_name = ""
        try:
            if request.content_type.startswith("multipart/"):
                reader = await request.multipart()
                while (part := await reader.next()) is not None:
                    if not isinstance(part, BodyPartReader):
                        await part.release()
                        continue
                    if part.name == "fileToUpload" and part.filename is not None and staged is None:
                        part_name = part.filename
                        staged = await _stream_part(state, part)
                    elif part.name and part.filename is None:
                        fields[part.name] = await _read_field(part)
                    else:
                        await part.release()
            elif request.content_type == "application/x-www-form-urlencoded":
                _check_small(request)
                fields = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
            elif request.content_type == "application/json":
                _check_small(request)
                body = await json_body(request)
                if not isinstance(body, dict):
                    raise AgaveError(400, "The request body must be a JSON object")
                fields = {k: str(v) for k, v in body.items() if isinstance(v, (str, int, float))}
            url = fields.get("urlToIngest", "").strip()
            if staged is None and not url:
                raise AgaveError(400, "No file or urlToIngest was provided")
            name = (fields.get("fileName") or "").strip() or (
                part_name if staged is not None else _name(urlsplit(url).path)
            )
            if not name or "/" in name or name in (".", "..") or "\x00" in name:
                raise AgaveError(400, f"Invalid file name {name!r}")
            destination = _join(rel, name)
            target = _disk(state, sid, destination)
            if _kind(target) == "dir":
                raise AgaveError(400, f"/{destination} is a directory")
            if staged is not None:
                await asyncio.to_thread(os.replace, staged, target)
                staged = None
                source = f"http://127.0.0.1/{quote(part_name)}"
            else:
                _check_ingest_url(url)
                source = url
        finally:
            if staged is not None:
                with contextlib.suppress(OSError):
                    staged.unlink()

        def record(conn: sqlite3.Connection) -> tuple[str, str]:
            uuid, _ = _record(conn, sid, destination, user, status="STAGING_QUEUED", source=source)
            _history(conn, sid, destination, "STAGING_QUEUED", user, "File/folder queued for staging")
            row = conn.execute(
                "SELECT owner FROM agave_files_entries WHERE system_id = ? AND path = ?", (sid, destination)
            ).fetchone()
            return uuid, str(row[0])

        uuid, owner = await self.service.store.run(record)
        if url and source == url:
            state.spawn(self._ingest(sid, uuid, url, user))
        else:
            state.spawn(self._staged(sid, uuid, user))
        base = api_base(request)
        doc = _logical_file(
            base,
            sid,
            destination,
            uuid=uuid,
            owner=owner,
            status="STAGING_QUEUED",
            source=source,
            is_dir=False,
        )
        return ok(request, doc, status=202)

    async def _set_status(self, sid: str, uuid: str, user: str, *events: tuple[str, str]) -> str | None:
        """Record staging events on the entry ``uuid`` wherever it now is (it may have been
        renamed or moved meanwhile); its current path, None if it was deleted."""

        def update(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT path FROM agave_files_entries WHERE system_id = ? AND uuid = ?", (sid, uuid)
            ).fetchone()
            if row is None:
                return None
            rel = str(row[0])
            for status, text in events:
                conn.execute(
                    "UPDATE agave_files_entries SET status = ? WHERE system_id = ? AND path = ?",
                    (status, sid, rel),
                )
                _history(conn, sid, rel, status, user, text)
            return rel

        return await self.service.store.run(update)

    async def _staged(self, sid: str, uuid: str, user: str) -> None:
        await asyncio.sleep(self.state.staging_delay)
        await self._set_status(
            sid, uuid, user,
            ("STAGING", "Staging of the file/folder started"),
            ("STAGING_COMPLETED", "Staging completed successfully"),
        )  # fmt: skip

    async def _ingest(self, sid: str, uuid: str, url: str, user: str) -> None:
        if await self._set_status(sid, uuid, user, ("STAGING", f"Staging of {url} started")) is None:
            return
        staged = self.state.staging / secrets.token_hex(8)
        try:
            self.state.staging.mkdir(parents=True, exist_ok=True)
            timeout = aiohttp.ClientTimeout(total=300, sock_connect=10)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url, allow_redirects=False) as response,
            ):
                if response.status != 200:
                    raise OSError(f"HTTP {response.status}")
                with staged.open("wb") as out:
                    async for chunk in response.content.iter_chunked(CHUNK):
                        await asyncio.to_thread(out.write, chunk)
            rel = await self._set_status(sid, uuid, user)
            if rel is None:  # deleted while it was being fetched
                staged.unlink()
                return
            await asyncio.to_thread(os.replace, staged, _disk(self.state, sid, rel))
        except (OSError, aiohttp.ClientError, asyncio.TimeoutError, AgaveError) as exc:
            with contextlib.suppress(OSError):
                staged.unlink()
            await self._set_status(sid, uuid, user, ("STAGING_FAILED", f"Staging of {url} failed: {exc}"))
            return
        await self._set_status(sid, uuid, user, ("STAGING_COMPLETED", "Staging completed successfully"))


async def _read_field(part: BodyPartReader) -> str:
    """A multipart form field's text, refusing one longer than a form field should be."""
    value = bytearray()
    while chunk := await part.read_chunk(8192):
        value += chunk
        if len(value) > SMALL_BODY:
            raise AgaveError(413, f"The form field {part.name} is longer than {SMALL_BODY} bytes")
    return value.decode("utf-8", "replace")


async def _stream_part(state: _Files, part: BodyPartReader) -> Path:
    """Write a multipart file part to a staging file chunk by chunk; its path."""
    state.staging.mkdir(parents=True, exist_ok=True)
    staged = state.staging / secrets.token_hex(8)
    out = await asyncio.to_thread(staged.open, "wb")
    try:
        while chunk := await part.read_chunk(CHUNK):
            await asyncio.to_thread(out.write, chunk)
    except BaseException:
        out.close()
        with contextlib.suppress(OSError):
            staged.unlink()
        raise
    await asyncio.to_thread(out.close)
    return staged


def _check_ingest_url(url: str) -> None:
    """Only http(s) on a loopback address: the emulator never fetches from the network."""
    split = urlsplit(url)
    host = split.hostname or ""
    loopback = host == "localhost"
    with contextlib.suppress(ValueError):
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    if split.scheme not in ("http", "https") or not loopback:
        raise AgaveError(
            400,
            "The embedded Agave imports only from http(s) URLs on a loopback address "
            f"(127.0.0.1, ::1, localhost); refused {split.scheme}://{host}",
        )


# -- routes ----------------------------------------------------------------------------------


def _adapt(fn: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        system_id = request.match_info.get("system_id")
        return await fn(request, system_id, request.match_info.get("path", ""))

    return handler


async def install(service: AgaveService) -> None:
    await service.store.executescript(SCHEMA)
    state = _Files(service)
    _STATE[service] = state
    state.root.mkdir(parents=True, exist_ok=True)
    service.on_close(state.close)
    h = _Handlers(service, state)
    table: list[tuple[str, str, Handler]] = [
        ("GET", "listings", h.listing),
        ("GET", "media", h.download),
        ("POST", "media", h.upload),
        ("PUT", "media", h.manage),
        ("DELETE", "media", h.delete),
        ("GET", "history", h.history),
        ("GET", "pems", h.list_pems),
        ("POST", "pems", h.update_pems),
        ("DELETE", "pems", h.delete_pems),
    ]
    for method, kind, fn in table:
        handler = _adapt(fn)
        root = f"/files/v2/{kind}"
        service.route(method, f"{root}/system/{{system_id}}", handler)
        service.route(method, f"{root}/system/{{system_id}}/{{path:.*}}", handler)
        service.route(method, root, handler)
        service.route(method, f"{root}/{{path:.*}}", handler)
