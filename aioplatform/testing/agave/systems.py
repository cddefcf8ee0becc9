"""Systems of the embedded Agave: CRUD, manage actions, the default system, roles, credentials.

Faithful to agave.md §6.8 (and §8's corrections): ``POST /systems/v2/`` answers 201, an
update is a full replacement (revision incremented), ``PUT`` takes the case-insensitive
actions ENABLE/DISABLE/PUBLISH/UNPUBLISH/SETDEFAULT/UNSETDEFAULT/SETGLOBALDEFAULT/
UNSETGLOBALDEFAULT/CLONE and answers the System. Each user has at most one default
system per type; without one, the tenant's global default is theirs.

Who may do what (roles NONE < GUEST < USER < PUBLISHER < ADMIN < OWNER): the owner is
OWNER; a public system is GUEST to everyone (USER for an execution system); a tenant admin
is ADMIN on every system. Seeing a system takes GUEST, changing it or its roles and
credentials takes ADMIN, publishing and the global default take a tenant admin; a public
system is changed only by a tenant admin. An invisible system is a 404, as if unknown.

Credentials are stored per system, internal user and type (LOGIN/STORAGE); the owner's
own credential (the request's ``storage.auth``/``login.auth``) has no internal user.
Secrets (``password``, ``privateKey``, ``publicKey``, ``credential``) are stored and never
served: not in a System, not in a credential listing.

Other resources read systems through :func:`lookup_system` and :func:`default_storage_system`.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .defaults import DEFAULT_EXECUTION_SYSTEM, DEFAULT_STORAGE_SYSTEM
from .grants import grant_of
from .wire import (
    AgaveError,
    agave_uuid,
    api_base,
    iso_millis,
    json_body,
    matches_search,
    ok,
    page,
    rlike_filter,
    search_terms,
    split_rlike,
    truthy,
    user_of,
)

if TYPE_CHECKING:
    from .service import AgaveService

__all__ = [
    "ROLE_RANK",
    "default_storage_system",
    "effective_role",
    "install",
    "is_tenant_admin",
    "lookup_system",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS agave_systems_systems (
    id TEXT PRIMARY KEY, uuid TEXT NOT NULL, owner TEXT NOT NULL, type TEXT NOT NULL,
    public INTEGER NOT NULL DEFAULT 0, global_default INTEGER NOT NULL DEFAULT 0,
    available INTEGER NOT NULL DEFAULT 1, revision INTEGER NOT NULL DEFAULT 1,
    created TEXT NOT NULL, last_modified TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agave_systems_roles (
    system_id TEXT NOT NULL, username TEXT NOT NULL, role TEXT NOT NULL,
    PRIMARY KEY (system_id, username));
CREATE TABLE IF NOT EXISTS agave_systems_defaults (
    username TEXT NOT NULL, type TEXT NOT NULL, system_id TEXT NOT NULL,
    PRIMARY KEY (username, type));
CREATE TABLE IF NOT EXISTS agave_systems_credentials (
    system_id TEXT NOT NULL, internal_username TEXT NOT NULL, credential_type TEXT NOT NULL,
    doc TEXT NOT NULL, created TEXT NOT NULL, last_modified TEXT NOT NULL,
    PRIMARY KEY (system_id, internal_username, credential_type));
"""

ROLES = ("NONE", "GUEST", "USER", "PUBLISHER", "ADMIN", "OWNER")
ROLE_RANK = {role: i for i, role in enumerate(ROLES)}
SYSTEM_TYPES = ("STORAGE", "EXECUTION")
STATUSES = ("UP", "DOWN", "MAINTENANCE", "UNKNOWN")
STORAGE_PROTOCOLS = (
    "SFTP",
    "GRIDFTP",
    "FTP",
    "IRODS",
    "IRODS4",
    "LOCAL",
    "S3",
    "AZURE",
    "SWIFT",
    "HTTP",
    "HTTPS",
)
LOGIN_PROTOCOLS = ("SSH", "GSISSH", "LOCAL", "API")
EXECUTION_TYPES = ("HPC", "CONDOR", "CLI")
SCHEDULERS = (
    "SLURM",
    "PBS",
    "SGE",
    "LSF",
    "TORQUE",
    "MOAB",
    "LOADLEVELER",
    "CONDOR",
    "FORK",
    "COBALT",
    "UNKNOWN",
)
AUTH_TYPES = ("PASSWORD", "SSHKEYS", "X509", "TOKEN", "LOCAL", "PAM", "KERBEROSE", "APIKEYS", "ANONYMOUS")
CREDENTIAL_TYPES = ("LOGIN", "STORAGE")
ACTIONS = (
    "ENABLE", "DISABLE", "PUBLISH", "UNPUBLISH", "SETDEFAULT", "UNSETDEFAULT",
    "SETGLOBALDEFAULT", "UNSETGLOBALDEFAULT", "CLONE",
)  # fmt: skip
# What a credential holds that is never served back.
SECRET_FIELDS = frozenset({"password", "privateKey", "publicKey", "credential", "secret", "apiSecret"})
# The fields listings can be searched on (agave.md §4); nested ones flattened with a dot.
SEARCH_FIELDS = (
    "id", "name", "type", "description", "status", "public", "default", "globalDefault", "owner",
    "site", "available", "revision", "lastModified", "created", "uuid", "executionType", "scheduler",
    "storage.host", "storage.protocol", "storage.rootDir", "storage.homeDir", "login.host",
    "login.protocol", "workDir", "scratchDir",
)  # fmt: skip
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")


