"""Jobs of the embedded Agave: submit, the status machine, stop/resubmit, history, pems, outputs.

Faithful to agave.md §6.4. A submit is checked against its app (:func:`.apps.lookup_app`:
known and readable, every input and parameter one the app declares, required ones
given or defaulted) and answers 201 with the job ``PENDING``. The job then walks the
server's status machine, one step every ``service.job_step_seconds``::

    PENDING → PROCESSING_INPUTS → STAGING_INPUTS → STAGED → STAGING_JOB → SUBMITTING
            → QUEUED → RUNNING → CLEANING_UP → [ARCHIVING → ARCHIVING_FINISHED →] FINISHED

or, for a share ``service.job_failure_rate`` of jobs (drawn at submission from the
platform's seed), ``RUNNING → FAILED``. The lifecycle is computed lazily, as saltant's
embedded service does: each job stores when its next step is due (``next_at``) and
every jobs request first moves the due ones on, writing one history entry per
transition at the time it was due. So a job read after a pause has moved on by as many
steps as fitted in it, and a test is deterministic without a timer.

When a job finishes (or fails) its outputs are written under its ``outputPath`` on
its archive system through the files module (:func:`.files.put_file`): ``<name>.out``,
``<name>.err`` and the wc app's ``wc_out.txt``; ``outputs/listings`` and
``outputs/media`` serve them (:func:`.files.listing_for`, :func:`.files.media_response`).

``stop``: a job not yet queued (PENDING…SUBMITTING) or archiving → STOPPED; a queued or
running job → KILLED (its remote process is killed); a finished job is left unchanged
(200). ``resubmit``: 202 and a NEW job copying the original request. ``DELETE`` hides.
Rights: the owner has all; ``/pems`` grants READ (see, poll, outputs) and WRITE (stop,
resubmit, delete, grant). Submitted ``notifications`` are stored and shown; the
notifications module fires them (and subscriptions): every status a job enters is one
event, handed to the callbacks registered with :func:`on_transitions` once its
transaction is done; :func:`advance_due` moves due jobs on without a request.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
import re
import sqlite3
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

from aiohttp import web

from .. import keyset
from . import files
from .apps import lookup_app
from .grants import grantee
from .systems import default_storage_system, lookup_system
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
    positive_int,
    rlike_window,
    search_terms,
    split_rlike,
    truthy,
    user_of,
    window,
)

if TYPE_CHECKING:
    from .service import AgaveService

__all__ = ["JobEvent", "advance_due", "install", "job_json", "on_transitions"]

log = logging.getLogger(__name__)
T = TypeVar("T")
# One status a job entered: {"id": job id, "status": the status, "at": epoch seconds}.
JobEvent = dict[str, Any]

SCHEMA = """
CREATE TABLE IF NOT EXISTS agave_jobs_jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, owner TEXT NOT NULL,
    name TEXT NOT NULL, app_id TEXT NOT NULL, status TEXT NOT NULL, message TEXT NOT NULL,
    created REAL NOT NULL, last_updated REAL NOT NULL, submit_time REAL, start_time REAL,
    end_time REAL, timeline TEXT NOT NULL, step_index INTEGER NOT NULL, step REAL NOT NULL,
    next_at REAL, visible INTEGER NOT NULL DEFAULT 1, output_system TEXT NOT NULL,
    request TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS agave_jobs_jobs_owner ON agave_jobs_jobs (owner, visible, seq);
CREATE INDEX IF NOT EXISTS agave_jobs_jobs_due ON agave_jobs_jobs (next_at) WHERE next_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS agave_jobs_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, status TEXT NOT NULL,
    created REAL NOT NULL, created_by TEXT NOT NULL, description TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS agave_jobs_history_job ON agave_jobs_history (job_id, seq);
CREATE TABLE IF NOT EXISTS agave_jobs_pems (
    job_id TEXT NOT NULL, username TEXT NOT NULL, read INTEGER NOT NULL, write INTEGER NOT NULL,
    PRIMARY KEY (job_id, username));
