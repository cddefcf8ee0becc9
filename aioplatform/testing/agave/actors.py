"""Actors (Abaco) of the embedded Agave: actors, messages, executions, workers, nonces,
permissions and aliases, faithful to agave.md §6.1.

Abaco is not one of the Java services: every success is a **200** (creates too) and its
envelope always carries ``result`` (``null`` when empty) and a message ("Actors
retrieved successfully."); errors carry ``result: null`` as well. Fields are camelCase
(TACC production's ``web.case``); request bodies are read in either case. Ids are
Abaco-style short opaque ids (13 characters of base62). ``service.actor_case = "snake"``
answers as an Abaco configured with ``web.case: snake`` does (``default_environment``,
``execution_id``).

Lifecycles are lazy (computed from the clock on every read, as the jobs module does):
an actor is ``SUBMITTED`` until ``service.actor_step_seconds`` after its registration
(or its image's update), then ``READY``. A message makes an execution at once
(``SUBMITTED``); it starts ``RUNNING`` after a queueing delay and ends ``COMPLETE`` after
a running time, both drawn per execution from the platform's seed (up to twice and
about once ``actor_step_seconds``): so one actor's executions do not finish in the
order their messages came, as on Abaco (abaco#13). A finished execution has logs (the
message and its extra environment) and a result: the message's bytes (a binary
message's own bytes, a string's UTF-8, any other JSON value's ``json.dumps``).

Rights: the owner has UPDATE; ``/permissions`` grants READ (see the actor, its
executions, logs and results), EXECUTE (and send messages) or UPDATE (and change it);
NONE revokes. A nonce (``/nonces``, level READ or EXECUTE, ``maxUses`` -1 for
unlimited) authorises ``?x-nonce=<id>`` instead of a bearer token, on its actor's routes
only and up to its level; every use spends one of its ``remainingUses`` (the gateway
calls :meth:`ActorsResource.authorize_nonce`). agavepy's stray ``environment=<keys>``
query parameter is not taken as an environment variable.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import sqlite3
import string
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .wire import AgaveError, api_base, page_args, truthy, user_of

if TYPE_CHECKING:
    from .service import AgaveService

__all__ = ["install"]

# What Abaco 1.5 reports as its version (agavepy only needs one to be present).
ABACO_VERSION = "1.5.0"
TENANT = "AGAVE"

SCHEMA = """
CREATE TABLE IF NOT EXISTS agave_actors_actors (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, owner TEXT NOT NULL,
    doc TEXT NOT NULL, stateless INTEGER NOT NULL, state TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL, updated REAL NOT NULL, ready_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS agave_actors_executions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, actor_id TEXT NOT NULL,
    executor TEXT NOT NULL, worker_id TEXT, received REAL NOT NULL, start_at REAL NOT NULL,
    finish_at REAL NOT NULL, fixed_status TEXT, message TEXT, binary BLOB,
    environment TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS agave_actors_executions_actor ON agave_actors_executions (actor_id, seq);
CREATE TABLE IF NOT EXISTS agave_actors_workers (
    id TEXT PRIMARY KEY, actor_id TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS agave_actors_nonces (
    id TEXT PRIMARY KEY, actor_id TEXT NOT NULL, owner TEXT NOT NULL, level TEXT NOT NULL,
    max_uses INTEGER NOT NULL, remaining_uses INTEGER NOT NULL, current_uses INTEGER NOT NULL DEFAULT 0,
    description TEXT NOT NULL DEFAULT '', created REAL NOT NULL, last_use REAL);
CREATE TABLE IF NOT EXISTS agave_actors_aliases (
    alias TEXT PRIMARY KEY, actor_id TEXT NOT NULL, owner TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS agave_actors_permissions (
    actor_id TEXT NOT NULL, username TEXT NOT NULL, level TEXT NOT NULL,
    PRIMARY KEY (actor_id, username));
"""

_ALPHABET = string.ascii_letters + string.digits
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
_RANK = {"NONE": 0, "READ": 1, "EXECUTE": 2, "UPDATE": 3}
# Actor request fields (camelCase) and their defaults; anything else a request sends is ignored.
_FIELDS: dict[str, Any] = {
    "name": None, "description": "", "image": "", "stateless": True, "privileged": False,
    "defaultEnvironment": {}, "useContainerUid": False, "maxWorkers": None, "memLimit": None,
    "maxCpus": None, "token": True, "hints": [], "link": "", "webhook": "", "mounts": [],
}  # fmt: skip
_SNAKE = {
    "default_environment": "defaultEnvironment", "use_container_uid": "useContainerUid",
    "max_workers": "maxWorkers", "mem_limit": "memLimit", "max_cpus": "maxCpus",
}  # fmt: skip
# Query parameters of a message POST that are not environment variables.
_NOT_ENV = frozenset({"x-nonce", "environment", "_abaco_synchronous"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def abaco_id() -> str:
    """An opaque 13-character id, as Abaco's hashids are (``JNj1vRZ0QPBBP``)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(13))


def abaco_time(when: float | None) -> str | None:
    """Abaco's UTC timestamps: ISO-8601 with milliseconds and ``Z``."""
    if when is None:
        return None
    moment = time.gmtime(when)
    return time.strftime("%Y-%m-%dT%H:%M:%S", moment) + f".{int(when * 1000) % 1000:03d}Z"


def answer(result: Any, message: str, status: int = 200) -> web.Response:
    body = {
        "status": "success" if status < 400 else "error",
        "message": message,
        "version": ABACO_VERSION,
        "result": result,
    }
    return web.json_response(body, status=status)


def _snake(key: str) -> str:
    return _CAMEL.sub(r"_\1", key).lower()


def _snake_result(result: Any) -> Any:
    """A result as an Abaco configured with ``web.case: snake`` answers it: the objects'
    own keys (and those of a listing's ``executions``) in snake_case, values untouched."""
    if isinstance(result, list):
        return [_snake_result(item) for item in result]
    if not isinstance(result, dict):
        return result
    return {
        _snake(k): [_snake_result(e) for e in v] if k == "executions" and isinstance(v, list) else v
        for k, v in result.items()
    }


def abaco(handler: Handler, service: AgaveService) -> Handler:
    """Errors as Abaco answers them (the envelope with ``result: null``), and the field
    casing the service is set to (``service.actor_case``)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except AgaveError as exc:
            return answer(None, exc.message, exc.status)
        if (
            service.actor_case == "snake"
            and isinstance(response, web.Response)
            and response.content_type == "application/json"
            and isinstance(response.body, bytes)
        ):
            body = json.loads(response.body)
            body["result"] = _snake_result(body.get("result"))
            return web.json_response(body, status=response.status)
        return response

    wrapped.__name__ = handler.__name__
    return wrapped


async def _json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise AgaveError(400, "Invalid request: a JSON body is required.")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise AgaveError(400, "Invalid request: the body is not valid JSON.") from None


def _camel(body: Mapping[str, Any]) -> dict[str, Any]:
    return {_SNAKE.get(k, k): v for k, v in body.items()}


class ActorsResource:
    """The actors tables, the lazy lifecycles and the handlers (one per embedded service)."""

    def __init__(self, service: AgaveService):
        self.service = service
        self._rng = random.Random(service.platform.seed)  # simulated durations only

    # -- access -------------------------------------------------------------------------------

    @staticmethod
    def _actor_row(conn: sqlite3.Connection, ident: str) -> sqlite3.Row:
        """The actor named by its id or an alias (Abaco takes either in every path)."""
        row = conn.execute("SELECT * FROM agave_actors_actors WHERE id = ?", (ident,)).fetchone()
        if row is None:
            alias = conn.execute(
                "SELECT actor_id FROM agave_actors_aliases WHERE alias = ?", (ident,)
            ).fetchone()
            if alias is not None:
                row = conn.execute("SELECT * FROM agave_actors_actors WHERE id = ?", (alias[0],)).fetchone()
        if row is None:
            raise AgaveError(404, f"actor not found: {ident}. ")
        return row  # type: ignore[no-any-return]

    @staticmethod
    def _level(conn: sqlite3.Connection, actor_id: str, username: str) -> str:
        row = conn.execute(
            "SELECT level FROM agave_actors_permissions WHERE actor_id = ? AND username = ?",
            (actor_id, username),
        ).fetchone()
        return "NONE" if row is None else str(row[0])

    def _access(self, conn: sqlite3.Connection, ident: str, username: str, needed: str) -> sqlite3.Row:
        row = self._actor_row(conn, ident)
        level = self._level(conn, row["id"], username)
        if level == "NONE":
            raise AgaveError(404, f"actor not found: {ident}. ")  # not shown to who cannot read it
        if _RANK[level] < _RANK[needed]:
            raise AgaveError(403, f"Not authorized -- you need {needed} permission on this actor.")
        return row

    async def authorize_nonce(self, request: web.Request, nonce_id: str) -> str:
        """The gateway's check of ``?x-nonce=``: the nonce must be for the actor the path
        names (by id or alias), of a level the route needs (GET: READ; POST messages:
        EXECUTE; nothing else), with a use left, which this spends. Returns its owner."""
        ident = request.match_info.get("actor_id")
        if request.method == "GET":
            needed = "READ"
        elif request.method == "POST" and request.path.rstrip("/").endswith("/messages"):
            needed = "EXECUTE"
        else:
            needed = "UPDATE"

        def check(conn: sqlite3.Connection) -> str:
            nonce = conn.execute("SELECT * FROM agave_actors_nonces WHERE id = ?", (nonce_id,)).fetchone()
            if nonce is None:
                raise AgaveError(400, "Invalid nonce: no such nonce.")
            if ident is None:
                raise AgaveError(400, "Invalid nonce: a nonce is only valid on its actor's endpoints.")
            try:
                actor = self._actor_row(conn, ident)
            except AgaveError:
                raise AgaveError(400, "Invalid nonce: not a nonce for this actor.") from None
            if actor["id"] != nonce["actor_id"]:
                raise AgaveError(400, "Invalid nonce: not a nonce for this actor.")
            if _RANK[nonce["level"]] < _RANK[needed]:
                raise AgaveError(
                    403, f"Insufficient nonce permission level: {nonce['level']} (this needs {needed})."
                )
            if nonce["max_uses"] != -1 and nonce["remaining_uses"] <= 0:
                raise AgaveError(403, "Invalid nonce: no remaining uses.")
            conn.execute(
                "UPDATE agave_actors_nonces SET remaining_uses = CASE WHEN max_uses = -1 THEN -1"
                " ELSE remaining_uses - 1 END, current_uses = current_uses + 1, last_use = ? WHERE id = ?",
                (time.time(), nonce_id),
            )
            return str(nonce["owner"])

        return await self.service.store.run(check)

    # -- rendering ----------------------------------------------------------------------------

    def _status(self, row: sqlite3.Row, now: float) -> str:
        return "READY" if now >= row["ready_at"] else "SUBMITTED"

    def _actor(self, row: sqlite3.Row, base: str, now: float) -> dict[str, Any]:
        doc = json.loads(row["doc"])
        status = self._status(row, now)
        actor = {
            "id": row["id"],
            "owner": row["owner"],
            **doc,
            "stateless": bool(row["stateless"]),
            "status": status,
            "statusMessage": "" if status == "READY" else "Actor submitted; workers starting.",
            "createTime": abaco_time(row["created"]),
            "lastUpdateTime": abaco_time(row["updated"]),
            "_links": {
                "self": f"{base}/actors/v2/{row['id']}",
                "owner": f"{base}/profiles/v2/{row['owner']}",
                "executions": f"{base}/actors/v2/{row['id']}/executions",
            },
        }
        if not row["stateless"]:
            actor["state"] = json.loads(row["state"])
        return actor

    @staticmethod
    def _exec_status(row: sqlite3.Row, now: float) -> str:
        if row["fixed_status"]:
            return str(row["fixed_status"])
        if now < row["start_at"]:
            return "SUBMITTED"
        return "RUNNING" if now < row["finish_at"] else "COMPLETE"

    def _execution(self, row: sqlite3.Row, base: str, now: float) -> dict[str, Any]:
        status = self._exec_status(row, now)
        started = status in ("RUNNING", "COMPLETE")
        done = status == "COMPLETE"
        runtime = row["finish_at"] - row["start_at"]
        return {
            "id": row["id"],
            "actorId": row["actor_id"],
            "executor": row["executor"],
            "workerId": row["worker_id"],
            "status": status,
            "messageReceivedTime": abaco_time(row["received"]),
            "startTime": abaco_time(row["start_at"]) if started else None,
            "finishTime": abaco_time(row["finish_at"]) if done else None,
            "finalState": (
                {
                    "Status": "exited",
                    "ExitCode": 0,
                    "StartedAt": abaco_time(row["start_at"]),
                    "FinishedAt": abaco_time(row["finish_at"]),
                }
                if done
                else None
            ),
            "exitCode": 0 if done else None,
            "runtime": round(runtime) if done else 0,
            "cpu": round(runtime * 1e8) if done else 0,
            "io": 1024 if done else 0,
            "_links": {
                "self": f"{base}/actors/v2/{row['actor_id']}/executions/{row['id']}",
                "owner": f"{base}/profiles/v2/{row['executor']}",
                "logs": f"{base}/actors/v2/{row['actor_id']}/executions/{row['id']}/logs",
            },
        }

    @staticmethod
    def _nonce(row: sqlite3.Row, base: str) -> dict[str, Any]:
        return {
            "id": row["id"],
            "actorId": row["actor_id"],
            "alias": None,
            "owner": row["owner"],
            "level": row["level"],
            "maxUses": row["max_uses"],
            "remainingUses": row["remaining_uses"],
            "currentUses": row["current_uses"],
            "description": row["description"],
            "roles": ["Internal/everyone"],
            "createTime": abaco_time(row["created"]),
            "lastUseTime": abaco_time(row["last_use"]),
            "_links": {
                "self": f"{base}/actors/v2/{row['actor_id']}/nonces/{row['id']}",
                "actor": f"{base}/actors/v2/{row['actor_id']}",
                "owner": f"{base}/profiles/v2/{row['owner']}",
            },
        }

    @staticmethod
    def _worker(row: sqlite3.Row, actor: sqlite3.Row, now: float) -> dict[str, Any]:
        ready = now >= actor["ready_at"]
        return {
            "id": row["id"],
            "status": "READY" if ready else "SPAWNER SETUP",
            "image": json.loads(actor["doc"]).get("image"),
            "location": "unix://var/run/docker.sock",
            "cid": row["id"].lower() * 4 + "0" * 12,
            "hostId": "0",
            "hostIp": "127.0.0.1",
            "chName": f"worker_{row['id']}",
            "tenant": TENANT,
            "lastExecutionTime": abaco_time(row["created"]),
            "lastHealthCheckTime": abaco_time(now),
        }

    @staticmethod
    def _alias(row: sqlite3.Row, base: str) -> dict[str, Any]:
        return {
            "alias": row["alias"],
            "actorId": row["actor_id"],
            "owner": row["owner"],
            "_links": {
                "self": f"{base}/actors/v2/aliases/{row['alias']}",
                "actor": f"{base}/actors/v2/{row['actor_id']}",
                "owner": f"{base}/profiles/v2/{row['owner']}",
            },
        }

    # -- actors -------------------------------------------------------------------------------

    def _description(self, body: Any, old: Mapping[str, Any] | None = None) -> dict[str, Any]:
        if not isinstance(body, Mapping):
            raise AgaveError(400, "Invalid actor description: the body must be a JSON object.")
        given = _camel(body)
        doc = dict(old) if old is not None else {k: v for k, v in _FIELDS.items() if k != "stateless"}
        for key in _FIELDS:
            if key in given and key != "stateless":
                doc[key] = given[key]
        image = doc.get("image")
        if not isinstance(image, str) or not image.strip():
            raise AgaveError(400, "Invalid actor description: image is required.")
        env = doc.get("defaultEnvironment")
        if not isinstance(env, Mapping) or not all(isinstance(v, str) for v in env.values()):
            raise AgaveError(400, "Invalid actor description: defaultEnvironment must map names to strings.")
        if doc.get("name") is not None and not isinstance(doc["name"], str):
            raise AgaveError(400, "Invalid actor description: name must be a string.")
        return doc

    @staticmethod
    def _stateless(body: Mapping[str, Any], default: bool) -> bool:
        value = body.get("stateless", default)
        if isinstance(value, str):
            return truthy(value)
        if not isinstance(value, bool):
            raise AgaveError(400, "Invalid actor description: stateless must be a boolean.")
        return value

    async def list_actors(self, request: web.Request) -> web.StreamResponse:
        user, base = user_of(request), api_base(request)
        limit, offset = page_args(request)

        def listing(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT a.* FROM agave_actors_actors a JOIN agave_actors_permissions p"
                " ON p.actor_id = a.id AND p.username = ? ORDER BY a.seq LIMIT ? OFFSET ?",
                (user, limit, offset),
            ).fetchall()
            now = time.time()
            return [self._actor(r, base, now) for r in rows]

        return answer(await self.service.store.run(listing), "Actors retrieved successfully.")

    async def add_actor(self, request: web.Request) -> web.StreamResponse:
        user, base = user_of(request), api_base(request)
        body = await _json(request)
        doc = self._description(body)
        stateless = self._stateless(_camel(body), True)

        def add(conn: sqlite3.Connection) -> dict[str, Any]:
            now = time.time()
            actor_id = abaco_id()
            conn.execute(
                "INSERT INTO agave_actors_actors (id, owner, doc, stateless, created, updated, ready_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    actor_id,
                    user,
                    json.dumps(doc),
                    int(stateless),
                    now,
                    now,
                    now + self.service.actor_step_seconds,
                ),
            )
            conn.execute(
                "INSERT INTO agave_actors_permissions (actor_id, username, level) VALUES (?, ?, 'UPDATE')",
                (actor_id, user),
            )
            conn.execute(
                "INSERT INTO agave_actors_workers (id, actor_id, created) VALUES (?, ?, ?)",
                (abaco_id(), actor_id, now),
            )
            return self._actor(self._actor_row(conn, actor_id), base, now)

        return answer(await self.service.store.run(add), "Actor created successfully.")

    async def get_actor(self, request: web.Request) -> web.StreamResponse:
        user, base, ident = user_of(request), api_base(request), request.match_info["actor_id"]

        def get(conn: sqlite3.Connection) -> dict[str, Any]:
            return self._actor(self._access(conn, ident, user, "READ"), base, time.time())

        return answer(await self.service.store.run(get), "Actor retrieved successfully.")

    async def update_actor(self, request: web.Request) -> web.StreamResponse:
        user, base, ident = user_of(request), api_base(request), request.match_info["actor_id"]
        body = await _json(request)
        if not isinstance(body, Mapping):
            raise AgaveError(400, "Invalid actor description: the body must be a JSON object.")

        def update(conn: sqlite3.Connection) -> dict[str, Any]:
            row = self._access(conn, ident, user, "UPDATE")
            old = json.loads(row["doc"])
            doc = self._description(body, old)
            stateless = self._stateless(_camel(body), bool(row["stateless"]))
            if stateless and not row["stateless"]:
                raise AgaveError(400, "Invalid actor description: a stateful actor cannot become stateless.")
            now = time.time()
            ready_at = row["ready_at"]
            if doc["image"] != old.get("image"):  # a new image: the workers restart
                ready_at = now + self.service.actor_step_seconds
            conn.execute(
                "UPDATE agave_actors_actors SET doc = ?, stateless = ?, updated = ?, ready_at = ?"
                " WHERE id = ?",
                (json.dumps(doc), int(stateless), now, ready_at, row["id"]),
            )
            return self._actor(self._actor_row(conn, row["id"]), base, now)

        return answer(await self.service.store.run(update), "Actor updated successfully.")

    async def delete_actor(self, request: web.Request) -> web.StreamResponse:
        user, ident = user_of(request), request.match_info["actor_id"]

        def delete(conn: sqlite3.Connection) -> None:
            actor_id = self._access(conn, ident, user, "UPDATE")["id"]
            for table in ("executions", "workers", "nonces", "aliases", "permissions"):
                conn.execute(f"DELETE FROM agave_actors_{table} WHERE actor_id = ?", (actor_id,))
            conn.execute("DELETE FROM agave_actors_actors WHERE id = ?", (actor_id,))

        await self.service.store.run(delete)
        return answer(None, "Actor deleted successfully.")

    # -- messages -----------------------------------------------------------------------------

    async def get_messages(self, request: web.Request) -> web.StreamResponse:
        user, base, ident = user_of(request), api_base(request), request.match_info["actor_id"]

        def count(conn: sqlite3.Connection) -> dict[str, Any]:
            actor_id = self._access(conn, ident, user, "READ")["id"]
            queued = conn.execute(
                "SELECT COUNT(*) FROM agave_actors_executions WHERE actor_id = ? AND fixed_status IS NULL"
                " AND start_at > ?",
                (actor_id, time.time()),
            ).fetchone()[0]
            return {
                "messages": queued,
                "_links": {
                    "self": f"{base}/actors/v2/{actor_id}/messages",
                    "owner": f"{base}/profiles/v2/{user}",
                },
            }

        return answer(await self.service.store.run(count), "Actor messages retrieved successfully.")

    async def delete_messages(self, request: web.Request) -> web.StreamResponse:
        user, ident = user_of(request), request.match_info["actor_id"]

        def purge(conn: sqlite3.Connection) -> None:
            actor_id = self._access(conn, ident, user, "UPDATE")["id"]
            # Messages still queued never run: their executions end in ERROR.
            conn.execute(
                "UPDATE agave_actors_executions SET fixed_status = 'ERROR' WHERE actor_id = ?"
                " AND fixed_status IS NULL AND start_at > ?",
                (actor_id, time.time()),
            )

        await self.service.store.run(purge)
        return answer({"msg": "Actor mailbox purged."}, "Actor mailbox purged.")

    async def send_message(self, request: web.Request) -> web.StreamResponse:
        user, base, ident = user_of(request), api_base(request), request.match_info["actor_id"]
        content_type = request.content_type
        binary: bytes | None = None
        message: Any = None
        if content_type == "application/octet-stream":
            binary = await request.read()
            if not binary:
                raise AgaveError(400, "Invalid message: an empty binary message.")
        elif content_type == "application/json":
            body = await _json(request)
            message = body["message"] if isinstance(body, dict) and "message" in body else body
        else:
            form = await request.post()
            value = form.get("message")
            if not isinstance(value, str):
                raise AgaveError(400, "Invalid message: the message parameter is required.")
            message = value
        if binary is None and message is None:
            raise AgaveError(400, "Invalid message: the message parameter is required.")
        env = {k: v for k, v in request.query.items() if k.lower() not in _NOT_ENV}
        step = float(self.service.actor_step_seconds)
        # Queueing and running times drawn per execution: no FIFO order among executions.
        wait, run = self._rng.uniform(0.0, 2.0) * step, self._rng.uniform(0.5, 1.5) * step

        def send(conn: sqlite3.Connection) -> dict[str, Any]:
            actor = self._access(conn, ident, user, "EXECUTE")
            now = time.time()
            worker = conn.execute(
                "SELECT id FROM agave_actors_workers WHERE actor_id = ? ORDER BY created LIMIT 1",
                (actor["id"],),
            ).fetchone()
            start = max(now, actor["ready_at"]) + wait
            execution_id = abaco_id()
            conn.execute(
                "INSERT INTO agave_actors_executions (id, actor_id, executor, worker_id, received, start_at,"
                " finish_at, message, binary, environment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    execution_id, actor["id"], user, worker[0] if worker else None, now, start, start + run,
                    None if binary is not None else json.dumps(message), binary, json.dumps(env),
                ),
            )  # fmt: skip
            return {
                "executionId": execution_id,
                "msg": "binary - omitted" if binary is not None else message,
                "_links": {
                    "self": f"{base}/actors/v2/{actor['id']}/executions/{execution_id}",
                    "owner": f"{base}/profiles/v2/{user}",
                    "messages": f"{base}/actors/v2/{actor['id']}/messages",
                },
            }

        return answer(await self.service.store.run(send), "The request was successful")

    # -- state and permissions ----------------------------------------------------------------

    async def get_state(self, request: web.Request) -> web.StreamResponse:
        user, ident = user_of(request), request.match_info["actor_id"]

        def get(conn: sqlite3.Connection) -> dict[str, Any]:
            row = self._access(conn, ident, user, "READ")
            return {"state": None if row["stateless"] else json.loads(row["state"])}

        return answer(await self.service.store.run(get), "Actor state retrieved successfully.")

    async def update_state(self, request: web.Request) -> web.StreamResponse:
        user, base, ident = user_of(request), api_base(request), request.match_info["actor_id"]
        state = await _json(request)

        def update(conn: sqlite3.Connection) -> dict[str, Any]:
            row = self._access(conn, ident, user, "UPDATE")
            if row["stateless"]:
                raise AgaveError(404, "actor is stateless.")
            conn.execute(
                "UPDATE agave_actors_actors SET state = ?, updated = ? WHERE id = ?",
                (json.dumps(state), time.time(), row["id"]),
            )
            return self._actor(self._actor_row(conn, row["id"]), base, time.time())

        return answer(await self.service.store.run(update), "State updated successfully.")

    async def get_permissions(self, request: web.Request) -> web.StreamResponse:
        user, ident = user_of(request), request.match_info["actor_id"]

        def get(conn: sqlite3.Connection) -> dict[str, str]:
            actor_id = self._access(conn, ident, user, "READ")["id"]
            return self._permissions(conn, actor_id)

        return answer(await self.service.store.run(get), "Permissions retrieved successfully.")

    @staticmethod
    def _permissions(conn: sqlite3.Connection, actor_id: str) -> dict[str, str]:
        rows = conn.execute(
            "SELECT username, level FROM agave_actors_permissions WHERE actor_id = ? ORDER BY username",
            (actor_id,),
        ).fetchall()
        return {r["username"]: r["level"] for r in rows}

    async def update_permissions(self, request: web.Request) -> web.StreamResponse:
        user, ident = user_of(request), request.match_info["actor_id"]
        body = await _json(request)
        if not isinstance(body, Mapping):
            raise AgaveError(400, "Invalid permissions: the body must be a JSON object.")
        target, level = body.get("user"), str(body.get("level", "")).upper()
        if not isinstance(target, str) or not target or level not in _RANK:
            raise AgaveError(
                400, "Invalid permissions: user and a level of NONE, READ, EXECUTE or UPDATE needed."
            )

        def update(conn: sqlite3.Connection) -> dict[str, str]:
            row = self._access(conn, ident, user, "UPDATE")
            if target == row["owner"]:
                raise AgaveError(400, "Invalid permissions: the owner's permission cannot change.")
            if level == "NONE":
                conn.execute(
                    "DELETE FROM agave_actors_permissions WHERE actor_id = ? AND username = ?",
                    (row["id"], target),
                )
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO agave_actors_permissions (actor_id, username, level)"
                    " VALUES (?, ?, ?)",
                    (row["id"], target, level),
                )
            return self._permissions(conn, row["id"])

        return answer(await self.service.store.run(update), "Permission added successfully.")

    # -- workers ------------------------------------------------------------------------------

    async def list_workers(self, request: web.Request) -> web.StreamResponse:
        user, ident = user_of(request), request.match_info["actor_id"]

        def listing(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            actor = self._access(conn, ident, user, "READ")
            rows = conn.execute(
                "SELECT * FROM agave_actors_workers WHERE actor_id = ? ORDER BY created, id", (actor["id"],)
            ).fetchall()
            now = time.time()
            return [self._worker(r, actor, now) for r in rows]

        return answer(await self.service.store.run(listing), "Workers retrieved successfully.")

    async def add_worker(self, request: web.Request) -> web.StreamResponse:
        user, ident = user_of(request), request.match_info["actor_id"]
        raw = await request.read()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise AgaveError(400, "Invalid request: the body is not valid JSON.") from None
        num = body.get("num", 1) if isinstance(body, Mapping) else 1
        if isinstance(num, str) and num.isdigit():
            num = int(num)
        if not isinstance(num, int) or isinstance(num, bool) or not 1 <= num <= 50:
            raise AgaveError(400, "Invalid request: num must be an integer from 1 to 50.")

        def add(conn: sqlite3.Connection) -> int:
            actor = self._access(conn, ident, user, "UPDATE")
            have: int = conn.execute(
                "SELECT COUNT(*) FROM agave_actors_workers WHERE actor_id = ?", (actor["id"],)
            ).fetchone()[0]
            if not actor["stateless"] and have + num > 1:
                raise AgaveError(400, "Stateful actors can only have 1 worker.")
            now = time.time()
            conn.executemany(
                "INSERT INTO agave_actors_workers (id, actor_id, created) VALUES (?, ?, ?)",
                [(abaco_id(), actor["id"], now) for _ in range(num)],
            )
            return have

        had = await self.service.store.run(add)
        return answer(None, f"Scheduled {num} new worker(s) to start. Previously, there were {had} workers.")

    async def get_worker(self, request: web.Request) -> web.StreamResponse:
        user, ident, worker_id = (
            user_of(request),
            request.match_info["actor_id"],
            request.match_info["worker_id"],
        )

        def get(conn: sqlite3.Connection) -> dict[str, Any]:
            actor = self._access(conn, ident, user, "READ")
            row = conn.execute(
                "SELECT * FROM agave_actors_workers WHERE id = ? AND actor_id = ?", (worker_id, actor["id"])
            ).fetchone()
            if row is None:
                raise AgaveError(404, f"worker not found: {worker_id}")
            return self._worker(row, actor, time.time())

        return answer(await self.service.store.run(get), "Worker retrieved successfully.")

    async def delete_worker(self, request: web.Request) -> web.StreamResponse:
        user, ident, worker_id = (
            user_of(request),
            request.match_info["actor_id"],
            request.match_info["worker_id"],
        )

        def delete(conn: sqlite3.Connection) -> None:
            actor = self._access(conn, ident, user, "UPDATE")
            gone = conn.execute(
                "DELETE FROM agave_actors_workers WHERE id = ? AND actor_id = ?", (worker_id, actor["id"])
            ).rowcount
            if not gone:
                raise AgaveError(404, f"worker not found: {worker_id}")

        await self.service.store.run(delete)
        return answer(None, "Worker scheduled to be stopped.")

    # -- nonces -------------------------------------------------------------------------------

    async def list_nonces(self, request: web.Request) -> web.StreamResponse:
        user, base, ident = user_of(request), api_base(request), request.match_info["actor_id"]

        def listing(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            actor = self._access(conn, ident, user, "UPDATE")
            rows = conn.execute(
                "SELECT * FROM agave_actors_nonces WHERE actor_id = ? ORDER BY created, id", (actor["id"],)
            ).fetchall()
            return [self._nonce(r, base) for r in rows]

        return answer(await self.service.store.run(listing), "Actor nonces retrieved successfully.")

    async def add_nonce(self, request: web.Request) -> web.StreamResponse:
        user, base, ident = user_of(request), api_base(request), request.match_info["actor_id"]
        raw = await request.read()
        try:
            body = _camel(json.loads(raw)) if raw.strip() else {}
        except (ValueError, AttributeError):
            raise AgaveError(400, "Invalid nonce description: the body must be a JSON object.") from None
        level = str(body.get("level", "EXECUTE")).upper()
        max_uses = body.get("maxUses", body.get("max_uses", -1))
        if level not in ("READ", "EXECUTE"):
            raise AgaveError(400, "Invalid nonce description: level must be READ or EXECUTE.")
        if not isinstance(max_uses, int) or isinstance(max_uses, bool) or (max_uses < 1 and max_uses != -1):
            raise AgaveError(400, "Invalid nonce description: maxUses must be a positive integer or -1.")
        description = body.get("description") or ""
        if not isinstance(description, str):
            raise AgaveError(400, "Invalid nonce description: description must be a string.")

        def add(conn: sqlite3.Connection) -> dict[str, Any]:
            actor = self._access(conn, ident, user, "READ")
            if _RANK[self._level(conn, actor["id"], user)] < _RANK[level]:
                raise AgaveError(403, f"Not authorized -- a {level} nonce needs {level} permission.")
            nonce_id = f"{TENANT}_{abaco_id()}"
            conn.execute(
                "INSERT INTO agave_actors_nonces (id, actor_id, owner, level, max_uses, remaining_uses,"
                " description, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (nonce_id, actor["id"], user, level, max_uses, max_uses, description, time.time()),
            )
            row = conn.execute("SELECT * FROM agave_actors_nonces WHERE id = ?", (nonce_id,)).fetchone()
            return self._nonce(row, base)

        return answer(await self.service.store.run(add), "Actor nonce created successfully.")

    async def get_nonce(self, request: web.Request) -> web.StreamResponse:
        user, base, ident = user_of(request), api_base(request), request.match_info["actor_id"]
        nonce_id = request.match_info["nonce_id"]

        def get(conn: sqlite3.Connection) -> dict[str, Any]:
            actor = self._access(conn, ident, user, "UPDATE")
            row = conn.execute(
                "SELECT * FROM agave_actors_nonces WHERE id = ? AND actor_id = ?", (nonce_id, actor["id"])
            ).fetchone()
            if row is None:
                raise AgaveError(404, "nonce not found.")
            return self._nonce(row, base)

        return answer(await self.service.store.run(get), "Actor nonce retrieved successfully.")

    async def delete_nonce(self, request: web.Request) -> web.StreamResponse:
        user, ident, nonce_id = (
            user_of(request),
            request.match_info["actor_id"],
            request.match_info["nonce_id"],
        )

        def delete(conn: sqlite3.Connection) -> None:
            actor = self._access(conn, ident, user, "UPDATE")
            gone = conn.execute(
                "DELETE FROM agave_actors_nonces WHERE id = ? AND actor_id = ?", (nonce_id, actor["id"])
            ).rowcount
            if not gone:
                raise AgaveError(404, "nonce not found.")

        await self.service.store.run(delete)
        return answer(None, "Actor nonce deleted successfully.")

    # -- executions ---------------------------------------------------------------------------

    async def list_executions(self, request: web.Request) -> web.StreamResponse:
        user, base, ident = user_of(request), api_base(request), request.match_info["actor_id"]

        def listing(conn: sqlite3.Connection) -> dict[str, Any]:
            actor = self._access(conn, ident, user, "READ")
            rows = conn.execute(
                "SELECT * FROM agave_actors_executions WHERE actor_id = ? ORDER BY seq", (actor["id"],)
            ).fetchall()
            now = time.time()
            runs = [self._execution(r, base, now) for r in rows]
            return {
                "actorId": actor["id"],
                "owner": actor["owner"],
                "executions": [
                    {k: run[k] for k in ("id", "status", "startTime", "messageReceivedTime", "finishTime")}
                    for run in runs
                ],
                "totalExecutions": len(runs),
                "totalCpu": sum(run["cpu"] for run in runs),
                "totalIo": sum(run["io"] for run in runs),
                "totalRuntime": sum(run["runtime"] for run in runs),
                "_links": {
                    "self": f"{base}/actors/v2/{actor['id']}/executions",
                    "owner": f"{base}/profiles/v2/{actor['owner']}",
                },
            }

        return answer(await self.service.store.run(listing), "Actor executions retrieved successfully.")

    def _execution_row(self, conn: sqlite3.Connection, request: web.Request) -> sqlite3.Row:
        actor = self._access(conn, request.match_info["actor_id"], user_of(request), "READ")
        execution_id = request.match_info["execution_id"]
        row = conn.execute(
            "SELECT * FROM agave_actors_executions WHERE id = ? AND actor_id = ?", (execution_id, actor["id"])
        ).fetchone()
        if row is None:
            raise AgaveError(404, f"Execution not found: {execution_id}.")
        return row  # type: ignore[no-any-return]

    async def get_execution(self, request: web.Request) -> web.StreamResponse:
        base = api_base(request)

        def get(conn: sqlite3.Connection) -> dict[str, Any]:
            return self._execution(self._execution_row(conn, request), base, time.time())

        return answer(await self.service.store.run(get), "Actor execution retrieved successfully.")

    async def get_logs(self, request: web.Request) -> web.StreamResponse:
        base = api_base(request)

        def logs(conn: sqlite3.Connection) -> dict[str, Any]:
            row = self._execution_row(conn, request)
            text = ""
            if self._exec_status(row, time.time()) == "COMPLETE":
                what = (
                    f"binary message: {len(row['binary'])} bytes" if row["binary"] is not None
                    else f"message: {json.loads(row['message'])}"
                )  # fmt: skip
                env = json.loads(row["environment"])
                text = (
                    f"{what}\nenvironment: {json.dumps(env, sort_keys=True)}\n"
                    f"execution {row['id']} complete\n"
                )
            link = f"{base}/actors/v2/{row['actor_id']}/executions/{row['id']}"
            return {"logs": text, "_links": {"self": f"{link}/logs", "execution": link}}

        return answer(await self.service.store.run(logs), "Logs retrieved successfully.")

    async def get_result(self, request: web.Request) -> web.StreamResponse:
        def result(conn: sqlite3.Connection) -> bytes:
            row = self._execution_row(conn, request)
            if self._exec_status(row, time.time()) != "COMPLETE":
                return b""
            if row["binary"] is not None:
                return bytes(row["binary"])
            message = json.loads(row["message"])
            return message.encode() if isinstance(message, str) else json.dumps(message).encode()

        body = await self.service.store.run(result)
        return web.Response(body=body, content_type="application/octet-stream")

    # -- aliases ------------------------------------------------------------------------------

    async def list_aliases(self, request: web.Request) -> web.StreamResponse:
        user, base = user_of(request), api_base(request)

        def listing(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT al.* FROM agave_actors_aliases al JOIN agave_actors_permissions p"
                " ON p.actor_id = al.actor_id AND p.username = ? ORDER BY al.created, al.alias",
                (user,),
            ).fetchall()
            return [self._alias(r, base) for r in rows]

        return answer(await self.service.store.run(listing), "Aliases retrieved successfully.")

    async def add_alias(self, request: web.Request) -> web.StreamResponse:
        user, base = user_of(request), api_base(request)
        given = await _json(request)
        if not isinstance(given, Mapping):
            raise AgaveError(400, "Invalid alias: the body must be a JSON object.")
        body = _camel(given)
        alias, actor_ref = body.get("alias"), body.get("actorId", body.get("actor_id"))
        if (
            not isinstance(alias, str)
            or not alias
            or len(alias) > 64
            or not all(c in _ALPHABET + "-_" for c in alias)
            or alias == "aliases"
        ):
            raise AgaveError(400, "Invalid alias: letters, digits, - and _ only.")
        if not isinstance(actor_ref, str) or not actor_ref:
            raise AgaveError(400, "Invalid alias: actorId is required.")

        def add(conn: sqlite3.Connection) -> dict[str, Any]:
            actor = self._access(conn, actor_ref, user, "UPDATE")
            taken = conn.execute(
                "SELECT 1 FROM agave_actors_aliases WHERE alias = ? UNION SELECT 1 FROM agave_actors_actors"
                " WHERE id = ?",
                (alias, alias),
            ).fetchone()
            if taken:
                raise AgaveError(400, f"Invalid alias: {alias} is already in use.")
            conn.execute(
                "INSERT INTO agave_actors_aliases (alias, actor_id, owner, created) VALUES (?, ?, ?, ?)",
                (alias, actor["id"], user, time.time()),
            )
            row = conn.execute("SELECT * FROM agave_actors_aliases WHERE alias = ?", (alias,)).fetchone()
            return self._alias(row, base)

        return answer(await self.service.store.run(add), "Actor alias created successfully.")

    def _alias_row(self, conn: sqlite3.Connection, alias: str, user: str, needed: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM agave_actors_aliases WHERE alias = ?", (alias,)).fetchone()
        if row is None or self._level(conn, row["actor_id"], user) == "NONE":
            raise AgaveError(404, f"alias not found: {alias}")
        if _RANK[self._level(conn, row["actor_id"], user)] < _RANK[needed] and row["owner"] != user:
            raise AgaveError(403, "Not authorized -- you need UPDATE permission on the alias's actor.")
        return row  # type: ignore[no-any-return]

    async def get_alias(self, request: web.Request) -> web.StreamResponse:
        user, base, alias = user_of(request), api_base(request), request.match_info["alias"]

        def get(conn: sqlite3.Connection) -> dict[str, Any]:
            return self._alias(self._alias_row(conn, alias, user, "READ"), base)

        return answer(await self.service.store.run(get), "Alias retrieved successfully.")

    async def delete_alias(self, request: web.Request) -> web.StreamResponse:
        user, alias = user_of(request), request.match_info["alias"]

        def delete(conn: sqlite3.Connection) -> None:
            self._alias_row(conn, alias, user, "UPDATE")
            conn.execute("DELETE FROM agave_actors_aliases WHERE alias = ?", (alias,))

        await self.service.store.run(delete)
        return answer(None, "Alias deleted successfully.")


async def install(service: AgaveService) -> None:
    await service.store.executescript(SCHEMA)
    actors = ActorsResource(service)
    service.query_auth["x-nonce"] = actors.authorize_nonce

    def route(method: str, path: str, handler: Handler) -> None:
        service.route(method, path, abaco(handler, service))

    # Aliases first: /actors/v2/{actor_id} would take "aliases" for an actor id.
    route("GET", "/actors/v2/aliases", actors.list_aliases)
    route("POST", "/actors/v2/aliases", actors.add_alias)
    route("GET", "/actors/v2/aliases/{alias}", actors.get_alias)
    route("DELETE", "/actors/v2/aliases/{alias}", actors.delete_alias)
    route("GET", "/actors/v2", actors.list_actors)
    route("POST", "/actors/v2", actors.add_actor)
    route("GET", "/actors/v2/{actor_id}", actors.get_actor)
    route("PUT", "/actors/v2/{actor_id}", actors.update_actor)
    route("DELETE", "/actors/v2/{actor_id}", actors.delete_actor)
    route("GET", "/actors/v2/{actor_id}/messages", actors.get_messages)
    route("POST", "/actors/v2/{actor_id}/messages", actors.send_message)
    route("DELETE", "/actors/v2/{actor_id}/messages", actors.delete_messages)
    route("GET", "/actors/v2/{actor_id}/state", actors.get_state)
    route("POST", "/actors/v2/{actor_id}/state", actors.update_state)
    route("GET", "/actors/v2/{actor_id}/permissions", actors.get_permissions)
    route("POST", "/actors/v2/{actor_id}/permissions", actors.update_permissions)
    route("GET", "/actors/v2/{actor_id}/workers", actors.list_workers)
    route("POST", "/actors/v2/{actor_id}/workers", actors.add_worker)
    route("GET", "/actors/v2/{actor_id}/workers/{worker_id}", actors.get_worker)
    route("DELETE", "/actors/v2/{actor_id}/workers/{worker_id}", actors.delete_worker)
    route("GET", "/actors/v2/{actor_id}/nonces", actors.list_nonces)
    route("POST", "/actors/v2/{actor_id}/nonces", actors.add_nonce)
    route("GET", "/actors/v2/{actor_id}/nonces/{nonce_id}", actors.get_nonce)
    route("DELETE", "/actors/v2/{actor_id}/nonces/{nonce_id}", actors.delete_nonce)
    route("GET", "/actors/v2/{actor_id}/executions", actors.list_executions)
    route("GET", "/actors/v2/{actor_id}/executions/{execution_id}", actors.get_execution)
    route("GET", "/actors/v2/{actor_id}/executions/{execution_id}/logs", actors.get_logs)
    route("GET", "/actors/v2/{actor_id}/executions/{execution_id}/results", actors.get_result)
