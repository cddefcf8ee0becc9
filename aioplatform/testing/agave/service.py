"""The embedded Agave / Tapis v2 service: the token endpoint, the gateway and the envelope,
with one module per resource (``jobs.py``, ``files.py``, ``apps.py``, ``systems.py`` ...).

Faithful to ``shared/protocols/agave.md``: ``POST /token`` (password and refresh grants
with HTTP Basic ``key:secret``, refresh tokens rotated on every use), the gateway's
401 fault ``{"fault": {"code": 900901, "message": "Invalid Credentials", ...}}`` for a
missing, unknown or expired bearer token (what makes agavepy refresh), and the
``{"status", "message", "version", "result"}`` envelope on every JSON answer.

Agave's roots (``/apps/v2``, ``/jobs/v2``, ``/token`` ...) sit at the root of its host.
On the shared platform port the service is mounted under ``/agave``; :meth:`routes_app`
builds the same routes at ``/`` for a site of its own (the TLS site agavepy needs,
which only speaks HTTPS on port 443 at the root of a host).

Credentials (the OAuth client's key and secret, the user's password, the first token
pair) are random unless fixed through ``LocalPlatform(credentials={"agave_token": ...})``
(see ``credential_names``); passwords are stored salted and hashed. Tune on the service
object: ``token_lifetime`` (seconds, default 14400 as the real gateway).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Middleware

from ..services import EmbeddedService
from .wire import AgaveError, envelope_body, hash_password, iso_millis, password_matches, set_user

if TYPE_CHECKING:
    from ..platform import LocalPlatform

__all__ = ["AgaveService"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TOKEN_LIFETIME = 14400

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agave_users (
    username TEXT PRIMARY KEY, password TEXT NOT NULL, email TEXT NOT NULL DEFAULT '',
    first_name TEXT NOT NULL DEFAULT '', last_name TEXT NOT NULL DEFAULT '',
    is_admin INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS agave_oauth_clients (
    name TEXT NOT NULL, owner TEXT NOT NULL, consumer_key TEXT PRIMARY KEY,
    consumer_secret TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
    callback_url TEXT NOT NULL DEFAULT '', tier TEXT NOT NULL DEFAULT 'Unlimited',
    created TEXT NOT NULL, UNIQUE (owner, name));
CREATE TABLE IF NOT EXISTS agave_tokens (
    access_token TEXT PRIMARY KEY, refresh_token TEXT NOT NULL UNIQUE, username TEXT NOT NULL,
    consumer_key TEXT NOT NULL, expires REAL NOT NULL, refresh_used INTEGER NOT NULL DEFAULT 0);
"""


def _fault(code: int, message: str, description: str) -> web.Response:
    return web.json_response(
        {"fault": {"code": code, "message": message, "description": description}}, status=401
    )


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    # The WSO2 token endpoint's exact body is not in the sources (agave.md §2.2): the OAuth2
    # convention is what it most likely answers.
    return web.json_response({"error": error, "error_description": description}, status=status)


