"""Apps of the embedded Agave: CRUD, publish/clone/enable/disable/erase, permissions, listings.

Faithful to agave.md §6.2: a private app's id is ``<name>-<version>``; registering it
again (or ``POST /apps/v2/{id}``) replaces it and increments its revision; ``publish``
makes a public copy ``<name>-<version>u<n>`` (202), ``clone`` a private copy under a new
name/version (202); ``enable``/``disable`` answer the App; ``erase`` removes the app for
good, ``DELETE`` removes it from view. An app must name an existing execution system and
deployment (storage) system the caller can use, or it is refused with a 400.

Permissions: the owner has everything; a public app is READ+EXECUTE for everyone; a tenant
admin may do anything; other users have what ``/pems`` grants them. Seeing an app takes
READ (an invisible app is a 404), changing it or its grants takes WRITE.

Other resources (jobs) read apps through :func:`lookup_app`.
"""

from __future__ import annotations

import functools
import html
import json
import re
import sqlite3
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .defaults import DEFAULT_EXECUTION_SYSTEM, DEFAULT_STORAGE_SYSTEM, SEEDED_APP
from .grants import grant_of
from .systems import ROLE_RANK, default_storage_system, effective_role, is_tenant_admin
from .wire import (
    AgaveError,
    agave_uuid,
    api_base,
    iso_millis,
    json_body,
    matches_search,
    ok,
    page,
    positive_int,
    rlike_filter,
    search_terms,
    split_rlike,
    truthy,
    user_of,
)

if TYPE_CHECKING:
    from .service import AgaveService

