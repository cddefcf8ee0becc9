"""Notifications of the embedded Agave: subscriptions (CRUD, agave.md §6.6) that FIRE.

A subscription names a watched object (``associatedUuid``), an ``event`` (a job status
such as ``FINISHED``, or ``*`` for every one), a ``url`` (an http(s) webhook, which may
carry URL macros, or an email address), ``persistent`` and a retry ``policy``. The
answers: 201 on add, 200 on get/update/delete, 404 for another user's subscription.

Firing: every status a job enters (jobs.py hands each transaction's events to
:meth:`Notifier.on_events`) is matched against the job's ACTIVE subscriptions, and the
``notifications`` list of a job request becomes subscriptions on that job when it is
submitted (as the real service does). A match POSTs the job's JSON (its ``status`` the
event's) to the URL with the macros expanded (:data:`MACROS`, values percent-encoded).
A non-persistent subscription fires once, then is ``COMPLETE`` (``FAILED`` if its
delivery never succeeded). Every attempt is recorded: the subscription carries
``attempts``, ``lastSent``, ``responseCode`` and ``success``, and
``GET /notifications/v2/{uuid}/attempts`` lists them.

Deliveries never touch the store thread: one dispatcher matches events in order, and at
most ``service.notification_concurrency`` workers send them from the event loop, each
with ``service.notification_timeout``. A failed delivery (a connection error, a timeout
or a non-2xx answer) is retried per its policy (``NONE``, ``IMMEDIATE``, ``DELAYED``
every ``retryRate`` s, ``EXPONENTIAL`` doubling it; the first retry waits ``retryDelay``
s more), at most ``retryLimit`` times and
never more than ``service.notification_max_retries``. Deliveries of one job may arrive
out of order, as with the real service. Email addresses are stored but not mailed.

SSRF guard: this server runs on users' machines, so webhooks go only to loopback hosts
(``localhost``, 127.0.0.0/8, ::1) and redirects are not followed, unless
``service.notifications_allow_remote`` is set; a refused delivery is recorded as a failed
attempt. Jobs are read lazily, so while any ACTIVE subscription watches an unfinished job,
a ticker moves due jobs on (:func:`.jobs.advance_due`) so that events fire without
anyone polling; with nothing to watch it stops and the platform stays idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import json
import logging
import re
import sqlite3
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from yarl import URL

from . import jobs
from .wire import (
    AgaveError,
    agave_uuid,
    api_base,
    iso_millis,
    json_body,
    matches_search,
    newest_first,
    ok,
    page_args,
    rlike_window,
    search_terms,
    split_rlike,
    truthy,
    user_of,
    window,
)

if TYPE_CHECKING:
    from .service import AgaveService

__all__ = ["MACROS", "Notifier", "install"]

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS agave_notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, owner TEXT NOT NULL,
    url TEXT NOT NULL, associated_uuid TEXT NOT NULL, event TEXT NOT NULL,
    persistent INTEGER NOT NULL, policy TEXT NOT NULL, status TEXT NOT NULL,
    created REAL NOT NULL, last_updated REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    last_sent REAL, response_code INTEGER, success INTEGER);
CREATE INDEX IF NOT EXISTS agave_notifications_uuid ON agave_notifications (associated_uuid, status);
CREATE INDEX IF NOT EXISTS agave_notifications_owner ON agave_notifications (owner, seq);
CREATE TABLE IF NOT EXISTS agave_notifications_attempts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, notification_id TEXT NOT NULL,
    url TEXT NOT NULL, event TEXT NOT NULL, associated_uuid TEXT NOT NULL,
    attempt_number INTEGER NOT NULL, start_time REAL NOT NULL, end_time REAL NOT NULL,
    response_code INTEGER, response_message TEXT NOT NULL, success INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS agave_notifications_attempts_of
    ON agave_notifications_attempts (notification_id, seq);
"""

