"""The embedded flowserv service: rob-flask 0.6.0's REST API (users, groups, group files) over SQLite.

Faithful to ``shared/protocols/flowserv.md`` and to what the interop tests observed on
the real server (``tests/interop``): the ``api_key`` header, 403 for every auth
failure, strict JSON bodies (unknown keys are a 400), ``{"message": ...}`` errors,
Flask's HTML pages for unknown routes and wrong methods, group names unique per
workflow, the creator always a member, member-only operations, and unauthenticated
downloads with ``Content-Disposition``.

Passwords are stored as salted PBKDF2 hashes; API keys and password-reset requests
expire after ``token_ttl`` seconds (tune it on the service object,
``platform.flowserv.token_ttl``). Uploaded bytes are streamed to disk under
``<platform data_dir>/flowserv`` and never held whole in memory.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import mimetypes
import os
import re
import secrets
import sqlite3
import time
import unicodedata
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from .. import jsonbody
from ..services import EmbeddedService
from .templates import parameter_declarations, read_template

__all__ = ["FlowservService"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HEADER_TOKEN = "api_key"
# The flowserv-core version rob-flask 0.6.0 runs on in the interop tests.
FLOWSERV_VERSION = "0.8.1"
SERVICE_NAME = "Reproducible and Reusable Data Analysis Workflow Server (API)"
DEFAULT_USER = "0" * 8  # flowserv's internal default user, never listed
PBKDF2_ITERATIONS = 20_000
CHUNK = 64 * 1024
CORS_METHODS = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"

INTERNAL_ERROR = (
    "500 Internal Server Error: The server encountered an internal error and was unable to "
    "complete your request. Either the server is overloaded or there is an error in the application."
)

SEED_WORKFLOW = {
    "id": "hello",
    "name": "Hello World",
    "description": "A tiny workflow seeded by the embedded platform",
    "instructions": "Say hello.",
}
# The seeded workflow's parameters: those of the template the interop tests install on
# rob-flask (tests/interop/robflask.py), so groups look alike on both.
SEED_PARAMETERS: list[dict[str, Any]] = [
    {"name": "greeting", "label": "Greeting", "dtype": "string", "defaultValue": "Hello"},
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS flowserv_users (
    id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, secret TEXT NOT NULL,
    active INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS flowserv_api_keys (
    user_id TEXT PRIMARY KEY REFERENCES flowserv_users(id), token TEXT NOT NULL UNIQUE,
    expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS flowserv_password_requests (
    user_id TEXT PRIMARY KEY REFERENCES flowserv_users(id), request_id TEXT NOT NULL UNIQUE,
    expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS flowserv_workflows (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT, instructions TEXT);
CREATE TABLE IF NOT EXISTS flowserv_parameters (
    workflow_id TEXT NOT NULL REFERENCES flowserv_workflows(id), position INTEGER NOT NULL,
    doc TEXT NOT NULL, PRIMARY KEY (workflow_id, position));
CREATE TABLE IF NOT EXISTS flowserv_groups (
    id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL REFERENCES flowserv_workflows(id),
    name TEXT NOT NULL, owner_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS flowserv_members (
    group_id TEXT NOT NULL REFERENCES flowserv_groups(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES flowserv_users(id), position INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id));
CREATE TABLE IF NOT EXISTS flowserv_files (
    id TEXT PRIMARY KEY, group_id TEXT NOT NULL REFERENCES flowserv_groups(id) ON DELETE CASCADE,
    name TEXT NOT NULL, mime_type TEXT, size INTEGER NOT NULL, created_at TEXT NOT NULL);
"""


class FlowservError(Exception):
    """An error answer: status and the JSON body rob-flask's error handlers build."""

    def __init__(self, status: int, message: str, key: str = "message"):
        super().__init__(message)
        self.status = status
        self.body = {key: message}


def _not_logged_in() -> FlowservError:
    return FlowservError(403, "not logged in")


def _not_authorized() -> FlowservError:
    return FlowservError(403, "not authorized")


def _unknown(kind: str, ident: str) -> FlowservError:
    return FlowservError(404, f"unknown {kind} '{ident}'")


def _new_id() -> str:
    return uuidlib.uuid4().hex


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ITERATIONS)
    return f"pbkdf2_sha256${PBKDF2_ITERATIONS}${salt.hex()}${digest.hex()}"


def _verify_password(password: str, stored: str) -> bool:
    try:
        _, iterations, salt, digest = stored.split("$")
        computed = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(computed.hex(), digest)


_FILENAME_STRIP = re.compile(r"[^A-Za-z0-9_.-]")


def secure_filename(filename: str) -> str:
    """Werkzeug's ``secure_filename`` (what rob-flask applies to every uploaded name)."""
    filename = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    for sep in (os.path.sep, os.path.altsep):
        if sep:
            filename = filename.replace(sep, " ")
    return _FILENAME_STRIP.sub("", "_".join(filename.split())).strip("._")


def _flask_html(status: int) -> web.Response:
    """Flask's default error page (rob-flask answers unknown routes and methods in HTML)."""
    titles = {
        400: ("Bad Request", "The browser (or proxy) sent a request that this server could not understand."),
        404: (
            "Not Found",
            "The requested URL was not found on the server. If you entered the URL manually "
            "please check your spelling and try again.",
        ),
        405: ("Method Not Allowed", "The method is not allowed for the requested URL."),
    }
    title, text = titles[status]
    html = (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n'
        f"<title>{status} {title}</title>\n<h1>{title}</h1>\n<p>{text}</p>\n"
    )
    return web.Response(status=status, text=html, content_type="text/html", charset="utf-8")


