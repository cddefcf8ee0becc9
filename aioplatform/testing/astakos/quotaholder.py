"""The quotaholder: holdings and commissions in SQLite, with the arithmetic of astakos.md §5.4.

Every function takes the store's connection and runs inside the caller's transaction
(``store.run``), so raising :class:`Fault` rolls back everything the request touched:
that is how an issue that fails on its third provision leaves the first two untouched.
Holdings are keyed by ``(holder, source, resource)``; a project holding's null source
is stored as ``''`` so that the primary key holds.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "SCHEMA",
    "Fault",
    "accept_or_reject",
    "commission_info",
    "in_range",
    "issue_commission",
    "pending_commissions",
    "resolve_commissions",
    "set_holding",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS astakos_holdings (
    holder TEXT NOT NULL, source TEXT NOT NULL DEFAULT '', resource TEXT NOT NULL,
    lim INTEGER NOT NULL DEFAULT 0, usage_min INTEGER NOT NULL DEFAULT 0,
    usage_max INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (holder, source, resource));
CREATE TABLE IF NOT EXISTS astakos_commissions (
    serial INTEGER PRIMARY KEY AUTOINCREMENT, clientkey TEXT NOT NULL, name TEXT NOT NULL,
    issue_time TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS astakos_provisions (
    serial INTEGER NOT NULL REFERENCES astakos_commissions(serial) ON DELETE CASCADE,
    position INTEGER NOT NULL, holder TEXT NOT NULL, source TEXT NOT NULL, resource TEXT NOT NULL,
    quantity INTEGER NOT NULL, PRIMARY KEY (serial, position));
CREATE INDEX IF NOT EXISTS astakos_commissions_client ON astakos_commissions (clientkey);
"""


