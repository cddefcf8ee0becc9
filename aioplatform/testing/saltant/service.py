"""The embedded saltant service: saltant's REST API (Django REST framework) over SQLite.

Faithful to ``shared/protocols/saltant.md``: DRF token and JWT auth (bad credentials
are 403 on every endpoint but the two token endpoints), page-number pagination with
absolute ``next``/``previous`` links, django-filter lookups, form/multipart/JSON
bodies, validation in the server's order with DRF-shaped 400 bodies, owner-only
writes, and the task-instance lifecycle simulated over time.

The lifecycle is computed lazily: each instance stores when its next transition is
due (``next_at``) and the outcome drawn at creation; every request that reads
instances first advances the due ones in one indexed UPDATE per state. Tune it on
the service object (``platform.saltant``): ``publish_delay``, ``run_delay``,
``run_duration`` (seconds) and ``failure_rate`` (share of runs ending ``failed``).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import json
import math
import os
import random
import re
import secrets
import sqlite3
import time
import urllib.parse
import uuid as uuidlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from .. import keyset, regex
from ..services import EmbeddedService
from . import filters as flt
from .forms import Form, NotADict, ParseError, UnsupportedMediaType, as_pk, in_range, read_form
from .forms import invalid_pk as _invalid_pk

__all__ = ["SaltantService"]

STATES = ("created", "published", "running", "successful", "failed", "terminated")
FINISHED = ("successful", "failed", "terminated")
PERMISSION_DENIED = "You do not have permission to perform this action."

_TYPE_TABLES = {"container": "saltant_containertasktypes", "executable": "saltant_executabletasktypes"}
_INSTANCE_TABLES = {
    "container": "saltant_containertaskinstances",
    "executable": "saltant_executabletaskinstances",
}

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS saltant_users (
    username TEXT PRIMARY KEY, email TEXT NOT NULL DEFAULT '', password_hash TEXT NOT NULL DEFAULT '',
    is_superuser INTEGER NOT NULL DEFAULT 0, token TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS saltant_taskwhitelists (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL,
    user TEXT, whitelisted_container_task_types TEXT NOT NULL,
    whitelisted_executable_task_types TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS saltant_taskqueues (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL,
    user TEXT, private INTEGER NOT NULL, runs_executable_tasks INTEGER NOT NULL,
    runs_docker_container_tasks INTEGER NOT NULL, runs_singularity_container_tasks INTEGER NOT NULL,
    active INTEGER NOT NULL, whitelists TEXT NOT NULL);
"""
    + "".join(
        f"""
CREATE TABLE IF NOT EXISTS {table} (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL,
    user TEXT, created_ts REAL NOT NULL, command_to_run TEXT NOT NULL,
    environment_variables TEXT NOT NULL, required_arguments TEXT NOT NULL,
    required_arguments_default_values TEXT NOT NULL, logs_path TEXT, results_path TEXT,
    container_image TEXT, container_type TEXT, json_file_option TEXT);"""
        for table in _TYPE_TABLES.values()
    )
    + "".join(
        f"""
CREATE TABLE IF NOT EXISTS {table} (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, state TEXT NOT NULL, user TEXT,
    task_queue INTEGER NOT NULL, task_type INTEGER NOT NULL, created_ts REAL NOT NULL,
    finished_ts REAL, arguments TEXT NOT NULL, next_at REAL, outcome TEXT NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS {table}_next ON {table} (next_at) WHERE next_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS {table}_created ON {table} (created_ts DESC, seq DESC);"""
        for table in _INSTANCE_TABLES.values()
    )
)

# Filter fields of each listing (tasksapi/filters.py): name -> (kind, column).
_CHAR = flt.CHAR
_USER_FILTERS = {"username": (_CHAR, "username"), "email": (_CHAR, "email")}
_INSTANCE_FILTERS = {
    "name": (_CHAR, "name"),
    "state": (_CHAR, "state"),
    "user__username": (_CHAR, "user"),
    "task_type": (flt.FK, "task_type"),
    "task_queue": (flt.FK, "task_queue"),
    "datetime_created": (flt.DATE, "created_ts"),
    "datetime_finished": (flt.DATE, "finished_ts"),
}
_BASE_TYPE_FILTERS = {
    "name": (_CHAR, "name"),
    "description": (_CHAR, "description"),
    "user__username": (_CHAR, "user"),
    "command_to_run": (_CHAR, "command_to_run"),
    "datetime_created": (flt.DATE, "created_ts"),
}
_TYPE_FILTERS = {
    "container": {
        **_BASE_TYPE_FILTERS,
        "container_image": (_CHAR, "container_image"),
        "container_type": (_CHAR, "container_type"),
    },
    "executable": _BASE_TYPE_FILTERS,
}
_QUEUE_BOOLS = (
    "private",
    "runs_executable_tasks",
    "runs_docker_container_tasks",
    "runs_singularity_container_tasks",
    "active",
)
_QUEUE_FILTERS = {
    "name": (_CHAR, "name"),
    "description": (_CHAR, "description"),
    "user__username": (_CHAR, "user"),
    **{b: (flt.BOOL, b) for b in _QUEUE_BOOLS},
}
_WHITELIST_FILTERS = {
    "name": (_CHAR, "name"),
    "description": (_CHAR, "description"),
    "user__username": (_CHAR, "user"),
}


class HTTPError(Exception):
    """An answer decided inside a handler or a store transaction (the transaction rolls back)."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _aiohttp_template(pattern: str) -> str:
    """A route pattern of :meth:`SaltantService._build_routes` as an aiohttp path template.

    ``(?P<name>[^/.]+)`` becomes ``{name:[^/.%\\n]+}`` (aiohttp matches path_safe, where
    ``%2F`` and ``%25`` stay encoded: such a path is left to the catch-all, as is a newline,
    which the catch-all's ``.*`` refuses) and ``\\.`` a plain dot.
    """
    parameter = re.compile(r"\(\?P<(\w+)>\[\^/(\.?)\]\+\)")
    template = parameter.sub(lambda m: "{" + m[1] + r":[^/" + m[2] + r"%\n]+}", pattern)
    template = template.replace("\\.", ".")
    if any(c in "()[]\\?*+$^|" for c in re.sub(r"{[^{}]*}", "", template)):
        raise ValueError(f"route pattern {pattern!r} has no aiohttp template")
    return template


def _iso(ts: float | None) -> str | None:
    """``2026-01-02T03:04:05.123456Z``: DRF's datetime field, microseconds always shown."""
    if ts is None:
        return None
    when = dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc)
    if when.year < 1000:  # strftime's %Y does not pad the year to four digits
        return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return when.isoformat(timespec="microseconds")[:-6] + "Z"  # a third of strftime's cost


def _make_dumps() -> Callable[[Any], str]:
    """``json.dumps`` with its defaults, without building its C encoder again on every call.

    The same text as ``json.dumps(obj)`` for anything without a reference cycle (the one
    check left out: these bodies are built fresh for each answer).
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # CPython without its _json accelerator
        return json.dumps
    encode = make(None, json.JSONEncoder().default, json.encoder.encode_basestring_ascii, None,
                  ": ", ", ", False, False, True)  # fmt: skip

    def dumps(obj: Any) -> str:
        return "".join(encode(obj, 0))

    return dumps


_dumps = _make_dumps()


def _json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """``web.json_response``, its body encoded by :data:`_dumps` (the very same bytes)."""
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def _uuid4() -> str:
    """``str(uuid.uuid4())`` without building a UUID: 16 random bytes, version 4, RFC 4122 variant."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    hexed = raw.hex()
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