# -- the contract other resources use -------------------------------------------------------------


def is_tenant_admin(conn: sqlite3.Connection, username: str) -> bool:
    row = conn.execute("SELECT is_admin FROM agave_users WHERE username = ?", (username,)).fetchone()
    return bool(row and row[0])


def effective_role(conn: sqlite3.Connection, row: sqlite3.Row, username: str) -> str:
    """The role ``username`` holds on the system ``row`` (explicit, owner, public, admin)."""
    if row["owner"] == username:
        return "OWNER"
    found = conn.execute(
        "SELECT role FROM agave_systems_roles WHERE system_id = ? AND username = ?", (row["id"], username)
    ).fetchone()
    role = str(found[0]) if found else "NONE"
    if row["public"]:
        floor = "USER" if row["type"] == "EXECUTION" else "GUEST"
        role = max(role, floor, key=ROLE_RANK.__getitem__)
    if is_tenant_admin(conn, username):
        role = max(role, "ADMIN", key=ROLE_RANK.__getitem__)
    return role


def _row(conn: sqlite3.Connection, system_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM agave_systems_systems WHERE id = ?", (system_id,)
    ).fetchone()
    return row


def _is_default(conn: sqlite3.Connection, row: sqlite3.Row, username: str) -> bool:
    mine = conn.execute(
        "SELECT system_id FROM agave_systems_defaults WHERE username = ? AND type = ?",
        (username, row["type"]),
    ).fetchone()
    if mine is not None:
        return bool(mine[0] == row["id"])
    return bool(row["global_default"])


def _links(base: str, row: sqlite3.Row) -> dict[str, Any]:
    href = f"{base}/systems/v2/{row['id']}"
    links: dict[str, Any] = {
        "self": {"href": href},
        "roles": {"href": f"{href}/roles"},
        "credentials": {"href": f"{href}/credentials"},
        "metadata": {"href": f'{base}/meta/v2/data/?q={{"associationIds":"{row["uuid"]}"}}'},
        "owner": {"href": f"{base}/profiles/v2/{row['owner']}"},
    }
    if row["type"] == "EXECUTION":
        links["history"] = {"href": f"{href}/history"}
    return links


def _render(conn: sqlite3.Connection, row: sqlite3.Row, username: str, base: str) -> dict[str, Any]:
    doc = json.loads(row["doc"])
    system: dict[str, Any] = {
        "id": row["id"],
        "uuid": row["uuid"],
        "name": doc.get("name", row["id"]),
        "status": doc.get("status", "UP"),
        "available": bool(row["available"]),
        "type": row["type"],
        "description": doc.get("description"),
        "site": doc.get("site"),
        "revision": row["revision"],
        "public": bool(row["public"]),
        "default": _is_default(conn, row, username),
        "globalDefault": bool(row["global_default"]),
        "lastModified": row["last_modified"],
        "created": row["created"],
        "owner": row["owner"],
        "storage": doc["storage"],
    }
    if row["type"] == "EXECUTION":
        for key in (
            "executionType", "scheduler", "environment", "startupScript", "maxSystemJobs",
            "maxSystemJobsPerUser", "workDir", "scratchDir", "queues", "login",
        ):  # fmt: skip
            system[key] = doc.get(key)
    system["_links"] = _links(base, row)
    return system


def _summary(conn: sqlite3.Connection, row: sqlite3.Row, username: str, base: str) -> dict[str, Any]:
    doc = json.loads(row["doc"])
    return {
        "id": row["id"],
        "name": doc.get("name", row["id"]),
        "type": row["type"],
        "description": doc.get("description"),
        "status": doc.get("status", "UP"),
        "public": bool(row["public"]),
        "default": _is_default(conn, row, username),
        "lastUpdated": row["last_modified"],
        "_links": {"self": {"href": f"{base}/systems/v2/{row['id']}"}},
    }


def lookup_system(
    conn: sqlite3.Connection, system_id: str, username: str, base: str = ""
) -> dict[str, Any] | None:
    """The full System JSON as ``username`` is served it, or None if unknown or invisible.

    ``base`` prefixes the ``_links`` hrefs (``api_base(request)``); without it they are
    root-relative. Runs inside a store transaction.
    """
    row = _row(conn, system_id)
    if row is None or ROLE_RANK[effective_role(conn, row, username)] < ROLE_RANK["GUEST"]:
        return None
    return _render(conn, row, username, base)