class AgaveService(EmbeddedService):
    name = "agave"
    prefix = "/agave"

    credential_names = (
        "agave_password", "agave_client_key", "agave_client_secret", "agave_token", "agave_refresh_token",
    )  # fmt: skip

    def __init__(self, platform: LocalPlatform, *, username: str = "testuser"):
        super().__init__(platform)
        self.username = username
        self.password = self.credential("agave_password", lambda: secrets.token_urlsafe(12))
        self.client_key = self.credential("agave_client_key", lambda: secrets.token_hex(14))
        self.client_secret = self.credential("agave_client_secret", lambda: secrets.token_hex(14))
        self.token_lifetime: float = TOKEN_LIFETIME
        # Jobs: seconds per status step (a job read later has moved on by as many steps) and
        # the share of jobs that end FAILED (drawn at submission from the platform's seed).
        self.job_step_seconds: float = 0.05
        self.job_failure_rate: float = 0.0
        # Notifications (notifications.py): webhooks go to loopback hosts only unless remote
        # delivery is allowed (an SSRF guard: this server runs on users' machines); each
        # delivery has a timeout, at most `notification_concurrency` are in flight, and a
        # failed one is retried at most `notification_max_retries` times whatever its policy.
        self.notifications_allow_remote: bool = False
        self.notification_timeout: float = 5.0
        self.notification_concurrency: int = 8
        self.notification_max_retries: int = 5
        # Actors (actors.py): seconds an actor takes to become READY and the scale of an
        # execution's queueing and running times (drawn per execution: no FIFO order).
        self.actor_step_seconds: float = 0.05
        self.actor_case: str = "camel"  # Abaco's web.case: "camel" (TACC production) or "snake"
        # Credentials a resource accepts in the query instead of a bearer token (the actors
        # module's "x-nonce"): name -> check(request, value) returning the user, or raising.
        self.query_auth: dict[str, Callable[[web.Request, str], Awaitable[str]]] = {}
        self.access_token = ""
        self.refresh_token = ""
        # Resource modules add their routes here: (method, path under the root, handler).
        self._routes: list[tuple[str, str, Handler]] = []
        self._public: set[Handler] = set()
        self._closers: list[Callable[[], Awaitable[None]]] = []

    # -- what tests and users read ----------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API root on the platform's port (``.../agave``), what ``AgaveClient`` takes."""
        return self.platform.url + self.prefix

    # -- set-up -------------------------------------------------------------------------------

    def route(self, method: str, path: str, handler: Handler, *, public: bool = False) -> None:
        """Register ``handler`` for ``path`` and, unless it ends in a slash or a tail
        match, its trailing-slash twin (the Java services route both forms).

        ``public`` handlers pass the gateway without a bearer token (``/token``, and
        ``/clients/v2`` which authenticates with HTTP Basic itself)."""
        if public:
            self._public.add(handler)
        self._routes.append((method, path, handler))
        if not path.endswith("/") and "{" not in path.rsplit("/", 1)[-1]:
            self._routes.append((method, path + "/", handler))
        elif path.endswith("/") and len(path) > 1:
            self._routes.append((method, path.rstrip("/"), handler))

    def on_close(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._closers.append(fn)

    async def setup(self) -> web.Application:
        await self.store.executescript(_SCHEMA)
        from . import resources  # the resource modules, each with `async def install(service)`

        for install in resources.INSTALLERS:
            await install(self)
        self.route("POST", "/token", self._token, public=True)
        self.access_token, self.refresh_token = await self.store.run(self._seed)
        return self.routes_app()

    def routes_app(self, middlewares: Sequence[Middleware] = ()) -> web.Application:
        """A new application with every Agave route at its root and the gateway in front;
        ``middlewares`` run before the gateway (the platform's counters and faults on a
        site of Agave's own, where the platform's outer application is not in front)."""
        app = web.Application(middlewares=[*middlewares, self._gateway], client_max_size=1024**4)
        for method, path, handler in self._routes:
            app.router.add_route(method, path, handler)
        return app

    async def close(self) -> None:
        for closer in reversed(self._closers):
            await closer()

    def _seed(self, conn: sqlite3.Connection) -> tuple[str, str]:
        conn.execute(
            "INSERT INTO agave_users (username, password, email, first_name, last_name, is_admin) "
            "VALUES (?, ?, ?, 'Test', 'User', 1) "
            "ON CONFLICT(username) DO UPDATE SET password = excluded.password",
            (self.username, hash_password(self.password), f"{self.username}@example.org"),
        )
        conn.execute(
            "INSERT OR REPLACE INTO agave_oauth_clients "
            "(name, owner, consumer_key, consumer_secret, created) VALUES ('aioplatform', ?, ?, ?, ?)",
            (self.username, self.client_key, self.client_secret, iso_millis()),
        )
        # The first token pair: fixed ones (credentials={"agave_token": ...}) replace what a
        # file database kept from an earlier run under the same values.
        return self._issue(
            conn, self.username, self.client_key,
            access=self.platform.credentials.get("agave_token"),
            refresh=self.platform.credentials.get("agave_refresh_token"),
        )  # fmt: skip

    def _issue(
        self,
        conn: sqlite3.Connection,
        username: str,
        consumer_key: str,
        *,
        access: str | None = None,
        refresh: str | None = None,
    ) -> tuple[str, str]:
        if access or refresh:  # fixed values: replace the row an earlier run left
            conn.execute(
                "DELETE FROM agave_tokens WHERE access_token = ? OR refresh_token = ?", (access, refresh)
            )
        access, refresh = access or secrets.token_hex(16), refresh or secrets.token_hex(16)
        conn.execute(
            "INSERT INTO agave_tokens (access_token, refresh_token, username, consumer_key, expires) "
            "VALUES (?, ?, ?, ?, ?)",
            (access, refresh, username, consumer_key, time.time() + self.token_lifetime),
        )
        return access, refresh

    # -- helpers for tests --------------------------------------------------------------------

    async def issue_token(
        self, username: str | None = None, *, lifetime: float | None = None
    ) -> tuple[str, str]:
        """A fresh (access, refresh) pair for ``username`` (the seeded user by default);
        ``lifetime`` 0 or less gives an already-expired access token."""

        def issue(conn: sqlite3.Connection) -> tuple[str, str]:
            access, refresh = self._issue(conn, username or self.username, self.client_key)
            if lifetime is not None:
                conn.execute(
                    "UPDATE agave_tokens SET expires = ? WHERE access_token = ?",
                    (time.time() + lifetime, access),
                )
            return access, refresh

        return await self.store.run(issue)

    async def expire_token(self, access_token: str) -> None:
        await self.store.run(
            lambda conn: conn.execute(
                "UPDATE agave_tokens SET expires = 0 WHERE access_token = ?", (access_token,)
            )
        )

    async def add_user(self, username: str, password: str, *, admin: bool = False) -> None:
        await self.store.run(
            lambda conn: conn.execute(
                "INSERT INTO agave_users (username, password, email, is_admin) VALUES (?, ?, ?, ?)",
                (username, hash_password(password), f"{username}@example.org", int(admin)),
            )
        )

    # -- the gateway --------------------------------------------------------------------------

    @web.middleware
    async def _gateway(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # The gateway authenticates before any service routes, so an unknown path under a
        # bad token is a 401 as well; only /token and /clients (HTTP Basic) pass.
        if request.match_info.handler not in self._public:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            path = request.path
            if path.startswith(self.prefix + "/"):
                path = path[len(self.prefix) :]
            api = "/" + "/".join(path.strip("/").split("/")[:2])
            by_query = next((name for name in self.query_auth if name in request.query), None)
            user: str | None
            if by_query is not None and (not token or scheme.lower() != "bearer"):
                # A credential in the query instead of a token (Abaco's ?x-nonce=): the
                # resource that issued it checks it and names the user it acts for.
                try:
                    user = await self.query_auth[by_query](request, request.query[by_query])
                except AgaveError as exc:
                    return web.json_response(
                        envelope_body(None, status="error", message=exc.message), status=exc.status
                    )
            elif not token or scheme.lower() != "bearer":
                return _fault(
                    900902, "Missing Credentials", f"Required OAuth credentials not provided for API {api}"
                )
            else:
                user = await self.store.run(lambda conn: self._user_for(conn, token.strip()))
                if user is None:
                    return _fault(
                        900901,
                        "Invalid Credentials",
                        f"Access failure for API: {api}, version: v2 with key: {token.strip()[:4]}...",
                    )
            set_user(request, user)
        try:
            return await handler(request)
        except AgaveError as exc:
            return web.json_response(
                envelope_body(None, status="error", message=exc.message), status=exc.status
            )

    @staticmethod
    def _user_for(conn: sqlite3.Connection, token: str) -> str | None:
        row = conn.execute(
            "SELECT username FROM agave_tokens WHERE access_token = ? AND expires > ?", (token, time.time())
        ).fetchone()
        return None if row is None else str(row[0])

    # -- POST /token ----------------------------------------------------------------------------

    def _client_of(self, request: web.Request) -> tuple[str, str] | None:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            key, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return key, secret

    async def _token(self, request: web.Request) -> web.StreamResponse:
        credentials = self._client_of(request)
        form = await request.post()
        fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        grant = fields.get("grant_type", "")
        if credentials is None:
            return _oauth_error(401, "invalid_client", "Client Authentication failed.")
        key, secret = credentials

        def grant_token(conn: sqlite3.Connection) -> tuple[str, str, str] | web.Response:
            row = conn.execute(
                "SELECT consumer_secret FROM agave_oauth_clients WHERE consumer_key = ?", (key,)
            ).fetchone()
            if row is None or not hmac.compare_digest(str(row[0]), secret):
                return _oauth_error(401, "invalid_client", "Client Authentication failed.")
            if grant == "password":
                user = conn.execute(
                    "SELECT password FROM agave_users WHERE username = ?", (fields.get("username", ""),)
                ).fetchone()
                if user is None or not password_matches(str(user[0]), fields.get("password", "")):
                    return _oauth_error(
                        400, "invalid_grant", "Authentication failed for " + fields.get("username", "")
                    )
                username = fields["username"]
            elif grant == "refresh_token":
                old = conn.execute(
                    "SELECT username, consumer_key, refresh_used FROM agave_tokens WHERE refresh_token = ?",
                    (fields.get("refresh_token", ""),),
                ).fetchone()
                if old is None or old[1] != key or old[2]:
                    return _oauth_error(400, "invalid_grant", "Invalid refresh token")
                # The refresh token is spent; its access token stops working too.
                conn.execute(
                    "UPDATE agave_tokens SET refresh_used = 1, expires = MIN(expires, ?) "
                    "WHERE refresh_token = ?",
                    (time.time(), fields["refresh_token"]),
                )
                username = str(old[0])
            else:
                return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant_type value '{grant}'")
            access, refresh = self._issue(conn, username, key)
            return access, refresh, username

        outcome = await self.store.run(grant_token)
        if isinstance(outcome, web.Response):
            return outcome
        access, refresh, _ = outcome
        return web.json_response(
            {
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "bearer",
                "expires_in": int(self.token_lifetime),
                "scope": "default",
            }
        )