def _allow_header(allowed: set[str]) -> str:
    """Werkzeug's ``Allow`` for a route: its methods, OPTIONS, and HEAD wherever GET is."""
    methods = set(allowed) | {"OPTIONS"}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def _validate_doc(doc: Any, mandatory: list[str], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """rob-flask's ``jsonbody`` over flowserv's ``validate_doc``, quirks included.

    The checks are Python's ``in`` and ``for`` on whatever the body parsed to, and a
    ``TypeError`` becomes the 400 message: a body that is not JSON (``None``) reads
    "argument of type 'NoneType' is not iterable" where a key is mandatory and
    "'NoneType' object is not iterable" where none is; a JSON list is checked for
    the keys among its items. A body that passes but is not an object then fails in
    the route (a 500), as it does on rob-flask.
    """
    allowed = [*mandatory, *optional]
    try:
        for key in mandatory:
            if key not in doc:
                raise FlowservError(400, f"missing element '{key}'")
        for key in doc:
            if key not in allowed:
                raise FlowservError(400, f"unknown element '{key}'")
    except TypeError as exc:
        raise FlowservError(400, str(exc)) from None
    if not isinstance(doc, dict):
        raise FlowservError(500, INTERNAL_ERROR, key="error")
    return doc


def _check_password(password: Any) -> str:
    """flowserv's ``validate_password``: None or blank is a 400; a non-string crashes it (500)."""
    if password is None:
        raise FlowservError(400, "empty password")
    if not isinstance(password, str):
        raise FlowservError(500, INTERNAL_ERROR, key="error")
    if password.strip() == "":
        raise FlowservError(400, "empty password")
    return password


class FlowservService(EmbeddedService):
    """rob-flask's API under ``/flowserv/api/v1`` with a seeded workflow (:attr:`workflow_id`)."""

    name = "flowserv"
    prefix = "/flowserv/api/v1"

    def __init__(self, platform: Any):
        super().__init__(platform)
        self.token_ttl: float = 86400.0
        self.max_content_length = 16 * 1024 * 1024
        self.workflow_id = str(SEED_WORKFLOW["id"])

    @property
    def files_dir(self) -> Path:
        assert self.platform.data_dir is not None
        return Path(self.platform.data_dir) / "flowserv"

    def _file_path(self, file_id: str) -> Path:
        return self.files_dir / file_id

    # -- setup -------------------------------------------------------------------------------

    async def setup(self) -> web.Application:
        await self.store.executescript(_SCHEMA)
        self.files_dir.mkdir(parents=True, exist_ok=True)

        def seed(conn: sqlite3.Connection) -> None:
            added = conn.execute(
                "INSERT OR IGNORE INTO flowserv_workflows (id, name, description, instructions)"
                " VALUES (:id, :name, :description, :instructions)",
                SEED_WORKFLOW,
            ).rowcount
            if added:
                declared = parameter_declarations(SEED_PARAMETERS)
                self._insert_parameters(conn, str(SEED_WORKFLOW["id"]), declared)

        await self.store.run(seed)
        app = web.Application(middlewares=[self._errors], client_max_size=self.max_content_length)
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/", self.describe),
            ("POST", "/users/register", self.register),
            ("POST", "/users/activate", self.activate),
            ("POST", "/users/login", self.login),
            ("POST", "/users/logout", self.logout),
            ("GET", "/users/whoami", self.whoami),
            ("GET", "/users", self.list_users),
            ("POST", "/users/password/request", self.password_request),
            ("POST", "/users/password/reset", self.password_reset),
            ("GET", "/workflows", self.list_workflows),
            ("GET", "/workflows/{workflow_id}", self.get_workflow),
            ("POST", "/workflows/{workflow_id}/groups", self.create_group),
            ("GET", "/workflows/{workflow_id}/groups", self.list_groups),
            ("GET", "/groups/{group_id}", self.get_group),
            ("PUT", "/groups/{group_id}", self.update_group),
            ("DELETE", "/groups/{group_id}", self.delete_group),
            ("GET", "/uploads/{group_id}/files", self.list_files),
            ("POST", "/uploads/{group_id}/files", self.upload_file),
            ("GET", "/uploads/{group_id}/files/{file_id}", self.download_file),
            ("DELETE", "/uploads/{group_id}/files/{file_id}", self.delete_file),
        ]
        for method, path, handler in routes:
            if method == "GET":
                app.router.add_get(path, handler)  # HEAD too, as Flask
            else:
                app.router.add_route(method, path, handler)
        app.on_response_prepare.append(self._cors)
        return app

    # -- test helpers --------------------------------------------------------------------------

    async def create_user(self, username: str, password: str, *, active: bool = True) -> str:
        """Register a user directly in the store (tests); returns the user id."""
        secret = await asyncio.to_thread(_hash_password, password.strip())
        user_id = _new_id()

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO flowserv_users (id, username, secret, active) VALUES (?, ?, ?, ?)",
                (user_id, username.strip(), secret, int(active)),
            )

        await self.store.run(insert)
        return user_id

    async def create_workflow(
        self,
        workflow_id: str,
        name: str,
        description: str | None = None,
        *,
        instructions: str | None = None,
        parameters: list[dict[str, Any]] | None = None,
    ) -> str:
        """Add a workflow (the real server gets them from ``flowserv workflows create``).

        ``parameters`` are template parameter declarations (``name``, ``dtype``, and
        optionally ``label``, ``help``, ``defaultValue``, ``index``, ``isRequired``,
        ``group``, a numeric ``range``, a select's ``values``, a file's ``target``); the
        workflow lists them and every group of it carries them. Bad declarations raise
        ``TypeError``/``ValueError`` naming the declaration.
        """
        for arg, value in (("workflow_id", workflow_id), ("name", name)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{arg} must be a non-empty string")
        declared = parameter_declarations(parameters or [])

        def insert(conn: sqlite3.Connection) -> None:
            taken = "SELECT 1 FROM flowserv_workflows WHERE id = ? OR name = ?"
            if conn.execute(taken, (workflow_id, name)).fetchone():
                raise ValueError(f"a workflow with id {workflow_id!r} or name {name!r} exists already")
            conn.execute(
                "INSERT INTO flowserv_workflows (id, name, description, instructions) VALUES (?, ?, ?, ?)",
                (workflow_id, name, description, instructions),
            )
            self._insert_parameters(conn, workflow_id, declared)

        await self.store.run(insert)
        return workflow_id

    async def install_template(
        self, folder: str | Path, workflow_id: str, *, name: str | None = None, description: str | None = None
    ) -> str:
        """Add a workflow from a template folder, as ``flowserv workflows create -k ID FOLDER`` does.

        The folder holds a manifest (``flowserv.yaml``/``.yml``/``.json``) and the workflow
        specification whose ``parameters`` the workflow and its groups carry (YAML needs
        PyYAML). ``name``/``description`` override the manifest's.
        """
        template = await asyncio.to_thread(read_template, folder, name=name, description=description)
        return await self.create_workflow(
            workflow_id, template.name, template.description,
            instructions=template.instructions, parameters=template.parameters,
        )  # fmt: skip

    @staticmethod
    def _insert_parameters(
        conn: sqlite3.Connection, workflow_id: str, declared: list[dict[str, Any]]
    ) -> None:
        conn.executemany(
            "INSERT INTO flowserv_parameters (workflow_id, position, doc) VALUES (?, ?, ?)",
            [(workflow_id, i, json.dumps(doc)) for i, doc in enumerate(declared)],
        )

    @staticmethod
    def _parameters(conn: sqlite3.Connection, workflow_id: str) -> list[dict[str, Any]]:
        rows = conn.execute(
            "SELECT doc FROM flowserv_parameters WHERE workflow_id = ? ORDER BY position", (workflow_id,)
        ).fetchall()
        return [json.loads(row["doc"]) for row in rows]

    # -- plumbing ------------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except FlowservError as exc:
            return self._json(exc.body, exc.status)
        except web.HTTPMethodNotAllowed as exc:
            if request.method == "OPTIONS":
                return self._options(request, exc.allowed_methods)
            page = _flask_html(405)
            page.headers["Allow"] = _allow_header(exc.allowed_methods)
            return page
        except web.HTTPNotFound:
            return _flask_html(404)
        except _BadBody:
            return _flask_html(400)
        except web.HTTPRequestEntityTooLarge:
            return self._json(
                {
                    "error": "413 Request Entity Too Large: The data value transmitted exceeds "
                    "the capacity limit."
                },
                413,
            )

    def _options(self, request: web.Request, allowed: set[str]) -> web.Response:
        """Flask's automatic OPTIONS answer, with flask-cors' preflight headers for an allowed origin."""
        response = web.Response(status=200, content_type="text/html", charset="utf-8")
        response.headers["Allow"] = _allow_header(allowed)
        if "Access-Control-Request-Method" in request.headers and self._origin_allowed(request):
            requested = request.headers.get("Access-Control-Request-Headers")
            if requested:
                response.headers["Access-Control-Allow-Headers"] = requested
            response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
        return response

    def _origin_allowed(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        return origin is not None and origin.rstrip("/") in self.platform.cors_origins

    async def _cors(self, request: web.Request, response: web.StreamResponse) -> None:
        """flask-cors with an origin list: echo an allowed Origin (with ``Vary``), nothing else.

        rob-flask allows every origin, so any web page a developer opens could call the API
        with their browser; here only the origins the user lists (``serve --cors-origin``,
        ``LocalPlatform(cors_origins=...)``) are answered, and none by default.
        """
        response.headers["Vary"] = "Origin"
        if self._origin_allowed(request):
            response.headers["Access-Control-Allow-Origin"] = request.headers["Origin"]

    @staticmethod
    def _json(doc: Any, status: int = 200) -> web.Response:
        # Flask 2.0's jsonify: sorted keys, compact separators, a trailing newline.
        text = json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n"
        # Bytes, so that aiohttp adds no charset: Flask answers a bare "application/json".
        return web.Response(body=text.encode(), status=status, content_type="application/json")

    @staticmethod
    async def _body(request: web.Request) -> Any:
        """The JSON body as Flask 2.0's ``request.json`` sees it (None unless JSON)."""
        if request.content_type != "application/json" and not request.content_type.endswith("+json"):
            return None
        raw = await request.read()
        try:
            return jsonbody.loads(raw)
        except ValueError:
            raise _BadBody() from None

    @staticmethod
    def _token(request: web.Request) -> str:
        token = request.headers.get(HEADER_TOKEN)
        if token is None:
            raise _not_logged_in()
        return token

    @staticmethod
    def _user_for_token(conn: sqlite3.Connection, token: str | None) -> sqlite3.Row | None:
        """The user holding an unexpired key ``token`` (None if there is none)."""
        if token is None:
            return None
        row: sqlite3.Row | None = conn.execute(
            "SELECT u.id, u.username, k.token FROM flowserv_api_keys k"
            " JOIN flowserv_users u ON u.id = k.user_id WHERE k.token = ? AND k.expires > ?",
            (token, time.time()),
        ).fetchone()
        return row

    def _user_doc(self, conn: sqlite3.Connection, user_id: str, *, token: bool = True) -> dict[str, Any]:
        row = conn.execute("SELECT id, username FROM flowserv_users WHERE id = ?", (user_id,)).fetchone()
        doc = {"id": row["id"], "username": row["username"]}
        if token:
            key = conn.execute(
                "SELECT token FROM flowserv_api_keys WHERE user_id = ?", (user_id,)
            ).fetchone()
            if key is not None:
                doc["token"] = key["token"]
        return doc

    # -- service descriptor ------------------------------------------------------------------

    async def describe(self, request: web.Request) -> web.Response:
        """``GET /``: the service descriptor (``username`` only for a valid ``api_key``)."""
        token = request.headers.get(HEADER_TOKEN)
        user = await self.store.run(lambda conn: self._user_for_token(conn, token))
        doc: dict[str, Any] = {
            "name": SERVICE_NAME,
            "version": FLOWSERV_VERSION,
            "url": self.url.rstrip("/"),
            "routes": [{"id": rid, "pattern": pattern} for rid, pattern in _ROUTES],
        }
        if user is not None:
            doc["username"] = user["username"]
        return self._json(doc)

    # -- users -----------------------------------------------------------------------------------

    async def register(self, request: web.Request) -> web.Response:
        obj = _validate_doc(await self._body(request), ["username", "password"], ("verify",))
        username, password = obj["username"], obj["password"]
        verify = bool(obj["verify"]) if "verify" in obj else True
        _check_password(password)
        if username is None:
            raise FlowservError(400, "missing user name")
        if not isinstance(username, str):
            raise FlowservError(500, INTERNAL_ERROR, key="error")
        username = username.strip()
        if username == "" or len(username) > 512:
            raise FlowservError(400, "username too long")
        secret = await asyncio.to_thread(_hash_password, password.strip())
        user_id = _new_id()

        def insert(conn: sqlite3.Connection) -> dict[str, Any]:
            if conn.execute("SELECT 1 FROM flowserv_users WHERE username = ?", (username,)).fetchone():
                raise FlowservError(400, f"duplicate user '{username}'")
            conn.execute(
                "INSERT INTO flowserv_users (id, username, secret, active) VALUES (?, ?, ?, ?)",
                (user_id, username, secret, 0 if verify else 1),
            )
            return {"id": user_id, "username": username}

        return self._json(await self.store.run(insert), 201)

    async def activate(self, request: web.Request) -> web.Response:
        obj = _validate_doc(await self._body(request), ["id"])
        user_id = obj["id"]

        def activate(conn: sqlite3.Connection) -> dict[str, Any]:
            if not conn.execute("SELECT 1 FROM flowserv_users WHERE id = ?", (user_id,)).fetchone():
                raise _unknown("user", str(user_id))
            conn.execute("UPDATE flowserv_users SET active = 1 WHERE id = ?", (user_id,))
            return self._user_doc(conn, user_id)

        return self._json(await self.store.run(activate))

    async def login(self, request: web.Request) -> web.Response:
        obj = _validate_doc(await self._body(request), ["username", "password"])
        username, password = obj["username"], obj["password"]
        row = await self.store.run(
            lambda conn: conn.execute(
                "SELECT id, secret FROM flowserv_users WHERE username = ? AND active = 1", (username,)
            ).fetchone()
        )
        # Unknown user, inactive user and wrong password all read "unknown user" (no enumeration).
        if row is None:
            raise _unknown("user", str(username))
        if not isinstance(password, str):
            raise FlowservError(500, INTERNAL_ERROR, key="error")  # passlib fails on a non-string
        if not await asyncio.to_thread(_verify_password, password, row["secret"]):
            raise _unknown("user", str(username))
        user_id = row["id"]
        ttl = self.token_ttl

        def issue(conn: sqlite3.Connection) -> dict[str, Any]:
            now = time.time()
            key = conn.execute(
                "SELECT token, expires FROM flowserv_api_keys WHERE user_id = ?", (user_id,)
            ).fetchone()
            if key is None:
                conn.execute(
                    "INSERT INTO flowserv_api_keys (user_id, token, expires) VALUES (?, ?, ?)",
                    (user_id, _new_id(), now + ttl),
                )
            else:
                # An unexpired key is kept (same token, later expiry); an expired one is replaced.
                token = key["token"] if key["expires"] >= now else _new_id()
                conn.execute(
                    "UPDATE flowserv_api_keys SET token = ?, expires = ? WHERE user_id = ?",
                    (token, now + ttl, user_id),
                )
            return self._user_doc(conn, user_id)

        return self._json(await self.store.run(issue))

    async def logout(self, request: web.Request) -> web.Response:
        token = self._token(request)

        def logout(conn: sqlite3.Connection) -> dict[str, Any]:
            key = conn.execute("SELECT user_id FROM flowserv_api_keys WHERE token = ?", (token,)).fetchone()
            if key is None:
                # rob-flask serializes a missing user here and crashes (pinned in tests/interop).
                raise FlowservError(500, INTERNAL_ERROR, key="error")
            conn.execute("DELETE FROM flowserv_api_keys WHERE token = ?", (token,))
            return self._user_doc(conn, key["user_id"])

        return self._json(await self.store.run(logout))

    async def whoami(self, request: web.Request) -> web.Response:
        token = self._token(request)

        def whoami(conn: sqlite3.Connection) -> dict[str, Any]:
            user = self._user_for_token(conn, token)
            if user is None:
                raise _not_logged_in()
            return self._user_doc(conn, user["id"])

        return self._json(await self.store.run(whoami))

    async def list_users(self, request: web.Request) -> web.Response:
        # The header is required, but rob-flask 0.6.0 does not validate its value and lists
        # every logged-in user's API key. Same shape here, but a key is shown only to its
        # owner: the caller's own entry carries its token, nobody else's does.
        token = self._token(request)
        query = request.query.get("query")

        def listing(conn: sqlite3.Connection) -> dict[str, Any]:
            caller = self._user_for_token(conn, token)
            sql = "SELECT id FROM flowserv_users WHERE active = 1 AND id != ?"
            args: list[Any] = [DEFAULT_USER]
            if query is not None:
                sql += " AND username LIKE ?"
                args.append(query + "%")
            rows = conn.execute(sql + " ORDER BY username", args).fetchall()
            mine = caller["id"] if caller is not None else None
            return {"users": [self._user_doc(conn, r["id"], token=r["id"] == mine) for r in rows]}

        return self._json(await self.store.run(listing))

    async def password_request(self, request: web.Request) -> web.Response:
        obj = _validate_doc(await self._body(request), ["username"])
        username = obj["username"]
        request_id = _new_id()
        ttl = self.token_ttl

        def create(conn: sqlite3.Connection) -> None:
            user = conn.execute(
                "SELECT id FROM flowserv_users WHERE username = ? AND active = 1", (username,)
            ).fetchone()
            if user is None:
                return  # same answer for unknown users: no enumeration
            conn.execute(
                "INSERT OR REPLACE INTO flowserv_password_requests (user_id, request_id, expires)"
                " VALUES (?, ?, ?)",
                (user["id"], request_id, time.time() + ttl),
            )

        await self.store.run(create)
        return self._json({"requestId": request_id})

    async def password_reset(self, request: web.Request) -> web.Response:
        obj = _validate_doc(await self._body(request), ["requestId", "password"])
        request_id, password = obj["requestId"], obj["password"]
        _check_password(password)
        secret = await asyncio.to_thread(_hash_password, password.strip())

        def reset(conn: sqlite3.Connection) -> dict[str, Any]:
            req = conn.execute(
                "SELECT user_id, expires FROM flowserv_password_requests WHERE request_id = ?",
                (request_id,),
            ).fetchone()
            if req is None or req["expires"] < time.time():
                raise _unknown("request", str(request_id))
            user_id = req["user_id"]
            conn.execute("UPDATE flowserv_users SET secret = ? WHERE id = ?", (secret, user_id))
            conn.execute("DELETE FROM flowserv_api_keys WHERE user_id = ?", (user_id,))
            conn.execute("DELETE FROM flowserv_password_requests WHERE user_id = ?", (user_id,))
            return self._user_doc(conn, user_id)

        return self._json(await self.store.run(reset))

    # -- workflows ---------------------------------------------------------------------------

    async def list_workflows(self, request: web.Request) -> web.Response:
        def listing(conn: sqlite3.Connection) -> dict[str, Any]:
            rows = conn.execute("SELECT * FROM flowserv_workflows ORDER BY name").fetchall()
            return {"workflows": [self._workflow_doc(r) for r in rows]}

        return self._json(await self.store.run(listing))

    @staticmethod
    def _workflow_doc(row: sqlite3.Row) -> dict[str, Any]:
        doc = {"id": row["id"], "name": row["name"]}
        for key in ("description", "instructions"):
            if row[key] is not None:
                doc[key] = row[key]
        return doc

    async def get_workflow(self, request: web.Request) -> web.Response:
        workflow_id = request.match_info["workflow_id"]

        def get(conn: sqlite3.Connection) -> dict[str, Any]:
            row = conn.execute("SELECT * FROM flowserv_workflows WHERE id = ?", (workflow_id,)).fetchone()
            if row is None:
                raise _unknown("workflow", workflow_id)
            doc = {**self._workflow_doc(row), "parameters": self._parameters(conn, workflow_id)}
            user = self._user_for_token(conn, request.headers.get(HEADER_TOKEN))
            if user is not None:  # a logged-in user also sees their groups of it
                doc["groups"] = self._group_listing(conn, workflow_id, user["id"])
            return doc

        return self._json(await self.store.run(get))

    # -- groups ------------------------------------------------------------------------------

    @staticmethod
    def _group_row(conn: sqlite3.Connection, group_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM flowserv_groups WHERE id = ?", (group_id,)
        ).fetchone()
        if row is None:
            raise _unknown("group", group_id)
        return row

    @staticmethod
    def _is_member(conn: sqlite3.Connection, group_id: str, user_id: str | None) -> bool:
        if user_id is None:
            return False
        return (
            conn.execute(
                "SELECT 1 FROM flowserv_members WHERE group_id = ? AND user_id = ?", (group_id, user_id)
            ).fetchone()
            is not None
        )

    def _require_member(self, conn: sqlite3.Connection, group_id: str, token: str) -> None:
        """Unknown group → 404 first, then a non-member (or an invalid token) → 403."""
        self._group_row(conn, group_id)
        user = self._user_for_token(conn, token)
        if not self._is_member(conn, group_id, user["id"] if user else None):
            raise _not_authorized()

    def _files_docs(self, conn: sqlite3.Connection, group_id: str) -> list[dict[str, Any]]:
        rows = conn.execute(
            "SELECT id, name, created_at, size FROM flowserv_files WHERE group_id = ? ORDER BY rowid",
            (group_id,),
        ).fetchall()
        return [self._file_doc(r) for r in rows]

    @staticmethod
    def _file_doc(row: sqlite3.Row) -> dict[str, Any]:
        return {"id": row["id"], "name": row["name"], "createdAt": row["created_at"], "size": row["size"]}

    def _group_doc(self, conn: sqlite3.Connection, group_id: str, *, runs: bool = False) -> dict[str, Any]:
        row = self._group_row(conn, group_id)
        members = conn.execute(
            "SELECT u.id, u.username FROM flowserv_members m JOIN flowserv_users u ON u.id = m.user_id"
            " WHERE m.group_id = ? ORDER BY m.position",
            (group_id,),
        ).fetchall()
        doc: dict[str, Any] = {
            "id": row["id"],
            "name": row["name"],
            "workflow": row["workflow_id"],
            "members": [{"id": m["id"], "username": m["username"]} for m in members],
            "parameters": self._parameters(conn, row["workflow_id"]),
            "files": self._files_docs(conn, group_id),
            "config": None,
        }
        if runs:
            doc["runs"] = []
        return doc

    @staticmethod
    def _check_members(conn: sqlite3.Connection, members: list[Any]) -> None:
        for member in members:
            found = conn.execute(
                "SELECT 1 FROM flowserv_users WHERE id = ? AND active = 1", (member,)
            ).fetchone()
            if found is None:
                raise _unknown("user", str(member))

    @staticmethod
    def _set_members(conn: sqlite3.Connection, group_id: str, members: list[str]) -> None:
        conn.execute("DELETE FROM flowserv_members WHERE group_id = ?", (group_id,))
        seen: set[str] = set()
        for member in members:
            if member in seen:
                continue
            seen.add(member)
            conn.execute(
                "INSERT INTO flowserv_members (group_id, user_id, position) VALUES (?, ?, ?)",
                (group_id, member, len(seen)),
            )

    @staticmethod
    def _check_name(name: Any) -> str:
        # flowserv's constraint.validate_name: a non-string name crashes its strip() (500).
        if name is None:
            raise FlowservError(400, "missing name")
        if not isinstance(name, str):
            raise FlowservError(500, INTERNAL_ERROR, key="error")
        if name.strip() == "" or len(name.strip()) > 512:
            raise FlowservError(400, "invalid name")
        return name

    async def create_group(self, request: web.Request) -> web.Response:
        token = self._token(request)
        workflow_id = request.match_info["workflow_id"]
        obj = _validate_doc(await self._body(request), ["name"], ("members",))
        name, members = obj["name"], obj.get("members")
        if members is not None and not isinstance(members, list):
            raise FlowservError(400, "members not a list")
        group_id = _new_id()

        def create(conn: sqlite3.Connection) -> dict[str, Any]:
            user = self._user_for_token(conn, token)
            if user is None:
                raise _not_authorized()
            if not conn.execute("SELECT 1 FROM flowserv_workflows WHERE id = ?", (workflow_id,)).fetchone():
                raise _unknown("workflow", workflow_id)
            self._check_name(name)
            exists = conn.execute(
                "SELECT 1 FROM flowserv_groups WHERE workflow_id = ? AND name = ?", (workflow_id, name)
            ).fetchone()
            if exists:
                raise FlowservError(400, f"group '{name}' exists")
            member_ids = list(members or [])
            if user["id"] not in member_ids:
                member_ids.append(user["id"])
            try:
                self._check_members(conn, member_ids)
            except FlowservError as exc:
                # rob-flask turns an unknown member into a 400 on create (only here).
                raise FlowservError(400, str(exc)) from None
            conn.execute(
                "INSERT INTO flowserv_groups (id, workflow_id, name, owner_id) VALUES (?, ?, ?, ?)",
                (group_id, workflow_id, name, user["id"]),
            )
            self._set_members(conn, group_id, member_ids)
            return self._group_doc(conn, group_id)

        return self._json(await self.store.run(create), 201)

    @staticmethod
    def _group_listing(conn: sqlite3.Connection, workflow_id: str, user_id: str) -> list[dict[str, Any]]:
        """The groups of ``workflow_id`` that ``user_id`` is a member of, oldest first."""
        rows = conn.execute(
            "SELECT g.* FROM flowserv_groups g JOIN flowserv_members m ON m.group_id = g.id"
            " WHERE g.workflow_id = ? AND m.user_id = ? ORDER BY g.rowid",
            (workflow_id, user_id),
        ).fetchall()
        return [{"id": r["id"], "name": r["name"], "workflow": r["workflow_id"]} for r in rows]

    async def list_groups(self, request: web.Request) -> web.Response:
        token = self._token(request)
        workflow_id = request.match_info["workflow_id"]

        def listing(conn: sqlite3.Connection) -> dict[str, Any]:
            user = self._user_for_token(conn, token)
            if user is not None:
                rows = conn.execute(
                    "SELECT g.* FROM flowserv_groups g JOIN flowserv_members m ON m.group_id = g.id"
                    " WHERE g.workflow_id = ? AND m.user_id = ? ORDER BY g.rowid",
                    (workflow_id, user["id"]),
                ).fetchall()
            else:
                if not conn.execute(
                    "SELECT 1 FROM flowserv_workflows WHERE id = ?", (workflow_id,)
                ).fetchone():
                    raise _unknown("workflow", workflow_id)
                rows = conn.execute(
                    "SELECT * FROM flowserv_groups WHERE workflow_id = ? ORDER BY rowid", (workflow_id,)
                ).fetchall()
            return {
                "groups": [
                    {"id": r["id"], "name": r["name"], "workflow": r["workflow_id"]} for r in rows
                ]
            }

        return self._json(await self.store.run(listing))

    async def get_group(self, request: web.Request) -> web.Response:
        token = self._token(request)
        group_id = request.match_info["group_id"]

        def get(conn: sqlite3.Connection) -> dict[str, Any]:
            user = self._user_for_token(conn, token)
            return self._group_doc(conn, group_id, runs=user is not None)

        return self._json(await self.store.run(get))

    async def update_group(self, request: web.Request) -> web.Response:
        token = self._token(request)
        group_id = request.match_info["group_id"]
        obj = _validate_doc(await self._body(request), [], ("name", "members"))
        name, members = obj.get("name"), obj.get("members")

        def update(conn: sqlite3.Connection) -> dict[str, Any]:
            self._require_member(conn, group_id, token)
            if name is not None:
                # Length only: rob-flask does not re-check uniqueness on rename.
                self._check_name(name)
                conn.execute("UPDATE flowserv_groups SET name = ? WHERE id = ?", (name, group_id))
            if members is not None:
                # rob-flask iterates whatever it got: a string is a list of one-letter ids.
                member_ids = list(members) if isinstance(members, str) else members
                if not isinstance(member_ids, list):
                    raise FlowservError(500, INTERNAL_ERROR, key="error")
                self._check_members(conn, member_ids)  # 404 here, not 400 as on create
                self._set_members(conn, group_id, member_ids)
            return self._group_doc(conn, group_id)

        return self._json(await self.store.run(update))

    async def delete_group(self, request: web.Request) -> web.Response:
        token = self._token(request)
        group_id = request.match_info["group_id"]

        def delete(conn: sqlite3.Connection) -> list[str]:
            self._require_member(conn, group_id, token)
            files = [r["id"] for r in conn.execute(
                "SELECT id FROM flowserv_files WHERE group_id = ?", (group_id,)
            )]  # fmt: skip
            conn.execute("DELETE FROM flowserv_groups WHERE id = ?", (group_id,))
            return files

        for file_id in await self.store.run(delete):
            self._file_path(file_id).unlink(missing_ok=True)
        return web.Response(status=204, content_type="application/json")

    # -- uploaded files ----------------------------------------------------------------------------

    async def list_files(self, request: web.Request) -> web.Response:
        token = self._token(request)
        group_id = request.match_info["group_id"]

        def listing(conn: sqlite3.Connection) -> dict[str, Any]:
            self._require_member(conn, group_id, token)
            return {"files": self._files_docs(conn, group_id)}

        return self._json(await self.store.run(listing))

    async def _receive_file(self, request: web.Request, dest: Path) -> tuple[str, int] | None:
        """Stream the multipart part ``file`` to ``dest``: (client filename, size), None if absent."""
        if not request.content_type.startswith("multipart/"):
            return None
        reader = await request.multipart()
        found: tuple[str, int] | None = None
        while True:
            try:
                part = await reader.next()
            except (ValueError, AssertionError, HttpProcessingError):
                # A malformed part header (a NUL in the filename, a line that is no header):
                # werkzeug's form parser answers 400, and nothing has been stored.
                raise _BadBody() from None
            if part is None:
                break
            if found is not None or not isinstance(part, BodyPartReader) or part.name != "file" \
                    or part.filename is None:
                await part.release()
                continue
            filename = part.filename
            size = 0
            with dest.open("wb") as out:
                while True:
                    chunk = await part.read_chunk(CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > self.max_content_length:
                        raise web.HTTPRequestEntityTooLarge(
                            max_size=self.max_content_length, actual_size=size
                        )
                    await asyncio.to_thread(out.write, chunk)
            found = (filename or "", size)
        return found

    async def upload_file(self, request: web.Request) -> web.Response:
        token = self._token(request)
        group_id = request.match_info["group_id"]
        file_id = _new_id()
        partial = self.files_dir / f".{file_id}.part"
        try:
            received = await self._receive_file(request, partial)
            if received is None:
                raise FlowservError(400, "no file request")
            filename, size = received
            if filename == "":
                raise FlowservError(400, "empty file name")
            name = secure_filename(filename)
            created = _utc_now()
            mime_type = mimetypes.guess_type(name)[0]

            def insert(conn: sqlite3.Connection) -> dict[str, Any]:
                self._require_member(conn, group_id, token)
                self._check_name(name)
                conn.execute(
                    "INSERT INTO flowserv_files (id, group_id, name, mime_type, size, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (file_id, group_id, name, mime_type, size, created),
                )
                # The move happens inside the transaction: a row exists only with its bytes.
                partial.replace(self._file_path(file_id))
                return {"id": file_id, "name": name, "createdAt": created, "size": size}

            return self._json(await self.store.run(insert), 201)
        finally:
            partial.unlink(missing_ok=True)

    async def download_file(self, request: web.Request) -> web.StreamResponse:
        group_id = request.match_info["group_id"]
        file_id = request.match_info["file_id"]

        def lookup(conn: sqlite3.Connection) -> sqlite3.Row:
            self._group_row(conn, group_id)
            row: sqlite3.Row | None = conn.execute(
                "SELECT * FROM flowserv_files WHERE id = ? AND group_id = ?", (file_id, group_id)
            ).fetchone()
            if row is None:
                raise _unknown("file", file_id)
            return row

        row = await self.store.run(lookup)
        path = self._file_path(file_id)
        response = web.StreamResponse(
            headers={
                "Content-Type": _download_type(row["mime_type"]),
                "Content-Disposition": f"attachment; filename={row['name']}",
                "Content-Length": str(path.stat().st_size),
            }
        )
        await response.prepare(request)
        if request.method == "HEAD":
            # The headers only: a body after a HEAD answer would be read as the next response.
            await response.write_eof()
            return response
        with path.open("rb") as source:
            while True:
                chunk = await asyncio.to_thread(source.read, CHUNK)
                if not chunk:
                    break
                await response.write(chunk)
        await response.write_eof()
        return response

    async def delete_file(self, request: web.Request) -> web.Response:
        token = self._token(request)
        group_id = request.match_info["group_id"]
        file_id = request.match_info["file_id"]

        def delete(conn: sqlite3.Connection) -> None:
            self._require_member(conn, group_id, token)
            deleted = conn.execute(
                "DELETE FROM flowserv_files WHERE id = ? AND group_id = ?", (file_id, group_id)
            ).rowcount
            if not deleted:
                raise _unknown("file", file_id)

        await self.store.run(delete)
        self._file_path(file_id).unlink(missing_ok=True)
        return web.Response(status=204, content_type="application/json")


def _download_type(mime_type: str | None) -> str:
    """The Content-Type Flask's ``send_file`` answers with (text types get a charset)."""
    if mime_type is None:
        return "application/octet-stream"
    return mime_type + "; charset=utf-8" if mime_type.startswith("text/") else mime_type


class _BadBody(web.HTTPBadRequest):
    """A body that does not parse as its content type says: Flask answers with its HTML 400 page."""


# The descriptor rob-flask 0.6.0 serves (it advertises routes it does not serve, e.g. groups:list).
_ROUTES = [
    ("files:delete", "uploads/{userGroupId}/files/{fileId}"),
    ("files:download", "uploads/{userGroupId}/files/{fileId}"),
    ("files:list", "uploads/{userGroupId}/files"),
    ("files:upload", "uploads/{userGroupId}/files"),
    ("groups:create", "workflows/{workflowId}/groups"),
    ("groups:delete", "groups/{userGroupId}"),
    ("groups:get", "groups/{userGroupId}"),
    ("groups:list", "groups"),
    ("groups:runs", "groups/{userGroupId}/runs?state={state}"),
    ("groups:update", "groups/{userGroupId}"),
    ("leaderboard", "workflows/{workflowId}/leaderboard?orderBy={orderBy}&includeAll={includeAll}"),
    ("runs:cancel", "runs/{runId}"),
    ("runs:delete", "runs/{runId}"),
    ("runs:download:archive", "runs/{runId}/downloads/archive"),
    ("runs:download:file", "runs/{runId}/downloads/files/{fileId}"),
    ("runs:get", "runs/{runId}"),
    ("runs:start", "groups/{userGroupId}/runs"),
    ("service", ""),
    ("users:activate", "users/activate"),
    ("users:list", "users"),
    ("users:login", "users/login"),
    ("users:logout", "users/logout"),
    ("users:pwd:request", "users/password/request"),
    ("users:pwd:reset", "users/password/reset"),
    ("users:register", "users/register"),
    ("users:whoami", "users/whoami"),
    ("workflows:download:archive", "workflows/{workflowId}/downloads/archive"),
    ("workflows:download:file", "workflows/{workflowId}/downloads/files/{fileId}"),
    ("workflows:get", "workflows/{workflowId}"),
    ("workflows:groups", "workflows/{workflowId}/groups"),
    ("workflows:list", "workflows"),
]
