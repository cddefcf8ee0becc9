"""Commissions: issue (one, generic, reassignment, many), inspect, accept/reject, resolve (§5.4).

Issuing is not idempotent: ``POST commissions`` is retried only under the core's POST
rules (the request provably never reached the application: connection refused, 429,
503). A connection dropped after sending is reported as the item's failure and never
re-sent, so no commission is ever issued twice; such a commission may exist on the
server, pending — ``get_pending_commissions`` finds it, and ``issue_many(...,
reconcile=True)`` matches it to its item.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..core.batch import (
    BatchResult,
    Breaker,
    OutcomeCallback,
    ProgressCallback,
    ReportedOutcomes,
    answer_lost,
    check_batch_options,
    gather,
)
from ..core.calls import CallTimeout
from ..core.checks import check_choice
from ..core.errors import NotAttempted, NotFound, PlatformError
from ..core.paths import segment
from ..core.serde import parse
from .base import AstakosBase, check_ids
from .models import CommissionInfo, CommissionRequest, Fault, ResolveResult

__all__ = ["CommissionsMixin"]

ISSUE_CONCURRENCY = 32
RESOLVE_CONCURRENCY = 8
LOOKUP_CONCURRENCY = 8  # get_commission_info calls of a reconciliation in flight
RESOLVE_RESENDS = 3  # times a chunked resolve sends serials a lost answer left provably pending

# A commission's identity for reconciliation: its name and its provisions merged by holding
# (the quotaholder stores them merged), in a canonical order.
_CommissionKey = tuple[str, tuple[tuple[str, str, str, int], ...]]


def _key(name: str, provisions: Iterable[Any]) -> _CommissionKey:
    merged: dict[tuple[str, str, str], int] = {}
    for p in provisions:
        holding = (p.holder, p.source or "", p.resource)
        merged[holding] = merged.get(holding, 0) + p.quantity
    return name, tuple(sorted((h, s, r, q) for (h, s, r), q in merged.items()))


def _check_serial(serial: Any) -> int:
    if not isinstance(serial, int) or isinstance(serial, bool):
        raise TypeError(f"serial must be an integer, got {serial!r}")
    if serial < 0:
        raise ValueError(f"serial must be >= 0, got {serial}")
    return serial


class CommissionsMixin(AstakosBase):
    async def issue_commission(self, request: CommissionRequest, *, timeout: CallTimeout = None) -> int:
        """Issue one :class:`CommissionRequest`; returns its serial (:class:`QuotaLimit` on 413)."""
        if not isinstance(request, CommissionRequest):
            raise TypeError(f"request must be a CommissionRequest, got {type(request).__name__}")
        response = await self._account("POST", "commissions", json=request.to_wire())
        return parse(response, int, key="serial")

    async def issue_one_commission(
        self,
        holder: str,
        source: Any,
        provisions: Mapping[str, int] | None = None,
        name: str = "",
        force: bool = False,
        auto_accept: bool = False,
        *,
        timeout: CallTimeout = None,
    ) -> int:
        """``holder`` (a user uuid) takes ``provisions`` ``{resource: quantity}`` from project ``source``.

        Each entry is sent as the user provision plus the project provision. The
        astakosclient 0.19 form ``issue_one_commission(holder, {(project, resource): q})``
        is accepted too. Returns the serial.
        """
        request = CommissionRequest.one(
            holder, source, provisions, name=name, force=force, auto_accept=auto_accept
        )
        return await self.issue_commission(request)

    async def issue_commission_generic(
        self,
        user_provisions: Mapping[tuple[str, str, str], int],
        project_provisions: Mapping[tuple[str, str], int],
        name: str = "",
        force: bool = False,
        auto_accept: bool = False,
        *,
        timeout: CallTimeout = None,
    ) -> int:
        """Issue ``{(user, project, resource): q}`` and ``{(project, resource): q}``; returns the serial."""
        request = CommissionRequest.generic(
            user_provisions, project_provisions, name=name, force=force, auto_accept=auto_accept
        )
        return await self.issue_commission(request)

    async def issue_resource_reassignment(
        self,
        holder: str,
        provisions: Mapping[tuple[str, str, str], int],
        name: str = "",
        force: bool = False,
        auto_accept: bool = False,
        *,
        timeout: CallTimeout = None,
    ) -> int:
        """Move ``holder``'s usage ``{(from_project, to_project, resource): q}``; returns the serial."""
        request = CommissionRequest.reassignment(
            holder, provisions, name=name, force=force, auto_accept=auto_accept
        )
        return await self.issue_commission(request)

    async def issue_many(
        self,
        requests: Iterable[CommissionRequest],
        *,
        concurrency: int = ISSUE_CONCURRENCY,
        on_progress: ProgressCallback | None = None,
        reconcile: bool = False,
        fail_fast: bool = False,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[int]:
        """Issue many commissions concurrently: a :class:`BatchResult` of serials, one outcome per input.

        ``fail_fast``, ``on_outcome`` and ``breaker`` are :func:`~aioplatform.gather`'s
        (with ``reconcile``, a lost answer is reported to ``on_outcome`` once looked up).

        A failed item is never re-sent unless the core's POST rules prove it was not
        processed; an item whose connection dropped after sending fails with a
        TransportError (its commission may exist, pending).

        With ``reconcile=True`` such lost answers are looked up instead: the pending
        serials are read before the batch and after it; each new pending serial that no
        outcome holds is described (``get_commission_info``) and matched to a lost item
        with the same name and provisions (merged by holding), oldest serial to first
        item. A match becomes that item's outcome, so the server holds exactly one
        pending commission per successful outcome and none for a failed one. The
        look-ups are GETs retried until their deadline; the one before the batch must
        succeed (else it raises, before anything is issued). What stays ambiguous:

        * Astakos has no idempotency key, and the pending list is per component: a
          commission with the same name and provisions that another client of the same
          component issues during the batch can be taken for a lost one (give each
          request a distinct ``name`` to rule this out).
        * An ``auto_accept`` commission is never pending, and one resolved by someone
          else before the look-up is no longer: their lost answers stay failures,
          though the commission was made.
        * If the look-ups after the batch fail past their deadline, lost answers stay
          failures (with a note saying so).
        """
        if isinstance(requests, (str, bytes)) or not isinstance(requests, Iterable):
            kind = type(requests).__name__
            raise TypeError(f"requests must be an iterable of CommissionRequest, got {kind}")
        items = list(requests)
        for i, item in enumerate(items):
            if not isinstance(item, CommissionRequest):
                raise TypeError(f"requests[{i}] must be a CommissionRequest, got {type(item).__name__}")
        check_batch_options(concurrency, on_progress, on_outcome, breaker, fail_fast, reconcile)
        issue = self.issue_commission
        options: dict[str, Any] = dict(
            concurrency=concurrency, on_progress=on_progress, fail_fast=fail_fast, breaker=breaker
        )
        if not reconcile:
            return await gather(issue, items, on_outcome=on_outcome, **options)
        reported = ReportedOutcomes(on_outcome, items, hold=answer_lost)
        lookups = self._for_lookups()
        before = set(await lookups.get_pending_commissions())
        result = await gather(issue, items, on_outcome=reported, **options)
        lost = [e for e in result.errors if answer_lost(e.exception)]
        if not lost:
            return await reported.release(result)
        outcomes = list(result.outcomes)
        failed = {e.index for e in result.errors}
        try:
            held = before | set(result.values)
            candidates = [s for s in await lookups.get_pending_commissions() if s not in held]

            async def describe(serial: int) -> CommissionInfo | None:
                try:
                    return await lookups.get_commission_info(serial)
                except NotFound:  # resolved since the listing: by someone else, not ours to claim
                    return None

            described = await gather(describe, candidates, concurrency=LOOKUP_CONCURRENCY)
            described.raise_for_errors()
        except PlatformError as exc:
            for e in lost:
                e.exception.add_note(f"looking up the lost commission failed: {exc}")
            return await reported.release(result)
        found: dict[_CommissionKey, list[int]] = {}
        for serial, info in sorted(zip(candidates, described.values, strict=True)):
            if info is not None:
                found.setdefault(_key(info.name, info.provisions), []).append(serial)
        for e in lost:
            request = items[e.index]
            if request.auto_accept:
                continue  # never pending: a pending one with its inputs is someone else's
            serials = found.get(_key(request.name, request.provisions))
            if serials:
                outcomes[e.index] = serials.pop(0)
                failed.discard(e.index)
        return await reported.release(BatchResult(items, outcomes, failed, stopped=result.stopped))

    async def get_pending_commissions(self, *, timeout: CallTimeout = None) -> list[int]:
        """Serials of the calling component's unresolved commissions."""
        response = await self._account("GET", "commissions")
        return parse(response, lambda body: [int(s) for s in body])

    async def get_commission_info(self, serial: int, *, timeout: CallTimeout = None) -> CommissionInfo:
        """A pending commission's name, issue time and provisions (NotFound once resolved)."""
        _check_serial(serial)
        response = await self._account("GET", f"commissions/{segment('serial', serial)}")
        return parse(response, CommissionInfo.parse)

    async def commission_action(self, serial: int, action: str, *, timeout: CallTimeout = None) -> None:
        """``"accept"`` or ``"reject"`` one pending commission (NotFound if it is not pending)."""
        _check_serial(serial)
        check_choice("action", action, ("accept", "reject"))
        await self._account("POST", f"commissions/{segment('serial', serial)}/action", json={action: ""})

    async def accept_commission(self, serial: int, *, timeout: CallTimeout = None) -> None:
        """Accept a pending commission (its usage becomes final)."""
        await self.commission_action(serial, "accept")

    async def reject_commission(self, serial: int, *, timeout: CallTimeout = None) -> None:
        """Reject a pending commission (its usage is undone)."""
        await self.commission_action(serial, "reject")

    async def _resolve_once(self, accept: list[int], reject: list[int]) -> ResolveResult:
        response = await self._account(
            "POST", "commissions/action", json={"accept": accept, "reject": reject}
        )
        return parse(response, ResolveResult.from_wire)

    async def resolve_commissions(
        self,
        accept_serials: Iterable[int],
        reject_serials: Iterable[int],
        *,
        chunk_size: int | None = None,
        concurrency: int = RESOLVE_CONCURRENCY,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> ResolveResult:
        """Accept and reject many pending commissions: ``accepted``, ``rejected``, ``failed``.

        Without ``chunk_size``, one request, as the server supports (if that request
        fails, the exception propagates: the serials may or may not have been resolved).

        With ``chunk_size``, the serials are split into chunks of that size sent
        ``concurrency`` at a time and merged into one result, and nothing is lost or
        applied twice even when answers are lost:

        * one ``GET commissions`` first: serials that are not pending for this
          component are reported ``itemNotFound`` without being sent;
        * a serial in both lists is reported failed (badRequest, as the server does)
          and not sent;
        * when a chunk's request fails (a dropped connection, a 5xx, rate limits past
          the retry budget), the pending list is read again: serials no longer pending
          were resolved by the lost request and are reported as asked; serials still
          pending were provably not, and are sent again — up to ``RESOLVE_RESENDS``
          times, reading the list after each. Only serials still pending after the last
          land in ``failed``, with a :class:`Fault` carrying the exception — as do a lost
          chunk's serials when the pending list cannot be read again (they may or may
          not have been resolved); the other chunks' answers are kept. The pending-list
          reads are GETs retried until their deadline.

        ``breaker`` (a :class:`~aioplatform.Breaker`, chunked resolves only) means what it
        means for :func:`~aioplatform.gather`, over the chunks: after ``threshold``
        consecutive chunks failed with rejected credentials or a refused connection, no
        further chunk is sent, and each serial of a chunk not sent lands in ``failed``
        with a ``NotAttempted`` :class:`Fault` (its ``exception`` the
        :class:`~aioplatform.NotAttempted`, whose ``cause`` is the last failure) — never
        re-sent, as nothing shows it would fare better. Every serial still gets exactly
        one entry. Without ``chunk_size`` there is one request and nothing to stop: the
        breaker is checked but has no effect. ``on_outcome`` and ``on_progress`` are not
        offered: the result is one merged :class:`ResolveResult` of two serial lists,
        with no per-input position to report.
        """
        accept = check_ids(accept_serials, "accept_serials", int)
        reject = check_ids(reject_serials, "reject_serials", int)
        if chunk_size is not None and (not isinstance(chunk_size, int) or isinstance(chunk_size, bool)):
            raise TypeError(f"chunk_size must be an integer or None, got {type(chunk_size).__name__}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be an integer >= 1 or None, got {chunk_size!r}")
        check_batch_options(concurrency, breaker=breaker)
        if chunk_size is None:
            return await self._resolve_once(accept, reject)

        accept = list(dict.fromkeys(accept))
        accepting = set(accept)
        conflicting = [s for s in dict.fromkeys(reject) if s in accepting]
        skip = set(conflicting)
        work = [(s, True) for s in accept if s not in skip]
        work += [(s, False) for s in dict.fromkeys(reject) if s not in skip and s not in accepting]
        lookups = self._for_lookups()
        pending = set(await lookups.get_pending_commissions())
        unknown = [s for s, _ in work if s not in pending]
        work = [(s, a) for s, a in work if s in pending]

        async def send(chunk: list[tuple[int, bool]]) -> ResolveResult:
            return await self._resolve_once([s for s, a in chunk if a], [s for s, a in chunk if not a])

        merged = ResolveResult()

        async def run(items: list[tuple[int, bool]]) -> list[tuple[list[tuple[int, bool]], BaseException]]:
            chunks = [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]
            batch = await gather(send, chunks, concurrency=concurrency, breaker=breaker)
            lost = []
            for chunk, outcome in zip(chunks, batch.outcomes, strict=True):
                if isinstance(outcome, NotAttempted):  # never sent (the breaker): not re-sent
                    fault = Fault.from_exception(outcome)
                    merged.failed.extend((s, fault) for s, _ in chunk)
                elif isinstance(outcome, BaseException):
                    lost.append((chunk, outcome))
                else:
                    merged.accepted.extend(outcome.accepted)
                    merged.rejected.extend(outcome.rejected)
                    merged.failed.extend(outcome.failed)
            return lost

        lost = await run(work)
        resends = 0
        while lost:
            try:
                still_pending = set(await lookups.get_pending_commissions())
            except PlatformError:  # which lost serials the server resolved cannot be told now
                for chunk, exc in lost:
                    fault = Fault.from_exception(exc)
                    merged.failed.extend((s, fault) for s, _ in chunk)
                break
            resend: list[tuple[int, bool]] = []
            for chunk, exc in lost:
                for s, accepting_it in chunk:
                    if s not in still_pending:
                        (merged.accepted if accepting_it else merged.rejected).append(s)
                    elif resends < RESOLVE_RESENDS:
                        resend.append((s, accepting_it))  # provably not resolved: safe to send again
                    else:
                        merged.failed.append((s, Fault.from_exception(exc)))
            if not resend:
                break
            resends += 1
            lost = await run(resend)
        for s in unknown:
            message = f"serial {s} is not pending for this component"
            raw = {"itemNotFound": {"message": message, "code": 404}}
            merged.failed.append((s, Fault("itemNotFound", 404, message, raw=raw)))
        for s in conflicting:
            message = f"cannot both accept and reject serial {s}"
            merged.failed.append(
                (s, Fault("badRequest", 400, message, raw={"badRequest": {"message": message, "code": 400}}))
            )
        return merged
