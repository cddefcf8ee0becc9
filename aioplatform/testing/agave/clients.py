"""The embedded Agave's ``/clients/v2``: OAuth API clients and their subscriptions (agave.md §2.4).

The clients service authenticates with HTTP Basic ``username:password`` (not a bearer
token), so its routes pass the gateway and check the user here. A created client's
``consumerKey``/``consumerSecret`` work at ``/token`` at once (the token endpoint reads the
same ``agave_oauth_clients`` table); the secret is shown in the create answer only, and a
user sees only their own clients. Deleting a client revokes the tokens issued to it.
New clients are subscribed to every API, as the real service does.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import sqlite3
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .wire import AgaveError, api_base, hash_password, iso_millis, ok, page, password_matches

if TYPE_CHECKING:
    from .service import AgaveService

__all__ = ["install"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS agave_clients_subscriptions (
    consumer_key TEXT NOT NULL, api_name TEXT NOT NULL, api_version TEXT NOT NULL,
    api_provider TEXT NOT NULL, PRIMARY KEY (consumer_key, api_name, api_version, api_provider));
CREATE TABLE IF NOT EXISTS agave_clients_subscribed (consumer_key TEXT PRIMARY KEY);
"""

# The APIs a tenant publishes (name, context), as the recorded subscription listing shows.
APIS: tuple[tuple[str, str], ...] = (
    ("Apps", "/apps/v2"),
    ("Files", "/files/v2"),
    ("Jobs", "/jobs/v2"),
    ("Meta", "/meta/v2"),
    ("Monitors", "/monitors/v2"),
    ("Notifications", "/notifications/v2"),
    ("Postits", "/postits/v2"),
    ("Profiles", "/profiles/v2"),
    ("Systems", "/systems/v2"),
    ("Transforms", "/transforms/v2"),
    ("PublicKeys", "/keys/v2"),
)
_CONTEXT = dict(APIS)
_NAMES = {name.lower(): name for name, _ in APIS}


def _basic_user(request: web.Request) -> tuple[str, str]:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise AgaveError(401, "Please provide a valid username and password (HTTP Basic authentication)")
    try:
        username, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise AgaveError(401, "Malformed HTTP Basic credentials") from None
    if not sep or not username:
        raise AgaveError(401, "Malformed HTTP Basic credentials")
    return username, password


async def _authenticate(service: AgaveService, request: web.Request) -> str:
    username, password = _basic_user(request)

    def check(conn: sqlite3.Connection) -> bool:
        row = conn.execute("SELECT password FROM agave_users WHERE username = ?", (username,)).fetchone()
        # Hash even for an unknown user, so timing does not tell which usernames exist.
        stored = str(row[0]) if row is not None else hash_password(secrets.token_hex(16))
        return password_matches(stored, password) and row is not None

    if not await service.store.run(check):
        raise AgaveError(401, "Invalid username/password combination")
    return username


async def _fields(request: web.Request) -> dict[str, str]:
    """A form (what agavepy's helpers send) or a JSON object (what the spec declares)."""
    if request.content_type == "application/json":
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            import json

            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise AgaveError(400, "Malformed JSON request body") from None
        if not isinstance(body, dict):
            raise AgaveError(400, "The request body must be a JSON object")
        return {str(k): v for k, v in body.items() if isinstance(v, str)}
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _client_json(
    request: web.Request, row: sqlite3.Row | tuple[Any, ...], *, secret: str | None = None
) -> dict[str, Any]:
    name, owner, key, description, callback, tier = row[:6]
    base = api_base(request)
    result: dict[str, Any] = {
        "description": description,
        "name": name,
        "consumerKey": key,
        "_links": {
            "subscriber": {"href": f"{base}/profiles/v2/{owner}"},
            "self": {"href": f"{base}/clients/v2/{name}"},
            "subscriptions": {"href": f"{base}/clients/v2/{name}/subscriptions/"},
        },
        "tier": tier,
        "callbackUrl": callback,
    }
    if secret is not None:
        result["consumerSecret"] = secret
    return result


