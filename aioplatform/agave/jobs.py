"""Jobs: agavepy's 16 jobs operations as coroutines, plus batches for many jobs at once.

>>> job = await agave.jobs.submit({"name": "wc-1", "appId": "wc-1.00", "inputs": {"query1": uri}})
>>> done = await agave.jobs.wait_many([job.id], deadline=600)
>>> await agave.jobs.download_outputs(job.id, "out/", include=["*.out"])

Batches (``submit_many``, ``wait_many``, ``stop_many``, ``resubmit_many``,
``download_outputs``) run on the client's pool with bounded concurrency and return a
:class:`~aioplatform.BatchResult`: exactly one outcome per input, in input order.
A submit is a POST: the core retries it only when the server provably did not run it
(429/503, connection refused), never after it may have reached the app. A submit whose
answer was lost (sent, no answer) may or may not have made a job; Agave has no
idempotency key, so ``reconcile=True`` looks for it by name, app and creation time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fnmatch
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import defaults
from ..core.batch import (
    BatchResult,
    Breaker,
    OutcomeCallback,
    ProgressCallback,
    backoff_pauses,
    check_batch_options,
    gather,
    gather_prepared,
    poll_many,
)
from ..core.calls import CallTimeout
from ..core.checks import check_choice, check_id, check_ids, check_seconds
from ..core.paging import AsyncPager
from ..core.paths import segment, segments
from ..core.reconcile import CLOCK_SLACK, date_header_skew, gather_reconciled
from .errors import JobWaitTimeout
from .models.common import structure
from .models.jobs import TERMINAL_STATUSES, Job, JobHistoryEvent, JobPermission, JobStatus, JobSummary

if TYPE_CHECKING:
    from .client import AgaveClient
    from .models.files import RemoteFile

__all__ = ["Jobs"]

ROOT = "jobs/v2/"
PAGE_SIZE = 100  # the Java services' fallback maximum (agave.md §8)
_PERMISSIONS = ("READ", "WRITE", "EXECUTE", "READ_WRITE", "READ_EXECUTE", "WRITE_EXECUTE", "ALL", "NONE")
_CHUNK = 256 * 1024


def _job_path(job_id: Any, *rest: str) -> str:
    return ROOT + "/".join((segment("job_id", job_id), *rest))


def _job_ids(values: Any) -> list[str]:
    return check_ids("job_ids", values, what="job ids")


def _job_request(body: Any, name: str = "body") -> dict[str, Any]:
    """A job request checked for what the server requires before anything is sent."""
    if not isinstance(body, Mapping):
        raise TypeError(f"{name} must be a mapping (a JobRequest), got {type(body).__name__}")
    for key in ("name", "appId"):
        value = body.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} must have a non-empty string {key!r}, got {value!r}")
    for key in ("inputs", "parameters"):
        if body.get(key) is not None and not isinstance(body[key], Mapping):
            raise TypeError(f"{name}[{key!r}] must be a mapping, got {type(body[key]).__name__}")
    return dict(body)


def _search_params(search: Any, filter: Any) -> dict[str, str]:
    params: dict[str, str] = {}
    if search is not None:
        if not isinstance(search, Mapping):
            raise TypeError(
                f"search must be a mapping of terms such as {{'status.eq': 'RUNNING'}}, got {search!r}"
            )
        for key, value in search.items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"search keys must be non-empty strings, got {key!r}")
            if isinstance(value, bool):
                params[key] = "true" if value else "false"
            elif isinstance(value, (str, int, float)):
                params[key] = str(value)
            elif isinstance(value, (list, tuple, set, frozenset)):
                params[key] = ",".join(str(v) for v in value)
            else:
                raise TypeError(
                    f"search[{key!r}] must be a string, number or list, got {type(value).__name__}"
                )
    if filter is not None:
        if isinstance(filter, str):
            params["filter"] = filter
        elif isinstance(filter, Iterable) and all(isinstance(f, str) for f in filter):
            params["filter"] = ",".join(filter)
        else:
            raise TypeError(f"filter must be a string or an iterable of field names, got {filter!r}")
    return params


def _permission(value: Any) -> str:
    # "" revokes as NONE does (agavepy's spec); the message lists the named levels.
    return "" if value == "" else check_choice("permission", value, _PERMISSIONS, any_case=True)


def _username(value: Any) -> str:
    return check_id("username", value)


def _dest(value: Any) -> str | os.PathLike[str]:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"dest must be a path, got {type(value).__name__}")
    return value


def _globs(name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable) and not isinstance(value, bytes):
        globs = tuple(value)
        if all(isinstance(g, str) for g in globs):
            return globs
    raise TypeError(f"{name} must be a glob string or an iterable of glob strings, got {value!r}")


class _Mark:
    """Where a reconciled batch starts: the newest job before it and the server's clock."""

    def __init__(self, newest: JobSummary | None, skew: float):
        self.newest = newest
        self.skew = skew

    def claimed(self) -> list[str]:
        """The ids no lost answer can be: the newest job before the batch."""
        return [] if self.newest is None else [self.newest.id]


