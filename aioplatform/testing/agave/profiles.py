"""Profiles of the embedded Agave: the tenant's users as the real profiles service shows them.

Faithful to agave.md §6.7 and §8: a profile is ``{"username", "email", "first_name",
"last_name", "full_name", "phone", "mobile_phone", "nonce", "status", "uid"}`` (the
Python service of TACC tenants; no ``create_time``, never a password). ``GET
/profiles/v2/me`` is the token's user, ``GET /profiles/v2/{username}`` one user (a single
object), ``GET /profiles/v2`` lists with the snake_case filters ``username``, ``name``
(any of the names), ``email``, ``first_name``, ``last_name``, ``full_name`` and ``status``
(case-insensitive, ``*`` a wildcard). Tenant admins create (201), update (PUT) and delete
users; anyone else gets a 403. Profiles are the service's ``agave_users`` rows: the columns
the profiles need are added to that table when missing (a file database keeps its users).
"""

from __future__ import annotations

import fnmatch
import sqlite3
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .systems import is_tenant_admin
from .wire import AgaveError, hash_password, json_body, ok, page_args, user_of, window

if TYPE_CHECKING:
    from .service import AgaveService

__all__ = ["install"]

# Columns the profiles add to agave_users (name, declaration), each added only if missing.
_COLUMNS = (
    ("phone", "TEXT NOT NULL DEFAULT ''"),
    ("mobile_phone", "TEXT NOT NULL DEFAULT ''"),
    ("status", "TEXT NOT NULL DEFAULT 'Active'"),
)
FILTERS = ("username", "name", "email", "first_name", "last_name", "full_name", "status")
# Body fields a create or update may set, with their camelCase spellings (the Java service's).
_FIELDS = {
    "email": "email", "first_name": "first_name", "firstName": "first_name", "last_name": "last_name",
    "lastName": "last_name", "phone": "phone", "mobile_phone": "mobile_phone",
    "mobilePhone": "mobile_phone", "status": "status", "password": "password",
}  # fmt: skip
_UID_BASE = 5000


def _migrate(conn: sqlite3.Connection) -> None:
    have = {row[1] for row in conn.execute("PRAGMA table_info(agave_users)")}
    for name, declaration in _COLUMNS:
        if name not in have:
            conn.execute(f"ALTER TABLE agave_users ADD COLUMN {name} {declaration}")


def _profile(row: sqlite3.Row) -> dict[str, Any]:
    first, last = row["first_name"] or "", row["last_name"] or ""
    return {
        "username": row["username"],
        "email": row["email"] or None,
        "first_name": first or None,
        "last_name": last or None,
        "full_name": " ".join(p for p in (first, last) if p) or None,
        "phone": row["phone"] or None,
        "mobile_phone": row["mobile_phone"] or None,
        "nonce": None,
        "status": row["status"],
        "uid": _UID_BASE + int(row["rowid"]),
    }


_SELECT = "SELECT rowid, * FROM agave_users"


def _one(conn: sqlite3.Connection, username: str) -> sqlite3.Row:
    row = conn.execute(_SELECT + " WHERE username = ?", (username,)).fetchone()
    if row is None:
        raise AgaveError(404, f"No profile found for user {username}")
    return row  # type: ignore[no-any-return]


def _matches(profile: dict[str, Any], filters: dict[str, str]) -> bool:
    def hit(value: Any, wanted: str) -> bool:
        return value is not None and fnmatch.fnmatchcase(str(value).lower(), wanted.lower())

    for key, wanted in filters.items():
        if key == "name":
            names = ("username", "first_name", "last_name", "full_name")
            if not any(hit(profile.get(n), wanted) for n in names):
                return False
        elif not hit(profile.get(key), wanted):
            return False
    return True


def _changes(body: Any) -> dict[str, str]:
    if not isinstance(body, dict):
        raise AgaveError(400, "Profile request must be a JSON object")
    out: dict[str, str] = {}
    for key, value in body.items():
        column = _FIELDS.get(key)
        if column is None or value is None:
            continue
        if not isinstance(value, str):
            raise AgaveError(400, f"{key} must be a string")
        out[column] = value.strip() if column != "password" else value
    if "password" in out:
        if not out["password"]:
            raise AgaveError(400, "password must not be empty")
        out["password"] = hash_password(out["password"])
    return out