__all__ = ["install", "lookup_app", "may_execute"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS agave_apps_apps (
    id TEXT PRIMARY KEY, uuid TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1, owner TEXT NOT NULL, public INTEGER NOT NULL DEFAULT 0,
    available INTEGER NOT NULL DEFAULT 1, deleted INTEGER NOT NULL DEFAULT 0,
    execution_system TEXT NOT NULL, deployment_system TEXT NOT NULL,
    created TEXT NOT NULL, last_modified TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agave_apps_pems (
    app_id TEXT NOT NULL, username TEXT NOT NULL, read INTEGER NOT NULL, write INTEGER NOT NULL,
    execute INTEGER NOT NULL, PRIMARY KEY (app_id, username));
"""

PERMISSIONS = {
    "NONE": (False, False, False),
    "READ": (True, False, False),
    "WRITE": (False, True, False),
    "EXECUTE": (False, False, True),
    "READ_WRITE": (True, True, False),
    "READ_EXECUTE": (True, False, True),
    "WRITE_EXECUTE": (False, True, True),
    "ALL": (True, True, True),
    "READ_WRITE_EXECUTE": (True, True, True),
}
ACTIONS = ("publish", "clone", "enable", "disable", "erase")
PARALLELISMS = ("SERIAL", "PARALLEL", "PTHREAD")
EXECUTION_TYPES = ("HPC", "CONDOR", "CLI", "ATMOSPHERE")
PARAMETER_TYPES = ("string", "number", "enumeration", "bool", "flag")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
_VERSION = re.compile(r"^\d+(\.\d+){0,3}$")
# Full-App fields a listing can be searched on (agave.md §4); list fields match as text.
SEARCH_FIELDS = (
    "id", "name", "version", "revision", "label", "shortDescription", "longDescription", "owner",
    "executionSystem", "deploymentSystem", "executionType", "parallelism", "isPublic", "public",
    "available", "tags", "ontology", "lastModified", "created", "defaultQueue", "uuid",
    "deploymentPath", "templatePath", "testPath", "checkpointable", "helpURI", "icon",
)  # fmt: skip


# -- the contract other resources use -------------------------------------------------------------


def _row(conn: sqlite3.Connection, app_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM agave_apps_apps WHERE id = ? AND deleted = 0", (app_id,)
    ).fetchone()
    return row


def permissions_of(conn: sqlite3.Connection, row: sqlite3.Row, username: str) -> tuple[bool, bool, bool]:
    """(read, write, execute) of ``username`` on the app ``row``."""
    if row["owner"] == username or is_tenant_admin(conn, username):
        return True, True, True
    grant = conn.execute(
        "SELECT read, write, execute FROM agave_apps_pems WHERE app_id = ? AND username = ?",
        (row["id"], username),
    ).fetchone()
    read, write, execute = (bool(grant[0]), bool(grant[1]), bool(grant[2])) if grant else (False,) * 3
    if row["public"]:
        read = execute = True
    return read or write or execute, write, execute


def _links(base: str, row: sqlite3.Row) -> dict[str, Any]:
    href = f"{base}/apps/v2/{row['id']}"
    return {
        "self": {"href": href},
        "executionSystem": {"href": f"{base}/systems/v2/{row['execution_system']}"},
        "storageSystem": {"href": f"{base}/systems/v2/{row['deployment_system']}"},
        "history": {"href": f"{href}/history"},
        "metadata": {"href": f'{base}/meta/v2/data/?q={{"associationIds":"{row["uuid"]}"}}'},
        "owner": {"href": f"{base}/profiles/v2/{row['owner']}"},
        "permissions": {"href": f"{href}/pems"},
    }


def _render(row: sqlite3.Row, base: str) -> dict[str, Any]:
    doc = json.loads(row["doc"])
    return {
        "id": row["id"],
        "name": row["name"],
        "icon": doc.get("icon"),
        "uuid": row["uuid"],
        "parallelism": doc["parallelism"],
        "defaultProcessorsPerNode": doc.get("defaultProcessorsPerNode"),
        "defaultMemoryPerNode": doc.get("defaultMemoryPerNode"),
        "defaultNodeCount": doc.get("defaultNodeCount"),
        "defaultMaxRunTime": doc.get("defaultMaxRunTime"),
        "defaultQueue": doc.get("defaultQueue"),
        "version": row["version"],
        "revision": row["revision"],
        "isPublic": bool(row["public"]),
        "helpURI": doc.get("helpURI"),
        "label": doc.get("label") or row["name"],
        "owner": row["owner"],
        "shortDescription": doc.get("shortDescription"),
        "longDescription": doc.get("longDescription"),
        "tags": doc.get("tags", []),
        "ontology": doc.get("ontology", []),
        "executionType": doc["executionType"],
        "executionSystem": row["execution_system"],
        "deploymentPath": doc["deploymentPath"],
        "deploymentSystem": row["deployment_system"],
        "templatePath": doc["templatePath"],
        "testPath": doc["testPath"],
        "checkpointable": bool(doc.get("checkpointable", False)),
        "lastModified": row["last_modified"],
        "created": row["created"],
        "modules": doc.get("modules", []),
        "available": bool(row["available"]),
        "inputs": doc.get("inputs", []),
        "parameters": doc.get("parameters", []),
        "outputs": doc.get("outputs", []),
        "_links": _links(base, row),
    }


def _summary(row: sqlite3.Row, base: str) -> dict[str, Any]:
    doc = json.loads(row["doc"])
    return {
        "id": row["id"],
        "name": row["name"],
        "version": row["version"],
        "revision": row["revision"],
        "executionSystem": row["execution_system"],
        "shortDescription": doc.get("shortDescription"),
        "isPublic": bool(row["public"]),
        "label": doc.get("label") or row["name"],
        "available": bool(row["available"]),
        "lastModified": row["last_modified"],
        "_links": {"self": {"href": f"{base}/apps/v2/{row['id']}"}},
    }


def lookup_app(conn: sqlite3.Connection, app_id: str, username: str, base: str = "") -> dict[str, Any] | None:
    """The full App JSON as ``username`` is served it, or None if unknown or not readable.

    ``base`` prefixes the ``_links`` hrefs (``api_base(request)``); without it they are
    root-relative. Runs inside a store transaction.
    """
    row = _row(conn, app_id)
    if row is None or not permissions_of(conn, row, username)[0]:
        return None
    return _render(row, base)


def may_execute(conn: sqlite3.Connection, app_id: str, username: str) -> bool:
    """Whether ``username`` may run jobs of the app (owner, public app, EXECUTE grant, admin).

    :func:`lookup_app` answers any app the user can *read*; a READ-only grant does not
    allow a job. Runs inside a store transaction.
    """
    row = _row(conn, app_id)
    return row is not None and permissions_of(conn, row, username)[2]


# -- validation ------------------------------------------------------------------------------------


def _text(body: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise AgaveError(400, f"Please specify a valid string value for the '{key}' field.")
        return None
    if not isinstance(value, str):
        raise AgaveError(400, f"Invalid '{key}' value: expected a string.")
    return value


def _int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    return positive_int(value, f"Invalid '{key}' value: expected a positive integer.")


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if isinstance(value, str):  # Agave accepts a comma-separated string too
        return [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AgaveError(400, f"Invalid '{key}' value: expected a list of strings.")
    return list(value)


def _argument(item: Any, kind: str, index: int) -> dict[str, Any]:
    where = f"{kind}[{index}]"
    if not isinstance(item, dict):
        raise AgaveError(400, f"Invalid '{where}' value: expected a JSON object.")
    arg_id = item.get("id")
    if not isinstance(arg_id, str) or not _NAME.match(arg_id):
        raise AgaveError(400, f"Please specify a valid 'id' for {where}.")
    value = item.get("value") or {}
    details = item.get("details") or {}
    semantics = item.get("semantics") or {}
    if not all(isinstance(x, dict) for x in (value, details, semantics)):
        raise AgaveError(400, f"Invalid {where}: 'value', 'details' and 'semantics' must be JSON objects.")
    out_value: dict[str, Any] = {
        "validator": value.get("validator"),
        "visible": bool(value.get("visible", True)),
        "required": bool(value.get("required", kind != "outputs")),
        "order": value.get("order", 0),
        "enquote": bool(value.get("enquote", False)),
        "default": value.get("default", value.get("defaultValue")),
    }
    if kind == "parameters":
        ptype = value.get("type", "string")
        if not isinstance(ptype, str) or ptype.lower() not in PARAMETER_TYPES:
            raise AgaveError(
                400, f"Invalid {where}.value.type. Valid values are: {', '.join(PARAMETER_TYPES)}."
            )
        out_value["type"] = ptype.lower()
        if ptype.lower() == "enumeration":
            out_value["enum_values"] = value.get("enum_values") or value.get("enumValues") or []
    out: dict[str, Any] = {
        "id": arg_id,
        "value": out_value,
        "details": {
            "label": details.get("label", arg_id),
            "description": details.get("description"),
            "argument": details.get("argument"),
            "showArgument": bool(details.get("showArgument", False)),
            "repeatArgument": bool(details.get("repeatArgument", False)),
        },
        "semantics": {
            "ontology": semantics.get("ontology", []),
            "minCardinality": semantics.get("minCardinality", 1 if out_value["required"] else 0),
            "maxCardinality": semantics.get("maxCardinality", -1 if kind != "parameters" else 1),
        },
    }
    if kind != "parameters":
        out["semantics"]["fileTypes"] = semantics.get("fileTypes", ["raw-0"])
    return out


def _validate_app(body: Any) -> dict[str, Any]:
    """An ApplicationRequest as stored: required fields present, lists and enums checked."""
    if not isinstance(body, dict):
        raise AgaveError(400, "The app description must be a JSON object.")
    name = _text(body, "name", required=True)
    version = _text(body, "version", required=True)
    assert name is not None and version is not None
    if not _NAME.match(name):
        raise AgaveError(
            400, "Invalid 'name': use letters, digits, '.', '_' and '-' (at most 64 characters)."
        )
    if not _VERSION.match(version):
        raise AgaveError(400, "Invalid 'version': use dot-separated numbers such as 1.00 or 2.1.3.")
    doc: dict[str, Any] = {"name": name, "version": version}
    for key in ("executionSystem", "deploymentPath", "templatePath", "testPath"):
        doc[key] = _text(body, key, required=True)
    for key in ("deploymentSystem", "label", "shortDescription", "longDescription", "helpURI", "icon",
                "defaultQueue", "defaultMemoryPerNode", "defaultMaxRunTime"):  # fmt: skip
        doc[key] = _text(body, key)
    memory = body.get("defaultMemoryPerNode", body.get("defaultMemory"))
    if isinstance(memory, (int, float)) and not isinstance(memory, bool):
        doc["defaultMemoryPerNode"] = memory
    doc["defaultProcessorsPerNode"] = _int(
        {"defaultProcessorsPerNode": body.get("defaultProcessorsPerNode", body.get("defaultProcessors"))},
        "defaultProcessorsPerNode",
    )
    doc["defaultNodeCount"] = _int(body, "defaultNodeCount")
    execution_type = body.get("executionType")
    if execution_type is not None and (
        not isinstance(execution_type, str) or execution_type.upper() not in EXECUTION_TYPES
    ):
        raise AgaveError(400, f"Invalid 'executionType'. Valid values are: {', '.join(EXECUTION_TYPES)}.")
    doc["executionType"] = execution_type.upper() if isinstance(execution_type, str) else None
    parallelism = body.get("parallelism", "SERIAL")
    if not isinstance(parallelism, str) or parallelism.upper() not in PARALLELISMS:
        raise AgaveError(400, f"Invalid 'parallelism'. Valid values are: {', '.join(PARALLELISMS)}.")
    doc["parallelism"] = parallelism.upper()
    doc["checkpointable"] = bool(body.get("checkpointable", False))
    for key in ("tags", "ontology", "modules"):
        doc[key] = _strings(body, key)
    for kind in ("inputs", "parameters", "outputs"):
        items = body.get(kind, [])
        if not isinstance(items, list):
            raise AgaveError(400, f"Invalid '{kind}' value: expected a list.")
        doc[kind] = [_argument(item, kind, i) for i, item in enumerate(items)]
        ids = [a["id"] for a in doc[kind]]
        if len(set(ids)) != len(ids):
            raise AgaveError(400, f"The ids of '{kind}' must be unique.")
    clash = {a["id"] for a in doc["inputs"]} & {p["id"] for p in doc["parameters"]}
    if clash:
        raise AgaveError(400, f"Inputs and parameters share ids: {', '.join(sorted(clash))}.")
    return doc


def _check_systems(conn: sqlite3.Connection, doc: dict[str, Any], username: str, *, public: bool) -> None:
    """The execution and deployment systems exist, are of the right type and usable (400 otherwise);
    fills in the defaults they give (deployment system, execution type, queue)."""
    if doc.get("deploymentSystem") is None:
        doc["deploymentSystem"] = default_storage_system(conn, username)
    for key, kind, need in (
        ("executionSystem", "EXECUTION", "USER"),
        ("deploymentSystem", "STORAGE", "GUEST"),
    ):
        system_id = doc[key]
        row = conn.execute("SELECT * FROM agave_systems_systems WHERE id = ?", (system_id,)).fetchone()
        if row is None or ROLE_RANK[effective_role(conn, row, username)] < ROLE_RANK["GUEST"]:
            raise AgaveError(400, f"No {kind.lower()} system found with id {system_id} for {username}")
        if row["type"] != kind:
            raise AgaveError(400, f"{key} {system_id} is not an {kind} system" if kind == "EXECUTION"
                             else f"{key} {system_id} is not a {kind} system")  # fmt: skip
        if ROLE_RANK[effective_role(conn, row, username)] < ROLE_RANK[need]:
            raise AgaveError(400, f"User {username} does not have a {need} role on system {system_id}")
        if public and not row["public"]:
            raise AgaveError(400, f"A public app needs a public {key}; {system_id} is private")
        if kind == "EXECUTION":
            system = json.loads(row["doc"])
            if doc.get("executionType") is None:
                doc["executionType"] = system.get("executionType") or "CLI"
            queues = [q["name"] for q in system.get("queues") or []]
            if doc.get("defaultQueue") is not None and doc["defaultQueue"] not in queues:
                raise AgaveError(
                    400,
                    f"defaultQueue {doc['defaultQueue']} is not a queue of {system_id} ({', '.join(queues)})",
                )
            if doc.get("defaultQueue") is None:
                default = [q["name"] for q in system.get("queues") or [] if q.get("default")]
                doc["defaultQueue"] = (default or queues or [None])[0]


# -- storage helpers (inside one store transaction) -------------------------------------------------


def _write(
    conn: sqlite3.Connection, app_id: str, doc: dict[str, Any], owner: str, *, public: bool, revision: int,
    uuid: str | None = None, created: str | None = None,
) -> None:  # fmt: skip
    now = iso_millis()
    conn.execute("DELETE FROM agave_apps_apps WHERE id = ?", (app_id,))
    conn.execute(
        "INSERT INTO agave_apps_apps (id, uuid, name, version, revision, owner, public, available, "
        "execution_system, deployment_system, created, last_modified, doc) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
        (app_id, uuid or agave_uuid("app"), doc["name"], doc["version"], revision, owner, int(public),
         doc["executionSystem"], doc["deploymentSystem"], created or now, now, json.dumps(doc)),
    )  # fmt: skip


WC_APP: dict[str, Any] = {
    "name": "wc",
    "version": "1.00",
    "label": "Word count",
    "shortDescription": "Count words in a file",
    "longDescription": "Counts the lines, words and characters of a file (the embedded platform's sample).",
    "executionSystem": DEFAULT_EXECUTION_SYSTEM,
    "executionType": "CLI",
    "parallelism": "SERIAL",
    "deploymentSystem": DEFAULT_STORAGE_SYSTEM,
    "deploymentPath": "/apps/wc-1.00",
    "templatePath": "wrapper.sh",
    "testPath": "test/test.sh",
    "defaultQueue": "normal",
    "defaultNodeCount": 1,
    "defaultProcessorsPerNode": 1,
    "defaultMemoryPerNode": "1GB",
    "defaultMaxRunTime": "00:10:00",
    "tags": ["demo", "text"],
    "ontology": ["http://sswapmeet.sswap.info/agave/apps/Application"],
    "modules": [],
    "inputs": [
        {
            "id": "query1",
            "value": {"default": "read1.fq", "required": False, "visible": True, "order": 0},
            "details": {"label": "File to count words in", "argument": None, "showArgument": False},
            "semantics": {
                "ontology": ["http://sswapmeet.sswap.info/mime/text/Plain"],
                "minCardinality": 0,
                "maxCardinality": 1,
                "fileTypes": ["text-0"],
            },
        }
    ],
    "parameters": [
        {
            "id": "printLongestLine",
            "value": {"default": False, "type": "bool", "required": False, "visible": True, "order": 0},
            "details": {
                "label": "Print the length of the longest line",
                "argument": "-L ",
                "showArgument": True,
            },
            "semantics": {"ontology": ["xs:boolean"]},
        }
    ],
    "outputs": [
        {
            "id": "outputWC",
            "value": {"default": "wc_out.txt", "required": False, "visible": True, "order": 0},
            "details": {"label": "Results of wc", "description": "The word count of the input"},
            "semantics": {"fileTypes": ["text-0"], "minCardinality": 1, "maxCardinality": 1},
        }
    ],
}


def _seed(conn: sqlite3.Connection, owner: str) -> None:
    if conn.execute("SELECT 1 FROM agave_apps_apps WHERE id = ?", (SEEDED_APP,)).fetchone() is None:
        doc = _validate_app(WC_APP)
        _write(conn, SEEDED_APP, doc, owner, public=True, revision=1)


# -- handlers ---------------------------------------------------------------------------------------



def _readable(conn: sqlite3.Connection, app_id: str, username: str, *, write: bool = False) -> sqlite3.Row:
    """The app's row if ``username`` may read (and with ``write``, change) it: 404 / 403 otherwise."""
    row = _row(conn, app_id)
    perms = (False, False, False) if row is None else permissions_of(conn, row, username)
    if row is None or not perms[0]:
        raise AgaveError(404, f"No software found matching {app_id}")
    if write and not perms[1]:
        raise AgaveError(403, f"User {username} does not have permission to modify app {app_id}")
    return row


def _visible_rows(
    conn: sqlite3.Connection, username: str, where: str = "", args: tuple[Any, ...] = ()
) -> list[sqlite3.Row]:
    rows = conn.execute(
        f"SELECT * FROM agave_apps_apps WHERE deleted = 0 {where} "
        "ORDER BY public, name, version, revision, id",
        args,
    ).fetchall()
    # Listings show one's own, public and shared apps (a tenant admin can read any app, but
    # does not see every user's private apps in a listing).
    return [
        row
        for row in rows
        if row["owner"] == username or row["public"] or _granted(conn, row["id"], username)
    ]


def _granted(conn: sqlite3.Connection, app_id: str, username: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM agave_apps_pems WHERE app_id = ? AND username = ? AND (read OR write OR execute)",
            (app_id, username),
        ).fetchone()
        is not None
    )


def _search_doc(app: dict[str, Any]) -> dict[str, Any]:
    doc = {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in app.items()}
    doc["public"] = app["isPublic"]
    return doc


def _listing(where: str = "", arg: Callable[[web.Request], tuple[Any, ...]] | None = None) -> Callable[
    [AgaveService, web.Request], Awaitable[web.StreamResponse]
]:  # fmt: skip
    """A listing handler: visible apps (``where`` narrows), ``publicOnly``/``privateOnly``, search."""

    async def handler(service: AgaveService, request: web.Request) -> web.StreamResponse:
        username, base, query = user_of(request), api_base(request), request.query
        terms, patterns = split_rlike(search_terms(query, SEARCH_FIELDS))
        public_only = truthy(query.get("publicOnly"))
        private_only = truthy(query.get("privateOnly"))
        args = arg(request) if arg is not None else ()

        def listing(conn: sqlite3.Connection) -> list[tuple[dict[str, Any], dict[str, Any]]]:
            out = []
            for row in _visible_rows(conn, username, where, args):
                if (public_only and not row["public"]) or (private_only and row["public"]):
                    continue
                doc = _search_doc(_render(row, base)) if terms or patterns else {}
                if terms and not matches_search(doc, terms):
                    continue
                out.append(({field: doc.get(field) for field, _ in patterns}, _summary(row, base)))
            return out

        # rlike terms are matched after the store's transaction, off its thread.
        return ok(request, page(request, await rlike_filter(await service.store.run(listing), patterns)))

    return handler


def _json_list_contains(column: str) -> str:
    return f"AND EXISTS (SELECT 1 FROM json_each(json_extract(doc, '$.{column}')) WHERE value = ?)"


list_apps = _listing()
list_by_name = _listing("AND name = ?", lambda r: (r.match_info["name"],))
list_by_tag = _listing(_json_list_contains("tags"), lambda r: (r.match_info["tag"],))
list_by_ontology_term = _listing(_json_list_contains("ontology"), lambda r: (r.match_info["term"],))
list_by_system_id = _listing(
    "AND (execution_system = ? OR deployment_system = ?)",
    lambda r: (r.match_info["system_id"], r.match_info["system_id"]),
)


async def add_app(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, base = user_of(request), api_base(request)
    doc = _validate_app(await json_body(request))
    app_id = f"{doc['name']}-{doc['version']}"

    def add(conn: sqlite3.Connection) -> tuple[dict[str, Any], int]:
        _check_systems(conn, doc, username, public=False)
        old = conn.execute("SELECT * FROM agave_apps_apps WHERE id = ?", (app_id,)).fetchone()
        if old is not None and not old["deleted"]:
            # Registering an existing name/version again updates it (as the Java service does),
            # if the caller may write it.
            if not permissions_of(conn, old, username)[1]:
                raise AgaveError(403, f"User {username} does not have permission to update app {app_id}")
            if old["public"]:
                raise AgaveError(400, f"App {app_id} is public; public apps cannot be updated")
            _write(conn, app_id, doc, old["owner"], public=False, revision=old["revision"] + 1,
                   uuid=old["uuid"], created=old["created"])  # fmt: skip
            status = 200
        else:
            conn.execute("DELETE FROM agave_apps_pems WHERE app_id = ?", (app_id,))
            _write(conn, app_id, doc, username, public=False, revision=1)
            status = 201
        row = _row(conn, app_id)
        assert row is not None
        return _render(row, base), status

    app, status = await service.store.run(add)
    return ok(request, app, status=status)


async def get_app(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, base, app_id = user_of(request), api_base(request), request.match_info["app_id"]
    return ok(request, await service.store.run(lambda conn: _render(_readable(conn, app_id, username), base)))


async def update_app(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, base, app_id = user_of(request), api_base(request), request.match_info["app_id"]
    doc = _validate_app(await json_body(request))

    def update(conn: sqlite3.Connection) -> dict[str, Any]:
        old = _readable(conn, app_id, username, write=True)
        if old["public"]:
            raise AgaveError(400, f"App {app_id} is public; public apps cannot be updated")
        if f"{doc['name']}-{doc['version']}" != app_id:
            raise AgaveError(
                400, f"The name and version of the body ({doc['name']}-{doc['version']}) must match {app_id}"
            )
        _check_systems(conn, doc, username, public=False)
        _write(conn, app_id, doc, old["owner"], public=False, revision=old["revision"] + 1,
               uuid=old["uuid"], created=old["created"])  # fmt: skip
        conn.execute("UPDATE agave_apps_apps SET available = ? WHERE id = ?", (old["available"], app_id))
        row = _row(conn, app_id)
        assert row is not None
        return _render(row, base)

    return ok(request, await service.store.run(update), status=201)


async def manage_app(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, base, app_id = user_of(request), api_base(request), request.match_info["app_id"]
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("action"), str):
        raise AgaveError(400, f"Please specify an action: one of {', '.join(ACTIONS)}")
    action = body["action"].lower()
    if action not in ACTIONS:
        raise AgaveError(
            400, f"Invalid action '{body['action'][:40]}'. Valid actions are: {', '.join(ACTIONS)}"
        )
    overrides: dict[str, Any] = {}
    for key in ("name", "version", "executionSystem", "deploymentSystem", "deploymentPath"):
        value = body.get(key)
        if key == "deploymentSystem" and value is None:
            value = body.get("storageSystem")  # the older name of the same field
        if value is not None:
            if not isinstance(value, str) or not value.strip():
                raise AgaveError(400, f"Invalid '{key}' value: expected a string.")
            overrides[key] = value
    if "name" in overrides and not _NAME.match(overrides["name"]):
        raise AgaveError(
            400, "Invalid 'name': use letters, digits, '.', '_' and '-' (at most 64 characters)."
        )
    if "version" in overrides and not _VERSION.match(overrides["version"]):
        raise AgaveError(400, "Invalid 'version': use dot-separated numbers such as 1.00 or 2.1.3.")

    def manage(conn: sqlite3.Connection) -> tuple[dict[str, Any] | None, int]:
        if action in ("enable", "disable", "erase"):
            row = _readable(conn, app_id, username, write=True)
            if row["public"] and not is_tenant_admin(conn, username):
                raise AgaveError(403, f"Only tenant administrators can {action} public app {app_id}")
            if action == "erase":
                conn.execute("DELETE FROM agave_apps_pems WHERE app_id = ?", (app_id,))
                conn.execute("DELETE FROM agave_apps_apps WHERE id = ?", (app_id,))
                return None, 200
            conn.execute(
                "UPDATE agave_apps_apps SET available = ?, last_modified = ? WHERE id = ?",
                (int(action == "enable"), iso_millis(), app_id),
            )
            new = _row(conn, app_id)
            assert new is not None
            return _render(new, base), 200
        row = _readable(conn, app_id, username)
        doc = {**json.loads(row["doc"]), **overrides}
        if action == "publish":
            _check_publisher(conn, doc, username)
            _check_systems(conn, doc, username, public=True)
            stem = f"{doc['name']}-{doc['version']}"
            revisions = [
                int(r[0].rsplit("u", 1)[1])
                for r in conn.execute(
                    "SELECT id FROM agave_apps_apps WHERE name = ? AND version = ? AND public = 1",
                    (doc["name"], doc["version"]),
                ).fetchall()
                if re.fullmatch(re.escape(stem) + r"u\d+", r[0])
            ]
            revision = max(revisions, default=0) + 1
            new_id = f"{stem}u{revision}"
            _write(conn, new_id, doc, username, public=True, revision=revision)
        else:  # clone: a private copy under the caller's name and version
            _check_systems(conn, doc, username, public=False)
            new_id = f"{doc['name']}-{doc['version']}"
            if conn.execute(
                "SELECT 1 FROM agave_apps_apps WHERE id = ? AND deleted = 0", (new_id,)
            ).fetchone():
                raise AgaveError(
                    409, f"An app with id {new_id} already exists; give the clone another name or version"
                )
            conn.execute("DELETE FROM agave_apps_pems WHERE app_id = ?", (new_id,))
            _write(conn, new_id, doc, username, public=False, revision=1)
        new = _row(conn, new_id)
        assert new is not None
        return _render(new, base), 202

    app, status = await service.store.run(manage)
    return ok(request, app, status=status, message=None if app else f"App {app_id} erased")


def _check_publisher(conn: sqlite3.Connection, doc: dict[str, Any], username: str) -> None:
    """Publishing takes a tenant admin, or a PUBLISHER role on the app's execution system."""
    if is_tenant_admin(conn, username):
        return
    row = conn.execute(
        "SELECT * FROM agave_systems_systems WHERE id = ?", (doc["executionSystem"],)
    ).fetchone()
    if row is None or ROLE_RANK[effective_role(conn, row, username)] < ROLE_RANK["PUBLISHER"]:
        raise AgaveError(
            403, f"User {username} needs a PUBLISHER role on {doc['executionSystem']} to publish apps there"
        )


async def delete_app(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, app_id = user_of(request), request.match_info["app_id"]

    def delete(conn: sqlite3.Connection) -> None:
        row = _readable(conn, app_id, username, write=True)
        if row["public"] and not is_tenant_admin(conn, username):
            raise AgaveError(403, f"Only tenant administrators can delete public app {app_id}")
        conn.execute(
            "UPDATE agave_apps_apps SET deleted = 1, available = 0, last_modified = ? WHERE id = ?",
            (iso_millis(), app_id),
        )
        conn.execute("DELETE FROM agave_apps_pems WHERE app_id = ?", (app_id,))

    await service.store.run(delete)
    return ok(request, None, message=f"Software {app_id} deleted")


# -- permissions -------------------------------------------------------------------------------------


def _pem_doc(base: str, app_id: str, username: str, perms: tuple[bool, bool, bool]) -> dict[str, Any]:
    href = f"{base}/apps/v2/{app_id}/pems/{username}"
    return {
        "username": username,
        "permission": {"read": perms[0], "write": perms[1], "execute": perms[2]},
        "_links": {
            "self": {"href": href},
            "app": {"href": f"{base}/apps/v2/{app_id}"},
            "profile": {"href": f"{base}/profiles/v2/{username}"},
        },
    }


async def list_pems(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, base, app_id = user_of(request), api_base(request), request.match_info["app_id"]
    who = request.match_info.get("username")

    def pems(conn: sqlite3.Connection) -> list[dict[str, Any]]:
        row = _readable(conn, app_id, username)
        if who is not None:
            return [_pem_doc(base, app_id, who, permissions_of(conn, row, who))]
        out = [_pem_doc(base, app_id, row["owner"], (True, True, True))]
        for grant in conn.execute(
            "SELECT * FROM agave_apps_pems WHERE app_id = ? AND username != ? ORDER BY username",
            (app_id, row["owner"]),
        ).fetchall():
            bits = (bool(grant["read"]), bool(grant["write"]), bool(grant["execute"]))
            out.append(_pem_doc(base, app_id, grant["username"], bits))
        return out

    return ok(request, page(request, await service.store.run(pems)))


async def update_pems(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, base, app_id = user_of(request), api_base(request), request.match_info["app_id"]
    who, permission = grant_of(request, await json_body(request), "permission", list(PERMISSIONS))
    bits = PERMISSIONS[permission]

    def update(conn: sqlite3.Connection) -> dict[str, Any]:
        row = _readable(conn, app_id, username, write=True)
        if who == row["owner"]:
            raise AgaveError(400, f"The owner's permissions on {app_id} cannot be changed")
        if not any(bits):
            conn.execute("DELETE FROM agave_apps_pems WHERE app_id = ? AND username = ?", (app_id, who))
        else:
            conn.execute(
                "INSERT INTO agave_apps_pems (app_id, username, read, write, execute) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(app_id, username) DO UPDATE SET read = excluded.read, write = excluded.write, "
                "execute = excluded.execute",
                (app_id, who, *(int(b) for b in bits)),
            )
        return _pem_doc(base, app_id, who, permissions_of(conn, row, who))

    return ok(request, await service.store.run(update), status=201)


async def delete_pems(service: AgaveService, request: web.Request) -> web.StreamResponse:
    username, app_id = user_of(request), request.match_info["app_id"]
    who = request.match_info.get("username")

    def delete(conn: sqlite3.Connection) -> None:
        _readable(conn, app_id, username, write=True)
        if who is None:
            conn.execute("DELETE FROM agave_apps_pems WHERE app_id = ?", (app_id,))
        else:
            conn.execute("DELETE FROM agave_apps_pems WHERE app_id = ? AND username = ?", (app_id, who))

    await service.store.run(delete)
    return ok(request, None, message="Permissions removed")


async def job_submission_form(service: AgaveService, request: web.Request) -> web.StreamResponse:
    """An HTML form for a job request of this app (the form Agave's portal rendered)."""
    username, app_id = user_of(request), request.match_info["app_id"]
    app = await service.store.run(lambda conn: _render(_readable(conn, app_id, username), ""))
    fields = []
    for kind in ("inputs", "parameters"):
        for item in app[kind]:
            label = html.escape(str(item["details"].get("label") or item["id"]))
            default = item["value"].get("default")
            value = "" if default is None else html.escape(str(default), quote=True)
            name = html.escape(f"{kind}.{item['id']}", quote=True)
            fields.append(f'<label>{label} <input name="{name}" value="{value}"></label>')
    form = (
        f'<form method="post" action="/jobs/v2/" data-app-id="{html.escape(app_id, quote=True)}">'
        f'<input type="hidden" name="appId" value="{html.escape(app_id, quote=True)}">'
        f'<label>Job name <input name="name" value="{html.escape(app["name"], quote=True)}-job"></label>'
        + "".join(fields)
        + '<button type="submit">Submit</button></form>'
    )
    return ok(request, form)


async def install(service: AgaveService) -> None:
    """Tables, the seeded public word-count app, routes (after systems: apps name systems)."""
    await service.store.executescript(SCHEMA)
    await service.store.run(lambda conn: _seed(conn, service.username))

    def route(
        method: str, path: str, handler: Callable[[AgaveService, web.Request], Awaitable[web.StreamResponse]]
    ) -> None:
        service.route(method, path, functools.partial(handler, service))

    root = "/apps/v2"
    route("GET", f"{root}/", list_apps)
    route("POST", f"{root}/", add_app)
    route("GET", f"{root}/name/{{name}}", list_by_name)
    route("GET", f"{root}/tag/{{tag}}", list_by_tag)
    route("GET", f"{root}/ontology/{{term}}", list_by_ontology_term)
    route("GET", f"{root}/system/{{system_id}}", list_by_system_id)
    item = f"{root}/{{app_id}}"
    route("GET", item, get_app)
    route("POST", item, update_app)
    route("PUT", item, manage_app)
    route("DELETE", item, delete_app)
    route("GET", f"{item}/form", job_submission_form)
    for tail in ("/pems", "/pems/{username}"):
        route("GET", item + tail, list_pems)
        route("POST", item + tail, update_pems)
        route("DELETE", item + tail, delete_pems)