CREATE INDEX IF NOT EXISTS agave_jobs_pems_user ON agave_jobs_pems (username, job_id);
"""

_QUEUEING = ("PENDING", "PROCESSING_INPUTS", "STAGING_INPUTS", "STAGED", "STAGING_JOB", "SUBMITTING")
_RUN = (*_QUEUEING, "QUEUED", "RUNNING")
TIMELINES: dict[str, tuple[str, ...]] = {
    "archive": (*_RUN, "CLEANING_UP", "ARCHIVING", "ARCHIVING_FINISHED", "FINISHED"),
    "plain": (*_RUN, "CLEANING_UP", "FINISHED"),
    "fail": (*_RUN, "FAILED"),
}
TERMINAL = frozenset({"FINISHED", "FAILED", "STOPPED", "KILLED"})
# stop on these ends STOPPED (nothing runs remotely yet, or only the archiving does).
_STOPPABLE = frozenset({*_QUEUEING, "ARCHIVING", "ARCHIVING_FINISHED", "ARCHIVING_FAILED"})
_DESCRIPTIONS = {
    "PENDING": "Job accepted and queued for submission.",
    "PROCESSING_INPUTS": "Attempt 1 to stage job inputs",
    "STAGING_INPUTS": "Identifying input files for staging",
    "STAGED": "Job inputs staged to execution system",
    "STAGING_JOB": "Staging runtime assets to execution system",
    "SUBMITTING": "Preparing job for submission.",
    "QUEUED": "Job queued to execution system queue",
    "RUNNING": "Job started running",
    "CLEANING_UP": "Job completed execution",
    "ARCHIVING": "Beginning to archive output.",
    "ARCHIVING_FINISHED": "Job archiving completed successfully.",
    "FINISHED": "Job completed successfully.",
    "FAILED": "Job failed: the application exited with status 1",
}

# The JSON fields a job can be searched on (agave.md §4).
SEARCH_FIELDS = (
    "appId", "archive", "archivePath", "archiveSystem", "batchQueue", "created", "endTime",
    "executionSystem", "id", "inputs", "lastModified", "lastUpdated", "localId", "maxRunTime",
    "memoryPerNode", "name", "nodeCount", "outputPath", "owner", "parameters",
    "processorsPerNode", "retries", "startTime", "status", "submitTime", "visible",
)  # fmt: skip
# Search terms answered by SQL over indexed columns; the others are matched in Python.
_TEXT_COLUMNS = {"id": "id", "name": "name", "owner": "owner", "appId": "app_id", "status": "status"}
_DATE_COLUMNS = {
    "created": "created",
    "lastModified": "last_updated",
    "lastUpdated": "last_updated",
    "submitTime": "submit_time",
    "startTime": "start_time",
    "endTime": "end_time",
}
_PERMISSIONS = {
    "READ": (True, False),
    "WRITE": (False, True),
    "READ_WRITE": (True, True),
    "ALL": (True, True),
    "READ_EXECUTE": (True, False),
    "WRITE_EXECUTE": (False, True),
    "EXECUTE": (False, False),
    "NONE": (False, False),
    "": (False, False),
}
_MAX_RUN_TIME = re.compile(r"^\d{1,3}:[0-5]\d:[0-5]\d$")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_VISIBLE = (
    "visible = 1 AND (owner = ?"
    " OR id IN (SELECT job_id FROM agave_jobs_pems WHERE username = ? AND read = 1))"
)



def _iso(when: float | None) -> str | None:
    return None if when is None else iso_millis(when)


# -- dates in search terms ---------------------------------------------------------------------


def _day(moment: dt.datetime) -> tuple[float, float]:
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.timestamp(), start.timestamp() + 86400 - 0.001


def _when(field: str, value: str) -> tuple[float, float]:
    """A search term's date as the span it names: a whole day for a date, one millisecond
    for a timestamp (ISO-8601, epoch seconds or milliseconds, now/today/yesterday/tomorrow)."""
    text = value.strip()
    words = {"today": 0, "yesterday": -1, "tomorrow": 1}
    now = dt.datetime.now(dt.timezone.utc)
    if text.lower() == "now":
        return now.timestamp(), now.timestamp()
    if text.lower() in words:
        return _day(now + dt.timedelta(days=words[text.lower()]))
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        seconds = number / 1000 if number > 1e11 else number
        return seconds, seconds + 0.001
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise AgaveError(400, f"Invalid date format for {field}: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    if len(text) == 10:  # a date alone: the whole day
        return _day(moment)
    return moment.timestamp(), moment.timestamp() + 0.001


def _like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _sql_term(field: str, op: str, value: str) -> tuple[str, list[Any]] | None:
    """A search term as SQL over a column, or None when it is matched in Python."""
    if field in _TEXT_COLUMNS:
        col = _TEXT_COLUMNS[field]
        listed = [v.strip().lower() for v in value.split(",")]
        marks = ",".join("?" * len(listed))
        text_ops: dict[str, tuple[str, list[Any]]] = {
            "eq": (f"lower({col}) = ?", [value.lower()]),
            "neq": (f"lower({col}) != ?", [value.lower()]),
            "like": (f"{col} LIKE ? ESCAPE '\\'", [_like(value)]),
            "nlike": (f"{col} NOT LIKE ? ESCAPE '\\'", [_like(value)]),
            "in": (f"lower({col}) IN ({marks})", listed),
            "nin": (f"lower({col}) NOT IN ({marks})", listed),
        }
        return text_ops.get(op)
    if field in _DATE_COLUMNS:
        col = _DATE_COLUMNS[field]
        if op == "between":
            low, _, high = value.partition(",")
            return f"{col} >= ? AND {col} <= ?", [_when(field, low)[0], _when(field, high)[1]]
        start, end = _when(field, value)
        date_ops: dict[str, tuple[str, list[Any]]] = {
            "eq": (f"{col} >= ? AND {col} < ?", [start, end]),
            "on": (f"{col} >= ? AND {col} < ?", [start, end]),
            "neq": (f"({col} IS NULL OR {col} < ? OR {col} >= ?)", [start, end]),
            "lt": (f"{col} < ?", [start]),
            "before": (f"{col} < ?", [start]),
            "lte": (f"{col} < ?", [end]),
            "gt": (f"{col} >= ?", [end]),
            "after": (f"{col} >= ?", [end]),
            "gte": (f"{col} >= ?", [start]),
        }
        if op not in date_ops:
            raise AgaveError(400, f"Search operator {op} is not supported for date field {field}")
        return date_ops[op]
    return None


def _rlike_text(value: Any) -> str | None:
    """A job field as an ``rlike`` term reads it: a string as it is, other JSON (numbers,
    booleans, the ``inputs`` and ``parameters`` objects) as JSON text; a missing or null
    field matches no pattern."""
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


# -- the resource --------------------------------------------------------------------------------


class JobsResource:
    """The jobs tables, the lazy lifecycle and the handlers (one per embedded service)."""

    def __init__(self, service: AgaveService):
        self.service = service
        self._rng = random.Random(service.platform.seed)  # simulated outcomes only
        self._next_due = 0.0  # the earliest next_at known; touched on the store thread only
        self._listings = keyset.Listings()  # store thread only
        self._writing: dict[str, asyncio.Task[None]] = {}  # job id -> its outputs being written
        # Status events of the running transaction (store thread only), and who hears them.
        self._events: list[JobEvent] = []
        self.listeners: list[Callable[[list[JobEvent]], None]] = []

    # -- rendering --------------------------------------------------------------------------

    @staticmethod
    def _links(base: str, row: sqlite3.Row, doc: Mapping[str, Any]) -> dict[str, Any]:
        jobs = f"{base}/jobs/v2/{row['id']}"
        links = {
            "self": {"href": jobs},
            "app": {"href": f"{base}/apps/v2/{row['app_id']}"},
            "executionSystem": {"href": f"{base}/systems/v2/{doc.get('executionSystem', '')}"},
            "archiveSystem": {"href": f"{base}/systems/v2/{row['output_system']}"},
            "archiveData": {"href": f"{jobs}/outputs/listings"},
            "owner": {"href": f"{base}/profiles/v2/{row['owner']}"},
            "permissions": {"href": f"{jobs}/pems"},
            "history": {"href": f"{jobs}/history"},
            "metadata": {"href": f'{base}/meta/v2/data/?q={{"associationIds":"{row["id"]}"}}'},
            "notifications": {"href": f"{base}/notifications/v2/?associatedUuid={row['id']}"},
        }
        return links

    def _job(self, row: sqlite3.Row, base: str) -> dict[str, Any]:
        doc = json.loads(row["doc"])
        job = {
            "id": row["id"],
            "name": row["name"],
            "owner": row["owner"],
            "appId": row["app_id"],
            **doc,
            "status": row["status"],
            "message": row["message"],
            "created": _iso(row["created"]),
            "lastUpdated": _iso(row["last_updated"]),
            "lastModified": _iso(row["last_updated"]),
            "submitTime": _iso(row["submit_time"]),
            "startTime": _iso(row["start_time"]),
            "endTime": _iso(row["end_time"]),
            "visible": bool(row["visible"]),
            "_links": self._links(base, row, doc),
        }
        return job

    @staticmethod
    def _search_doc(row: sqlite3.Row) -> dict[str, Any]:
        """What the search terms SQL does not answer are matched against: the job's JSON
        fields but the dates (always SQL) and the links (never searched)."""
        doc: dict[str, Any] = json.loads(row["doc"])
        doc.update(
            id=row["id"], name=row["name"], owner=row["owner"], appId=row["app_id"],
            status=row["status"], visible=bool(row["visible"]),
        )  # fmt: skip
        return doc

    @staticmethod
    def _summary(row: sqlite3.Row, base: str) -> dict[str, Any]:
        jobs = f"{base}/jobs/v2/{row['id']}"
        return {
            "id": row["id"],
            "name": row["name"],
            "owner": row["owner"],
            "executionSystem": json.loads(row["doc"]).get("executionSystem"),
            "appId": row["app_id"],
            "created": _iso(row["created"]),
            "lastUpdated": _iso(row["last_updated"]),
            "status": row["status"],
            "startTime": _iso(row["start_time"]),
            "endTime": _iso(row["end_time"]),
            "_links": {"self": {"href": jobs}, "archiveData": {"href": f"{jobs}/outputs/listings"}},
        }

    # -- the lifecycle ----------------------------------------------------------------------

    def _advance(self, conn: sqlite3.Connection) -> list[dict[str, Any]]:
        """Move every job whose next step is due, writing one history entry per step.

        Returns the jobs that just reached FINISHED or FAILED (their outputs are due).
        Cheap when nothing is due: the earliest due time is kept in memory.
        """
        now = time.time()
        if now < self._next_due:
            return []
        finished: list[dict[str, Any]] = []
        history: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        rows = conn.execute(
            "SELECT id, owner, name, app_id, timeline, step_index, step, next_at, submit_time, start_time,"
            " output_system, doc FROM agave_jobs_jobs WHERE next_at IS NOT NULL AND next_at <= ?",
            (now,),
        ).fetchall()
        for row in rows:
            path = TIMELINES[row["timeline"]]
            index, at, step = row["step_index"], row["next_at"], row["step"]
            submit, start, end, moved_at = row["submit_time"], row["start_time"], None, at
            while at is not None and at <= now and index < len(path) - 1:
                index += 1
                status = path[index]
                history.append((row["id"], status, at, row["owner"], _DESCRIPTIONS[status]))
                self._events.append({"id": row["id"], "status": status, "at": at})
                moved_at = at
                if status == "QUEUED":
                    submit = at
                elif status == "RUNNING":
                    start = at
                if index == len(path) - 1:
                    end, at = moved_at, None
                else:
                    at = at + step
            status = path[index]
            updates.append(
                (status, _DESCRIPTIONS[status], index, at, moved_at, submit, start, end, row["id"])
            )
            if status in ("FINISHED", "FAILED"):
                doc = json.loads(row["doc"])
                finished.append(
                    {
                        "id": row["id"], "owner": row["owner"], "name": row["name"],
                        "app_id": row["app_id"], "status": status, "system": row["output_system"],
                        "path": doc.get("outputPath", ""), "inputs": doc.get("inputs", {}),
                    }
                )  # fmt: skip
        conn.executemany(
            "INSERT INTO agave_jobs_history (job_id, status, created, created_by, description)"
            " VALUES (?, ?, ?, ?, ?)",
            history,
        )
        conn.executemany(
            "UPDATE agave_jobs_jobs SET status = ?, message = ?, step_index = ?, next_at = ?,"
            " last_updated = ?, submit_time = ?, start_time = ?, end_time = COALESCE(?, end_time)"
            " WHERE id = ?",
            updates,
        )
        earliest = conn.execute(
            "SELECT MIN(next_at) FROM agave_jobs_jobs WHERE next_at IS NOT NULL"
        ).fetchone()[0]
        self._next_due = float("inf") if earliest is None else float(earliest)
        return finished

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` in one store transaction after the lifecycle has moved on (the moves are
        kept even when ``fn`` refuses the request); outputs of jobs that just finished are
        written before the answer."""

        def work(
            conn: sqlite3.Connection,
        ) -> tuple[list[dict[str, Any]], T | None, AgaveError | None, list[JobEvent]]:
            self._events = []  # a transaction that failed before left its events behind
            due = self._advance(conn)
            try:
                result, error = fn(conn), None
            except AgaveError as exc:
                result, error = None, exc
            events, self._events = self._events, []
            return due, result, error, events

        due, result, error, events = await self.service.store.run(work)
        if events:
            for listener in self.listeners:
                try:
                    listener(events)
                except Exception:  # a listener's bug must not fail the request that moved the jobs
                    log.exception("a job event listener failed")
        if due:
            for job in due:
                self._writing[job["id"]] = asyncio.ensure_future(self._write_outputs(job))
            # Shielded: a client that hangs up does not leave a finished job without outputs.
            await asyncio.shield(asyncio.gather(*(self._writing[job["id"]] for job in due)))
        if error is not None:
            raise error
        return result  # type: ignore[return-value]

    async def _write_outputs(self, job: dict[str, Any]) -> None:
        name = _UNSAFE_NAME.sub("-", job["name"]).strip("-.") or "job"
        stem = f"{job['path'].rstrip('/')}/{name}-{job['id']}"
        inputs = " ".join(str(u) for uris in job["inputs"].values() for u in (uris or []))
        lines = [f"Running {job['app_id']} as job {job['id']}", f"inputs: {inputs or '(none)'}"]
        try:
            await files.put_file(
                self.service, job["system"], stem + ".out", ("\n".join(lines) + "\n").encode(), job["owner"]
            )
            err = "" if job["status"] == "FINISHED" else _DESCRIPTIONS["FAILED"] + "\n"
            await files.put_file(self.service, job["system"], stem + ".err", err.encode(), job["owner"])
            if job["status"] == "FINISHED":
                words = inputs.split()
                wc = f"{1 if inputs else 0} {len(words)} {len(inputs) + 1 if inputs else 0} {inputs}\n"
                await files.put_file(
                    self.service,
                    job["system"],
                    f"{job['path'].rstrip('/')}/wc_out.txt",
                    wc.encode(),
                    job["owner"],
                )
        except Exception:  # an output that cannot be written must not fail the request that noticed
            log.exception("writing the outputs of job %s failed", job["id"])
        finally:
            self._writing.pop(job["id"], None)

    # -- access -----------------------------------------------------------------------------

    @staticmethod
    def _rights(conn: sqlite3.Connection, row: sqlite3.Row, username: str) -> tuple[bool, bool]:
        if row["owner"] == username:
            return True, True
        pem = conn.execute(
            "SELECT read, write FROM agave_jobs_pems WHERE job_id = ? AND username = ?", (row["id"], username)
        ).fetchone()
        return (False, False) if pem is None else (bool(pem["read"]), bool(pem["write"]))

    def _visible(
        self, conn: sqlite3.Connection, job_id: str, username: str, *, write: bool = False
    ) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM agave_jobs_jobs WHERE id = ? AND visible = 1", (job_id,)).fetchone()
        if row is None:
            raise AgaveError(404, f"No job found with job id {job_id}")
        read, can_write = self._rights(conn, row, username)
        if not read and not can_write:
            raise AgaveError(404, f"No job found with job id {job_id}")
        if write and not can_write:
            raise AgaveError(403, f"User {username} does not have permission to modify job {job_id}")
        return row  # type: ignore[no-any-return]

    # -- submit -----------------------------------------------------------------------------

    def _validate(
        self, conn: sqlite3.Connection, body: Any, username: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The job's static fields and its app, or a 400 naming what is wrong."""
        if not isinstance(body, dict):
            raise AgaveError(400, "Job request must be a JSON object")
        name, app_id = body.get("name"), body.get("appId")
        if not isinstance(name, str) or not name.strip():
            raise AgaveError(400, "Job name is required")
        if len(name) > 64:
            raise AgaveError(400, "Job name must be at most 64 characters")
        if not isinstance(app_id, str) or not app_id.strip():
            raise AgaveError(400, "Job appId is required")
        app = lookup_app(conn, app_id, username)
        if app is None:
            raise AgaveError(400, f"No app found matching {app_id}")
        if app.get("available") is False:
            raise AgaveError(400, f"App {app_id} is disabled and cannot run jobs")
        inputs = self._arguments(body, "inputs", app.get("inputs") or [], is_input=True)
        parameters = self._arguments(body, "parameters", app.get("parameters") or [], is_input=False)
        doc: dict[str, Any] = {
            "executionSystem": app.get("executionSystem"),
            "batchQueue": body.get("batchQueue") or app.get("defaultQueue") or "normal",
            "nodeCount": self._count(body, "nodeCount", app.get("defaultNodeCount")),
            "processorsPerNode": self._count(body, "processorsPerNode", app.get("defaultProcessorsPerNode")),
            "memoryPerNode": body.get("memoryPerNode", app.get("defaultMemoryPerNode") or 1),
            "maxRunTime": body.get("maxRunTime") or app.get("defaultMaxRunTime") or "01:00:00",
            "archive": body.get("archive", True),
            "retries": 0,
            "localId": None,
            "inputs": inputs,
            "parameters": parameters,
        }
        if not isinstance(doc["batchQueue"], str):
            raise AgaveError(400, "batchQueue must be a string")
        if not isinstance(doc["maxRunTime"], str) or not _MAX_RUN_TIME.match(doc["maxRunTime"]):
            raise AgaveError(400, "maxRunTime must be HH:mm:ss")
        if isinstance(doc["archive"], str):
            doc["archive"] = truthy(doc["archive"])
        if not isinstance(doc["archive"], bool):
            raise AgaveError(400, "archive must be a boolean")
        archive_system = body.get("archiveSystem")
        if archive_system is not None:
            if not isinstance(archive_system, str) or not archive_system:
                raise AgaveError(400, "archiveSystem must be a system id")
            system = lookup_system(conn, archive_system, username)
            if system is None or system.get("type") != "STORAGE":
                raise AgaveError(400, f"No storage system found matching {archive_system}")
        else:
            archive_system = default_storage_system(conn, username)
        archive_path = body.get("archivePath")
        if archive_path is not None and (
            not isinstance(archive_path, str) or ".." in archive_path.split("/")
        ):
            raise AgaveError(400, "archivePath must be a path without '..' segments")
        doc["archiveSystem"] = archive_system
        doc["archivePath"] = archive_path
        notifications = body.get("notifications", [])
        if not isinstance(notifications, list) or not all(
            isinstance(n, dict) and isinstance(n.get("url"), str) and n.get("url") for n in notifications
        ):
            raise AgaveError(400, "notifications must be a list of objects with a url")
        doc["notifications"] = [
            {
                "url": n["url"],
                "event": str(n.get("event", "*")),
                "persistent": bool(n.get("persistent", False)),
            }
            for n in notifications
        ]
        return doc, app

    @staticmethod
    def _count(body: dict[str, Any], key: str, default: Any) -> int:
        value = body.get(key, default if default is not None else 1)
        return positive_int(value, f"{key} must be a positive integer")

    @staticmethod
    def _arguments(body: dict[str, Any], key: str, declared: list[Any], *, is_input: bool) -> dict[str, Any]:
        given = body.get(key, {})
        if given is None:
            given = {}
        if not isinstance(given, dict):
            raise AgaveError(400, f"{key} must be a JSON object")
        known = {str(d.get("id")): d for d in declared if isinstance(d, dict)}
        unknown = sorted(set(given) - set(known))
        if unknown:
            kind = "input" if is_input else "parameter"
            raise AgaveError(400, f"Invalid {kind} {unknown[0]!r}: the app declares no such {kind}")
        out: dict[str, Any] = {}
        for arg_id, spec in known.items():
            value_spec = spec.get("value") or {}
            value = given.get(arg_id)
            if value is None or value == "" or value == []:
                default = value_spec.get("default")
                if value_spec.get("required") and (default is None or default == "" or default == []):
                    kind = "input" if is_input else "parameter"
                    raise AgaveError(400, f"No {kind} specified for {arg_id}, which is required")
                value = default
                if value is None or value == "" or value == []:
                    continue
            if is_input:
                uris = value if isinstance(value, list) else str(value).split(";")
                if not all(isinstance(u, str) for u in uris):
                    raise AgaveError(400, f"Input {arg_id} must be a URI or a list of URIs")
                out[arg_id] = [u.strip() for u in uris if u.strip()]
            else:
                kind = str(value_spec.get("type", "string")).lower()
                if kind in ("bool", "flag") and not isinstance(value, bool):
                    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                        value = value.lower() in ("true", "1")
                    else:
                        raise AgaveError(400, f"Parameter {arg_id} must be a boolean")
                if kind == "number" and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise AgaveError(400, f"Parameter {arg_id} must be a number")
                out[arg_id] = value
        return out

    def _insert(self, conn: sqlite3.Connection, body: Any, username: str) -> sqlite3.Row:
        doc, _app = self._validate(conn, body, username)
        job_id = agave_uuid("job")
        now = time.time()
        step = max(float(self.service.job_step_seconds), 0.0)
        failing = self._rng.random() < float(self.service.job_failure_rate)
        timeline = "fail" if failing else ("archive" if doc["archive"] else "plain")
        if doc["archivePath"] is None:
            doc["archivePath"] = f"{username}/archive/jobs/job-{job_id}"
        if doc["archive"]:
            doc["outputPath"] = doc["archivePath"]
            output_system = doc["archiveSystem"]
        else:
            doc["outputPath"] = f"{username}/jobs/job-{job_id}"
            output_system = default_storage_system(conn, username)
            doc["archivePath"] = doc["archiveSystem"] = None
        doc["workPath"] = f"/scratch/{username}/job-{job_id}"
        conn.execute(
            "INSERT INTO agave_jobs_jobs (id, owner, name, app_id, status, message, created, last_updated,"
            " timeline, step_index, step, next_at, output_system, request, doc)"
            " VALUES (?, ?, ?, ?, 'PENDING', ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
            (
                job_id, username, body["name"], body["appId"], _DESCRIPTIONS["PENDING"], now, now,
                timeline, step, now + step, output_system, json.dumps(body), json.dumps(doc),
            ),
        )  # fmt: skip
        conn.execute(
            "INSERT INTO agave_jobs_history (job_id, status, created, created_by, description)"
            " VALUES (?, 'PENDING', ?, ?, ?)",
            (job_id, now, username, _DESCRIPTIONS["PENDING"]),
        )
        self._events.append({"id": job_id, "status": "PENDING", "at": now})
        self._next_due = min(self._next_due, now + step)
        row: sqlite3.Row = conn.execute("SELECT * FROM agave_jobs_jobs WHERE id = ?", (job_id,)).fetchone()
        return row

    # -- handlers ---------------------------------------------------------------------------

    async def submit(self, request: web.Request) -> web.StreamResponse:
        body = await json_body(request)
        user, base = user_of(request), api_base(request)
        job = await self._run(lambda conn: self._job(self._insert(conn, body, user), base))
        return ok(request, job, status=201)

    async def get(self, request: web.Request) -> web.StreamResponse:
        job_id, user, base = request.match_info["job_id"], user_of(request), api_base(request)
        job = await self._run(lambda conn: self._job(self._visible(conn, job_id, user), base))
        return ok(request, job)

    async def status(self, request: web.Request) -> web.StreamResponse:
        job_id, user, base = request.match_info["job_id"], user_of(request), api_base(request)
        row = await self._run(lambda conn: self._visible(conn, job_id, user))
        return ok(
            request,
            {
                "id": row["id"],
                "status": row["status"],
                "_links": {"self": {"href": f"{base}/jobs/v2/{job_id}"}},
            },
        )

    async def history(self, request: web.Request) -> web.StreamResponse:
        job_id, user = request.match_info["job_id"], user_of(request)
        limit, offset = page_args(request)

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            self._visible(conn, job_id, user)
            rows = conn.execute(
                "SELECT status, created, created_by, description FROM agave_jobs_history WHERE job_id = ?"
                " ORDER BY seq LIMIT ? OFFSET ?",
                (job_id, limit, offset),
            ).fetchall()
            return [
                {
                    "status": r["status"],
                    "created": iso_millis(r["created"]),
                    "createdBy": r["created_by"],
                    "description": r["description"],
                }
                for r in rows
            ]

        return ok(request, await self._run(read))

    async def manage(self, request: web.Request) -> web.StreamResponse:
        job_id, user, base = request.match_info["job_id"], user_of(request), api_base(request)
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            body: Any = {k: v for k, v in form.items() if isinstance(v, str)}
        else:
            body = await json_body(request)
        action = body.get("action") if isinstance(body, dict) else None
        if not isinstance(action, str) or not action:
            raise AgaveError(400, "Please specify an action to perform: stop or resubmit")
        action = action.lower()
        if action == "stop":
            job = await self._run(lambda conn: self._job(self._stop(conn, job_id, user), base))
            return ok(request, job)
        if action == "resubmit":

            def resubmit(conn: sqlite3.Connection) -> dict[str, Any]:
                row = self._visible(conn, job_id, user, write=True)
                return self._job(self._insert(conn, json.loads(row["request"]), user), base)

            return ok(request, await self._run(resubmit), status=202)
        raise AgaveError(400, f"Unsupported job action {action!r}: stop or resubmit")

    def _stop(self, conn: sqlite3.Connection, job_id: str, user: str) -> sqlite3.Row:
        row = self._visible(conn, job_id, user, write=True)
        if row["status"] in TERMINAL:
            return row  # a finished job is left as it is
        now = time.time()
        status = "STOPPED" if row["status"] in _STOPPABLE else "KILLED"
        message = "Job cancelled by user." if status == "STOPPED" else "Job was killed by user."
        conn.execute(
            "UPDATE agave_jobs_jobs SET status = ?, message = ?, next_at = NULL, last_updated = ?,"
            " end_time = ? WHERE id = ?",
            (status, message, now, now, job_id),
        )
        conn.execute(
            "INSERT INTO agave_jobs_history (job_id, status, created, created_by, description)"
            " VALUES (?, ?, ?, ?, ?)",
            (job_id, status, now, user, message),
        )
        self._events.append({"id": job_id, "status": status, "at": now})
        stopped: sqlite3.Row = conn.execute(
            "SELECT * FROM agave_jobs_jobs WHERE id = ?", (job_id,)
        ).fetchone()
        return stopped

    async def delete(self, request: web.Request) -> web.StreamResponse:
        job_id, user = request.match_info["job_id"], user_of(request)

        def hide(conn: sqlite3.Connection) -> None:
            self._visible(conn, job_id, user, write=True)
            conn.execute("UPDATE agave_jobs_jobs SET visible = 0 WHERE id = ?", (job_id,))

        await self._run(hide)
        return ok(request, None, message=f"Job {job_id} deleted")

    # -- listings and search ----------------------------------------------------------------

    @staticmethod
    def _where(
        user: str, terms: Sequence[tuple[str, str, str]]
    ) -> tuple[list[str], list[Any], list[tuple[str, str, str]]]:
        """The SQL conditions (and their arguments) of the jobs ``user`` may see that satisfy
        the terms on indexed columns, and the other terms (matched in Python)."""
        where, args, rest = [_VISIBLE], [user, user], []
        for field, op, value in terms:
            sql = _sql_term(field, op, value)
            if sql is None:
                rest.append((field, op, value))
            else:
                where.append(sql[0])
                args.extend(sql[1])
        return where, args, rest

    def _select(
        self, conn: sqlite3.Connection, user: str, terms: Sequence[tuple[str, str, str]],
        limit: int, offset: int, base: str,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """One page of the jobs ``user`` may see that satisfy ``terms`` (no ``rlike``), newest
        first.

        Terms on indexed columns run as SQL; any other term is matched in Python over the
        full job JSON while the rows stream, stopping as soon as the page is full.
        """
        where, args, rest = self._where(user, terms)
        query = f"SELECT * FROM agave_jobs_jobs WHERE {' AND '.join(where)} ORDER BY seq DESC"
        if not rest:
            # A client walking the listing by offset seeks past the last page's seq instead
            # of skipping `offset` rows again (testing/keyset.py).
            clause = " AND ".join(where)
            listing = self._listings.get(conn, ("jobs", clause, *args))
            rows = keyset.page(
                conn, listing, "SELECT * FROM agave_jobs_jobs", clause, args, [("seq", True)], offset, limit
            )
            return [self._summary(r, base) for r in rows]
        matched = (row for row in conn.execute(query, args) if matches_search(self._search_doc(row), rest))
        return [self._summary(row, base) for row in window(matched, offset, limit)]

    async def _page(
        self, user: str, terms: Sequence[tuple[str, str, str]], limit: int, offset: int, base: str
    ) -> list[dict[str, Any]]:
        """:meth:`_select`'s page; with ``rlike`` terms, read a chunk of candidate rows per
        store transaction (the other terms narrowing them there) and match the patterns off
        the store's thread (wire.rlike_window) until the page is full."""
        plain, patterns = split_rlike(terms)
        if not patterns:
            return await self._run(lambda conn: self._select(conn, user, terms, limit, offset, base))
        where, args, rest = self._where(user, plain)

        def candidates(rows: list[sqlite3.Row]) -> list[tuple[Mapping[str, Any], sqlite3.Row]]:
            out: list[tuple[Mapping[str, Any], sqlite3.Row]] = []
            for row in rows:
                doc = self._search_doc(row)
                if matches_search(doc, rest):
                    out.append(({field: doc.get(field) for field, _ in patterns}, row))
            return out

        select = f"SELECT * FROM agave_jobs_jobs WHERE {' AND '.join(where)}"
        chunks = newest_first(self._run, select, args, candidates)
        rows = await rlike_window(chunks, patterns, offset, limit, text=_rlike_text)
        return [self._summary(row, base) for row in rows]

    async def listing(self, request: web.Request) -> web.StreamResponse:
        user, base = user_of(request), api_base(request)
        limit, offset = page_args(request)
        terms = search_terms(request.query, SEARCH_FIELDS)
        return ok(request, await self._page(user, terms, limit, offset, base))

    async def search(self, request: web.Request) -> web.StreamResponse:
        # Server 2.1's route, /jobs/v2/search/{attribute}/{value}[/{attribute}/{value}...]
        # (up to 7 pairs); agavepy's /jobs/v2/{attribute}/{value} collides with job ids.
        raw = request.raw_path.split("?", 1)[0]
        tail = raw.split("/jobs/v2/search/", 1)[-1]
        parts = [unquote(p) for p in tail.split("/") if p]
        if not parts or len(parts) % 2 or len(parts) > 14:
            raise AgaveError(
                400, "Search takes 1 to 7 attribute/value pairs: /jobs/v2/search/{attribute}/{value}"
            )
        pairs = {parts[i]: parts[i + 1] for i in range(0, len(parts), 2)}
        terms = search_terms(pairs, SEARCH_FIELDS)
        if len(terms) != len(pairs):
            known = {t[0].lower() for t in terms}
            bad = next(
                k for k in pairs if k.rpartition(".")[0].lower() not in known and k.lower() not in known
            )
            raise AgaveError(400, f"Unknown search attribute {bad!r}")
        terms += search_terms(request.query, SEARCH_FIELDS)
        user, base = user_of(request), api_base(request)
        limit, offset = page_args(request)
        return ok(request, await self._page(user, terms, limit, offset, base))

    # -- permissions ------------------------------------------------------------------------

    @staticmethod
    def _pem(base: str, job_id: str, username: str, read: bool, write: bool) -> dict[str, Any]:
        return {
            "username": username,
            "internalUsername": None,
            "permission": {"read": read, "write": write},
            "_links": {
                "self": {"href": f"{base}/jobs/v2/{job_id}/pems/{username}"},
                "parent": {"href": f"{base}/jobs/v2/{job_id}"},
                "profile": {"href": f"{base}/profiles/v2/{username}"},
            },
        }

    async def list_pems(self, request: web.Request) -> web.StreamResponse:
        job_id, user, base = request.match_info["job_id"], user_of(request), api_base(request)
        limit, offset = page_args(request)
        only = request.match_info.get("username")

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            row = self._visible(conn, job_id, user)
            if only is not None:
                r, w = self._rights(conn, row, only)
                return [self._pem(base, job_id, only, r, w)]
            pems = [self._pem(base, job_id, row["owner"], True, True)]
            for p in conn.execute(
                "SELECT username, read, write FROM agave_jobs_pems WHERE job_id = ? ORDER BY username",
                (job_id,),
            ):
                pems.append(self._pem(base, job_id, p["username"], bool(p["read"]), bool(p["write"])))
            return pems[offset : offset + limit]

        return ok(request, await self._run(read))

    async def update_pems(self, request: web.Request) -> web.StreamResponse:
        job_id, user, base = request.match_info["job_id"], user_of(request), api_base(request)
        target, permission = grantee(request, await json_body(request), _PERMISSIONS)
        read, write = _PERMISSIONS[permission]

        def grant(conn: sqlite3.Connection) -> tuple[int, dict[str, Any] | None]:
            row = self._visible(conn, job_id, user, write=True)
            if target == row["owner"]:
                raise AgaveError(400, "The owner's permissions on a job cannot be changed")
            existed = conn.execute(
                "SELECT 1 FROM agave_jobs_pems WHERE job_id = ? AND username = ?", (job_id, target)
            ).fetchone()
            if not read and not write:
                conn.execute(
                    "DELETE FROM agave_jobs_pems WHERE job_id = ? AND username = ?", (job_id, target)
                )
                return 200, None
            conn.execute(
                "INSERT INTO agave_jobs_pems (job_id, username, read, write) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (job_id, username) DO UPDATE SET read = excluded.read, write = excluded.write",
                (job_id, target, int(read), int(write)),
            )
            return (200 if existed else 201), self._pem(base, job_id, target, read, write)

        status, pem = await self._run(grant)
        return ok(request, pem, status=status)

    async def delete_pems(self, request: web.Request) -> web.StreamResponse:
        job_id, user = request.match_info["job_id"], user_of(request)
        target = request.match_info.get("username")

        def revoke(conn: sqlite3.Connection) -> None:
            self._visible(conn, job_id, user, write=True)
            if target is None:
                conn.execute("DELETE FROM agave_jobs_pems WHERE job_id = ?", (job_id,))
            else:
                conn.execute(
                    "DELETE FROM agave_jobs_pems WHERE job_id = ? AND username = ?", (job_id, target)
                )

        await self._run(revoke)
        return ok(request, None)

    # -- outputs ----------------------------------------------------------------------------

    async def _output_target(self, request: web.Request) -> tuple[str, str, str]:
        """(system, path, owner) of an outputs request, once the job's outputs are written."""
        job_id, user = request.match_info["job_id"], user_of(request)
        rel = request.match_info.get("path", "")
        if any(p in (".", "..") for p in rel.split("/")):
            raise AgaveError(400, f"Invalid output path {rel!r}: '.' and '..' segments are not allowed")
        row = await self._run(lambda conn: self._visible(conn, job_id, user))
        writing = self._writing.get(job_id)
        if writing is not None:
            await asyncio.shield(writing)
        base = str(json.loads(row["doc"]).get("outputPath", "")).rstrip("/")
        path = f"{base}/{rel.strip('/')}" if rel.strip("/") else base
        # The job's archive is the owner's: a user the job is shared with reads it as the owner.
        return str(row["output_system"]), path, str(row["owner"])

    async def list_outputs(self, request: web.Request) -> web.StreamResponse:
        system, path, owner = await self._output_target(request)
        return ok(request, await files.listing_for(self.service, request, system, path, owner))

    async def download_output(self, request: web.Request) -> web.StreamResponse:
        system, path, owner = await self._output_target(request)
        return await files.media_response(self.service, request, system, path, owner)

    async def close(self) -> None:
        if self._writing:
            await asyncio.gather(*self._writing.values(), return_exceptions=True)


_RESOURCES: weakref.WeakKeyDictionary[AgaveService, JobsResource] = weakref.WeakKeyDictionary()


def on_transitions(service: AgaveService, listener: Callable[[list[JobEvent]], None]) -> None:
    """Call ``listener(events)`` on the event loop after every jobs transaction that
    moved a job (submit, each lifecycle step, stop), in the order they happened."""
    _RESOURCES[service].listeners.append(listener)


def job_json(service: AgaveService, row: sqlite3.Row, base: str) -> dict[str, Any]:
    """The full job JSON of a ``agave_jobs_jobs`` row, as ``GET /jobs/v2/{id}`` answers it."""
    return _RESOURCES[service]._job(row, base)


async def advance_due(service: AgaveService) -> None:
    """Move the due jobs on (and fire their events) without a jobs request."""
    await _RESOURCES[service]._run(lambda conn: None)


async def install(service: AgaveService) -> None:
    await service.store.executescript(SCHEMA)
    jobs = JobsResource(service)
    _RESOURCES[service] = jobs
    service.on_close(jobs.close)
    route = service.route
    route("GET", "/jobs/v2/", jobs.listing)
    route("POST", "/jobs/v2/", jobs.submit)
    route("GET", "/jobs/v2/search/{tail:.+}", jobs.search)  # before /{job_id}/...: it would shadow it
    route("GET", "/jobs/v2/{job_id}", jobs.get)
    route("POST", "/jobs/v2/{job_id}", jobs.manage)
    route("DELETE", "/jobs/v2/{job_id}", jobs.delete)
    route("GET", "/jobs/v2/{job_id}/status", jobs.status)
    route("GET", "/jobs/v2/{job_id}/history", jobs.history)
    route("GET", "/jobs/v2/{job_id}/pems", jobs.list_pems)
    route("POST", "/jobs/v2/{job_id}/pems", jobs.update_pems)
    route("DELETE", "/jobs/v2/{job_id}/pems", jobs.delete_pems)
    route("GET", "/jobs/v2/{job_id}/pems/{username}", jobs.list_pems)
    route("POST", "/jobs/v2/{job_id}/pems/{username}", jobs.update_pems)
    route("DELETE", "/jobs/v2/{job_id}/pems/{username}", jobs.delete_pems)
    route("GET", "/jobs/v2/{job_id}/outputs/listings", jobs.list_outputs)
    route("GET", "/jobs/v2/{job_id}/outputs/listings/{path:.+}", jobs.list_outputs)
    route("GET", "/jobs/v2/{job_id}/outputs/media/{path:.+}", jobs.download_output)