def _hash_password(password: str) -> str:
    return hashlib.sha256(("aioplatform-saltant:" + password).encode()).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _not_found() -> HTTPError:
    return HTTPError(404, {"detail": "Not found."})


def _model_error(message: str) -> HTTPError:
    # Model validation raised inside validate(): DRF shows str(ValidationError([...])).
    return HTTPError(400, {"non_field_errors": [repr([message])]})


_NOT_FOUND_PAGE = (
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>404 | saltant</title></head>"
    "<body><h1>404</h1><p>The page you requested was not found.</p></body></html>\n"
)


def _replace_query_param(url: str, key: str, value: str | None) -> str:
    """DRF's ``replace_query_param`` (``remove_query_param`` for None): the query re-encoded
    with its keys sorted, blank values kept, ``page`` set or dropped."""
    scheme, netloc, path, query, fragment = urllib.parse.urlsplit(url)
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    params.pop(key, None)
    if value is not None:
        params[key] = [value]
    encoded = urllib.parse.urlencode(sorted(params.items()), doseq=True)
    return urllib.parse.urlunsplit((scheme, netloc, path, encoded, fragment))


def _empty_405() -> web.Response:
    """saltant's answer to an unhandled server error on a non-GET request (its error views
    handle GET only): Django's empty ``HttpResponseNotAllowed``, ``text/html`` (protocol §9)."""
    return web.Response(status=405, content_type="text/html", charset="utf-8")


def _clean_json(value: Any, kind: type, *, quoted: bool = True) -> Any:
    """The model ``clean()`` of a JSON field: null is empty, JSON text is parsed, the type checked.

    Its messages come out as saltant writes them, ``%s`` of the Python value included
    (``'{'A': 1}' is not a valid JSON array!``); an instance's ``arguments`` are not
    quoted when they fail to parse (``quoted=False``), as in saltant.
    """
    if value is None:
        return kind()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            message = "'%s' is not valid JSON!" if quoted else "%s is not valid JSON!"
            raise _model_error(message % value) from None
    if not isinstance(value, kind):
        noun = "array" if kind is list else "dictionary"
        raise _model_error(f"'%s' is not a valid JSON {noun}!" % (value,))
    return value


Handler = Callable[..., Awaitable[web.StreamResponse]]