_COLUMNS = "name, owner, consumer_key, description, callback_url, tier"


def _find(conn: sqlite3.Connection, owner: str, name: str) -> tuple[Any, ...]:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM agave_oauth_clients WHERE owner = ? AND name = ?", (owner, name)
    ).fetchone()
    if row is None:
        raise AgaveError(404, f"No client found matching {name}")
    return tuple(row)


def _subscribe_all(conn: sqlite3.Connection, key: str) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO agave_clients_subscriptions VALUES (?, ?, 'v2', 'admin')",
        [(key, name) for name, _ in APIS],
    )
    conn.execute("INSERT OR IGNORE INTO agave_clients_subscribed VALUES (?)", (key,))


def _subscriptions(conn: sqlite3.Connection, key: str) -> list[tuple[str, str, str]]:
    # A client made before this module saw it (the platform's seeded one) starts with all.
    if (
        conn.execute("SELECT 1 FROM agave_clients_subscribed WHERE consumer_key = ?", (key,)).fetchone()
        is None
    ):
        _subscribe_all(conn, key)
    rows = conn.execute(
        "SELECT api_name, api_version, api_provider FROM agave_clients_subscriptions "
        "WHERE consumer_key = ? ORDER BY rowid",
        (key,),
    ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def _subscription_json(request: web.Request, name: str, sub: tuple[str, str, str]) -> dict[str, Any]:
    api, version, provider = sub
    base = api_base(request)
    context = _CONTEXT.get(api, "/" + api.lower() + "/" + version)
    return {
        "apiName": api,
        "tier": "Unlimited",
        "apiStatus": "PUBLISHED",
        "apiProvider": provider,
        "apiContext": context,
        "apiVersion": version,
        "_links": {
            "self": {"href": f"{base}/clients/v2/{name}/subscriptions/"},
            "api": {"href": f"{base}{context}/"},
            "client": {"href": f"{base}/clients/v2/{name}"},
        },
        "businessOwner": None,
    }


def _install_routes(service: AgaveService) -> None:
    async def list_clients(request: web.Request) -> web.StreamResponse:
        owner = await _authenticate(service, request)
        rows = await service.store.run(
            lambda conn: conn.execute(
                f"SELECT {_COLUMNS} FROM agave_oauth_clients WHERE owner = ? ORDER BY created, name", (owner,)
            ).fetchall()
        )
        items = [_client_json(request, row) for row in rows]
        return ok(request, page(request, items), message="Clients retrieved successfully.")

    async def create_client(request: web.Request) -> web.StreamResponse:
        owner = await _authenticate(service, request)
        fields = await _fields(request)
        name = (fields.get("clientName") or fields.get("name") or "").strip()
        if not name:
            raise AgaveError(400, "Please specify a valid client name for your new client")
        if "/" in name or name in (".", ".."):
            raise AgaveError(400, "Client names may not contain '/' or be '.' or '..'")
        description = fields.get("description", "")
        callback = fields.get("callbackUrl", "")
        tier = fields.get("tier") or "Unlimited"
        if tier not in ("Unlimited", "Gold", "Silver", "Bronze"):
            raise AgaveError(400, f"Invalid tier {tier!r}: Unlimited, Gold, Silver or Bronze")
        key, secret = secrets.token_urlsafe(20), secrets.token_urlsafe(24)

        def create(conn: sqlite3.Connection) -> tuple[Any, ...]:
            if conn.execute(
                "SELECT 1 FROM agave_oauth_clients WHERE owner = ? AND name = ?", (owner, name)
            ).fetchone():
                raise AgaveError(400, f"An application with the name {name} already exists")
            conn.execute(
                "INSERT INTO agave_oauth_clients (name, owner, consumer_key, consumer_secret, description, "
                "callback_url, tier, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, owner, key, secret, description, callback, tier, iso_millis()),
            )
            _subscribe_all(conn, key)
            return _find(conn, owner, name)

        row = await service.store.run(create)
        return ok(
            request,
            _client_json(request, row, secret=secret),
            status=201,
            message="Client created successfully.",
        )

    async def get_client(request: web.Request) -> web.StreamResponse:
        owner = await _authenticate(service, request)
        name = request.match_info["client_name"]
        row = await service.store.run(lambda conn: _find(conn, owner, name))
        return ok(request, _client_json(request, row), message="Client retrieved successfully.")

    async def delete_client(request: web.Request) -> web.StreamResponse:
        owner = await _authenticate(service, request)
        name = request.match_info["client_name"]

        def delete(conn: sqlite3.Connection) -> None:
            key = _find(conn, owner, name)[2]
            conn.execute("DELETE FROM agave_oauth_clients WHERE consumer_key = ?", (key,))
            conn.execute("DELETE FROM agave_clients_subscriptions WHERE consumer_key = ?", (key,))
            conn.execute("DELETE FROM agave_clients_subscribed WHERE consumer_key = ?", (key,))
            conn.execute("DELETE FROM agave_tokens WHERE consumer_key = ?", (key,))  # revoked

        await service.store.run(delete)
        return ok(request, None, message="Client deleted successfully.")

    async def list_subscriptions(request: web.Request) -> web.StreamResponse:
        owner = await _authenticate(service, request)
        name = request.match_info["client_name"]
        subs = await service.store.run(lambda conn: _subscriptions(conn, _find(conn, owner, name)[2]))
        items = [_subscription_json(request, name, sub) for sub in subs]
        return ok(request, items, message="Client subscriptions retrieved successfully.")

    async def add_subscription(request: web.Request) -> web.StreamResponse:
        owner = await _authenticate(service, request)
        name = request.match_info["client_name"]
        fields = await _fields(request)
        api = (fields.get("apiName") or "").strip()
        version = (fields.get("apiVersion") or "v2").strip()
        provider = (fields.get("apiProvider") or "admin").strip()
        if api != "*" and api.lower() not in _NAMES:
            raise AgaveError(400, f"No API found with name {api!r}")

        def add(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
            key = _find(conn, owner, name)[2]
            _subscriptions(conn, key)
            wanted = [n for n, _ in APIS] if api == "*" else [_NAMES[api.lower()]]
            conn.executemany(
                "INSERT OR IGNORE INTO agave_clients_subscriptions VALUES (?, ?, ?, ?)",
                [(key, n, version, provider) for n in wanted],
            )
            return _subscriptions(conn, key)

        subs = await service.store.run(add)
        items = [_subscription_json(request, name, sub) for sub in subs]
        return ok(request, items, message="Client subscriptions updated successfully.")

    async def delete_subscriptions(request: web.Request) -> web.StreamResponse:
        owner = await _authenticate(service, request)
        name = request.match_info["client_name"]

        def delete(conn: sqlite3.Connection) -> None:
            key = _find(conn, owner, name)[2]
            conn.execute("DELETE FROM agave_clients_subscriptions WHERE consumer_key = ?", (key,))
            conn.execute("INSERT OR IGNORE INTO agave_clients_subscribed VALUES (?)", (key,))

        await service.store.run(delete)
        return ok(request, None, message="Client subscriptions deleted successfully.")

    root = "/clients/v2"
    item = root + "/{client_name}"
    for method, path, handler in (
        ("GET", root + "/", list_clients),
        ("POST", root + "/", create_client),
        ("GET", item, get_client),
        ("DELETE", item, delete_client),
        ("GET", item + "/subscriptions", list_subscriptions),
        ("POST", item + "/subscriptions", add_subscription),
        ("DELETE", item + "/subscriptions", delete_subscriptions),
    ):
        # HTTP Basic, checked here: the gateway lets these through without a bearer token.
        service.route(method, path, handler, public=True)


async def install(service: AgaveService) -> None:
    await service.store.executescript(SCHEMA)
    _install_routes(service)
