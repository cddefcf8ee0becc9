"""The embedded Astakos service: identity, account and ui roots over SQLite (protocols/astakos.md).

Roots under the platform's ``/astakos`` prefix: identity ``/astakos/identity/v2.0``
(``auth_url``), account ``/astakos/account/v1.0`` and ui ``/astakos/ui``, the last two
announced by the service catalog as absolute URLs on the running platform.

Seeded with a user (``user_token``), a project admin (``admin_token``), a second
user, three components (``service_token`` is the ``cyclades`` one, which owns the
``cyclades.*`` resources), every user's system
project (uuid = the user's uuid) with holdings for every resource, and one active
project (``project_uuid``) with the user as an accepted member. Uuids follow
``platform.seed``; tokens never do: they come from :mod:`secrets` unless the caller
fixes them (``LocalPlatform(credentials={"astakos_user_token": ...})``, names in
:attr:`AstakosService.credential_names`), and a file database keeps its own. Helpers for tests:
:meth:`AstakosService.add_user`, :meth:`set_active`, :meth:`set_limit`, :meth:`holding`,
:meth:`holdings`, :meth:`commissions`.
"""

from __future__ import annotations

import json
import random
import secrets
import sqlite3
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from .. import jsonbody
from ..services import EmbeddedService
from . import projects as pj
from . import quotaholder as qh
from .quotaholder import Fault

__all__ = ["AstakosService"]