class SaltantService(EmbeddedService):
    """saltant under ``/saltant/api/``; a seeded superuser ``admin`` with a DRF token."""

    name = "saltant"
    prefix = "/saltant/api"
    credential_names = ("saltant_token", "saltant_password", "saltant_jwt_key")

    def __init__(self, platform: Any):
        super().__init__(platform)
        self.admin_username = "admin"
        # Random unless the caller fixes them (never from the seed: anyone can compute that).
        # The token is settled in setup(): a file database keeps the one it has.
        self.admin_token = ""
        self.admin_password = self.credential("saltant_password", lambda: secrets.token_urlsafe(15))
        self._jwt_key = self.credential("saltant_jwt_key", lambda: secrets.token_hex(32)).encode()
        # Lifecycle simulation (seconds); change them on the live service object.
        self.publish_delay = 0.05
        self.run_delay = 0.1
        self.run_duration = 0.5
        self.failure_rate = 0.0
        self._users_by_token: dict[str, sqlite3.Row] = {}
        # Queues, whitelists and task types as the clone and create checks read them, with
        # their JSON parsed: forgotten on any write to those tables (see _watch_config).
        # Store thread only.
        self._config: dict[tuple[Any, ...], Any] = {}
        self._config_data_version: int | None = None
        self._next_due: dict[str, float] = {}  # per instance table; touched on the store thread only
        self._listings = keyset.Listings()  # store thread only
        self.jwt_access_lifetime = 300.0
        self.jwt_refresh_lifetime = 86400.0
        self._rng = random.Random(platform.seed)  # simulated outcomes only
        # A draw taken by a clone that then failed, for the next instance: the instances
        # created get the same outcomes, failed clones or not (store thread only).
        self._undrawn: list[float] = []
        self._seq = 0
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler], bool]] = []

    # -- users ------------------------------------------------------------------------------

    def _insert_user(
        self, conn: sqlite3.Connection, username: str, email: str, superuser: bool, password: str | None
    ) -> str:
        if conn.execute("SELECT 1 FROM saltant_users WHERE username = ?", (username,)).fetchone():
            raise ValueError(f"a saltant user named {username!r} already exists")
        token = secrets.token_hex(20)
        conn.execute(
            "INSERT INTO saltant_users (username, email, password_hash, is_superuser, token)"
            " VALUES (?, ?, ?, ?, ?)",
            (username, email, _hash_password(password) if password else "", int(superuser), token),
        )
        return token

    async def add_user(
        self, username: str, email: str = "", *, superuser: bool = False, password: str | None = None
    ) -> str:
        """Create a user and return its DRF token (``password`` enables the JWT endpoints)."""
        _check_username(username)
        return await self.store.run(lambda c: self._insert_user(c, username, email, superuser, password))

    def add_user_sync(
        self, username: str, email: str = "", *, superuser: bool = False, password: str | None = None
    ) -> str:
        """:meth:`add_user` from any thread (blocks until the store has committed it)."""
        _check_username(username)
        return self.store.run_sync(lambda c: self._insert_user(c, username, email, superuser, password))

    # -- setup ------------------------------------------------------------------------------

    async def setup(self) -> web.Application:
        await self.store.executescript(_SCHEMA)

        def seed(conn: sqlite3.Connection) -> None:
            stored = conn.execute(
                "SELECT token FROM saltant_users WHERE username = ?", (self.admin_username,)
            ).fetchone()
            # A fixed token wins, even over a database's own; otherwise a file database keeps its.
            self.admin_token = self.credential(
                "saltant_token", lambda: stored["token"] if stored else secrets.token_hex(20)
            )
            conn.execute(
                "INSERT INTO saltant_users (username, email, password_hash, is_superuser, token)"
                " VALUES (?, ?, ?, 1, ?) ON CONFLICT (username) DO UPDATE SET"
                " token = excluded.token, password_hash = excluded.password_hash, is_superuser = 1",
                (
                    self.admin_username,
                    "admin@localhost",
                    _hash_password(self.admin_password),
                    self.admin_token,
                ),
            )
            for table in _INSTANCE_TABLES.values():
                row = conn.execute(f"SELECT MAX(seq) FROM {table}").fetchone()
                self._seq = max(self._seq, row[0] or 0)
            self._watch_config(conn)

        await self.store.run(seed)
        self._build_routes()
        app = web.Application()
        # Each route on the app router: aiohttp finds it through its index of path
        # prefixes, not by trying every pattern in turn. aiohttp matches path_safe (``%2F``
        # and ``%25`` still encoded) where the patterns above see the decoded path, so a
        # parameter here takes no ``%`` at all: whatever these routes match, the patterns
        # match alike with the same values. Everything else (unknown URLs, an encoded
        # slash or percent, a trailing newline that ``$`` lets through) reaches the
        # catch-all, which tries the patterns as before, so no answer changes. No two
        # routes match the same path, so the order only decides how soon a route is found:
        # those with a parameter first (the instance routes are the busy ones), each as
        # one resource with an optional trailing slash.
        dynamic = [r for r in self._routes if "(?P<" in r[0].pattern]
        plain = [r for r in self._routes if "(?P<" not in r[0].pattern]
        for pattern, methods, auth in dynamic:
            template = _aiohttp_template(pattern.pattern[1 : -len("/?$")])
            handler = self._route_handler(methods, auth, True)
            app.router.add_route("*", "/" + template + "{_slash:/?}", handler)
        for pattern, methods, auth in plain:
            template = _aiohttp_template(pattern.pattern[1 : -len("/?$")])
            handler = self._route_handler(methods, auth, False)
            app.router.add_route("*", "/" + template, handler)
            app.router.add_route("*", "/" + template + "/", handler)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    def _route_handler(
        self, methods: dict[str, Handler], auth: bool, params: bool
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        if not params:

            async def handle(request: web.Request) -> web.StreamResponse:
                return await self._serve(request, methods, auth, {})

            return handle

        async def handle_params(request: web.Request) -> web.StreamResponse:
            values = dict(request.match_info)
            del values["_slash"]
            return await self._serve(request, methods, auth, values)

        return handle_params

    def _build_routes(self) -> None:
        def route(pattern: str, auth: bool = True, **methods: Handler) -> None:
            self._routes.append((re.compile("^" + pattern + "/?$"), methods, auth))

        route("token", auth=False, POST=self._token_obtain)
        route("token/refresh", auth=False, POST=self._token_refresh)
        route("users", GET=self._users_list)
        route("users/(?P<username>[^/]+)", GET=self._users_get)
        for kind in ("container", "executable"):
            types = self._bind(kind)
            route(f"{kind}tasktypes", GET=types(self._types_list), POST=types(self._types_create))
            route(f"{kind}tasktypes/(?P<id>[^/.]+)", GET=types(self._types_get), PUT=types(self._types_put))
            base = f"{kind}taskinstances"
            route(base, GET=types(self._instances_list), POST=types(self._instances_create))
            route(base + "/(?P<uuid>[^/.]+)", GET=types(self._instances_get))
            route(base + "/(?P<uuid>[^/.]+)/clone", POST=types(self._instances_clone))
            route(base + "/(?P<uuid>[^/.]+)/terminate", POST=types(self._instances_terminate))
        route("taskqueues", GET=self._queues_list, POST=self._queues_create)
        route(
            "taskqueues/(?P<id>[^/.]+)", GET=self._queues_get, PUT=self._queues_put, PATCH=self._queues_patch
        )
        route("taskwhitelists", GET=self._whitelists_list, POST=self._whitelists_create)
        route(
            "taskwhitelists/(?P<id>[^/.]+)",
            GET=self._whitelists_get,
            PUT=self._whitelists_put,
            PATCH=self._whitelists_patch,
        )
        route("updatetaskinstancestatus/(?P<uuid>[^/.]+)", PUT=self._update_status, PATCH=self._update_status)
        # drf-yasg's schema and its two viewers, public (AllowAny) as saltant configures them
        route(r"swagger/\.json", auth=False, GET=self._swagger_json)  # drf-yasg's own path
        route(r"swagger\.json", auth=False, GET=self._swagger_json)  # an alias (docs/saltant.md)
        route("swagger", auth=False, GET=self._swagger_ui)
        route("redoc", auth=False, GET=self._swagger_ui)

    # -- API docs (drf-yasg) ------------------------------------------------------------------

    def _schema(self, request: web.Request) -> dict[str, Any]:
        """An OpenAPI 2.0 document of the routes above (drf-yasg writes Swagger 2.0)."""
        paths: dict[str, Any] = {}
        for pattern, methods, auth in self._routes:
            template = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern.pattern[1 : -len("/?$")])
            if template.startswith(("swagger", "redoc")):
                continue
            operations: dict[str, Any] = {}
            for method in methods:
                operation: dict[str, Any] = {
                    "operationId": f"{template.replace('/', '_').strip('_')}_{method.lower()}",
                    "responses": {"201" if method == "POST" else "200": {"description": ""}},
                }
                if not auth:
                    operation["security"] = []
                operations[method.lower()] = operation
            parameters = [
                {"name": name, "in": "path", "required": True, "type": "string"}
                for name in re.findall(r"{(\w+)}", template)
            ]
            if parameters:
                operations["parameters"] = parameters
            paths[f"/{template}/"] = operations
        return {
            "swagger": "2.0",
            "info": {"title": "saltant API", "version": "v1"},
            "host": request.host,
            "schemes": [request.scheme],
            "basePath": self.prefix,
            "consumes": ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"],
            "produces": ["application/json"],
            "securityDefinitions": {
                "Token": {"type": "apiKey", "name": "Authorization", "in": "header"},
                "Bearer": {"type": "apiKey", "name": "Authorization", "in": "header"},
            },
            "security": [{"Token": []}, {"Bearer": []}],
            "paths": paths,
        }

    async def _swagger_json(self, request: web.Request, user: None) -> web.Response:
        return _json_response(self._schema(request))

    async def _swagger_ui(self, request: web.Request, user: None) -> web.Response:
        viewer = "ReDoc" if request.path.rstrip("/").endswith("redoc") else "Swagger UI"
        page = (
            f"<!DOCTYPE html><html><head><title>saltant API - {viewer}</title></head>"
            f'<body data-spec-url="{self.prefix}/swagger/.json"><h1>saltant API</h1>'
            f'<p>{viewer}: the OpenAPI document is <a href="{self.prefix}/swagger/.json">'
            "swagger/.json</a>.</p>"
            "</body></html>"
        )
        return web.Response(text=page, content_type="text/html")

    @staticmethod
    def _bind(kind: str) -> Callable[[Handler], Handler]:
        def bind(fn: Handler) -> Handler:
            return functools.partial(fn, kind=kind)  # no coroutine of its own in each request's chain

        return bind

    # -- dispatch, auth, errors ---------------------------------------------------------------

    async def _serve(
        self, request: web.Request, methods: dict[str, Handler], auth: bool, params: Mapping[str, str]
    ) -> web.StreamResponse:
        try:
            user = await self._authenticate(request) if auth else None
            handler = methods.get(request.method)
            if handler is None:
                raise HTTPError(405, {"detail": f'Method "{request.method}" not allowed.'})
            return await handler(request, user, **params)
        except HTTPError as exc:
            return _json_response(exc.body, status=exc.status, headers=exc.headers)
        except ParseError as exc:
            return _json_response({"detail": str(exc)}, status=400)
        except NotADict as exc:
            return _json_response({"non_field_errors": [str(exc)]}, status=400)
        except UnsupportedMediaType:
            # DRF's 415 never reaches the client: saltant answers such a body with the
            # empty 405 of an unhandled error (seen on the real server)
            return _empty_405()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        """The catch-all: the URLs no route on the app router took (see :meth:`setup`)."""
        tail = request.match_info.get("tail", "")
        for pattern, methods, auth in self._routes:
            match = pattern.match(tail)
            if match is not None:
                return await self._serve(request, methods, auth, match.groupdict())
        if request.method not in ("GET", "HEAD"):
            # saltant's custom error views handle GET only: any other method on an unknown
            # URL gets an empty 405 (protocol §9)
            return _empty_405()
        # a GET reaches saltant's frontend error view: an HTML page, not DRF's JSON (protocol §11)
        return web.Response(status=404, text=_NOT_FOUND_PAGE, content_type="text/html", charset="utf-8")

    async def _authenticate(self, request: web.Request) -> sqlite3.Row:
        header = request.headers.get("Authorization", "")
        parts = header.split()
        if parts and parts[0].lower() == "token":  # DRF matches its keyword case-insensitively
            if len(parts) == 1:
                raise HTTPError(403, {"detail": "Invalid token header. No credentials provided."})
            if len(parts) > 2:
                raise HTTPError(
                    403, {"detail": "Invalid token header. Token string should not contain spaces."}
                )
            key = parts[1]
            # Users are never changed or deleted through the API, so a token once found
            # stays valid: cache the hits (never the misses: add_user may come later).
            row: sqlite3.Row | None = self._users_by_token.get(key)
            if row is None:
                row = await self.store.run(
                    lambda c: c.execute("SELECT * FROM saltant_users WHERE token = ?", (key,)).fetchone()
                )
                if row is None:
                    raise HTTPError(403, {"detail": "Invalid token."})
                self._users_by_token[key] = row
            return row
        if parts and parts[0] == "Bearer" and len(parts) != 2:
            raise HTTPError(
                403,
                {
                    "detail": "Authorization header must contain two space-delimited values",
                    "code": "bad_authorization_header",
                },
            )
        if parts and parts[0] == "Bearer":
            checked = self._jwt_check(parts[1], "access")
            username = checked.get("user_id") if isinstance(checked, dict) else None
            found: sqlite3.Row | None = None
            if username is not None:
                found = await self.store.run(
                    lambda c: c.execute(
                        "SELECT * FROM saltant_users WHERE username = ?", (username,)
                    ).fetchone()
                )
            if found is None:
                raise HTTPError(
                    403,
                    {
                        "detail": "Given token not valid for any token type",
                        "code": "token_not_valid",
                        "messages": [
                            {
                                "token_class": "AccessToken",
                                "token_type": "access",
                                "message": (
                                    checked if isinstance(checked, str) else "Token is invalid or expired"
                                ),
                            }
                        ],
                    },
                )
            return found
        raise HTTPError(403, {"detail": "Authentication credentials were not provided."})

    # -- JWT (djangorestframework-simplejwt, HS256) -------------------------------------------

    def _jwt_encode(self, username: str, token_type: str, lifetime: float) -> str:
        header = _b64(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
        payload = _b64(
            json.dumps(
                {
                    "token_type": token_type,
                    "exp": round(time.time() + lifetime, 3),
                    "jti": uuidlib.uuid4().hex,
                    "user_id": username,
                }
            ).encode()
        )
        signature = hmac.new(self._jwt_key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"

    def _jwt_decode(self, token: str, token_type: str) -> dict[str, Any] | None:
        checked = self._jwt_check(token, token_type)
        return checked if isinstance(checked, dict) else None

    def _jwt_check(self, token: str, token_type: str) -> dict[str, Any] | str:
        """The claims of a valid token, else simplejwt's reason (its TokenError message)."""
        invalid = "Token is invalid or expired"
        try:
            header, payload, signature = token.split(".")
            expected = hmac.new(self._jwt_key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(signature)):
                return invalid
            claims = json.loads(_unb64(payload))
        except (ValueError, TypeError):
            return invalid
        if not isinstance(claims, dict):
            return invalid
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] <= time.time():
            return invalid  # PyJWT checks the expiry while decoding
        if "token_type" not in claims:
            return "Token has no type"
        if claims["token_type"] != token_type:
            return "Token has wrong type"
        return claims

    async def _token_obtain(self, request: web.Request, user: None) -> web.Response:
        form = await read_form(request)
        form.char("username", required=True, allow_blank=False)
        form.char("password", required=True, allow_blank=False)
        if form.errors:
            raise HTTPError(400, form.errors)
        username, password = form.values["username"], form.values["password"]
        row = await self.store.run(
            lambda c: c.execute("SELECT * FROM saltant_users WHERE username = ?", (username,)).fetchone()
        )
        if (
            row is None
            or not row["password_hash"]
            or not hmac.compare_digest(row["password_hash"], _hash_password(password))
        ):
            raise HTTPError(
                401,
                {"detail": "No active account found with the given credentials"},
                {"WWW-Authenticate": 'Bearer realm="api"'},
            )
        return _json_response(
            {
                "refresh": self._jwt_encode(username, "refresh", self.jwt_refresh_lifetime),
                "access": self._jwt_encode(username, "access", self.jwt_access_lifetime),
            }
        )

    async def _token_refresh(self, request: web.Request, user: None) -> web.Response:
        form = await read_form(request)
        form.char("refresh", required=True, allow_blank=False)
        if form.errors:
            raise HTTPError(400, form.errors)
        claims = self._jwt_check(form.values["refresh"], "refresh")
        if isinstance(claims, str):
            raise HTTPError(
                401,
                {"detail": claims, "code": "token_not_valid"},
                {"WWW-Authenticate": 'Bearer realm="api"'},
            )
        return _json_response(
            {"access": self._jwt_encode(claims["user_id"], "access", self.jwt_access_lifetime)}
        )

    # -- pagination ---------------------------------------------------------------------------

    async def _paginate(
        self,
        request: web.Request,
        table: str,
        fields: dict[str, tuple[str, str]],
        order: str,
        default_size: int,
        render: Callable[[sqlite3.Row], dict[str, Any]],
        *,
        lifecycle: bool = False,
    ) -> web.Response:
        query = request.query
        try:
            where, params, regexes = flt.compile_filters(query, fields)
        except flt.FilterError as exc:
            raise HTTPError(400, exc.errors) from None
        for column, pattern in regexes:
            # Matched off the store's thread (RE2 on a worker), so a regex over many long
            # values never holds up the requests queued behind it; each narrows the rows.
            kept = await self._regex_rowids(table, where, params, column, pattern, lifecycle=lifecycle)
            where = f"{where} AND rowid IN (SELECT value FROM json_each(?))"
            params = [*params, json.dumps(kept)]
        size = _positive_int(query.get("page_size"), default_size)
        page_arg = query.get("page", "1")
        by = [(part.split()[0], part.upper().endswith(" DESC")) for part in order.split(",")]

        def fetch(conn: sqlite3.Connection) -> tuple[int, int, int, list[dict[str, Any]]]:
            if lifecycle:
                self._advance(conn, table)
            # The count and where each page starts are kept while nothing changes, so walking
            # a long listing page by page is linear in its length (testing/keyset.py).
            listing = self._listings.get(conn, (table, where, *params, order))
            count = self._listings.count(conn, listing, table, where, params)
            pages = max(1, math.ceil(count / size))
            if page_arg == "last":
                page = pages
            else:
                page = _positive_int(page_arg, 0)
                if page < 1 or page > pages:
                    raise HTTPError(404, {"detail": "Invalid page."})
            rows = keyset.page(
                conn, listing, f"SELECT * FROM {table}", where, params, by, (page - 1) * size, size
            )
            return count, page, pages, [render(r) for r in rows]

        count, page, pages, results = await self.store.run(fetch)
        url = str(request.url)  # absolute, as DRF's build_absolute_uri()
        nxt = _replace_query_param(url, "page", str(page + 1)) if page < pages else None
        if page <= 1:
            prev = None
        elif page == 2:
            prev = _replace_query_param(url, "page", None)
        else:
            prev = _replace_query_param(url, "page", str(page - 1))
        return _json_response({"count": count, "next": nxt, "previous": prev, "results": results})

    async def _regex_rowids(
        self, table: str, where: str, params: list[Any], column: str, pattern: str, *, lifecycle: bool
    ) -> list[int]:
        """Rowids of the rows matching ``where`` whose ``column`` matches ``pattern``."""

        def candidates(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            if lifecycle:
                self._advance(conn, table)
            return conn.execute(f"SELECT rowid, {column} FROM {table} WHERE {where}", params).fetchall()

        rows = await self.store.run(candidates)
        found = await regex.search_all(pattern, [row[1] for row in rows])
        return [row[0] for row, hit in zip(rows, found, strict=True) if hit]

    # -- users --------------------------------------------------------------------------------

    @staticmethod
    def _render_user(row: sqlite3.Row) -> dict[str, Any]:
        return {"username": row["username"], "email": row["email"]}

    async def _users_list(self, request: web.Request, user: sqlite3.Row) -> web.Response:
        return await self._paginate(
            request, "saltant_users", _USER_FILTERS, "username", 100, self._render_user
        )

    async def _users_get(self, request: web.Request, user: sqlite3.Row, username: str) -> web.Response:
        row = await self.store.run(
            lambda c: c.execute("SELECT * FROM saltant_users WHERE username = ?", (username,)).fetchone()
        )
        if row is None:
            raise _not_found()
        return _json_response(self._render_user(row))

    # -- task types ---------------------------------------------------------------------------

    @staticmethod
    def _render_type(kind: str) -> Callable[[sqlite3.Row], dict[str, Any]]:
        def render(row: sqlite3.Row) -> dict[str, Any]:
            body = {
                "id": row["id"],
                "name": row["name"],
                "description": row["description"],
                "user": row["user"],
                "datetime_created": _iso(row["created_ts"]),
                "command_to_run": row["command_to_run"],
                "environment_variables": json.loads(row["environment_variables"]),
                "required_arguments": json.loads(row["required_arguments"]),
                "required_arguments_default_values": json.loads(row["required_arguments_default_values"]),
            }
            if kind == "container":
                body.update(
                    logs_path=row["logs_path"],
                    results_path=row["results_path"],
                    container_image=row["container_image"],
                    container_type=row["container_type"],
                )
            else:
                body["json_file_option"] = row["json_file_option"]
            return body

        return render

    async def _types_list(self, request: web.Request, user: sqlite3.Row, kind: str) -> web.Response:
        return await self._paginate(
            request, _TYPE_TABLES[kind], _TYPE_FILTERS[kind], "id", 100, self._render_type(kind)
        )

    async def _types_get(self, request: web.Request, user: sqlite3.Row, kind: str, id: str) -> web.Response:
        row = await self._get_row(_TYPE_TABLES[kind], "id", _int_or_none(id))
        return _json_response(self._render_type(kind)(row))

    async def _get_row(self, table: str, key: str, value: Any) -> sqlite3.Row:
        if value is None:
            raise _not_found()
        row: sqlite3.Row | None = await self.store.run(
            lambda c: c.execute(f"SELECT * FROM {table} WHERE {key} = ?", (value,)).fetchone()
        )
        if row is None:
            raise _not_found()
        return row

    def _type_form(self, form: Form, kind: str) -> None:
        form.char("name", required=True, allow_blank=False, max_length=200)
        form.char("description", default="")
        form.char("command_to_run", required=True, allow_blank=False, max_length=400)
        form.json("environment_variables", default=[])
        form.json("required_arguments", default=[])
        form.json("required_arguments_default_values", default={})
        if kind == "container":
            form.char("logs_path", default=None, allow_null=True, max_length=400)
            form.char("results_path", default=None, allow_null=True, max_length=400)
            form.char("container_image", required=True, allow_blank=False, max_length=200)
            form.choice("container_type", ("docker", "singularity"))
        else:
            form.char("json_file_option", default=None, allow_null=True, max_length=50)

    async def _write_type(
        self, request: web.Request, user: sqlite3.Row, kind: str, id: int | None
    ) -> web.Response:
        table = _TYPE_TABLES[kind]
        if id is not None:
            await self._check_owner(table, id, user)
        form = await read_form(request, update=id is not None)
        self._type_form(form, kind)
        values = form.values
        verbose = f"{kind} task type"

        def write(conn: sqlite3.Connection) -> sqlite3.Row:
            errors = dict(form.errors)
            if (
                "name" in values
                and conn.execute(
                    f"SELECT 1 FROM {table} WHERE name = ? AND id IS NOT ?", (values["name"], id)
                ).fetchone()
            ):
                errors.setdefault("name", []).append(f"{verbose} with this name already exists.")
            if errors:
                raise HTTPError(400, errors)
            # The serializer's validate() runs the model's clean() on what was sent (an absent
            # field counts as empty), so JSON text is parsed and each kind checked, in this order.
            kinds = {"environment_variables": list, "required_arguments": list,
                     "required_arguments_default_values": dict}  # fmt: skip
            sent: dict[str, Any] = {key: values.get(key) for key in kinds}
            for key, value in sent.items():
                if isinstance(value, str):
                    sent[key] = _clean_json(value, object)
            for key, json_kind in kinds.items():
                sent[key] = _clean_json(sent[key], json_kind)
            required, defaults = sent["required_arguments"], sent["required_arguments_default_values"]
            if not set(defaults) <= set(map(str, required)):
                raise _model_error("default arguments not a subset of required arguments")
            values.update({key: value for key, value in sent.items() if key in values})
            columns = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in values.items()}
            if id is None:
                columns.update(user=user["username"], created_ts=time.time())
                names = ", ".join(columns)
                cursor = conn.execute(
                    f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})",
                    list(columns.values()),
                )
                new_id = cursor.lastrowid
            else:
                conn.execute(
                    f"UPDATE {table} SET {', '.join(f'{k} = ?' for k in columns)} WHERE id = ?",
                    [*columns.values(), id],
                )
                new_id = id
            row: sqlite3.Row = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (new_id,)).fetchone()
            return row

        row = await self.store.run(write)
        return _json_response(self._render_type(kind)(row), status=201 if id is None else 200)

    async def _types_create(self, request: web.Request, user: sqlite3.Row, kind: str) -> web.Response:
        return await self._write_type(request, user, kind, None)

    async def _types_put(self, request: web.Request, user: sqlite3.Row, kind: str, id: str) -> web.Response:
        pk = _int_or_none(id)
        if pk is None:
            raise _not_found()
        return await self._write_type(request, user, kind, pk)

    async def _check_owner(self, table: str, id: int, user: sqlite3.Row) -> sqlite3.Row:
        row = await self._get_row(table, "id", id)
        if row["user"] != user["username"] and not user["is_superuser"]:
            raise HTTPError(403, {"detail": PERMISSION_DENIED})
        return row

    # -- task instances -----------------------------------------------------------------------

    @staticmethod
    def _render_instance(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "name": row["name"],
            "uuid": row["uuid"],
            "state": row["state"],
            "user": row["user"],
            "task_queue": row["task_queue"],
            "datetime_created": _iso(row["created_ts"]),
            "datetime_finished": _iso(row["finished_ts"]),
            "arguments": json.loads(row["arguments"]),
            "task_type": row["task_type"],
        }

    def _advance(self, conn: sqlite3.Connection, table: str) -> None:
        """Move every instance whose next transition is due (cascading through several).

        Runs on every read, so it first checks the earliest due time it knows of (kept
        up to date by inserts, recomputed after each sweep) and returns when nothing is due.
        """
        now = time.time()
        if now < self._next_due.get(table, 0.0):
            return
        conn.execute(
            f"UPDATE {table} SET state = 'published', next_at = next_at + ? "
            "WHERE next_at <= ? AND state = 'created'",
            (self.run_delay, now),
        )
        conn.execute(
            f"UPDATE {table} SET state = 'running', next_at = next_at + ? "
            "WHERE next_at <= ? AND state = 'published'",
            (self.run_duration, now),
        )
        conn.execute(
            f"UPDATE {table} SET state = outcome, finished_ts = next_at, next_at = NULL "
            "WHERE next_at <= ? AND state = 'running'",
            (now,),
        )
        earliest = conn.execute(f"SELECT MIN(next_at) FROM {table} WHERE next_at IS NOT NULL").fetchone()[0]
        self._next_due[table] = float("inf") if earliest is None else float(earliest)

    def _new_instance(
        self,
        conn: sqlite3.Connection,
        kind: str,
        *,
        name: str,
        user: str,
        task_queue: int,
        task_type: int,
        arguments: dict[str, Any],
    ) -> sqlite3.Row:
        table = _INSTANCE_TABLES[kind]
        now = time.time()
        self._seq += 1
        uuid = _uuid4()
        outcome = self._outcome(self._draw())
        # The stored row comes back from the INSERT itself (RETURNING: no second statement).
        row: sqlite3.Row = conn.execute(
            f"INSERT INTO {table} (uuid, name, state, user, task_queue, task_type, created_ts, finished_ts,"
            " arguments, next_at, outcome, seq) VALUES (?, ?, 'created', ?, ?, ?, ?, NULL, ?, ?, ?, ?)"
            " RETURNING *",
            (
                uuid, name, user, task_queue, task_type, now, json.dumps(arguments),
                now + self.publish_delay, outcome, self._seq,
            ),
        ).fetchone()  # fmt: skip
        self._next_due[table] = min(self._next_due.get(table, 0.0), now + self.publish_delay)
        return row

    def _draw(self) -> float:
        """The next draw of the simulated outcomes' random sequence (see ``_undrawn``)."""
        return self._undrawn.pop() if self._undrawn else self._rng.random()

    def _outcome(self, draw: float) -> str:
        return "failed" if draw < self.failure_rate else "successful"

    # -- the cache of queues, whitelists and task types ------------------------------------------

    def _watch_config(self, conn: sqlite3.Connection) -> None:
        """Forget the cached configuration on every write to its tables (at setup, store thread).

        TEMP triggers (this connection's own, never stored in the database) call back into
        Python for each row inserted, updated or deleted through the store, whoever writes
        it: a handler, or a test's own SQL. A write rolled back afterwards only costs a
        re-read. Another process committing to the same database file moves ``PRAGMA
        data_version`` (checked by :meth:`_config_cache`).
        """
        conn.create_function("aioplatform_saltant_config_changed", 0, self._config_changed)
        for table in ("saltant_taskqueues", "saltant_taskwhitelists", *_TYPE_TABLES.values()):
            for op in ("INSERT", "UPDATE", "DELETE"):
                conn.execute(
                    f"CREATE TEMP TRIGGER IF NOT EXISTS {table}_{op.lower()}_config"
                    f" AFTER {op} ON main.{table} BEGIN SELECT aioplatform_saltant_config_changed(); END"
                )

    def _config_changed(self) -> None:
        self._config.clear()

    def _config_cache(self, conn: sqlite3.Connection) -> dict[tuple[Any, ...], Any]:
        """The cached configuration, emptied first if another process changed a database file."""
        if self.store.path != ":memory:":
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._config_data_version:
                self._config.clear()
                self._config_data_version = version
        return self._config

    def _config_row(self, conn: sqlite3.Connection, table: str, id: Any) -> sqlite3.Row | None:
        """``SELECT * FROM table WHERE id = ?`` (a queue, whitelist or task type), cached.

        The transaction calls :meth:`_config_cache` first, before any of these.
        """
        key = (table, id)
        try:
            found: sqlite3.Row | None = self._config[key]
        except KeyError:
            found = self._config[key] = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (id,)).fetchone()
        return found

    def _model_checks(
        self, conn: sqlite3.Connection, kind: str, user: sqlite3.Row, queue: sqlite3.Row, ttype: sqlite3.Row,
        arguments: dict[str, Any],
    ) -> dict[str, Any]:  # fmt: skip
        """saltant's model ``clean()`` of a task instance; returns the arguments with defaults filled in.

        Reads the configuration cache: the transaction calls :meth:`_config_cache` first.
        """
        # saltant's messages, verbatim (tasksapi/models/abstract_tasks.py)
        if not queue["active"]:
            raise _model_error(f"Queue {queue['name']} is not active")
        if queue["private"] and queue["user"] != user["username"]:
            raise _model_error(f"{user['username']} is not authorized to use the queue {queue['name']}")
        config = self._config  # the caller checked it in this transaction (_config_cache)
        allowed_key = ("allowed", kind, queue["id"], queue["whitelists"])
        allowed: set[int] | None = config.get(allowed_key)
        if allowed is None:
            key = f"whitelisted_{kind}_task_types"
            allowed = set()
            for wl_id in json.loads(queue["whitelists"]):
                wl = self._config_row(conn, "saltant_taskwhitelists", wl_id)
                if wl is not None:
                    allowed.update(json.loads(wl[key]))
            config[allowed_key] = allowed
        if ttype["id"] not in allowed:
            raise _model_error(f"Queue {queue['name']} has not whitelisted task type {ttype['name']}")
        if kind == "executable":
            runs, what = bool(queue["runs_executable_tasks"]), "executable"
        else:
            runs = bool(queue[f"runs_{ttype['container_type']}_container_tasks"])
            what = "Docker container" if ttype["container_type"] == "docker" else "Singularity container"
        if not runs:
            raise _model_error(f"Queue {queue['name']} does not accept {what} tasks")
        # Parsed once per text (never changed by the loop below: the values are only copied).
        defaults_text, required_text = ttype["required_arguments_default_values"], ttype["required_arguments"]
        parsed_key = ("arguments", defaults_text, required_text)
        parsed: tuple[dict[str, Any], list[Any]] | None = config.get(parsed_key)
        if parsed is None:
            parsed = config[parsed_key] = (json.loads(defaults_text), json.loads(required_text))
        defaults, required = parsed
        filled = dict(arguments)
        for arg in required:
            if arg not in filled:
                if arg not in defaults:
                    raise _model_error(f"required argument '{arg}' not provided!")
                filled[arg] = defaults[arg]
        return filled

    async def _instances_list(self, request: web.Request, user: sqlite3.Row, kind: str) -> web.Response:
        return await self._paginate(
            request,
            _INSTANCE_TABLES[kind],
            _INSTANCE_FILTERS,
            "created_ts DESC, seq DESC",
            10,
            self._render_instance,
            lifecycle=True,
        )

    async def _instance_row(self, kind: str, uuid: str) -> sqlite3.Row:
        table = _INSTANCE_TABLES[kind]

        def get(conn: sqlite3.Connection) -> sqlite3.Row:
            self._advance(conn, table)
            row: sqlite3.Row | None = conn.execute(
                f"SELECT * FROM {table} WHERE uuid = ?", (uuid,)
            ).fetchone()
            if row is None:
                raise _not_found()
            return row

        return await self.store.run(get)

    async def _instances_get(
        self, request: web.Request, user: sqlite3.Row, kind: str, uuid: str
    ) -> web.Response:
        return _json_response(self._render_instance(await self._instance_row(kind, uuid)))

    async def _instances_create(self, request: web.Request, user: sqlite3.Row, kind: str) -> web.Response:
        form = await read_form(request)
        form.char("name", default="", max_length=200)
        form.json("arguments", default={})
        form.pk("task_type")
        form.pk("task_queue")
        values = form.values

        def create(conn: sqlite3.Connection) -> sqlite3.Row:
            self._config_cache(conn)
            errors = dict(form.errors)
            queue = ttype = None
            if "task_type" in values:
                ttype = conn.execute(
                    f"SELECT * FROM {_TYPE_TABLES[kind]} WHERE id = ?", (values["task_type"],)
                ).fetchone()
                if ttype is None:
                    errors.setdefault("task_type", []).append(_invalid_pk(values["task_type"]))
            if "task_queue" in values:
                queue = conn.execute(
                    "SELECT * FROM saltant_taskqueues"
                    " WHERE id = ? AND active = 1 AND (private = 0 OR user = ?)",
                    (values["task_queue"], user["username"]),
                ).fetchone()
                if queue is None:
                    errors.setdefault("task_queue", []).append(_invalid_pk(values["task_queue"]))
            if errors:
                raise HTTPError(400, errors)
            assert queue is not None and ttype is not None
            given = _clean_json(values["arguments"], dict, quoted=False)
            arguments = self._model_checks(conn, kind, user, queue, ttype, given)
            return self._new_instance(
                conn, kind, name=values["name"], user=user["username"], task_queue=queue["id"],
                task_type=ttype["id"], arguments=arguments,
            )  # fmt: skip

        row = await self.store.run(create, short=True)
        return _json_response(self._render_instance(row), status=201)

    async def _instances_clone(
        self, request: web.Request, user: sqlite3.Row, kind: str, uuid: str
    ) -> web.StreamResponse:
        table = _INSTANCE_TABLES[kind]

        def clone(conn: sqlite3.Connection) -> sqlite3.Row:
            # One statement copies the instance (its name, queue, type and arguments) and
            # returns the copy; the checks then run on what it copied, and any failure raises,
            # which rolls the copy back with the transaction. Each statement costs a hand-over
            # of the GIL to a busy event loop, so one INSERT ... SELECT, not a SELECT and an
            # INSERT. The new row is the one the old code stored: the same ``seq``, draw,
            # creation time and arguments (re-encoded, as ``json.dumps(json.loads(...))``).
            self._config_cache(conn)
            seq, now, draw = self._seq + 1, time.time(), self._draw()
            new_uuid = _uuid4()
            try:
                row: sqlite3.Row | None = conn.execute(
                    f"INSERT INTO {table} (uuid, name, state, user, task_queue, task_type, created_ts,"
                    " finished_ts, arguments, next_at, outcome, seq) SELECT ?, name, 'created', ?,"
                    f" task_queue, task_type, ?, NULL, arguments, ?, ?, ? FROM {table} WHERE uuid = ?"
                    " RETURNING *",
                    (new_uuid, user["username"], now, now + self.publish_delay, self._outcome(draw), seq,
                     uuid),
                ).fetchone()  # fmt: skip
                if row is None:
                    raise _not_found()
                # No serializer here (the allowed-queue check is skipped) but the model is
                # still validated on save; a failure is an unhandled server error.
                queue = self._config_row(conn, "saltant_taskqueues", row["task_queue"])
                ttype = self._config_row(conn, _TYPE_TABLES[kind], row["task_type"])
                text = row["arguments"]
                arguments = {} if text == "{}" else json.loads(text)
                try:
                    if queue is None or ttype is None:
                        raise _model_error("missing queue or task type")
                    self._model_checks(conn, kind, user, queue, ttype, arguments)
                except HTTPError:
                    raise HTTPError(500, "Server Error (500)") from None
                stored = "{}" if text == "{}" else json.dumps(arguments)
                if stored != text:
                    row = conn.execute(
                        f"UPDATE {table} SET arguments = ? WHERE uuid = ? RETURNING *", (stored, new_uuid)
                    ).fetchone()
            except BaseException:
                self._undrawn.append(draw)  # no instance took it
                raise
            self._seq = seq
            self._next_due[table] = min(self._next_due.get(table, 0.0), now + self.publish_delay)
            return row

        try:
            row = await self.store.run(clone, short=True)
        except HTTPError as exc:
            if exc.status == 500:
                # The unhandled error goes to saltant's GET-only error view: an empty 405 (§9).
                return _empty_405()
            raise
        return _json_response(self._render_instance(row), status=201)

    async def _instances_terminate(
        self, request: web.Request, user: sqlite3.Row, kind: str, uuid: str
    ) -> web.Response:
        table = _INSTANCE_TABLES[kind]

        def terminate(conn: sqlite3.Connection) -> sqlite3.Row:
            self._advance(conn, table)
            row: sqlite3.Row | None = conn.execute(
                f"SELECT * FROM {table} WHERE uuid = ?", (uuid,)
            ).fetchone()
            if row is None:
                raise _not_found()
            # The revoke is sent; the worker reports `terminated` afterwards. The answer
            # is the instance as stored when the request was handled (its old state).
            conn.execute(
                f"UPDATE {table} SET state = 'terminated', next_at = NULL "
                "WHERE uuid = ? AND state NOT IN ('successful', 'failed', 'terminated')",
                (uuid,),
            )
            return row

        row = await self.store.run(terminate)
        return _json_response(self._render_instance(row), status=202)

    async def _update_status(self, request: web.Request, user: sqlite3.Row, uuid: str) -> web.Response:
        form = await read_form(request, partial=request.method == "PATCH")
        try:
            uuidlib.UUID(uuid)
        except ValueError:
            return _empty_405()  # saltant's lookup raises on a malformed uuid: an unhandled error
        if "state" not in form.data:
            return _empty_405()  # saltant reads request.data["state"]: a KeyError, unhandled
        # Deliberately stricter than saltant, which stores any string (docs/saltant.md)
        form.choice("state", STATES)
        if form.errors:
            raise HTTPError(400, form.errors)
        state = form.values.get("state")

        def update(conn: sqlite3.Connection) -> dict[str, Any]:
            for table in _INSTANCE_TABLES.values():
                row = conn.execute(f"SELECT * FROM {table} WHERE uuid = ?", (uuid,)).fetchone()
                if row is None:
                    continue
                if state is None:
                    return {"uuid": uuid, "state": row["state"]}
                finished = time.time() if state in ("successful", "failed") else row["finished_ts"]
                # A worker reports this instance now: the simulation lets go of it.
                conn.execute(
                    f"UPDATE {table} SET state = ?, finished_ts = ?, next_at = NULL WHERE uuid = ?",
                    (state, finished, uuid),
                )
                return {"uuid": uuid, "state": state}
            raise HTTPError(400, f"No task instance with UUID {uuid} found")

        return _json_response(await self.store.run(update))

    # -- task queues --------------------------------------------------------------------------

    @staticmethod
    def _render_queue(row: sqlite3.Row) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": row["id"],
            "user": row["user"],
            "name": row["name"],
            "description": row["description"],
        }
        for b in _QUEUE_BOOLS:
            body[b] = bool(row[b])
        body["whitelists"] = json.loads(row["whitelists"])
        return body

    async def _queues_list(self, request: web.Request, user: sqlite3.Row) -> web.Response:
        return await self._paginate(
            request, "saltant_taskqueues", _QUEUE_FILTERS, "id", 100, self._render_queue
        )

    async def _queues_get(self, request: web.Request, user: sqlite3.Row, id: str) -> web.Response:
        row = await self._get_row("saltant_taskqueues", "id", _int_or_none(id))
        return _json_response(self._render_queue(row))

    async def _write_queue(
        self, request: web.Request, user: sqlite3.Row, id: int | None, *, partial: bool = False
    ) -> web.Response:
        table = "saltant_taskqueues"
        if id is not None:
            await self._check_owner(table, id, user)
        form = await read_form(request, partial=partial, update=id is not None)
        form.char("name", required=True, allow_blank=False, max_length=50, regex=r"^[\w@+-]+$",
                  regex_message=" @/+/-/_ only")  # saltant's sane_name_validator, message verbatim
        form.char("description", default="")
        form.boolean("private", default=False)
        for b in _QUEUE_BOOLS[1:]:
            form.boolean(b, default=True)
        form.pk_list("whitelists")

        def write(conn: sqlite3.Connection) -> sqlite3.Row:
            return self._save(
                conn, table, id, user, form, "task queue",
                refs={"whitelists": "saltant_taskwhitelists"},
            )  # fmt: skip

        row = await self.store.run(write)
        return _json_response(self._render_queue(row), status=201 if id is None else 200)

    def _save(
        self,
        conn: sqlite3.Connection,
        table: str,
        id: int | None,
        user: sqlite3.Row,
        form: Form,
        verbose: str,
        refs: dict[str, str],
    ) -> sqlite3.Row:
        """Uniqueness and reference checks, then INSERT or UPDATE; returns the stored row."""
        values = form.values
        errors = dict(form.errors)
        if (
            "name" in values
            and conn.execute(
                f"SELECT 1 FROM {table} WHERE name = ? AND id IS NOT ?", (values["name"], id)
            ).fetchone()
        ):
            errors.setdefault("name", []).append(f"{verbose} with this name already exists.")
        for field, ref_table in refs.items():
            for pk in values.get(field, []):
                if not conn.execute(f"SELECT 1 FROM {ref_table} WHERE id = ?", (pk,)).fetchone():
                    errors.setdefault(field, []).append(_invalid_pk(pk))
                    break
        if errors:
            raise HTTPError(400, errors)
        columns = {k: (json.dumps(v) if isinstance(v, list) else v) for k, v in values.items()}
        if id is None:
            columns["user"] = user["username"]
            cursor = conn.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                list(columns.values()),
            )
            id = cursor.lastrowid
        elif columns:
            conn.execute(
                f"UPDATE {table} SET {', '.join(f'{k} = ?' for k in columns)} WHERE id = ?",
                [*columns.values(), id],
            )
        row: sqlite3.Row = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (id,)).fetchone()
        return row

    async def _queues_create(self, request: web.Request, user: sqlite3.Row) -> web.Response:
        return await self._write_queue(request, user, None)

    async def _queues_put(self, request: web.Request, user: sqlite3.Row, id: str) -> web.Response:
        return await self._write_queue(request, user, _pk_or_404(id))

    async def _queues_patch(self, request: web.Request, user: sqlite3.Row, id: str) -> web.Response:
        return await self._write_queue(request, user, _pk_or_404(id), partial=True)

    # -- task whitelists ----------------------------------------------------------------------

    @staticmethod
    def _render_whitelist(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"],
            "user": row["user"],
            "name": row["name"],
            "description": row["description"],
            "whitelisted_container_task_types": json.loads(row["whitelisted_container_task_types"]),
            "whitelisted_executable_task_types": json.loads(row["whitelisted_executable_task_types"]),
        }

    async def _whitelists_list(self, request: web.Request, user: sqlite3.Row) -> web.Response:
        return await self._paginate(
            request, "saltant_taskwhitelists", _WHITELIST_FILTERS, "id", 100, self._render_whitelist
        )

    async def _whitelists_get(self, request: web.Request, user: sqlite3.Row, id: str) -> web.Response:
        row = await self._get_row("saltant_taskwhitelists", "id", _int_or_none(id))
        return _json_response(self._render_whitelist(row))

    async def _write_whitelist(
        self, request: web.Request, user: sqlite3.Row, id: int | None, *, partial: bool = False
    ) -> web.Response:
        table = "saltant_taskwhitelists"
        if id is not None:
            await self._check_owner(table, id, user)
        form = await read_form(request, partial=partial, update=id is not None)
        form.char("name", required=True, allow_blank=False, max_length=50)
        form.char("description", default="")
        form.pk_list("whitelisted_container_task_types")
        form.pk_list("whitelisted_executable_task_types")

        def write(conn: sqlite3.Connection) -> sqlite3.Row:
            return self._save(
                conn, table, id, user, form, "task whitelist",
                refs={
                    "whitelisted_container_task_types": _TYPE_TABLES["container"],
                    "whitelisted_executable_task_types": _TYPE_TABLES["executable"],
                },
            )  # fmt: skip

        row = await self.store.run(write)
        return _json_response(self._render_whitelist(row), status=201 if id is None else 200)

    async def _whitelists_create(self, request: web.Request, user: sqlite3.Row) -> web.Response:
        return await self._write_whitelist(request, user, None)

    async def _whitelists_put(self, request: web.Request, user: sqlite3.Row, id: str) -> web.Response:
        return await self._write_whitelist(request, user, _pk_or_404(id))

    async def _whitelists_patch(self, request: web.Request, user: sqlite3.Row, id: str) -> web.Response:
        return await self._write_whitelist(request, user, _pk_or_404(id), partial=True)


def _positive_int(value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        return default
    return number if number > 0 else default


def _int_or_none(value: str) -> int | None:
    """The id in a path, or None when no row can have it (404): ASCII digits, signed 64-bit."""
    pk = as_pk(value)
    return pk if pk is not None and in_range(pk) else None


def _pk_or_404(value: str) -> int:
    pk = _int_or_none(value)
    if pk is None:
        raise _not_found()
    return pk


def _check_username(username: str) -> None:
    if not isinstance(username, str) or not re.fullmatch(r"[\w.@+-]{1,150}", username):
        raise ValueError(f"username must be 1-150 letters, digits or @.+-_, got {username!r}")