class Jobs:
    """``client.jobs``: agavepy's jobs operations (snake_case), listings as ``AsyncPager``."""

    def __init__(self, client: AgaveClient):
        self._client = client

    # -- the 16 operations ----------------------------------------------------------------

    def list(
        self,
        *,
        search: Mapping[str, Any] | None = None,
        status: str | None = None,
        app_id: str | None = None,
        name: str | None = None,
        filter: str | Iterable[str] | None = None,
        limit: int = PAGE_SIZE,
        offset: int = 0,
    ) -> AsyncPager[JobSummary]:
        """The jobs you own or that are shared with you, newest first.

        ``search`` passes Agave's search terms through (``{"status.eq": "RUNNING",
        "appId.like": "wc*", "created.after": "2024-01-01"}``); ``status``, ``app_id`` and
        ``name`` are shorthands for ``.eq`` terms. ``limit`` is the page size.
        """
        params = _search_params(search, filter)
        for key, value in (("status.eq", status), ("appId.eq", app_id), ("name.eq", name)):
            if value is not None:
                if not isinstance(value, str):
                    raise TypeError(f"{key.partition('.')[0]} must be a string, got {type(value).__name__}")
                params[key] = value
        return self._client._list(ROOT, JobSummary, params=params, limit=limit, offset=offset)

    async def submit(self, body: Mapping[str, Any], *, timeout: CallTimeout = None) -> Job:
        """Submit a job (``{"name", "appId", "inputs", "parameters", ...}``); the server
        answers 201 with the job ``PENDING``."""
        return await self._client._model("POST", ROOT, Job, json=_job_request(body))

    async def get(self, job_id: str, *, timeout: CallTimeout = None) -> Job:
        return await self._client._model("GET", _job_path(job_id), Job)

    async def manage(self, job_id: str, action: str, *, timeout: CallTimeout = None) -> Job:
        """agavepy's ``manage``: ``action`` is ``"stop"`` (the job, stopped) or
        ``"resubmit"`` (a NEW job copying the request)."""
        if not isinstance(action, str):
            raise TypeError(f"action must be 'stop' or 'resubmit', got {type(action).__name__}")
        if action.lower() not in ("stop", "resubmit"):
            raise ValueError(f"action must be 'stop' or 'resubmit', got {action!r}")
        return await (self.stop(job_id) if action.lower() == "stop" else self.resubmit(job_id))

    async def stop(self, job_id: str, *, timeout: CallTimeout = None) -> Job:
        """Stop the job. A job not yet queued ends STOPPED, a running one is killed (STOPPED,
        KILLED or FAILED depending on the server), a finished one is left as it is.

        Sent as safe to repeat: stopping a stopped job changes nothing, so a stop whose
        answer was lost is re-sent (unlike submit and resubmit)."""
        return await self._client._model(
            "POST", _job_path(job_id), Job, json={"action": "stop"}, idempotent=True
        )

    async def resubmit(self, job_id: str, *, timeout: CallTimeout = None) -> Job:
        """A NEW job with the original's request (202); returns the new job."""
        return await self._client._model("POST", _job_path(job_id), Job, json={"action": "resubmit"})

    async def delete(self, job_id: str, *, timeout: CallTimeout = None) -> None:
        """Delete the job (the server hides it: it is no longer listed or found)."""
        await self._client._call("DELETE", _job_path(job_id))

    async def get_status(self, job_id: str, *, timeout: CallTimeout = None) -> JobStatus:
        """The small ``/status`` resource: what to poll."""
        return await self._client._model("GET", _job_path(job_id, "status"), JobStatus)

    def get_history(
        self, job_id: str, *, limit: int = PAGE_SIZE, offset: int = 0
    ) -> AsyncPager[JobHistoryEvent]:
        """The statuses the job went through, oldest first, with when and why."""
        return self._client._list(_job_path(job_id, "history"), JobHistoryEvent, limit=limit, offset=offset)

    def list_permissions(
        self, job_id: str, *, limit: int = PAGE_SIZE, offset: int = 0
    ) -> AsyncPager[JobPermission]:
        return self._client._list(_job_path(job_id, "pems"), JobPermission, limit=limit, offset=offset)

    async def update_permissions(
        self, job_id: str, username: str, permission: str, *, timeout: CallTimeout = None
    ) -> JobPermission | None:
        """Grant ``username`` READ, WRITE, READ_WRITE or ALL; NONE (or "") revokes (None returned)."""
        body = {"username": _username(username), "permission": _permission(permission)}
        return await self._pem("POST", _job_path(job_id, "pems"), body)

    async def delete_permissions(self, job_id: str, *, timeout: CallTimeout = None) -> None:
        """Revoke every grant on the job (the owner keeps theirs)."""
        await self._client._call("DELETE", _job_path(job_id, "pems"))

    async def list_permissions_for_user(
        self, job_id: str, username: str, *, timeout: CallTimeout = None
    ) -> JobPermission:
        """``username``'s rights on the job (the server answers a list of at most one)."""
        path = _job_path(job_id, "pems", segment("username", _username(username)))
        return JobPermission.of_user(await self._client._call("GET", path), username)

    async def update_permissions_for_user(
        self, job_id: str, username: str, permission: str, *, timeout: CallTimeout = None
    ) -> JobPermission | None:
        path = _job_path(job_id, "pems", segment("username", _username(username)))
        return await self._pem("POST", path, {"permission": _permission(permission)})

    async def delete_permissions_for_user(
        self, job_id: str, username: str, *, timeout: CallTimeout = None
    ) -> None:
        # agavepy cannot make this call (its spec names the path parameter uniqueName).
        await self._client._call(
            "DELETE", _job_path(job_id, "pems", segment("username", _username(username)))
        )

    def list_outputs(
        self, job_id: str, file_path: str = "", *, limit: int = PAGE_SIZE, offset: int = 0
    ) -> AsyncPager[RemoteFile]:
        """A listing of the job's outputs (``file_path`` relative to its output directory;
        "" for the top). A directory listing starts with the ``"."`` entry."""
        from .models.files import RemoteFile

        tail = segments("file_path", file_path, allow_root=True)
        path = _job_path(job_id, "outputs", "listings") + (f"/{tail}" if tail else "")
        return self._client._list(path, RemoteFile, limit=limit, offset=offset)

    async def download_output(
        self,
        job_id: str,
        file_path: str,
        dest: str | os.PathLike[str] | None = None,
        *,
        timeout: CallTimeout = None,
    ) -> Any:
        """One output file: streamed to ``dest`` (a file path, returned as a ``Path``), or,
        without ``dest``, its bytes (read whole: for small files; see :meth:`iter_output`)."""
        if dest is None:
            chunks = [chunk async for chunk in self.iter_output(job_id, file_path)]
            return b"".join(chunks)
        return await self._save(job_id, file_path, Path(_dest(dest)))

    async def iter_output(self, job_id: str, file_path: str) -> AsyncIterator[bytes]:
        """An output file's bytes as an async iterator of chunks, never held whole."""
        path = _job_path(job_id, "outputs", "media", segments("file_path", file_path))
        async with self._client._stream("GET", path) as response:
            async for chunk in response.iter_chunks(_CHUNK):
                yield chunk

    def search(
        self, attribute: str, value: str, *, limit: int = PAGE_SIZE, offset: int = 0
    ) -> AsyncPager[JobSummary]:
        """Jobs whose ``attribute`` (optionally with an operator: ``"status.eq"``) matches ``value``.

        Sent to the server's route ``/jobs/v2/search/{attribute}/{value}``: agavepy's spec
        says ``/jobs/v2/{attribute}/{value}``, which the server reads as a job id and a
        sub-resource (agave.md §6.4); ``list(search=...)`` is the same search as a query.
        """
        path = ROOT + "search/" + segment("attribute", attribute) + "/" + segment("value", value)
        return self._client._list(path, JobSummary, limit=limit, offset=offset)

    async def _pem(self, method: str, path: str, body: dict[str, Any]) -> JobPermission | None:
        # A grant is idempotent (sent twice it leaves what once does): retried like a GET,
        # as apps', systems', files' and meta's grants are.
        result = await self._client._call(method, path, json=body, idempotent=True)
        if not isinstance(result, Mapping):
            return None
        return structure(result, JobPermission)

    # -- batches --------------------------------------------------------------------------

    async def submit_many(
        self,
        requests: Iterable[Mapping[str, Any]],
        *,
        concurrency: int = defaults.CONCURRENCY,
        reconcile: bool = False,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[Job]:
        """Submit every request; one outcome (the Job, or the exception) per request, in order.

        Every request is checked before the first is sent. With ``reconcile=True``, once
        every submit is done, each one whose answer was lost (sent, then the connection
        dropped or timed out, or a 5xx other than 503) is looked up: a job with its
        ``name`` and ``appId`` created since it was sent, that no other outcome of the
        batch holds, becomes its outcome (oldest first); otherwise the error stays. So
        the server holds one job per Job outcome and none for an error. Give each
        request a unique ``name`` and a job made by another run can never be taken for
        a lost one. Costs one listing before the batch and one search per lost answer
        (GETs retried until their deadline, as every batch's reconciliation look-ups are).
        ``on_progress`` reports the requests as they finish, before any reconciliation;
        ``on_outcome`` and ``breaker`` are :func:`~aioplatform.gather`'s (a lost answer is
        reported to ``on_outcome`` once reconciled). ``result.items`` are the requests as given.
        """
        if isinstance(requests, (str, bytes, Mapping)) or not isinstance(requests, Iterable):
            raise TypeError(f"requests must be an iterable of job requests, got {type(requests).__name__}")
        given = list(requests)
        bodies = [_job_request(r, f"requests[{i}]") for i, r in enumerate(given)]
        check_batch_options(concurrency, on_progress, on_outcome, breaker, fail_fast, reconcile)
        if not reconcile:
            return await gather_prepared(
                self.submit, given, bodies, concurrency=concurrency, fail_fast=fail_fast,
                on_progress=on_progress, on_outcome=on_outcome, breaker=breaker,
            )  # fmt: skip
        mark = await self._mark()

        async def submit(body: dict[str, Any]) -> Job:
            return await self._client._model("POST", ROOT, Job, json=body)

        async def find_lost(
            index: int, sent_at: float, error: BaseException, claimed: set[Any]
        ) -> Job | None:
            key = (bodies[index]["name"], bodies[index]["appId"])
            return await self._find_lost(key, sent_at, mark, claimed, error)

        return await gather_reconciled(
            submit, given, bodies, find_lost=find_lost, identity=lambda job: job.id,
            claimed=mark.claimed(), concurrency=concurrency, fail_fast=fail_fast,
            on_progress=on_progress, on_outcome=on_outcome, breaker=breaker,
        )  # fmt: skip

    async def resubmit_many(
        self,
        job_ids: Iterable[str],
        *,
        concurrency: int = defaults.CONCURRENCY,
        reconcile: bool = False,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[Job]:
        """Resubmit every job; one outcome (the NEW job, or the exception) per id, in order.

        ``reconcile=True`` looks up a resubmission whose answer was lost as
        :meth:`submit_many` does (a new job with the original's name and app).
        """
        ids = _job_ids(job_ids)
        check_batch_options(concurrency, on_progress, on_outcome, breaker, fail_fast, reconcile)
        if not reconcile:
            return await gather(
                self.resubmit, ids, concurrency=concurrency, fail_fast=fail_fast, on_progress=on_progress,
                on_outcome=on_outcome, breaker=breaker,
            )  # fmt: skip
        mark = await self._mark()

        async def find_lost(
            index: int, sent_at: float, error: BaseException, claimed: set[Any]
        ) -> Job | None:
            try:  # a new job has the original's name and app; without them the error stays
                original = await self.get(ids[index])
            except Exception:
                return None
            return await self._find_lost((original.name, original.app_id), sent_at, mark, claimed, error)

        return await gather_reconciled(
            self.resubmit, ids, ids, find_lost=find_lost, identity=lambda job: job.id,
            claimed=[*ids, *mark.claimed()], concurrency=concurrency, fail_fast=fail_fast,
            on_progress=on_progress, on_outcome=on_outcome, breaker=breaker,
        )  # fmt: skip

    async def _mark(self) -> _Mark:
        """The newest job before a reconciled batch and the server's clock skew: only jobs
        created after both can be a lost answer of the batch."""
        try:
            # A GET the reconciliation cannot do without: retried until its deadline.
            response = await self._client._for_lookups()._request(
                "GET", ROOT, params={"limit": "1", "offset": "0"}
            )
            skew = date_header_skew(response.headers) or 0.0
            body = response.json()
            rows = body.get("result") if isinstance(body, dict) else body
            newest = structure(rows[0], JobSummary) if isinstance(rows, list) and rows else None
        except Exception:  # the lookup then relies on the requests' estimated server times
            return _Mark(None, 0.0)
        return _Mark(newest, skew)

    async def _find_lost(
        self, key: tuple[str, str], sent_at: float, mark: _Mark, claimed: set[str], error: BaseException
    ) -> Job | None:
        """The oldest unclaimed job named ``key`` (name, appId) created since the request was
        sent (server time, less the Date header's resolution) and after the batch's mark."""
        name, app_id = key
        since = sent_at + mark.skew - CLOCK_SLACK
        if mark.newest is not None and mark.newest.created is not None:
            since = max(since, mark.newest.created.timestamp())
        moment = dt.datetime.fromtimestamp(since, dt.timezone.utc).isoformat(timespec="milliseconds")
        search = {"name.eq": name, "appId.eq": app_id, "created.gte": moment}
        lookups = self._client._for_lookups().jobs  # GETs retried until their deadline
        try:
            found: JobSummary | None = None
            async for candidate in lookups.list(search=search):  # newest first: the last match is the oldest
                if candidate.id in claimed or candidate.name != name or candidate.app_id != app_id:
                    continue
                found = candidate
            return None if found is None else await lookups.get(found.id)
        except Exception as lookup_error:  # the original failure is what is reported
            error.add_note(f"looking up the lost submit failed: {lookup_error}")
            return None

    async def stop_many(
        self,
        job_ids: Iterable[str],
        *,
        concurrency: int = defaults.CONCURRENCY,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[Job]:
        """Stop every job; one outcome (the job as stopped, or the exception) per id, in order."""
        ids = _job_ids(job_ids)
        return await gather(
            self.stop, ids, concurrency=concurrency, fail_fast=fail_fast, on_progress=on_progress,
            on_outcome=on_outcome, breaker=breaker,
        )  # fmt: skip

    async def wait_many(
        self,
        job_ids: Iterable[str],
        *,
        until: Iterable[str] = TERMINAL_STATUSES,
        poll_interval: float = 1.0,
        max_interval: float = 15.0,
        deadline: float | None = None,
        concurrency: int = defaults.CONCURRENCY,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[JobStatus]:
        """Wait until every job's status is in ``until`` (default: any terminal status).

        Polls the small ``/status`` resource in rounds (each unsettled job once per round,
        at most ``concurrency`` requests in flight); the pause between rounds starts at
        ``poll_interval``, grows by half each round up to ``max_interval``, with jitter.
        One outcome per id: its :class:`JobStatus` once in ``until`` (or terminal: it can
        change no more), the error if polling it failed, or :class:`JobWaitTimeout` (with
        the last status seen) if ``deadline`` seconds passed first. Never hangs.
        ``on_outcome`` hears each job as it settles; a ``breaker`` tripped by a round's
        polls settles every job that round did not poll as ``NotAttempted``.
        """
        ids = _job_ids(job_ids)
        if isinstance(until, str) or not isinstance(until, Iterable):
            raise TypeError(f"until must be an iterable of statuses, got {until!r}")
        wanted = frozenset(s.upper() for s in until if isinstance(s, str))
        if not wanted:
            raise ValueError("until must name at least one status")
        interval = check_seconds("poll_interval", poll_interval)
        cap = check_seconds("max_interval", max_interval)
        limit = check_seconds("deadline", deadline, allow_none=True, positive=False)
        assert interval is not None and cap is not None
        if cap < interval:
            raise ValueError(
                f"max_interval must be >= poll_interval, got {max_interval!r} < {poll_interval!r}"
            )
        check_batch_options(concurrency, on_progress, on_outcome, breaker)
        return await poll_many(
            self.get_status,
            ids,
            done=lambda seen: seen.status in wanted or seen.status in TERMINAL_STATUSES,
            timeout_error=lambda job_id, seen: JobWaitTimeout(
                job_id, seen.status if seen else None, limit or 0.0, seen
            ),
            pauses=backoff_pauses(interval, cap),
            deadline=limit,
            concurrency=concurrency,
            on_progress=on_progress,
            on_outcome=on_outcome,
            breaker=breaker,
        )

    async def download_outputs(
        self,
        job_id: str,
        dest: str | os.PathLike[str],
        *,
        include: str | Iterable[str] | None = None,
        exclude: str | Iterable[str] | None = None,
        concurrency: int = 8,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[Path]:
        """Download the job's outputs under ``dest`` (their tree kept), streamed to disk.

        ``include``/``exclude`` are fnmatch globs over each file's path relative to the
        output directory (``"*.out"``, ``"logs/*"``): a file is taken if it matches an
        include (or none is given) and no exclude. One outcome per file taken (its local
        ``Path``, or the exception), in listing order, with ``result.items`` the files'
        paths relative to the output directory. The listing is walked concurrently
        before any download; a listing that fails raises (``BatchError``), as nothing could
        be chosen. Files are written beside their destination as ``.part`` and renamed.

        The batch options mean what they mean for :func:`~aioplatform.gather`, over the
        downloads (the listing is not an item): ``on_progress(done, total, outcome)`` and
        ``on_outcome(index, relative_path, outcome)`` hear each file once, the moment its
        outcome is final; with ``breaker`` (a :class:`~aioplatform.Breaker`) consecutive
        rejections of the credentials or refused connections stop starting downloads, and
        every file not started gets :class:`~aioplatform.NotAttempted` (``result.stopped``
        says why); ``fail_fast=True`` stops at the first failed download, cancelling the
        others in flight (their ``.part`` files removed). All are checked before the first
        request.
        """
        segment("job_id", job_id)
        includes, excludes = _globs("include", include), _globs("exclude", exclude)
        check_batch_options(concurrency, on_progress, on_outcome, breaker, fail_fast)
        root = Path(_dest(dest))
        files: list[str] = []
        level = [""]
        while level:
            listed = await gather(
                lambda rel: self.list_outputs(job_id, rel).to_list(), level, concurrency=concurrency
            )
            listed.raise_for_errors()
            nxt: list[str] = []
            for rel, entries in zip(level, listed.values, strict=True):
                for entry in entries:
                    if entry.is_self or entry.name in ("", ".", "..") or "/" in entry.name:
                        continue
                    child = f"{rel}/{entry.name}" if rel else entry.name
                    (nxt if entry.is_dir else files).append(child)
            level = nxt
        chosen = [
            f
            for f in files
            if (not includes or any(fnmatch.fnmatchcase(f, g) for g in includes))
            and not any(fnmatch.fnmatchcase(f, g) for g in excludes)
        ]
        return await gather(
            lambda rel: self._save(job_id, rel, root.joinpath(*rel.split("/"))),
            chosen,
            concurrency=concurrency,
            fail_fast=fail_fast,
            on_progress=on_progress,
            on_outcome=on_outcome,
            breaker=breaker,
        )

    async def _save(self, job_id: str, file_path: str, target: Path) -> Path:
        """Stream one output to ``target`` through a ``.part`` file renamed when complete."""
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        handle = await asyncio.to_thread(part.open, "wb")
        try:
            async for chunk in self.iter_output(job_id, file_path):
                await asyncio.to_thread(handle.write, chunk)
        except BaseException:
            handle.close()
            with contextlib.suppress(OSError):
                part.unlink()
            raise
        handle.close()
        await asyncio.to_thread(os.replace, part, target)
        return target
