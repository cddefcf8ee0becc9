"""Listings whose pages cost the same however deep they are: cached counts and keyset seeks.

The services answer page-number (saltant, DRF) and limit/offset (Agave) requests. Done
naively each page runs ``COUNT(*)`` and ``LIMIT ? OFFSET ?``, which scans every row
before the page: walking a listing of N rows costs O(N²/page). Here a listing (a table,
its WHERE clause and parameters, its order) remembers, while the database is unchanged,
its count and the sort key of the last row of every page it served; the next page then
seeks past that key through the order's index (``(a, b) > (?, ?)``) instead of counting
rows off from the start.

"Unchanged" is ``conn.total_changes`` of the store's one connection together with
``PRAGMA data_version`` (which moves when another process commits to the same database
file): any insert, update or delete anywhere forgets every listing, so an answer is
always the one the plain query would give. The order must be total over the rows (unique columns last) and all
in one direction, and its columns must be selected by name. Used on the store's thread
only (no locking).
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

__all__ = ["Listing", "Listings", "page"]

# Listings remembered at once, and page ends remembered per listing.
_KEEP = 64
_ENDS = 200_000


class Listing:
    """What is known of one listing at one database version."""

    __slots__ = ("count", "ends", "version")

    def __init__(self, version: tuple[int, int]):
        self.version = version
        self.count: int | None = None
        self.ends: dict[int, tuple[Any, ...]] = {}  # offset -> sort key of the row just before it


class Listings:
    """The listings the store has served, most recently used last."""

    def __init__(self, keep: int = _KEEP):
        self._keep = keep
        self._known: OrderedDict[tuple[Any, ...], Listing] = OrderedDict()

    def get(self, conn: sqlite3.Connection, key: tuple[Any, ...]) -> Listing:
        """The listing ``key`` as of now: a fresh one if the database changed since it was seen."""
        version = (conn.total_changes, conn.execute("PRAGMA data_version").fetchone()[0])
        found = self._known.get(key)
        if found is None or found.version != version:
            found = self._known[key] = Listing(version)
            if len(self._known) > self._keep:
                self._known.popitem(last=False)
        self._known.move_to_end(key)
        return found

    def count(
        self, conn: sqlite3.Connection, listing: Listing, source: str, where: str, params: Sequence[Any]
    ) -> int:
        """``SELECT COUNT(*) FROM source WHERE where``, counted once per database version."""
        if listing.count is None:
            listing.count = int(
                conn.execute(f"SELECT COUNT(*) FROM {source} WHERE {where}", params).fetchone()[0]
            )
        return listing.count


def page(
    conn: sqlite3.Connection,
    listing: Listing,
    select: str,
    where: str,
    params: Sequence[Any],
    order: Sequence[tuple[str, bool]],
    offset: int,
    limit: int,
) -> list[sqlite3.Row]:
    """``{select} WHERE {where} ORDER BY order LIMIT limit OFFSET offset``, by a keyset seek when
    the page before ended where this one starts.

    ``order``: (column, descending) pairs, a total order in one direction; each column is
    read back from the rows by name.
    """
    if len({desc for _, desc in order}) != 1:
        raise ValueError("a keyset order runs in one direction")
    order_by = ", ".join(f"{column} DESC" if desc else column for column, desc in order)
    after = listing.ends.get(offset) if offset else None
    if after is not None:
        columns = ", ".join(column for column, _ in order)
        marks = ", ".join("?" * len(order))
        seek = "<" if order[0][1] else ">"
        rows = conn.execute(
            f"{select} WHERE ({where}) AND ({columns}) {seek} ({marks}) ORDER BY {order_by} LIMIT ?",
            [*params, *after, limit],
        ).fetchall()
    else:
        rows = conn.execute(
            f"{select} WHERE {where} ORDER BY {order_by} LIMIT ? OFFSET ?", [*params, limit, offset]
        ).fetchall()
    if rows and len(listing.ends) < _ENDS:
        last = rows[-1]
        listing.ends[offset + len(rows)] = tuple(last[column.rsplit(".", 1)[-1]] for column, _ in order)
    return rows