def default_storage_system(conn: sqlite3.Connection, username: str) -> str:
    """The id of ``username``'s default storage system (theirs, else the global default)."""
    mine = conn.execute(
        "SELECT d.system_id FROM agave_systems_defaults d JOIN agave_systems_systems s "
        "ON s.id = d.system_id WHERE d.username = ? AND d.type = 'STORAGE'",
        (username,),
    ).fetchone()
    if mine is not None:
        return str(mine[0])
    row = conn.execute(
        "SELECT id FROM agave_systems_systems WHERE type = 'STORAGE' AND global_default = 1 "
        "ORDER BY created, id LIMIT 1"
    ).fetchone()
    return str(row[0]) if row is not None else DEFAULT_STORAGE_SYSTEM


# -- validation ------------------------------------------------------------------------------------


def _text(body: dict[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise AgaveError(400, f"Please specify a valid string value for the '{where}{key}' field.")
        return None
    if not isinstance(value, str):
        raise AgaveError(400, f"Invalid '{where}{key}' value: expected a string.")
    return value


def _enum(body: dict[str, Any], key: str, where: str, allowed: tuple[str, ...], *, required: bool = True,
          default: str | None = None, custom: bool = False) -> str | None:  # fmt: skip
    value = _text(body, key, where, required=required and default is None)
    if value is None:
        return default
    upper = value.upper()
    if upper not in allowed and not (custom and upper.startswith("CUSTOM_")):
        raise AgaveError(
            400, f"Invalid '{where}{key}' value '{value[:60]}'. Valid values are: {', '.join(allowed)}."
        )
    return upper


def _int(
    body: dict[str, Any], key: str, where: str, *, required: bool = False, minimum: int = 0
) -> int | None:
    value = body.get(key)
    if value is None:
        if required:
            raise AgaveError(400, f"Please specify a valid integer value for the '{where}{key}' field.")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise AgaveError(400, f"Invalid '{where}{key}' value: expected an integer.")
    try:
        number = int(value)
    except ValueError:
        raise AgaveError(400, f"Invalid '{where}{key}' value: expected an integer.") from None
    if number < minimum:
        raise AgaveError(400, f"Invalid '{where}{key}' value: must be at least {minimum}.")
    return number


def _object(body: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise AgaveError(400, f"Please specify a valid JSON object for the '{where}{key}' field.")
    return value


def validate_credential(body: Any, where: str = "") -> dict[str, Any]:
    """A UserCredential, checked (``type`` required); secrets stay in what is stored."""
    if not isinstance(body, dict):
        raise AgaveError(400, f"Please specify a valid JSON object for the '{where or 'credential'}'.")
    out = dict(body)
    out["type"] = _enum(body, "type", where, AUTH_TYPES)
    for key in ("username", "password", "publicKey", "privateKey", "credential", "internalUsername"):
        _text(body, key, where, required=False)
    if out["type"] == "PASSWORD" and not body.get("password") and not body.get("username"):
        raise AgaveError(400, f"A PASSWORD credential needs '{where}username' and '{where}password'.")
    if out["type"] == "SSHKEYS" and not body.get("privateKey"):
        raise AgaveError(400, f"An SSHKEYS credential needs '{where}privateKey'.")
    server = body.get("server")
    if server is not None and not isinstance(server, dict):
        raise AgaveError(400, f"Invalid '{where}server' value: expected a JSON object.")
    return out


def _validate_system(body: Any) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """A SystemRequest as stored (secrets removed) and the credentials it carried."""
    if not isinstance(body, dict):
        raise AgaveError(400, "The system description must be a JSON object.")
    system_id = _text(body, "id", "")
    assert system_id is not None
    if not _ID.match(system_id):
        raise AgaveError(
            400, "Invalid 'id' value: use letters, digits, '.', '_' and '-' (at most 128 characters)."
        )
    kind = _enum(body, "type", "", SYSTEM_TYPES)
    doc: dict[str, Any] = {
        "id": system_id,
        "name": _text(body, "name", ""),
        "type": kind,
        "status": _enum(body, "status", "", STATUSES, default="UP"),
        "description": _text(body, "description", "", required=False),
        "site": _text(body, "site", "", required=False),
    }
    credentials: list[tuple[str, dict[str, Any]]] = []
    storage = _object(body, "storage", "")
    protocol = _enum(storage, "protocol", "storage.", STORAGE_PROTOCOLS)
    stored_storage: dict[str, Any] = {
        "host": _text(storage, "host", "storage.", required=protocol != "LOCAL"),
        "port": _int(storage, "port", "storage.", required=protocol != "LOCAL"),
        "protocol": protocol,
        "rootDir": _text(storage, "rootDir", "storage.", required=False) or "/",
        "homeDir": _text(storage, "homeDir", "storage.", required=False) or "/",
        "publicAppsDir": _text(storage, "publicAppsDir", "storage.", required=False),
        "zone": storage.get("zone"),
        "resource": storage.get("resource"),
        "container": storage.get("container"),
        "mirror": bool(storage.get("mirror", False)),
        "proxy": storage.get("proxy"),
    }
    auth = validate_credential(_object(storage, "auth", "storage."), "storage.auth.")
    stored_storage["auth"] = {"type": auth["type"]}
    credentials.append(("STORAGE", auth))
    doc["storage"] = stored_storage
    if kind == "EXECUTION":
        doc["executionType"] = _enum(body, "executionType", "", EXECUTION_TYPES)
        doc["scheduler"] = _enum(body, "scheduler", "", SCHEDULERS, custom=True)
        login = _object(body, "login", "")
        login_auth = validate_credential(_object(login, "auth", "login."), "login.auth.")
        login_protocol = _enum(login, "protocol", "login.", LOGIN_PROTOCOLS)
        doc["login"] = {
            "host": _text(login, "host", "login.", required=login_protocol != "LOCAL"),
            "port": _int(login, "port", "login.", required=login_protocol != "LOCAL"),
            "protocol": login_protocol,
            "proxy": login.get("proxy"),
            "auth": {"type": login_auth["type"]},
        }
        credentials.append(("LOGIN", login_auth))
        queues = body.get("queues")
        if not isinstance(queues, list) or not queues:
            raise AgaveError(400, "Please specify at least one queue in the 'queues' field.")
        doc["queues"] = [_validate_queue(q, i) for i, q in enumerate(queues)]
        if not any(q["default"] for q in doc["queues"]):
            doc["queues"][0]["default"] = True
        names = [q["name"] for q in doc["queues"]]
        if len(set(names)) != len(names):
            raise AgaveError(400, "Queue names must be unique within a system.")
        for key in ("workDir", "scratchDir", "environment", "startupScript"):
            doc[key] = _text(body, key, "", required=False)
        doc["maxSystemJobs"] = _int(body, "maxSystemJobs", "") or 2147483647
        doc["maxSystemJobsPerUser"] = _int(body, "maxSystemJobsPerUser", "") or 2147483647
    return doc, credentials


def _validate_queue(queue: Any, index: int) -> dict[str, Any]:
    where = f"queues[{index}]."
    if not isinstance(queue, dict):
        raise AgaveError(400, f"Invalid '{where[:-1]}' value: expected a JSON object.")
    return {
        "name": _text(queue, "name", where),
        "default": bool(queue.get("default", False)),
        "maxJobs": _int(queue, "maxJobs", where) or -1,
        "maxUserJobs": _int(queue, "maxUserJobs", where) or -1,
        "maxNodes": _int(queue, "maxNodes", where) or -1,
        "maxProcessorsPerNode": _int(queue, "maxProcessorsPerNode", where) or -1,
        "maxMemoryPerNode": queue.get("maxMemoryPerNode", "2048GB"),
        "maxRequestedTime": queue.get("maxRequestedTime", "48:00:00"),
        "customDirectives": queue.get("customDirectives"),
        "mappedName": queue.get("mappedName"),
        "description": queue.get("description"),
    }


# -- storage helpers (all run inside one store transaction) -----------------------------------------


def _store_credential(
    conn: sqlite3.Connection, system_id: str, internal: str, ctype: str, credential: dict[str, Any]
) -> None:
    now = iso_millis()
    conn.execute(
        "INSERT INTO agave_systems_credentials "
        "(system_id, internal_username, credential_type, doc, created, last_modified) "
        "VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(system_id, internal_username, credential_type) "
        "DO UPDATE SET doc = excluded.doc, last_modified = excluded.last_modified",
        (system_id, internal, ctype, json.dumps(credential), now, now),
    )


def _insert_system(
    conn: sqlite3.Connection, doc: dict[str, Any], credentials: list[tuple[str, dict[str, Any]]],
    owner: str, *, public: bool = False, global_default: bool = False,
) -> None:  # fmt: skip
    now = iso_millis()
    conn.execute(
        "INSERT INTO agave_systems_systems (id, uuid, owner, type, public, global_default, created, "
        "last_modified, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (doc["id"], agave_uuid("system"), owner, doc["type"], int(public), int(global_default), now, now,
         json.dumps(doc)),
    )  # fmt: skip
    for ctype, credential in credentials:
        _store_credential(conn, doc["id"], "", ctype, credential)


def _seed(conn: sqlite3.Connection, owner: str) -> None:
    if _row(conn, DEFAULT_STORAGE_SYSTEM) is None:
        storage, creds = _validate_system(
            {
                "id": DEFAULT_STORAGE_SYSTEM,
                "name": "Embedded Agave storage",
                "type": "STORAGE",
                "description": "The embedded platform's public storage: every user's default.",
                "site": "aioplatform.local",
                "storage": {
                    "protocol": "LOCAL", "host": "localhost", "port": 0, "rootDir": "/",
                    "homeDir": "/home", "publicAppsDir": "/apps", "auth": {"type": "LOCAL"},
                },
            }
        )  # fmt: skip
        _insert_system(conn, storage, creds, owner, public=True, global_default=True)
    if _row(conn, DEFAULT_EXECUTION_SYSTEM) is None:
        execution, creds = _validate_system(
            {
                "id": DEFAULT_EXECUTION_SYSTEM,
                "name": "Embedded Agave execution",
                "type": "EXECUTION",
                "description": "The embedded platform's public execution system (CLI, FORK).",
                "site": "aioplatform.local",
                "executionType": "CLI",
                "scheduler": "FORK",
                "workDir": "/work",
                "scratchDir": "/scratch",
                "maxSystemJobs": 1000,
                "maxSystemJobsPerUser": 1000,
                "queues": [
                    {"name": "normal", "default": True, "maxJobs": 1000, "maxUserJobs": 1000, "maxNodes": 1,
                     "maxProcessorsPerNode": 4, "maxMemoryPerNode": "8GB", "maxRequestedTime": "24:00:00"},
                    {"name": "debug", "maxJobs": 10, "maxUserJobs": 2, "maxNodes": 1,
                     "maxProcessorsPerNode": 1, "maxMemoryPerNode": "1GB", "maxRequestedTime": "00:30:00"},
                ],
                "login": {"protocol": "LOCAL", "host": "localhost", "port": 0, "auth": {"type": "LOCAL"}},
                "storage": {
                    "protocol": "LOCAL", "host": "localhost", "port": 0, "rootDir": "/",
                    "homeDir": "/home", "auth": {"type": "LOCAL"},
                },
            }
        )  # fmt: skip
        _insert_system(conn, execution, creds, owner, public=True, global_default=True)


# -- handlers ---------------------------------------------------------------------------------------


def _visible(conn: sqlite3.Connection, system_id: str, username: str, need: str = "GUEST") -> sqlite3.Row:
    """The system's row if ``username`` holds ``need`` on it; 404 if invisible, 403 if too weak."""
    row = _row(conn, system_id)
    role = "NONE" if row is None else effective_role(conn, row, username)
    if row is None or ROLE_RANK[role] < ROLE_RANK["GUEST"]:
        raise AgaveError(404, f"No system found for {username} with id {system_id}")
    if ROLE_RANK[role] < ROLE_RANK[need]:
        raise AgaveError(403, f"User {username} does not have permission to modify system {system_id}")
    return row


def _modifiable(conn: sqlite3.Connection, system_id: str, username: str) -> sqlite3.Row:
    row = _visible(conn, system_id, username, "ADMIN")
    if row["public"] and not is_tenant_admin(conn, username):
        raise AgaveError(403, f"Public system {system_id} can only be changed by a tenant administrator")
    return row


def _require_admin(conn: sqlite3.Connection, username: str, what: str) -> None:
    if not is_tenant_admin(conn, username):
        raise AgaveError(403, f"Only tenant administrators can {what}")



async def list_systems(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, base, query = user_of(request), api_base(request), request.query
    terms, patterns = split_rlike(search_terms(query, SEARCH_FIELDS))
    kind = query.get("type")
    if kind is not None and kind.upper() not in SYSTEM_TYPES:
        raise AgaveError(400, f"Invalid system type '{kind[:40]}'. Valid values are: STORAGE, EXECUTION.")
    want_default = truthy(query["default"]) if "default" in query else None
    want_public = truthy(query["public"]) if "public" in query else None

    def listing(conn: sqlite3.Connection) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        out = []
        for row in conn.execute("SELECT * FROM agave_systems_systems ORDER BY created, id").fetchall():
            owned_or_shared = (
                row["owner"] == username
                or row["public"]
                or conn.execute(
                    "SELECT 1 FROM agave_systems_roles WHERE system_id = ? AND username = ? "
                    "AND role != 'NONE'",
                    (row["id"], username),
                ).fetchone()
            )
            if not owned_or_shared:
                continue
            if kind is not None and row["type"] != kind.upper():
                continue
            full = _render(conn, row, username, base)
            if want_default is not None and full["default"] != want_default:
                continue
            if want_public is not None and full["public"] != want_public:
                continue
            doc = _flat(full) if terms or patterns else {}
            if terms and not matches_search(doc, terms):
                continue
            matched = {field: doc.get(field) for field, _ in patterns}
            out.append((matched, _summary(conn, row, username, base)))
        return out

    # rlike terms are matched after the store's transaction, off its thread.
    return ok(request, page(request, await rlike_filter(await service.store.run(listing), patterns)))


def _flat(system: dict[str, Any]) -> dict[str, Any]:
    flat = dict(system)
    for outer in ("storage", "login"):
        for key, value in (system.get(outer) or {}).items():
            flat[f"{outer}.{key}"] = value
    return flat


async def add_system(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, base = user_of(request), api_base(request)
    doc, credentials = _validate_system(await json_body(request))

    def add(conn: sqlite3.Connection) -> dict[str, Any]:
        if _row(conn, doc["id"]) is not None:
            raise AgaveError(409, f"A system with id {doc['id']} already exists")
        _insert_system(conn, doc, credentials, username)
        row = _row(conn, doc["id"])
        assert row is not None
        return _render(conn, row, username, base)

    return ok(request, await service.store.run(add), status=201)


async def get_system(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, base, system_id = user_of(request), api_base(request), request.match_info["system_id"]

    def get(conn: sqlite3.Connection) -> dict[str, Any]:
        return _render(conn, _visible(conn, system_id, username), username, base)

    return ok(request, await service.store.run(get))


async def update_system(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, base, system_id = user_of(request), api_base(request), request.match_info["system_id"]
    body = await json_body(request)
    if isinstance(body, dict) and body.get("id") is None:
        body = {**body, "id": system_id}
    doc, credentials = _validate_system(body)
    if doc["id"] != system_id:
        raise AgaveError(400, f"The 'id' in the body ({doc['id']}) differs from the system's id {system_id}")

    def update(conn: sqlite3.Connection) -> dict[str, Any]:
        row = _modifiable(conn, system_id, username)
        if doc["type"] != row["type"]:
            raise AgaveError(400, f"System {system_id} is a {row['type']} system; its type cannot change")
        conn.execute(
            "UPDATE agave_systems_systems SET doc = ?, revision = revision + 1, last_modified = ? "
            "WHERE id = ?",
            (json.dumps(doc), iso_millis(), system_id),
        )
        for ctype, credential in credentials:
            _store_credential(conn, system_id, "", ctype, credential)
        new = _row(conn, system_id)
        assert new is not None
        return _render(conn, new, username, base)

    return ok(request, await service.store.run(update))


async def manage_system(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, base, system_id = user_of(request), api_base(request), request.match_info["system_id"]
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("action"), str):
        raise AgaveError(400, f"Please specify an action: one of {', '.join(ACTIONS)}")
    action = body["action"].upper()
    if action not in ACTIONS:
        raise AgaveError(
            400, f"Invalid action '{body['action'][:40]}'. Valid actions are: {', '.join(ACTIONS)}"
        )
    new_id = body.get("id")
    if action == "CLONE" and (not isinstance(new_id, str) or not _ID.match(new_id)):
        raise AgaveError(400, "CLONE needs a valid new system 'id' (letters, digits, '.', '_', '-')")

    def manage(conn: sqlite3.Connection) -> dict[str, Any]:
        now = iso_millis()
        target = system_id
        if action in ("ENABLE", "DISABLE"):
            _modifiable(conn, system_id, username)
            conn.execute(
                "UPDATE agave_systems_systems SET available = ?, last_modified = ? WHERE id = ?",
                (int(action == "ENABLE"), now, system_id),
            )
        elif action in ("PUBLISH", "UNPUBLISH"):
            row = _visible(conn, system_id, username)
            _require_admin(conn, username, "publish or unpublish a system")
            if action == "UNPUBLISH" and row["global_default"]:
                raise AgaveError(400, f"System {system_id} is the global default; unset that first")
            conn.execute(
                "UPDATE agave_systems_systems SET public = ?, last_modified = ? WHERE id = ?",
                (int(action == "PUBLISH"), now, system_id),
            )
        elif action in ("SETGLOBALDEFAULT", "UNSETGLOBALDEFAULT"):
            row = _visible(conn, system_id, username)
            _require_admin(conn, username, "change the global default system")
            if action == "SETGLOBALDEFAULT":
                if not row["public"]:
                    raise AgaveError(
                        400, f"Only a public system can be the global default; publish {system_id} first"
                    )
                conn.execute(
                    "UPDATE agave_systems_systems SET global_default = 0 WHERE type = ?", (row["type"],)
                )
            conn.execute(
                "UPDATE agave_systems_systems SET global_default = ?, last_modified = ? WHERE id = ?",
                (int(action == "SETGLOBALDEFAULT"), now, system_id),
            )
        elif action == "SETDEFAULT":
            row = _visible(conn, system_id, username)
            conn.execute(
                "INSERT INTO agave_systems_defaults (username, type, system_id) VALUES (?, ?, ?) "
                "ON CONFLICT(username, type) DO UPDATE SET system_id = excluded.system_id",
                (username, row["type"], system_id),
            )
        elif action == "UNSETDEFAULT":
            _visible(conn, system_id, username)
            conn.execute(
                "DELETE FROM agave_systems_defaults WHERE username = ? AND system_id = ?",
                (username, system_id),
            )
        else:  # CLONE: a private copy owned by the caller, without the original's credentials
            row = _visible(conn, system_id, username)
            assert isinstance(new_id, str)
            if _row(conn, new_id) is not None:
                raise AgaveError(409, f"A system with id {new_id} already exists")
            doc = {**json.loads(row["doc"]), "id": new_id}
            _insert_system(conn, doc, [], username)
            target = new_id
        new = _row(conn, target)
        assert new is not None
        return _render(conn, new, username, base)

    return ok(request, await service.store.run(manage))


async def delete_system(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, system_id = user_of(request), request.match_info["system_id"]

    def delete(conn: sqlite3.Connection) -> None:
        row = _modifiable(conn, system_id, username)
        if row["global_default"]:
            raise AgaveError(400, f"System {system_id} is the global default and cannot be deleted")
        for table in ("agave_systems_roles", "agave_systems_credentials"):
            conn.execute(f"DELETE FROM {table} WHERE system_id = ?", (system_id,))
        conn.execute("DELETE FROM agave_systems_defaults WHERE system_id = ?", (system_id,))
        conn.execute("DELETE FROM agave_systems_systems WHERE id = ?", (system_id,))

    await service.store.run(delete)
    return ok(request, None, message=f"System {system_id} deleted")


# -- roles -------------------------------------------------------------------------------------------


def _role_doc(base: str, system_id: str, username: str, role: str) -> dict[str, Any]:
    href = f"{base}/systems/v2/{system_id}/roles/{username}"
    return {
        "username": username,
        "role": role,
        "_links": {
            "self": {"href": href},
            "parent": {"href": f"{base}/systems/v2/{system_id}"},
            "profile": {"href": f"{base}/profiles/v2/{username}"},
        },
    }


def _roles(conn: sqlite3.Connection, row: sqlite3.Row, base: str) -> list[dict[str, Any]]:
    out = [_role_doc(base, row["id"], row["owner"], "OWNER")]
    for grant in conn.execute(
        "SELECT username, role FROM agave_systems_roles WHERE system_id = ? AND username != ? "
        "ORDER BY username",
        (row["id"], row["owner"]),
    ).fetchall():
        out.append(_role_doc(base, row["id"], grant["username"], grant["role"]))
    return out


async def list_roles(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, base, system_id = user_of(request), api_base(request), request.match_info["system_id"]

    def roles(conn: sqlite3.Connection) -> list[dict[str, Any]]:
        return _roles(conn, _visible(conn, system_id, username), base)

    return ok(request, page(request, await service.store.run(roles)))


async def get_role(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, base = user_of(request), api_base(request)
    system_id, who = request.match_info["system_id"], request.match_info["username"]

    def role(conn: sqlite3.Connection) -> dict[str, Any]:
        row = _visible(conn, system_id, username)
        if who != username and ROLE_RANK[effective_role(conn, row, username)] < ROLE_RANK["ADMIN"]:
            raise AgaveError(403, f"User {username} cannot read the roles of other users on {system_id}")
        return _role_doc(base, system_id, who, effective_role(conn, row, who))

    return ok(request, await service.store.run(role))


async def update_role(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, base, system_id = user_of(request), api_base(request), request.match_info["system_id"]
    who, role = grant_of(request, await json_body(request), "role", ROLES)

    def update(conn: sqlite3.Connection) -> dict[str, Any]:
        row = _modifiable(conn, system_id, username)
        if who == row["owner"]:
            raise AgaveError(400, f"The owner's role on {system_id} cannot be changed")
        if role == "OWNER":
            raise AgaveError(400, "The OWNER role cannot be granted; it belongs to the system's creator")
        if role == "NONE":
            conn.execute(
                "DELETE FROM agave_systems_roles WHERE system_id = ? AND username = ?", (system_id, who)
            )
        else:
            conn.execute(
                "INSERT INTO agave_systems_roles (system_id, username, role) VALUES (?, ?, ?) "
                "ON CONFLICT(system_id, username) DO UPDATE SET role = excluded.role",
                (system_id, who, role),
            )
        return _role_doc(base, system_id, who, role)

    return ok(request, await service.store.run(update), status=201)


async def delete_roles(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, system_id = user_of(request), request.match_info["system_id"]
    who = request.match_info.get("username")

    def delete(conn: sqlite3.Connection) -> None:
        _modifiable(conn, system_id, username)
        if who is None:
            conn.execute("DELETE FROM agave_systems_roles WHERE system_id = ?", (system_id,))
        else:
            conn.execute(
                "DELETE FROM agave_systems_roles WHERE system_id = ? AND username = ?", (system_id, who)
            )

    await service.store.run(delete)
    return ok(request, None, message="Roles removed")


# -- credentials -------------------------------------------------------------------------------------


def _credential_doc(base: str, system_id: str, cred: sqlite3.Row) -> dict[str, Any]:
    stored = json.loads(cred["doc"])
    internal = cred["internal_username"] or None
    href = f"{base}/systems/v2/{system_id}/credentials/{internal or ''}".rstrip("/")
    doc: dict[str, Any] = {
        "internalUsername": internal,
        "credentialType": cred["credential_type"],
        "type": stored.get("type"),
        "username": stored.get("username"),
        "default": internal is None,
        "valid": True,
        "created": cred["created"],
        "lastModified": cred["last_modified"],
        "expirationDate": stored.get("expirationDate"),
        "_links": {"self": {"href": f"{href}/{cred['credential_type']}" if internal else href},
                   "system": {"href": f"{base}/systems/v2/{system_id}"}},
    }  # fmt: skip
    server = stored.get("server")
    if isinstance(server, dict):
        doc["server"] = {k: v for k, v in server.items() if k not in SECRET_FIELDS}
    assert not SECRET_FIELDS & doc.keys()
    return doc


def _credential_args(request: web.Request) -> tuple[str | None, str | None]:
    internal = request.match_info.get("internal_username")
    ctype = request.match_info.get("credential_type")
    if ctype is not None:
        if ctype.upper() not in CREDENTIAL_TYPES:
            raise AgaveError(
                400, f"Invalid credential type '{ctype[:40]}'. Valid values are: LOGIN, STORAGE."
            )
        ctype = ctype.upper()
    return internal, ctype


async def list_credentials(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, base, system_id = user_of(request), api_base(request), request.match_info["system_id"]
    internal, ctype = _credential_args(request)

    def listing(conn: sqlite3.Connection) -> list[dict[str, Any]] | dict[str, Any]:
        _visible(conn, system_id, username, "ADMIN")
        sql = "SELECT * FROM agave_systems_credentials WHERE system_id = ?"
        args: list[Any] = [system_id]
        if internal is not None:
            sql, args = sql + " AND internal_username = ?", [*args, internal]
        if ctype is not None:
            sql, args = sql + " AND credential_type = ?", [*args, ctype]
        rows = conn.execute(sql + " ORDER BY internal_username, credential_type", args).fetchall()
        docs = [_credential_doc(base, system_id, r) for r in rows]
        if ctype is not None:  # one internal user's credential of one type: one object
            if not docs:
                raise AgaveError(404, f"No {ctype} credential for {internal} on system {system_id}")
            return docs[0]
        if internal is not None and not docs:
            raise AgaveError(404, f"No credentials for internal user {internal} on system {system_id}")
        return docs

    result = await service.store.run(listing)
    return ok(request, result if isinstance(result, dict) else page(request, result))


async def update_credentials(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, base, system_id = user_of(request), api_base(request), request.match_info["system_id"]
    internal, ctype = _credential_args(request)
    body = await json_body(request)
    credential = validate_credential(body)
    if internal is None:
        internal = credential.get("internalUsername") or ""
    if ctype is None and isinstance(body, dict) and body.get("credentialType") is not None:
        given = str(body["credentialType"]).upper()
        if given not in CREDENTIAL_TYPES:
            raise AgaveError(400, "Invalid 'credentialType'. Valid values are: LOGIN, STORAGE.")
        ctype = given
    credential.pop("credentialType", None)
    credential.pop("internalUsername", None)

    def update(conn: sqlite3.Connection) -> dict[str, Any]:
        row = (
            _modifiable(conn, system_id, username)
            if internal == ""
            else _visible(conn, system_id, username, "ADMIN")
        )
        kind = ctype or ("LOGIN" if row["type"] == "EXECUTION" else "STORAGE")
        _store_credential(conn, system_id, internal, kind, credential)
        cred = conn.execute(
            "SELECT * FROM agave_systems_credentials WHERE system_id = ? AND internal_username = ? "
            "AND credential_type = ?",
            (system_id, internal, kind),
        ).fetchone()
        return _credential_doc(base, system_id, cred)

    return ok(request, await service.store.run(update), status=201)


async def delete_credentials(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, system_id = user_of(request), request.match_info["system_id"]
    internal, ctype = _credential_args(request)

    def delete(conn: sqlite3.Connection) -> None:
        _visible(conn, system_id, username, "ADMIN")
        # Without an internal user: every internal user's credentials (the owner's own stay,
        # as the system cannot work without them).
        sql = "DELETE FROM agave_systems_credentials WHERE system_id = ?"
        args: list[Any] = [system_id]
        if internal is None:
            sql += " AND internal_username != ''"
        else:
            sql, args = sql + " AND internal_username = ?", [*args, internal]
        if ctype is not None:
            sql, args = sql + " AND credential_type = ?", [*args, ctype]
        conn.execute(sql, args)

    await service.store.run(delete)
    return ok(request, None, message="Credentials removed")


async def install(service: AgaveService) -> None:
    await service.store.executescript(SCHEMA)
    await service.store.run(lambda conn: _seed(conn, service.username))

    def route(
        method: str, path: str, handler: Callable[[AgaveService, web.Request], Awaitable[web.StreamResponse]]
    ) -> None:
        service.route(method, path, functools.partial(handler, service))

    root = "/systems/v2"
    route("GET", f"{root}/", list_systems)
    route("POST", f"{root}/", add_system)
    item = f"{root}/{{system_id}}"
    route("GET", item, get_system)
    route("POST", item, update_system)
    route("PUT", item, manage_system)
    route("DELETE", item, delete_system)
    route("GET", f"{item}/roles", list_roles)
    route("POST", f"{item}/roles", update_role)
    route("DELETE", f"{item}/roles", delete_roles)
    route("GET", f"{item}/roles/{{username}}", get_role)
    route("POST", f"{item}/roles/{{username}}", update_role)
    route("DELETE", f"{item}/roles/{{username}}", delete_roles)
    for tail in (
        "/credentials",
        "/credentials/{internal_username}",
        "/credentials/{internal_username}/{credential_type}",
    ):
        route("GET", item + tail, list_credentials)
        route("POST", item + tail, update_credentials)
        route("DELETE", item + tail, delete_credentials)