class Fault(Exception):
    """A cloudFault answer: ``{name: {"code", "message", "details"}}`` (+ ``data`` for commissions).

    ``details=None`` leaves the key out (the commission issue call builds its bodies so).
    """

    def __init__(
        self,
        status: int,
        name: str,
        message: str,
        *,
        details: str | None = "",
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message
        self.details = details
        self.data = data
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        inner: dict[str, Any] = {"message": self.message, "code": self.status}
        if self.details is not None:
            inner["details"] = self.details
        if self.data is not None:
            inner["data"] = self.data
        return {self.name: inner}


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


# Quantities, limits, usages and ids are signed 64-bit, as SQLite's INTEGER (and the real
# server's bigint columns): a value outside never reaches SQLite, which would raise
# OverflowError for it or, for a sum, silently store a REAL.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def in_range(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


def _check_owner(conn: sqlite3.Connection, clientkey: str, resource: str) -> None:
    """A component may commission only its own resources.

    The real Astakos does not check this (any component's token can move any holding),
    but ``service_quotas`` hides other components' resources from it, and a leaked
    cyclades token must not be able to spend pithos quota. Answered like a permission
    failure: 403 cloudFault ``forbidden`` (astakosclient: Forbidden, not retried as a
    quota problem), without ``details`` as the issue call's other faults.
    """
    row = conn.execute("SELECT component FROM astakos_resources WHERE name = ?", (resource,)).fetchone()
    if row is not None and row[0] != clientkey:
        raise Fault(
            403, "forbidden", f"Resource {resource} does not belong to component {clientkey}.", details=None
        )


def set_holding(conn: sqlite3.Connection, holder: str, source: str | None, resource: str, limit: int) -> None:
    """Create the holding with ``limit`` (usage 0) or change the limit of an existing one."""
    conn.execute(
        "INSERT INTO astakos_holdings (holder, source, resource, lim) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (holder, source, resource) DO UPDATE SET lim = excluded.lim",
        (holder, source or "", resource, limit),
    )


def _provision(holder: str, source: str, resource: str, quantity: int) -> dict[str, Any]:
    return {"holder": holder, "source": source or None, "resource": resource, "quantity": quantity}


def issue_commission(
    conn: sqlite3.Connection,
    clientkey: str,
    provisions: Sequence[tuple[str, str | None, str, int]],
    *,
    name: str = "",
    force: bool = False,
    auto_accept: bool = False,
) -> int:
    """Check and apply ``provisions``; raise :class:`Fault` (404/413) on the first that fails."""
    merged: dict[tuple[str, str, str], int] = {}
    for holder, source, resource, quantity in provisions:
        _check_owner(conn, clientkey, resource)
        key = (holder, source or "", resource)
        merged[key] = merged.get(key, 0) + quantity
    for (holder, source, resource), quantity in merged.items():
        row = conn.execute(
            "SELECT lim, usage_min, usage_max FROM astakos_holdings "
            "WHERE holder = ? AND source = ? AND resource = ?",
            (holder, source, resource),
        ).fetchone()
        provision = _provision(holder, source, resource, quantity)
        if row is None:
            raise Fault(
                404,
                "itemNotFound",
                f"There is no such holding ({holder}, {source or None}, {resource})",
                details=None,
                data={"name": "NoHoldingError", "provision": provision},
            )
        limit, usage_min, usage_max = row
        if quantity >= 0:
            # Even forced, a usage past INT64_MAX is beyond any capacity the holding can record.
            if (not force and usage_max + quantity > limit) or usage_max + quantity > INT64_MAX:
                raise Fault(
                    413,
                    "overLimit",
                    f"{holder} has not enough capacity of {resource}.",
                    details=None,
                    data={
                        "name": "NoCapacityError", "provision": provision,
                        "limit": limit, "usage": usage_max,
                    },
                )  # fmt: skip
            conn.execute(
                "UPDATE astakos_holdings SET usage_max = usage_max + ? "
                "WHERE holder = ? AND source = ? AND resource = ?",
                (quantity, holder, source, resource),
            )
        else:
            # A release is always checked: force does not apply to it.
            if usage_min + quantity < 0:
                raise Fault(
                    413,
                    "overLimit",
                    f"{holder} has not enough quantity of {resource}.",
                    details=None,
                    data={"name": "NoQuantityError", "provision": provision, "limit": 0, "usage": usage_min},
                )
            conn.execute(
                "UPDATE astakos_holdings SET usage_min = usage_min + ? "
                "WHERE holder = ? AND source = ? AND resource = ?",
                (quantity, holder, source, resource),
            )
    cursor = conn.execute(
        "INSERT INTO astakos_commissions (clientkey, name, issue_time) VALUES (?, ?, ?)",
        (clientkey, name, now()),
    )
    serial = int(cursor.lastrowid or 0)
    conn.executemany(
        "INSERT INTO astakos_provisions (serial, position, holder, source, resource, quantity) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(serial, i, h, s, r, q) for i, ((h, s, r), q) in enumerate(merged.items())],
    )
    if auto_accept:
        _finish(conn, serial, accept=True)
    return serial


def _finish(conn: sqlite3.Connection, serial: int, *, accept: bool) -> None:
    """Resolve one pending commission (no checks: a pending one can always be resolved)."""
    rows = conn.execute(
        "SELECT holder, source, resource, quantity FROM astakos_provisions WHERE serial = ?", (serial,)
    ).fetchall()
    for holder, source, resource, quantity in rows:
        # import q: accept usage_min += q, reject usage_max -= q
        # release q (quantity = -q): accept usage_max -= q, reject usage_min += q
        if (quantity >= 0) == accept:
            column, delta = "usage_min", quantity if accept else -quantity
        else:
            column, delta = "usage_max", quantity if accept else -quantity
        conn.execute(
            f"UPDATE astakos_holdings SET {column} = {column} + ? "
            "WHERE holder = ? AND source = ? AND resource = ?",
            (delta, holder, source, resource),
        )
    conn.execute("DELETE FROM astakos_commissions WHERE serial = ?", (serial,))


def _owned(conn: sqlite3.Connection, clientkey: str, serial: int) -> bool:
    if not in_range(serial):
        return False  # no commission can have it
    row = conn.execute(
        "SELECT 1 FROM astakos_commissions WHERE serial = ? AND clientkey = ?", (serial, clientkey)
    ).fetchone()
    return row is not None


def pending_commissions(conn: sqlite3.Connection, clientkey: str) -> list[int]:
    rows = conn.execute(
        "SELECT serial FROM astakos_commissions WHERE clientkey = ? ORDER BY serial", (clientkey,)
    ).fetchall()
    return [r[0] for r in rows]


def commission_info(conn: sqlite3.Connection, clientkey: str, serial: int) -> dict[str, Any] | None:
    if not in_range(serial):
        return None
    row = conn.execute(
        "SELECT serial, name, issue_time FROM astakos_commissions WHERE serial = ? AND clientkey = ?",
        (serial, clientkey),
    ).fetchone()
    if row is None:
        return None
    provisions = conn.execute(
        "SELECT holder, source, resource, quantity FROM astakos_provisions WHERE serial = ? "
        "ORDER BY position",
        (serial,),
    ).fetchall()
    return {
        "serial": row[0],
        "name": row[1],
        "issue_time": row[2],
        "provisions": [_provision(*p) for p in provisions],
    }


def accept_or_reject(conn: sqlite3.Connection, clientkey: str, serial: int, *, accept: bool) -> bool:
    """Resolve one commission; False when it is unknown, resolved or another component's."""
    if not _owned(conn, clientkey, serial):
        return False
    _finish(conn, serial, accept=accept)
    return True


def resolve_commissions(
    conn: sqlite3.Connection, clientkey: str, accept: Iterable[int], reject: Iterable[int]
) -> dict[str, Any]:
    """``POST commissions/action``: callpoint.resolve_pending_commissions, fault bodies included."""
    actions: dict[int, bool | None] = dict.fromkeys(accept, True)
    conflicting: list[int] = []
    for serial in reject:
        if actions.get(serial) is True:
            actions[serial] = None
            conflicting.append(serial)
        elif serial not in actions:
            actions[serial] = False
    accepted: list[int] = []
    rejected: list[int] = []
    not_found: list[int] = []
    for serial, action in actions.items():
        if action is None:
            continue
        if not _owned(conn, clientkey, serial):
            not_found.append(serial)
            continue
        _finish(conn, serial, accept=action)
        (accepted if action else rejected).append(serial)
    failed: list[list[Any]] = [
        [s, {"itemNotFound": {"message": f"serial {s} does not exist", "code": 404}}] for s in not_found
    ]
    failed += [
        [s, {"badRequest": {"message": f"cannot both accept and reject serial {s}", "code": 400}}]
        for s in conflicting
    ]
    return {"accepted": accepted, "rejected": rejected, "failed": failed}