IDENTITY = "/identity/v2.0"
ACCOUNT = "/account/v1.0"
UI = "/ui"
GiB = 1024**3

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS astakos_users (
    uuid TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE COLLATE NOCASE, realname TEXT NOT NULL,
    token TEXT NOT NULL UNIQUE, is_admin INTEGER NOT NULL DEFAULT 0, active INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS astakos_components (
    name TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS astakos_resources (
    name TEXT PRIMARY KEY, component TEXT NOT NULL, service TEXT NOT NULL, description TEXT NOT NULL,
    unit TEXT, ui_visible INTEGER NOT NULL, api_visible INTEGER NOT NULL, uplimit INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS astakos_feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, message TEXT NOT NULL,
    data TEXT NOT NULL, sent TEXT NOT NULL);
"""
    + qh.SCHEMA
    + pj.SCHEMA
)

# (name, component, service, description, unit, ui_visible, api_visible, system-project limit)
RESOURCES = (
    ("cyclades.vm", "cyclades", "cyclades_compute", "Number of virtual machines", None, 1, 1, 10),
    ("cyclades.cpu", "cyclades", "cyclades_compute", "Number of virtual machine processors", None, 1, 1, 40),
    ("cyclades.ram", "cyclades", "cyclades_compute", "Virtual machine memory", "bytes", 1, 1, 40 * GiB),
    ("cyclades.disk", "cyclades", "cyclades_compute", "Virtual machine disk size", "bytes", 1, 1, 400 * GiB),
    (
        "pithos.diskspace",
        "pithos",
        "pithos_object-store",
        "Pithos account diskspace",
        "bytes",
        1,
        1,
        50 * GiB,
    ),
    ("astakos.pending_app", "astakos", "astakos_account", "Pending project applications", None, 0, 0, 3),
)
COMPONENTS = ("astakos", "cyclades", "pithos")
USERS = (
    # (key, username, realname, admin)
    ("user", "user@example.org", "Ursula User", False),
    ("admin", "admin@example.org", "Adam Admin", True),
    ("other", "other@example.org", "Otto Other", False),
)
DEMO_PROJECT = "demo.example.org"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _fault_response(fault: Fault) -> web.Response:
    return web.json_response(fault.body(), status=fault.status, headers=fault.headers)


def _empty(status: int = 200) -> web.Response:
    return web.Response(status=status, body=b"", content_type="application/json")


def _path_id(request: web.Request, name: str) -> int | None:
    """The integer id in the path (ASCII digits, by the route), or None when no row can have it.

    SQLite keys are signed 64-bit: a larger id cannot exist, so it is answered as unknown
    (never handed to SQLite, which raises OverflowError for it).
    """
    value = request.match_info[name]
    if len(value) > 19:
        return None
    number = int(value)
    return number if qh.in_range(number) else None


def _membership_id(request: web.Request) -> int:
    memb_id = _path_id(request, "memb_id")
    if memb_id is None:
        raise Fault(404, "itemNotFound", f"Membership {request.match_info['memb_id']} does not exist.")
    return memb_id


class AstakosService(EmbeddedService):
    name = "astakos"
    prefix = "/astakos"
    credential_names = (
        *(f"astakos_{key}_token" for key, *_ in USERS),
        "astakos_service_token",  # the cyclades component (what platform.astakos_service_token reads)
        *(f"astakos_{name}_token" for name in COMPONENTS if name != "cyclades"),
    )

    def __init__(self, platform: Any):
        super().__init__(platform)
        self._rng = random.Random(f"astakos-{platform.seed}")
        self._user_tokens: dict[str, str] = {}  # token -> user uuid
        self._inactive: set[str] = set()  # uuids of deactivated users (their tokens are 401)
        self._component_tokens: dict[str, str] = {}  # token -> component name
        self.tokens: dict[str, str] = {}  # seeded user key ("user", "admin", "other") -> token
        self.uuids: dict[str, str] = {}  # seeded user key -> uuid
        self.usernames: dict[str, str] = {}  # seeded user key -> username (email)
        self.component_tokens: dict[str, str] = {}  # component name -> token
        self.project_uuid = ""
        self.resources = [r[0] for r in RESOURCES if r[6]]

    # -- URLs and seeded credentials ----------------------------------------------------------

    @property
    def root(self) -> str:
        return self.platform.url + self.prefix

    @property
    def auth_url(self) -> str:
        """The identity root (what astakosclient calls ``auth_url``)."""
        return self.root + IDENTITY

    @property
    def account_url(self) -> str:
        return self.root + ACCOUNT

    @property
    def ui_url(self) -> str:
        return self.root + UI

    @property
    def user_token(self) -> str:
        return self.tokens["user"]

    @property
    def admin_token(self) -> str:
        return self.tokens["admin"]

    @property
    def service_token(self) -> str:
        """The ``cyclades`` component's token (it owns the ``cyclades.*`` resources)."""
        return self.component_tokens["cyclades"]

    @property
    def user_uuid(self) -> str:
        return self.uuids["user"]

    @property
    def system_project(self) -> str:
        """The seeded user's system project (same uuid as the user)."""
        return self.uuids["user"]

    # -- setup and seeding -------------------------------------------------------------------------

    def _uuid(self) -> str:
        return str(uuidlib.UUID(int=self._rng.getrandbits(128), version=4))

    @staticmethod
    def _token() -> str:
        return secrets.token_hex(16)

    @staticmethod
    def _credential_name(kind: str, key: str) -> str:
        if kind == "component":
            return "astakos_service_token" if key == "cyclades" else f"astakos_{key}_token"
        return f"astakos_{key}_token"

    async def setup(self) -> web.Application:
        await self.store.executescript(_SCHEMA)
        plan = {
            "users": [
                (key, name, real, admin, self._uuid(), self._token()) for key, name, real, admin in USERS
            ],
            "components": [(name, self._token()) for name in COMPONENTS],
            "project": self._uuid(),
        }
        await self.store.run(lambda conn: self._seed(conn, plan))
        await self.store.run(self._fix_tokens)
        await self.store.run(self._load)

        app = web.Application(middlewares=[self._faults])
        r = self._route
        r(app, "POST", IDENTITY + "/tokens", self.tokens_post)
        r(app, "GET", IDENTITY + "/tokens/{token_id}", self.tokens_get)
        r(app, "POST", ACCOUNT + "/user_catalogs", self.user_catalogs)
        r(app, "POST", ACCOUNT + "/service/user_catalogs", self.service_user_catalogs)
        r(app, "GET", ACCOUNT + "/resources", self.get_resources)
        r(app, "GET", ACCOUNT + "/quotas", self.get_quotas)
        r(app, "GET", ACCOUNT + "/service_quotas", self.service_quotas)
        r(app, "GET", ACCOUNT + "/service_project_quotas", self.service_project_quotas)
        r(app, "POST", ACCOUNT + "/commissions/action", self.resolve_commissions)
        r(app, "POST", ACCOUNT + "/commissions", self.issue_commission)
        r(app, "GET", ACCOUNT + "/commissions", self.pending_commissions)
        # [0-9], not \d: a Unicode digit (Arabic-Indic one, U+0661) is no id (Python 2's re, which the real
        # server's URLconf ran on, matched ASCII digits only).
        r(app, "GET", ACCOUNT + "/commissions/{serial:[0-9]+}", self.commission_info)
        r(app, "POST", ACCOUNT + "/commissions/{serial:[0-9]+}/action", self.commission_action)
        r(app, "GET", ACCOUNT + "/projects/memberships", self.list_memberships)
        r(app, "POST", ACCOUNT + "/projects/memberships", self.post_membership)
        r(app, "GET", ACCOUNT + "/projects/memberships/{memb_id:[0-9]+}", self.get_membership)
        r(app, "POST", ACCOUNT + "/projects/memberships/{memb_id:[0-9]+}/action", self.membership_action)
        r(app, "GET", ACCOUNT + "/projects", self.list_projects)
        r(app, "POST", ACCOUNT + "/projects", self.create_project)
        r(app, "GET", ACCOUNT + "/projects/{project_id}", self.get_project)
        r(app, "PUT", ACCOUNT + "/projects/{project_id}", self.modify_project)
        r(app, "POST", ACCOUNT + "/projects/{project_id}/action", self.project_action)
        r(app, "POST", ACCOUNT + "/feedback", self.feedback)
        r(app, "GET", UI + "/get_services", self.get_services)
        return app

    @staticmethod
    def _route(app: web.Application, method: str, path: str, handler: Handler) -> None:
        # Trailing slashes are optional on every Astakos route.
        app.router.add_route(method, path, handler)
        app.router.add_route(method, path + "/", handler)

    def _seed(self, conn: sqlite3.Connection, plan: dict[str, Any]) -> None:
        if conn.execute("SELECT COUNT(*) FROM astakos_users").fetchone()[0]:
            return  # a file database that was seeded before
        for i, (name, token) in enumerate(plan["components"]):
            conn.execute("INSERT INTO astakos_components VALUES (?, ?, ?)", (name, token, i + 1))
        conn.executemany("INSERT INTO astakos_resources VALUES (?, ?, ?, ?, ?, ?, ?, ?)", RESOURCES)
        for _key, username, realname, admin, uuid, token in plan["users"]:
            self._create_user(conn, uuid, username, realname, token, admin)
        admin_uuid = plan["users"][1][4]
        user_uuid = plan["users"][0][4]
        project = plan["project"]
        pj.create_project(
            conn, admin_uuid,
            {"name": DEMO_PROJECT, "end_date": "2100-01-01T00:00:00+00:00", "join_policy": "moderated",
             "description": "The seeded demo project",
             "resources": {r[0]: {"project_capacity": 100 * r[7], "member_capacity": 10 * r[7]}
                           for r in RESOURCES if r[6]}},
            project,
        )  # fmt: skip
        app_id = conn.execute("SELECT last_application FROM astakos_projects WHERE uuid = ?", (project,))
        pj.project_action(conn, admin_uuid, project, {"approve": {"app_id": app_id.fetchone()[0]}})
        pj.add_membership(conn, user_uuid, project, "accepted")

    def _fix_tokens(self, conn: sqlite3.Connection) -> None:
        """Set the tokens the caller fixed (over a file database's own too)."""
        for key, username, *_ in USERS:
            name = self._credential_name("user", key)
            if name in self.platform.credentials:
                conn.execute(
                    "UPDATE astakos_users SET token = ? WHERE username = ?",
                    (self.platform.credentials[name], username),
                )
        for component in COMPONENTS:
            name = self._credential_name("component", component)
            if name in self.platform.credentials:
                conn.execute(
                    "UPDATE astakos_components SET token = ? WHERE name = ?",
                    (self.platform.credentials[name], component),
                )

    @staticmethod
    def _create_user(
        conn: sqlite3.Connection, uuid: str, username: str, realname: str, token: str, admin: bool
    ) -> None:
        conn.execute(
            "INSERT INTO astakos_users (uuid, username, realname, token, is_admin) VALUES (?, ?, ?, ?, ?)",
            (uuid, username, realname, token, int(admin)),
        )
        # The system project: same uuid as the user, limits from each resource's uplimit.
        conn.execute(
            "INSERT INTO astakos_projects (uuid, state, creation_date, name, owner, end_date, join_policy, "
            "leave_policy, max_members, private, system_project) "
            "VALUES (?, 'active', ?, ?, ?, NULL, 'closed', 'closed', 1, 1, 1)",
            (uuid, qh.now(), f"system:{uuid}", uuid),
        )
        for name, *_rest, uplimit in RESOURCES:
            conn.execute(
                "INSERT INTO astakos_project_resources VALUES (?, ?, ?, ?)", (uuid, name, uplimit, uplimit)
            )
        pj.add_membership(conn, uuid, uuid, "accepted")

    def _load(self, conn: sqlite3.Connection) -> None:
        for key, username, *_ in USERS:
            uuid, token = conn.execute(
                "SELECT uuid, token FROM astakos_users WHERE username = ?", (username,)
            ).fetchone()
            self.uuids[key], self.tokens[key], self.usernames[key] = uuid, token, username
        self._user_tokens = {r[0]: r[1] for r in conn.execute("SELECT token, uuid FROM astakos_users")}
        self._inactive = {r[0] for r in conn.execute("SELECT uuid FROM astakos_users WHERE active = 0")}
        self._component_tokens = {
            r[0]: r[1] for r in conn.execute("SELECT token, name FROM astakos_components")
        }
        self.component_tokens = {name: token for token, name in self._component_tokens.items()}
        row = conn.execute("SELECT uuid FROM astakos_projects WHERE name = ?", (DEMO_PROJECT,)).fetchone()
        self.project_uuid = row[0]

    # -- helpers for tests and the demo ----------------------------------------------------------------

    async def add_user(self, username: str, realname: str = "", *, admin: bool = False) -> tuple[str, str]:
        """Create an active user (with its system project); returns ``(uuid, token)``."""
        uuid, token = self._uuid(), self._token()
        await self.store.run(
            lambda conn: self._create_user(conn, uuid, username, realname or username, token, admin)
        )
        self._user_tokens[token] = uuid
        return uuid, token

    async def set_active(self, uuid: str, active: bool) -> None:
        """Activate or deactivate a user: a deactivated user's token is 401 "User inactive"."""
        await self.store.run(
            lambda conn: conn.execute(
                "UPDATE astakos_users SET active = ? WHERE uuid = ?", (int(active), uuid)
            )
        )
        (self._inactive.discard if active else self._inactive.add)(uuid)

    async def renew_component_token(self, name: str) -> str:
        """Give component ``name`` a new token (as ``snf-manage component-modify
        --renew-token`` does); its old token is 401 from now on. Returns the new one."""
        if name not in self.component_tokens:
            raise ValueError(f"unknown component {name!r}")
        token = self._token()
        await self.store.run(
            lambda conn: conn.execute("UPDATE astakos_components SET token = ? WHERE name = ?", (token, name))
        )
        self._component_tokens.pop(self.component_tokens[name], None)
        self._component_tokens[token] = name
        self.component_tokens[name] = token
        return token

    async def set_limit(self, holder: str, source: str | None, resource: str, limit: int) -> None:
        """Set (or create) a holding's limit.

        >>> await platform.astakos.set_limit(f"user:{u}", f"project:{p}", "cyclades.vm", 9)
        """
        await self.store.run(lambda conn: qh.set_holding(conn, holder, source, resource, limit))

    async def holding(self, holder: str, source: str | None, resource: str) -> dict[str, int] | None:
        """``{"limit", "usage_min", "usage_max"}`` of one holding, or None."""

        def read(conn: sqlite3.Connection) -> dict[str, int] | None:
            row = conn.execute(
                "SELECT lim, usage_min, usage_max FROM astakos_holdings "
                "WHERE holder = ? AND source = ? AND resource = ?",
                (holder, source or "", resource),
            ).fetchone()
            return None if row is None else {"limit": row[0], "usage_min": row[1], "usage_max": row[2]}

        return await self.store.run(read)

    async def holdings(self) -> dict[tuple[str, str | None, str], dict[str, int]]:
        """Every holding by ``(holder, source, resource)``."""

        def read(conn: sqlite3.Connection) -> dict[tuple[str, str | None, str], dict[str, int]]:
            rows = conn.execute(
                "SELECT holder, source, resource, lim, usage_min, usage_max FROM astakos_holdings"
            )
            return {
                (h, s or None, r): {"limit": lim, "usage_min": lo, "usage_max": hi}
                for h, s, r, lim, lo, hi in rows
            }

        return await self.store.run(read)

    async def commissions(self) -> dict[int, list[dict[str, Any]]]:
        """Every pending commission's provisions by serial (all components)."""

        def read(conn: sqlite3.Connection) -> dict[int, list[dict[str, Any]]]:
            found: dict[int, list[dict[str, Any]]] = {}
            for (serial,) in conn.execute(
                "SELECT serial FROM astakos_commissions ORDER BY serial"
            ).fetchall():
                rows = conn.execute(
                    "SELECT holder, source, resource, quantity FROM astakos_provisions WHERE serial = ? "
                    "ORDER BY position", (serial,),
                )  # fmt: skip
                found[serial] = [
                    {"holder": h, "source": s or None, "resource": r, "quantity": q} for h, s, r, q in rows
                ]
            return found

        return await self.store.run(read)

    # -- request plumbing ------------------------------------------------------------------------------

    @web.middleware
    async def _faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Fault as fault:
            return _fault_response(fault)
        except web.HTTPMethodNotAllowed as exc:
            return _fault_response(
                Fault(
                    405,
                    "notAllowed",
                    "Method not allowed",
                    headers={"Allow": ",".join(sorted(exc.allowed_methods))},
                )
            )
        except web.HTTPNotFound:
            return _fault_response(Fault(400, "badRequest", "API endpoint not found"))

    @staticmethod
    def _token_of(request: web.Request) -> str:
        token = request.headers.get("X-Auth-Token") or request.query.get("X-Auth-Token")
        if not token:
            raise Fault(401, "unauthorized", "Access denied. No authentication token")
        return token

    def _user(self, request: web.Request) -> str:
        uuid = self._user_tokens.get(self._token_of(request))
        if uuid is None:
            raise Fault(401, "unauthorized", "Invalid X-Auth-Token")
        if uuid in self._inactive:
            raise Fault(401, "unauthorized", "User inactive")
        return uuid

    def _component(self, request: web.Request) -> str:
        name = self._component_tokens.get(self._token_of(request))
        if name is None:
            raise Fault(401, "unauthorized", "Invalid X-Auth-Token")
        return name

    @staticmethod
    async def _json(request: web.Request, *, any_type: bool = False) -> Any:
        raw = await request.read()
        if not any_type and raw and request.content_type != "application/json":
            raise Fault(400, "badRequest", f"Unsupported Content-type: '{request.content_type}'")
        if not raw:
            return {}
        try:
            return jsonbody.loads(raw)
        except ValueError:
            raise Fault(400, "badRequest", "Could not decode request body as JSON.") from None

    def _catalog(self) -> list[dict[str, Any]]:
        def entry(name: str, kind: str, version: str, url: str) -> dict[str, Any]:
            endpoint = {"versionId": version, "publicURL": url, "SNF:uiURL": self.ui_url, "region": "default"}
            return {"name": name, "type": kind, "endpoints": [endpoint], "endpoints_links": []}

        return [
            entry("astakos_account", "account", "v1.0", self.account_url),
            entry("astakos_identity", "identity", "v2.0", self.auth_url),
            entry("cyclades_compute", "compute", "v2.0", self.root + "/cyclades/compute/v2.0"),
            entry("pithos_object-store", "object-store", "v1", self.root + "/pithos/object-store/v1"),
        ]

    # -- identity ------------------------------------------------------------------------------------

    async def tokens_post(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if not raw:  # public mode: the service catalog only
            return web.json_response({"access": {"serviceCatalog": self._catalog()}})
        try:
            body = jsonbody.loads(raw)
        except ValueError:
            raise Fault(400, "badRequest", "Malformed request: missing credentials") from None
        auth = body.get("auth") if isinstance(body, dict) else None
        auth = auth if isinstance(auth, dict) else {}
        token = auth.get("token", {}).get("id") if isinstance(auth.get("token"), dict) else None
        creds = auth.get("passwordCredentials")
        claimed = None
        if token is None and isinstance(creds, dict):
            token, claimed = creds.get("password"), creds.get("username")
        if not isinstance(token, str) or not token:
            raise Fault(400, "badRequest", "Malformed request: missing credentials")
        uuid = self._user_tokens.get(token)
        if uuid is None:
            raise Fault(401, "unauthorized", "Invalid token")
        if uuid in self._inactive:
            raise Fault(401, "unauthorized", "User inactive")
        if claimed is not None and claimed != uuid:
            raise Fault(401, "unauthorized", "Invalid credentials")
        tenant = auth.get("tenantName")
        if tenant is not None and tenant != uuid:
            raise Fault(400, "badRequest", "Not conforming tenantName")
        user, projects = await self.store.run(lambda conn: self._user_and_projects(conn, uuid))
        access = self._access(token, user)
        access["user"]["projects"] = projects
        access["serviceCatalog"] = self._catalog()
        return web.json_response({"access": access})

    @staticmethod
    def _user_and_projects(conn: sqlite3.Connection, uuid: str) -> tuple[dict[str, Any], list[str]]:
        row = conn.execute("SELECT uuid, realname FROM astakos_users WHERE uuid = ?", (uuid,)).fetchone()
        projects = [
            r[0]
            for r in conn.execute(
                "SELECT project FROM astakos_memberships WHERE person = ? AND state IN (?, ?) ORDER BY id",
                (uuid, *pj.MEMBER_STATES),
            )
        ]
        return {"uuid": row[0], "realname": row[1]}, projects

    @staticmethod
    def _access(token: str, user: dict[str, Any]) -> dict[str, Any]:
        return {
            "token": {
                "id": token,
                "expires": "2100-01-01T00:00:00+00:00",
                "tenant": {"id": user["uuid"], "name": user["realname"]},
            },
            "user": {
                "id": user["uuid"],
                "name": user["realname"],
                "roles": [{"id": "1", "name": "default"}],
                "roles_links": [],
            },
        }

    async def tokens_get(self, request: web.Request) -> web.Response:
        # No OAuth2 here: a user's auth token stands for an access token; belongsTo, when given,
        # must name the user's uuid.
        token = request.match_info["token_id"]
        uuid = self._user_tokens.get(token)
        belongs = request.query.get("belongsTo")
        if uuid is None or (belongs is not None and belongs != uuid):
            raise Fault(404, "itemNotFound", "Invalid token")
        user, _ = await self.store.run(lambda conn: self._user_and_projects(conn, uuid))
        return web.json_response({"access": self._access(token, user)})

    # -- user catalogs, resources, feedback, services ------------------------------------------------

    async def _catalogs(self, request: web.Request, *, service: bool) -> web.Response:
        body = await self._json(request, any_type=True)
        if not isinstance(body, dict):
            raise Fault(400, "badRequest", "Request body should be a json object")
        uuids = body.get("uuids", [])
        names = body.get("displaynames", [])
        if uuids is None and not service:
            uuids = []
        if uuids is not None and (not isinstance(uuids, list) or not all(isinstance(u, str) for u in uuids)):
            raise Fault(400, "badRequest", "uuids should be a list of strings")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise Fault(400, "badRequest", "displaynames should be a list of strings")

        def lookup(conn: sqlite3.Connection) -> dict[str, Any]:
            if uuids is None:
                rows = conn.execute("SELECT uuid, username FROM astakos_users").fetchall()
            else:
                rows = [
                    r
                    for u in dict.fromkeys(uuids)
                    for r in conn.execute("SELECT uuid, username FROM astakos_users WHERE uuid = ?", (u,))
                ]
            by_name = {}
            for n in dict.fromkeys(names):
                row = conn.execute(
                    "SELECT uuid FROM astakos_users WHERE username = ? COLLATE NOCASE", (n,)
                ).fetchone()
                if row is not None:
                    by_name[n] = row[0]
            return {"uuid_catalog": {u: name for u, name in rows}, "displayname_catalog": by_name}

        return web.json_response(await self.store.run(lookup))

    async def user_catalogs(self, request: web.Request) -> web.Response:
        self._user(request)
        return await self._catalogs(request, service=False)

    async def service_user_catalogs(self, request: web.Request) -> web.Response:
        self._component(request)
        return await self._catalogs(request, service=True)

    async def get_resources(self, request: web.Request) -> web.Response:
        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            rows = conn.execute(
                "SELECT name, service, description, unit, ui_visible, api_visible FROM astakos_resources "
                "WHERE api_visible = 1 ORDER BY name"
            )
            return {
                n: {
                    "service": s,
                    "description": d,
                    "unit": u,
                    "ui_visible": bool(ui),
                    "api_visible": bool(api),
                }
                for n, s, d, u, ui, api in rows
            }

        return web.json_response(await self.store.run(read))

    async def feedback(self, request: web.Request) -> web.Response:
        user = self._user(request)
        # Parsed as a form whatever the Content-Type (astakosclient labels it octet-stream).
        form = parse_qs((await request.read()).decode("utf-8", "replace"), keep_blank_values=True)
        message = form.get("feedback_msg", [""])[0]
        data = form.get("feedback_data", [""])[0]
        if not message:
            raise Fault(400, "badRequest", "Invalid data")
        await self.store.run(
            lambda conn: conn.execute(
                "INSERT INTO astakos_feedback (user, message, data, sent) VALUES (?, ?, ?, ?)",
                (user, message, data, qh.now()),
            )
        )
        return _empty()

    async def get_services(self, request: web.Request) -> web.Response:
        services = [
            {
                "id": str(i + 1),
                "name": name,
                "url": f"{self.ui_url}/{name}/",
                "icon": f"{self.ui_url}/{name}.png",
            }
            for i, name in enumerate(COMPONENTS)
        ]
        callback = request.query.get("callback")
        if callback:
            return web.Response(
                text=f"{callback}({json.dumps(services)})", content_type="application/javascript"
            )
        return web.json_response(services)

    # -- quotas ----------------------------------------------------------------------------------------

    @staticmethod
    def _user_quotas(
        conn: sqlite3.Connection, users: list[str] | None, projects: list[str] | None, component: str | None
    ) -> dict[str, dict[str, dict[str, dict[str, int]]]]:
        rows = conn.execute(
            "SELECT m.person, m.project, h.resource, h.lim, h.usage_min, h.usage_max, "
            "p.lim, p.usage_min, p.usage_max "
            "FROM astakos_memberships m "
            "JOIN astakos_projects pr ON pr.uuid = m.project AND pr.state IN ('active', 'suspended') "
            "JOIN astakos_holdings h ON h.holder = 'user:' || m.person "
            "AND h.source = 'project:' || m.project "
            "JOIN astakos_resources r ON r.name = h.resource AND r.api_visible = 1 "
            "JOIN astakos_holdings p ON p.holder = h.source AND p.source = '' AND p.resource = h.resource "
            "WHERE m.state IN ('accepted', 'leave_requested') AND (? IS NULL OR r.component = ?) "
            "ORDER BY m.person, m.project, h.resource",
            (component, component),
        )
        result: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
        for person, project, res, lim, lo, hi, plim, plo, phi in rows:
            if users is not None and person not in users:
                continue
            if projects is not None and project not in projects:
                continue
            result.setdefault(person, {}).setdefault(project, {})[res] = {
                "limit": lim, "usage": hi, "pending": hi - lo,
                "project_limit": plim, "project_usage": phi, "project_pending": phi - plo,
            }  # fmt: skip
        return result

    @staticmethod
    def _listed(request: web.Request, key: str) -> list[str] | None:
        value = request.query.get(key)
        return None if value is None else [v for v in value.split(",") if v]

    async def get_quotas(self, request: web.Request) -> web.Response:
        user = self._user(request)
        quotas = await self.store.run(lambda conn: self._user_quotas(conn, [user], None, None))
        return web.json_response(quotas.get(user, {}))

    async def service_quotas(self, request: web.Request) -> web.Response:
        component = self._component(request)
        users, projects = self._listed(request, "user"), self._listed(request, "project")
        quotas = await self.store.run(lambda conn: self._user_quotas(conn, users, projects, component))
        if users is not None and not quotas:
            raise Fault(404, "itemNotFound", f"No user with UUID '{request.query['user']}'")
        return web.json_response(quotas)

    async def service_project_quotas(self, request: web.Request) -> web.Response:
        component = self._component(request)
        projects = self._listed(request, "project")

        def read(conn: sqlite3.Connection) -> dict[str, dict[str, dict[str, int]]]:
            rows = conn.execute(
                "SELECT substr(h.holder, 9), h.resource, h.lim, h.usage_min, h.usage_max "
                "FROM astakos_holdings h JOIN astakos_resources r ON r.name = h.resource "
                "JOIN astakos_projects pr ON 'project:' || pr.uuid = h.holder "
                "WHERE h.source = '' AND r.component = ? AND r.api_visible = 1 "
                "ORDER BY h.holder, h.resource",
                (component,),
            )
            result: dict[str, dict[str, dict[str, int]]] = {}
            for project, res, lim, lo, hi in rows:
                if projects is None or project in projects:
                    result.setdefault(project, {})[res] = {
                        "project_limit": lim,
                        "project_usage": hi,
                        "project_pending": hi - lo,
                    }
            return result

        quotas = await self.store.run(read)
        if projects is not None and not quotas:
            raise Fault(404, "itemNotFound", f"No project with UUID '{request.query['project']}'")
        return web.json_response(quotas)

    # -- commissions ------------------------------------------------------------------------------------

    async def issue_commission(self, request: web.Request) -> web.Response:
        component = self._component(request)
        body = await self._json(request)

        def bad(message: str) -> Fault:
            return Fault(400, "badRequest", message, details=message)

        if not isinstance(body, dict):
            raise bad("Request body should be a json object")
        provisions = body.get("provisions")
        if provisions is None:
            raise bad("Provisions are missing.")
        if not isinstance(provisions, list):
            raise bad("Provisions should be a list.")
        parsed: list[tuple[str, str | None, str, int]] = []
        for p in provisions:
            try:
                holder, source, resource, quantity = p["holder"], p["source"], p["resource"], p["quantity"]
            except (KeyError, TypeError):
                raise bad(f"Malformed provision {p}") from None
            if (
                not isinstance(quantity, int) or isinstance(quantity, bool)
                or not isinstance(holder, str) or not isinstance(resource, str)
                or not (source is None or isinstance(source, str))
            ):  # fmt: skip
                raise bad(f"Malformed provision {p}")
            if not qh.in_range(quantity):
                # Holdings are signed 64-bit (bigint on the real server's database).
                raise bad(f"Malformed provision {p}: quantity outside signed 64-bit")
            parsed.append((holder, source, resource, quantity))
        force, auto_accept, name = (
            body.get("force", False),
            body.get("auto_accept", False),
            body.get("name", ""),
        )
        if not isinstance(force, bool):
            raise bad("'force' should be a boolean")
        if not isinstance(auto_accept, bool):
            raise bad("'auto_accept' should be a boolean")
        if name is None:
            name = ""
        if not isinstance(name, str):
            raise bad("'name' should be a string")
        serial = await self.store.run(
            lambda conn: qh.issue_commission(
                conn, component, parsed, name=name, force=force, auto_accept=auto_accept
            )
        )
        return web.json_response({"serial": serial}, status=201)

    async def pending_commissions(self, request: web.Request) -> web.Response:
        component = self._component(request)
        return web.json_response(await self.store.run(lambda conn: qh.pending_commissions(conn, component)))

    async def commission_info(self, request: web.Request) -> web.Response:
        component = self._component(request)
        serial = _path_id(request, "serial")
        if serial is None:
            return _empty(404)
        info = await self.store.run(lambda conn: qh.commission_info(conn, component, serial))
        if info is None:
            return _empty(404)
        return web.json_response(info)

    async def commission_action(self, request: web.Request) -> web.Response:
        component = self._component(request)
        serial = _path_id(request, "serial")
        body = await self._json(request)
        if not isinstance(body, dict) or ("accept" in body) == ("reject" in body):
            raise Fault(400, "badRequest", "Specify either accept or reject action.")
        if serial is None:
            return _empty(404)
        accept = "accept" in body
        done = await self.store.run(lambda conn: qh.accept_or_reject(conn, component, serial, accept=accept))
        return _empty(200 if done else 404)

    async def resolve_commissions(self, request: web.Request) -> web.Response:
        component = self._component(request)
        body = await self._json(request)
        if not isinstance(body, dict):
            raise Fault(400, "badRequest", "Request body should be a json object")
        accept, reject = body.get("accept", []), body.get("reject", [])
        if not isinstance(accept, list) or not isinstance(reject, list):
            raise Fault(400, "badRequest", "'accept' and 'reject' should be lists")
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in accept + reject):
            raise Fault(400, "badRequest", "Serials should be integer.")
        result = await self.store.run(lambda conn: qh.resolve_commissions(conn, component, accept, reject))
        return web.json_response(result)

    # -- projects and memberships ----------------------------------------------------------------------

    async def list_projects(self, request: web.Request) -> web.Response:
        user = self._user(request)
        q = request.query
        found = await self.store.run(
            lambda conn: pj.list_projects(
                conn, user, name=q.get("name"), state=q.get("state"), owner=q.get("owner"), mode=q.get("mode")
            )
        )
        return web.json_response(found)

    async def get_project(self, request: web.Request) -> web.Response:
        user = self._user(request)
        project_id = request.match_info["project_id"]
        return web.json_response(
            await self.store.run(lambda conn: pj.visible_project(conn, user, project_id))
        )

    async def create_project(self, request: web.Request) -> web.Response:
        user = self._user(request)
        body = await self._json(request)
        if not isinstance(body, dict):
            raise Fault(400, "badRequest", "Request body should be a json object")
        new_uuid = self._uuid()
        created = await self.store.run(lambda conn: pj.create_project(conn, user, body, new_uuid))
        return web.json_response(created, status=201)

    async def modify_project(self, request: web.Request) -> web.Response:
        user = self._user(request)
        project_id = request.match_info["project_id"]
        body = await self._json(request)
        if not isinstance(body, dict):
            raise Fault(400, "badRequest", "Request body should be a json object")
        modified = await self.store.run(lambda conn: pj.modify_project(conn, user, project_id, body))
        return web.json_response(modified, status=201)

    async def project_action(self, request: web.Request) -> web.Response:
        user = self._user(request)
        project_id = request.match_info["project_id"]
        body = await self._json(request)
        await self.store.run(lambda conn: pj.project_action(conn, user, project_id, body))
        return _empty()

    async def list_memberships(self, request: web.Request) -> web.Response:
        user = self._user(request)
        project = request.query.get("project")
        return web.json_response(await self.store.run(lambda conn: pj.list_memberships(conn, user, project)))

    async def get_membership(self, request: web.Request) -> web.Response:
        user = self._user(request)
        memb_id = _membership_id(request)
        row = await self.store.run(lambda conn: pj.get_membership(conn, user, memb_id))
        return web.json_response(pj.membership_object(row))

    async def post_membership(self, request: web.Request) -> web.Response:
        user = self._user(request)
        body = await self._json(request)
        if not isinstance(body, dict) or len(body) != 1 or not isinstance(next(iter(body.values())), dict):
            raise Fault(400, "badRequest", "No recognized action")
        ((action, args),) = body.items()
        project = args.get("project")
        if project is None or not isinstance(project, (str, int)):
            raise Fault(400, "badRequest", "Missing project")
        project = str(project)
        if action == "join":
            memb = await self.store.run(lambda conn: pj.join_project(conn, user, project))
        elif action == "enroll":
            email = args.get("user")
            if not isinstance(email, str):
                raise Fault(400, "badRequest", "Missing user")
            memb = await self.store.run(lambda conn: pj.enroll_member(conn, user, project, email))
        else:
            raise Fault(400, "badRequest", "No recognized action")
        return web.json_response({"id": memb})

    async def membership_action(self, request: web.Request) -> web.Response:
        user = self._user(request)
        memb_id = _membership_id(request)
        body = await self._json(request)
        await self.store.run(lambda conn: pj.membership_action(conn, user, memb_id, body))
        return _empty()