def _admin(conn: sqlite3.Connection, user: str) -> None:
    if not is_tenant_admin(conn, user):
        raise AgaveError(403, f"User {user} does not have permission to manage profiles")


class ProfilesResource:
    def __init__(self, service: AgaveService):
        self.service = service

    async def me(self, request: web.Request) -> web.StreamResponse:
        user = user_of(request)
        return ok(request, await self.service.store.run(lambda conn: _profile(_one(conn, user))))

    async def get(self, request: web.Request) -> web.StreamResponse:
        username = request.match_info["username"]
        return ok(request, await self.service.store.run(lambda conn: _profile(_one(conn, username))))

    async def listing(self, request: web.Request) -> web.StreamResponse:
        limit, offset = page_args(request)
        filters = {k: request.query[k] for k in FILTERS if request.query.get(k)}

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            profiles = (_profile(row) for row in conn.execute(_SELECT + " ORDER BY username"))
            return window((p for p in profiles if _matches(p, filters)), offset, limit)

        return ok(request, await self.service.store.run(read))

    async def create(self, request: web.Request) -> web.StreamResponse:
        user = user_of(request)
        body = await json_body(request)
        username = body.get("username") if isinstance(body, dict) else None
        changes = _changes(body)
        if not isinstance(username, str) or not username.strip() or "/" in username:
            raise AgaveError(400, "Please specify a valid username")
        for required in ("email", "password"):
            if not changes.get(required):
                raise AgaveError(400, f"Please specify a {required} for the new user")

        def insert(conn: sqlite3.Connection) -> dict[str, Any]:
            _admin(conn, user)
            if conn.execute("SELECT 1 FROM agave_users WHERE username = ?", (username,)).fetchone():
                raise AgaveError(400, f"A user with username {username} already exists")
            columns = ["username", *changes]
            marks = ", ".join("?" * len(columns))
            conn.execute(
                f"INSERT INTO agave_users ({', '.join(columns)}) VALUES ({marks})",
                (username, *changes.values()),
            )
            return _profile(_one(conn, username))

        return ok(request, await self.service.store.run(insert), status=201)

    async def update(self, request: web.Request) -> web.StreamResponse:
        user, username = user_of(request), request.match_info["username"]
        changes = _changes(await json_body(request))

        def change(conn: sqlite3.Connection) -> dict[str, Any]:
            _admin(conn, user)
            _one(conn, username)
            if changes:
                assignments = ", ".join(f"{column} = ?" for column in changes)
                conn.execute(
                    f"UPDATE agave_users SET {assignments} WHERE username = ?", (*changes.values(), username)
                )
            return _profile(_one(conn, username))

        return ok(request, await self.service.store.run(change))

    async def delete(self, request: web.Request) -> web.StreamResponse:
        user, username = user_of(request), request.match_info["username"]

        def remove(conn: sqlite3.Connection) -> None:
            _admin(conn, user)
            _one(conn, username)
            if username == user:
                raise AgaveError(400, "You cannot delete your own account")
            conn.execute("DELETE FROM agave_users WHERE username = ?", (username,))
            conn.execute("DELETE FROM agave_tokens WHERE username = ?", (username,))

        await self.service.store.run(remove)
        return ok(request, None, message=f"User {username} deleted")


async def install(service: AgaveService) -> None:
    await service.store.run(_migrate)
    profiles = ProfilesResource(service)
    route = service.route
    route("GET", "/profiles/v2", profiles.listing)
    route("POST", "/profiles/v2", profiles.create)
    route("GET", "/profiles/v2/me", profiles.me)
    route("GET", "/profiles/v2/{username}", profiles.get)
    route("PUT", "/profiles/v2/{username}", profiles.update)
    route("DELETE", "/profiles/v2/{username}", profiles.delete)