STRATEGIES = ("NONE", "IMMEDIATE", "DELAYED", "EXPONENTIAL")
DEFAULT_POLICY: dict[str, Any] = {
    "retryStrategy": "DELAYED", "retryLimit": 5, "retryRate": 5, "retryDelay": 0, "saveOnFailure": True,
}  # fmt: skip
MAX_RETRY_LIMIT = 1440  # the real service's cap on retryLimit
SEARCH_FIELDS = ("id", "url", "event", "associatedUuid", "persistent", "status", "owner", "created",
                 "lastUpdated", "lastSent", "responseCode", "success", "attempts")  # fmt: skip

# The job macros of Agave's "URL Macros" page: name -> how its value is read from
# (the job's JSON, the event). Unknown ${NAMES} are left as they are.
MACROS: dict[str, str] = {
    "UUID": "id", "JOB_ID": "id", "JOB_NAME": "name", "EVENT": "event", "STATUS": "event",
    "JOB_STATUS": "event", "LAST_UPDATED": "lastUpdated", "OWNER": "owner", "APP_ID": "appId",
    "EXECUTION_SYSTEM": "executionSystem", "QUEUE": "batchQueue", "BATCH_QUEUE": "batchQueue",
    "LOCAL_JOB_ID": "localId", "ARCHIVE_SYSTEM": "archiveSystem", "ARCHIVE_PATH": "archivePath",
    "ARCHIVE": "archive", "JOB_ERROR": "error", "MESSAGE": "message", "SUBMIT_TIME": "submitTime",
    "START_TIME": "startTime", "END_TIME": "endTime", "CREATED": "created",
}  # fmt: skip
_MACRO = re.compile(r"\$\{([A-Z_]+)\}")
_EMAIL = re.compile(r"^[^@\s/]+@[^@\s/]+\.[^@\s/]+$")
_JOB_SUFFIX = "-0001-007"
_ERROR_STATUSES = frozenset({"FAILED", "KILLED", "STOPPED", "ARCHIVING_FAILED"})


def expand(url: str, job: Mapping[str, Any], event: str) -> str:
    """``url`` with its ``${MACROS}`` replaced by the job's values (percent-encoded)."""

    def value(match: re.Match[str]) -> str:
        key = MACROS.get(match.group(1))
        if key is None:
            return match.group(0)
        if key == "event":
            raw: Any = event
        elif key == "error":
            raw = job.get("message") if event in _ERROR_STATUSES else ""
        else:
            raw = job.get(key)
        if raw is None:
            raw = ""
        elif isinstance(raw, bool):
            raw = "true" if raw else "false"
        return quote(str(raw), safe="")

    return _MACRO.sub(value, url)


def is_webhook(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# -- requests ------------------------------------------------------------------------------------


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return truthy(value)
    raise AgaveError(400, f"{name} must be a boolean")


def _policy(value: Any) -> dict[str, Any]:
    if value is None:
        return dict(DEFAULT_POLICY)
    if not isinstance(value, dict):
        raise AgaveError(400, "policy must be a JSON object")
    policy = dict(DEFAULT_POLICY)
    strategy = value.get("retryStrategy", policy["retryStrategy"])
    if not isinstance(strategy, str) or strategy.upper() not in STRATEGIES:
        raise AgaveError(400, f"Invalid retryStrategy {strategy!r}: one of {', '.join(STRATEGIES)}")
    policy["retryStrategy"] = strategy.upper()
    for key, top in (("retryLimit", MAX_RETRY_LIMIT), ("retryRate", 86400), ("retryDelay", 86400)):
        number = value.get(key, policy[key])
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= top:
            raise AgaveError(400, f"{key} must be an integer from 0 to {top}")
        policy[key] = number
    policy["saveOnFailure"] = _bool("saveOnFailure", value.get("saveOnFailure", True))
    return policy


def _check_request(body: Any, old: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A NotificationRequest checked (an update may leave out what it keeps); 400s name the field."""
    if not isinstance(body, dict):
        raise AgaveError(400, "Notification request must be a JSON object")
    merged = {**(old or {}), **body}
    url, event, uuid = merged.get("url"), merged.get("event"), merged.get("associatedUuid")
    if not isinstance(url, str) or not url.strip():
        raise AgaveError(400, "Please specify a valid url or email address for the notification")
    url = url.strip()
    if is_webhook(url):
        try:
            parsed = URL(_MACRO.sub("x", url))
        except ValueError:
            raise AgaveError(400, f"Invalid notification url {url!r}") from None
        if not parsed.host:
            raise AgaveError(400, f"Invalid notification url {url!r}: no host")
    elif not _EMAIL.match(url):
        raise AgaveError(400, f"Invalid notification url {url!r}: an http(s) URL or an email address")
    if not isinstance(event, str) or not event.strip():
        raise AgaveError(400, "Please specify an event to which the notification should respond")
    if not isinstance(uuid, str) or not uuid.strip():
        raise AgaveError(400, "Please specify the associatedUuid of the resource to watch")
    return {
        "url": url,
        "event": event.strip().upper() if event.strip() != "*" else "*",
        "associatedUuid": uuid.strip(),
        "persistent": _bool("persistent", merged.get("persistent", False)),
        "policy": _policy(merged.get("policy")),
    }


def _render(row: sqlite3.Row, base: str) -> dict[str, Any]:
    href = f"{base}/notifications/v2/{row['id']}"
    links: dict[str, Any] = {
        "self": {"href": href},
        "attempts": {"href": f"{href}/attempts"},
        "profile": {"href": f"{base}/profiles/v2/{row['owner']}"},
    }
    if row["associated_uuid"].endswith(_JOB_SUFFIX):
        links["job"] = {"href": f"{base}/jobs/v2/{row['associated_uuid']}"}
    return {
        "id": row["id"],
        "uuid": row["id"],
        "owner": row["owner"],
        "url": row["url"],
        "associatedUuid": row["associated_uuid"],
        "event": row["event"],
        "persistent": bool(row["persistent"]),
        "status": row["status"],
        "policy": json.loads(row["policy"]),
        "attempts": row["attempts"],
        "lastSent": None if row["last_sent"] is None else iso_millis(row["last_sent"]),
        "responseCode": row["response_code"],
        "success": None if row["success"] is None else bool(row["success"]),
        "created": iso_millis(row["created"]),
        "lastUpdated": iso_millis(row["last_updated"]),
        "_links": links,
    }


def _attempt(row: sqlite3.Row, base: str) -> dict[str, Any]:
    href = f"{base}/notifications/v2/{row['notification_id']}"
    return {
        "id": row["id"],
        "url": row["url"],
        "event": row["event"],
        "associatedUuid": row["associated_uuid"],
        "attemptNumber": row["attempt_number"],
        "startTime": iso_millis(row["start_time"]),
        "endTime": iso_millis(row["end_time"]),
        "response": {"code": row["response_code"], "message": row["response_message"]},
        "success": bool(row["success"]),
        "_links": {"self": {"href": f"{href}/attempts/{row['id']}"}, "notification": {"href": href}},
    }


def _insert(conn: sqlite3.Connection, owner: str, request: Mapping[str, Any]) -> sqlite3.Row:
    now = time.time()
    nid = agave_uuid("notification")
    conn.execute(
        "INSERT INTO agave_notifications (id, owner, url, associated_uuid, event, persistent, policy,"
        " status, created, last_updated) VALUES (?, ?, ?, ?, ?, ?, ?, 'ACTIVE', ?, ?)",
        (
            nid, owner, request["url"], request["associatedUuid"], request["event"],
            int(request["persistent"]), json.dumps(request["policy"]), now, now,
        ),
    )  # fmt: skip
    row: sqlite3.Row = conn.execute("SELECT * FROM agave_notifications WHERE id = ?", (nid,)).fetchone()
    return row


def _owned(conn: sqlite3.Connection, nid: str, user: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM agave_notifications WHERE id = ?", (nid,)).fetchone()
    if row is None or row["owner"] != user:
        raise AgaveError(404, f"No notification found with uuid {nid}")
    return row  # type: ignore[no-any-return]


def _check_watched(conn: sqlite3.Connection, uuid: str, user: str) -> None:
    """A job uuid must name a job the user can see (other kinds are taken as given)."""
    if not uuid.endswith(_JOB_SUFFIX):
        return
    row = conn.execute(
        "SELECT owner FROM agave_jobs_jobs WHERE id = ? AND visible = 1 AND (owner = ? OR id IN"
        " (SELECT job_id FROM agave_jobs_pems WHERE username = ? AND read = 1))",
        (uuid, user, user),
    ).fetchone()
    if row is None:
        raise AgaveError(400, f"No resource found for associatedUuid {uuid}")


# -- firing --------------------------------------------------------------------------------------


class _Delivery:
    __slots__ = ("attempt", "body", "event", "notification_id", "persistent", "policy", "url", "uuid")

    def __init__(
        self, notification_id: str, url: str, event: str, uuid: str, body: bytes,
        policy: dict[str, Any], persistent: bool,
    ):  # fmt: skip
        self.notification_id, self.url, self.event, self.uuid = notification_id, url, event, uuid
        self.body, self.policy, self.persistent, self.attempt = body, policy, persistent, 1


class Notifier:
    """Matches job events with subscriptions and delivers them (one per embedded service)."""

    def __init__(self, service: AgaveService):
        self.service = service
        self._events: asyncio.Queue[list[jobs.JobEvent]] = asyncio.Queue()
        self._deliveries: asyncio.Queue[_Delivery] = asyncio.Queue()
        self._dispatcher: asyncio.Task[None] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._ticker: asyncio.Task[None] | None = None
        self._woken = False
        self._nudge = asyncio.Event()  # cuts the ticker's sleep short when something new is watched
        self._retries: set[asyncio.TimerHandle] = set()
        self._http: aiohttp.ClientSession | None = None
        self._closed = False

    # -- hearing events ----------------------------------------------------------------------

    def on_events(self, events: list[jobs.JobEvent]) -> None:
        if self._closed:
            return
        self._events.put_nowait(events)
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.ensure_future(self._dispatch())

    def wake(self) -> None:
        """Something may now be watched: keep (or start) the ticker."""
        if self._closed:
            return
        self._woken = True
        self._nudge.set()
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.ensure_future(self._tick())

    async def _tick(self) -> None:
        """While an ACTIVE subscription watches an unfinished job, move due jobs on, sleeping
        until the earliest watched job's next step (at most 5 s; a new subscription wakes it)."""
        while not self._closed:
            self._woken = False
            self._nudge.clear()
            try:
                due = await self.service.store.run(self._next_watched)
                if due is None and not self._woken:
                    return
                await jobs.advance_due(self.service)
            except Exception:
                log.exception("the notifications ticker failed; it stops")
                return
            delay = 0.005 if due is None else min(max(due - time.time(), 0.005), 5.0)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._nudge.wait(), delay)

    @staticmethod
    def _next_watched(conn: sqlite3.Connection) -> float | None:
        """When the next step of a watched job is due (None: nothing is watched)."""
        row = conn.execute(
            "SELECT MIN(j.next_at) FROM agave_notifications n"
            " JOIN agave_jobs_jobs j ON j.id = n.associated_uuid"
            " WHERE n.status = 'ACTIVE' AND j.next_at IS NOT NULL"
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    async def _dispatch(self) -> None:
        while not self._events.empty():
            batch = self._events.get_nowait()
            while not self._events.empty() and len(batch) < 1000:
                batch = batch + self._events.get_nowait()
            try:
                found = await self.service.store.run(functools.partial(self._match, events=batch))
            except Exception:
                log.exception("matching job events with notifications failed")
                continue
            armed, deliveries = found
            if armed:
                self.wake()
            for delivery in deliveries:
                self._deliveries.put_nowait(delivery)
            self._start_workers()

    def _match(self, conn: sqlite3.Connection, events: list[jobs.JobEvent]) -> tuple[bool, list[_Delivery]]:
        """The deliveries the events cause, in event order; non-persistent subscriptions that
        fire are COMPLETE from now on. Job requests' ``notifications`` become subscriptions
        at the job's PENDING event. Whether a new subscription was made is returned too."""
        armed = False
        deliveries: list[_Delivery] = []
        base = self.service.base_url
        job_cache: dict[str, dict[str, Any] | None] = {}

        def job_of(job_id: str) -> dict[str, Any] | None:
            # Rendered only for a job that has something to fire (most events have nothing).
            if job_id not in job_cache:
                row = conn.execute("SELECT * FROM agave_jobs_jobs WHERE id = ?", (job_id,)).fetchone()
                job_cache[job_id] = None if row is None else jobs.job_json(self.service, row, base)
            return job_cache[job_id]

        for event in events:
            job_id, status = str(event["id"]), str(event["status"])
            if status == "PENDING":
                requested = conn.execute(
                    "SELECT owner, json_extract(doc, '$.notifications') FROM agave_jobs_jobs WHERE id = ?",
                    (job_id,),
                ).fetchone()
                for wanted in json.loads(requested[1] or "[]") if requested is not None else []:
                    try:
                        request = _check_request(dict(wanted, associatedUuid=job_id))
                    except AgaveError as exc:
                        log.warning("job %s: notification %r not subscribed: %s", job_id, wanted, exc.message)
                        continue
                    _insert(conn, str(requested[0]), request)
                    armed = True
            subscriptions = conn.execute(
                "SELECT * FROM agave_notifications WHERE associated_uuid = ? AND status = 'ACTIVE'"
                " AND (event = ? OR event = '*') ORDER BY seq",
                (job_id, status),
            ).fetchall()
            if not subscriptions:
                continue
            job = job_of(job_id)
            if job is None:
                continue
            body = json.dumps(
                {**job, "status": status, "lastUpdated": iso_millis(float(event["at"]))}
            ).encode()
            values = {**job, "lastUpdated": iso_millis(float(event["at"]))}
            for sub in subscriptions:
                if not sub["persistent"]:
                    conn.execute(
                        "UPDATE agave_notifications SET status = 'COMPLETE', last_updated = ? WHERE id = ?",
                        (time.time(), sub["id"]),
                    )
                if not is_webhook(sub["url"]):
                    continue  # email: stored, not mailed by the embedded platform
                deliveries.append(
                    _Delivery(
                        sub["id"], expand(sub["url"], values, status), status, job_id, body,
                        json.loads(sub["policy"]), bool(sub["persistent"]),
                    )
                )  # fmt: skip
        return armed, deliveries

    # -- delivering ----------------------------------------------------------------------------

    def _start_workers(self) -> None:
        self._workers = [w for w in self._workers if not w.done()]
        wanted = max(1, int(self.service.notification_concurrency))
        while len(self._workers) < wanted and len(self._workers) < self._deliveries.qsize():
            self._workers.append(asyncio.ensure_future(self._work()))

    async def _work(self) -> None:
        while not self._closed and not self._deliveries.empty():
            delivery = self._deliveries.get_nowait()
            try:
                await self._deliver(delivery)
            except Exception:
                log.exception("delivering notification %s failed", delivery.notification_id)

    async def _deliver(self, delivery: _Delivery) -> None:
        started = time.time()
        code: int | None = None
        target = URL(delivery.url)
        if not self.service.notifications_allow_remote and not _loopback(target.host):
            message, success, retry = (
                f"refused: {target.host} is not a loopback host and remote delivery is off", False, False
            )  # fmt: skip
        else:
            if self._http is None:
                self._http = aiohttp.ClientSession()
            try:
                async with self._http.post(
                    delivery.url, data=delivery.body, allow_redirects=False,
                    headers={"Content-Type": "application/json", "User-Agent": "Agave-Notifications/2.2"},
                    timeout=aiohttp.ClientTimeout(total=float(self.service.notification_timeout)),
                ) as response:  # fmt: skip
                    await response.read()
                    code, message = response.status, response.reason or ""
                    success = 200 <= response.status < 300
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                message, success = f"{type(exc).__name__}: {exc}"[:500], False
            retry = not success
        policy = delivery.policy
        limit = min(int(policy.get("retryLimit", 0)), int(self.service.notification_max_retries))
        retries_left = retry and policy.get("retryStrategy") != "NONE" and delivery.attempt <= limit
        final = success or not retries_left
        await self.service.store.run(
            lambda conn: self._record(conn, delivery, started, time.time(), code, message, success, final)
        )
        if retries_left and not self._closed:
            rate = float(policy.get("retryRate", 0))
            strategy = policy.get("retryStrategy")
            delay = 0.0 if strategy == "IMMEDIATE" else rate
            if strategy == "EXPONENTIAL":
                delay = rate * 2 ** (delivery.attempt - 1)
            if delivery.attempt == 1:  # retryDelay: the wait after the first attempt, before retrying
                delay += float(policy.get("retryDelay", 0))
            delivery.attempt += 1
            loop = asyncio.get_running_loop()
            handle: asyncio.TimerHandle

            def again() -> None:
                self._retries.discard(handle)
                if not self._closed:
                    self._deliveries.put_nowait(delivery)
                    self._start_workers()

            handle = loop.call_later(min(delay, 3600.0), again)
            self._retries.add(handle)

    @staticmethod
    def _record(
        conn: sqlite3.Connection, delivery: _Delivery, started: float, ended: float,
        code: int | None, message: str, success: bool, final: bool,
    ) -> None:  # fmt: skip
        conn.execute(
            "INSERT INTO agave_notifications_attempts (id, notification_id, url, event, associated_uuid,"
            " attempt_number, start_time, end_time, response_code, response_message, success)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                agave_uuid("notification"), delivery.notification_id, delivery.url, delivery.event,
                delivery.uuid, delivery.attempt, started, ended, code, message, int(success),
            ),
        )  # fmt: skip
        failed = final and not success and not delivery.persistent
        conn.execute(
            "UPDATE agave_notifications SET attempts = attempts + 1, last_sent = ?, response_code = ?,"
            " success = ?, status = CASE WHEN ? THEN 'FAILED' ELSE status END WHERE id = ?",
            (ended, code, int(success), int(failed), delivery.notification_id),
        )

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until nothing is being matched, sent or waiting for a retry (for tests)."""
        deadline = time.monotonic() + timeout
        while (
            (self._dispatcher is not None and not self._dispatcher.done())
            or any(not w.done() for w in self._workers)
            or self._retries
            or not self._events.empty()
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("notification deliveries still running")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        self._closed = True
        for handle in self._retries:
            handle.cancel()
        self._retries.clear()
        tasks = [t for t in (self._dispatcher, self._ticker, *self._workers) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._http is not None:
            await self._http.close()


# -- the handlers ---------------------------------------------------------------------------------


class NotificationsResource:
    def __init__(self, service: AgaveService, notifier: Notifier):
        self.service = service
        self.notifier = notifier

    async def add(self, request: web.Request) -> web.StreamResponse:
        user, base = user_of(request), api_base(request)
        wanted = _check_request(await _request_body(request))

        def create(conn: sqlite3.Connection) -> dict[str, Any]:
            _check_watched(conn, wanted["associatedUuid"], user)
            return _render(_insert(conn, user, wanted), base)

        created = await self.service.store.run(create)
        self.notifier.wake()
        return ok(request, created, status=201)

    async def listing(self, request: web.Request) -> web.StreamResponse:
        user, base = user_of(request), api_base(request)
        limit, offset = page_args(request)
        terms, patterns = split_rlike(search_terms(request.query, SEARCH_FIELDS))
        associated = request.query.get("associatedUuid")
        sql, args = "SELECT * FROM agave_notifications WHERE owner = ?", [user]
        if associated:
            sql += " AND associated_uuid = ?"
            args.append(associated)

        def matching(rows: Iterable[sqlite3.Row]) -> Iterator[dict[str, Any]]:
            return (doc for doc in (_render(row, base) for row in rows) if matches_search(doc, terms))

        if patterns:
            # rlike terms are matched off the store's thread, a chunk of rows at a time.
            def candidates(rows: list[sqlite3.Row]) -> list[tuple[Mapping[str, Any], dict[str, Any]]]:
                return [(doc, doc) for doc in matching(rows)]

            chunks = newest_first(self.service.store.run, sql, args, candidates)
            return ok(request, await rlike_window(chunks, patterns, offset, limit))

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            return window(matching(conn.execute(sql + " ORDER BY seq DESC", args)), offset, limit)

        return ok(request, await self.service.store.run(read))

    async def get(self, request: web.Request) -> web.StreamResponse:
        nid, user, base = request.match_info["uuid"], user_of(request), api_base(request)
        return ok(request, await self.service.store.run(lambda conn: _render(_owned(conn, nid, user), base)))

    async def update(self, request: web.Request) -> web.StreamResponse:
        nid, user, base = request.match_info["uuid"], user_of(request), api_base(request)
        body = await _request_body(request)

        def change(conn: sqlite3.Connection) -> dict[str, Any]:
            old = _render(_owned(conn, nid, user), base)
            wanted = _check_request(body, old)
            _check_watched(conn, wanted["associatedUuid"], user)
            conn.execute(
                "UPDATE agave_notifications SET url = ?, associated_uuid = ?, event = ?, persistent = ?,"
                " policy = ?, status = 'ACTIVE', last_updated = ? WHERE id = ?",
                (
                    wanted["url"], wanted["associatedUuid"], wanted["event"], int(wanted["persistent"]),
                    json.dumps(wanted["policy"]), time.time(), nid,
                ),
            )  # fmt: skip
            return _render(_owned(conn, nid, user), base)

        changed = await self.service.store.run(change)
        self.notifier.wake()
        return ok(request, changed)

    async def delete(self, request: web.Request) -> web.StreamResponse:
        nid, user = request.match_info["uuid"], user_of(request)

        def remove(conn: sqlite3.Connection) -> None:
            _owned(conn, nid, user)
            conn.execute("DELETE FROM agave_notifications WHERE id = ?", (nid,))
            conn.execute("DELETE FROM agave_notifications_attempts WHERE notification_id = ?", (nid,))

        await self.service.store.run(remove)
        return ok(request, None, message=f"Notification {nid} deleted")

    async def attempts(self, request: web.Request) -> web.StreamResponse:
        nid, user, base = request.match_info["uuid"], user_of(request), api_base(request)
        limit, offset = page_args(request)
        one = request.match_info.get("attempt_id")

        def read(conn: sqlite3.Connection) -> Any:
            _owned(conn, nid, user)
            if one is not None:
                row = conn.execute(
                    "SELECT * FROM agave_notifications_attempts WHERE notification_id = ? AND id = ?",
                    (nid, one),
                ).fetchone()
                if row is None:
                    raise AgaveError(404, f"No attempt found with id {one} for notification {nid}")
                return _attempt(row, base)
            rows = conn.execute(
                "SELECT * FROM agave_notifications_attempts WHERE notification_id = ? ORDER BY seq"
                " LIMIT ? OFFSET ?",
                (nid, limit, offset),
            ).fetchall()
            return [_attempt(r, base) for r in rows]

        return ok(request, await self.service.store.run(read))


async def _request_body(request: web.Request) -> Any:
    """A JSON body, or (as the real service takes) a form or a multipart part holding the JSON."""
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for value in form.values():
            raw = value.file.read() if isinstance(value, web.FileField) else None
            if raw is not None:
                try:
                    return json.loads(raw)
                except ValueError:
                    raise AgaveError(400, "Malformed JSON in the uploaded notification") from None
        return {k: v for k, v in form.items() if isinstance(v, str)}
    return await json_body(request)


_NOTIFIERS: weakref.WeakKeyDictionary[AgaveService, Notifier] = weakref.WeakKeyDictionary()


def notifier_of(service: AgaveService) -> Notifier:
    """The service's :class:`Notifier` (``await notifier_of(platform.agave).idle()`` in tests)."""
    return _NOTIFIERS[service]


async def install(service: AgaveService) -> None:
    await service.store.executescript(SCHEMA)
    notifier = Notifier(service)
    jobs.on_transitions(service, notifier.on_events)
    service.on_close(notifier.close)
    resource = NotificationsResource(service, notifier)
    _NOTIFIERS[service] = notifier
    route = service.route
    route("GET", "/notifications/v2/", resource.listing)
    route("POST", "/notifications/v2/", resource.add)
    route("GET", "/notifications/v2/{uuid}", resource.get)
    route("POST", "/notifications/v2/{uuid}", resource.update)
    route("DELETE", "/notifications/v2/{uuid}", resource.delete)
    route("GET", "/notifications/v2/{uuid}/attempts", resource.attempts)
    route("GET", "/notifications/v2/{uuid}/attempts/{attempt_id}", resource.attempts)
    notifier.wake()  # a file-backed platform may have subscriptions on unfinished jobs
