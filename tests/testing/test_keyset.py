"""Keyset pages answer exactly what COUNT(*) and LIMIT/OFFSET answer, however the walk goes."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from aioplatform.testing import keyset


def table(rows: int, seed: int = 7) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    conn.executescript(
        "CREATE TABLE t (seq INTEGER PRIMARY KEY, created REAL NOT NULL, state TEXT NOT NULL);"
        "CREATE INDEX t_created ON t (created DESC, seq DESC);"
    )
    rng = random.Random(seed)
    for _ in range(rows):
        add(conn, rng)
    return conn


def add(conn: sqlite3.Connection, rng: random.Random) -> None:
    # Few distinct timestamps: ties broken by seq, as the saltant instance order is.
    conn.execute("INSERT INTO t (created, state) VALUES (?, ?)", (rng.randrange(20), rng.choice("ab")))


ORDER = [("created", True), ("seq", True)]


def plain(conn: sqlite3.Connection, where: str, params: list[object], offset: int, limit: int) -> list[int]:
    rows = conn.execute(
        f"SELECT seq FROM t WHERE {where} ORDER BY created DESC, seq DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [r[0] for r in rows]


@pytest.mark.parametrize(("where", "params"), [("1", []), ("state = ?", ["a"])])
def test_a_walk_page_by_page_matches_offset_pages(where: str, params: list[object]) -> None:
    conn = table(257)
    listings = keyset.Listings()
    seen: list[int] = []
    for offset in range(0, 300, 10):
        listing = listings.get(conn, ("t", where, *params))
        assert listings.count(conn, listing, "t", where, params) == len(plain(conn, where, params, 0, 10_000))
        rows = keyset.page(conn, listing, "SELECT * FROM t", where, params, ORDER, offset, 10)
        assert [r["seq"] for r in rows] == plain(conn, where, params, offset, 10)
        seen += [r["seq"] for r in rows]
        if offset:
            assert listing.ends, "the walk seeks from the page before"
    assert len(seen) == len(set(seen)) == len(plain(conn, where, params, 0, 10_000))


def test_a_write_between_pages_forgets_the_count_and_the_page_ends() -> None:
    conn = table(95)
    rng = random.Random(1)
    listings = keyset.Listings()
    for offset in (0, 10, 20, 30, 10, 40):
        listing = listings.get(conn, ("t", "1"))
        count = listings.count(conn, listing, "t", "1", [])
        assert count == conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]
        rows = keyset.page(conn, listing, "SELECT * FROM t", "1", [], ORDER, offset, 10)
        assert [r["seq"] for r in rows] == plain(conn, "1", [], offset, 10)
        add(conn, rng)  # a newer row shifts every page down by one
        conn.execute("DELETE FROM t WHERE seq = (SELECT MIN(seq) FROM t)")


def test_an_order_in_two_directions_is_refused() -> None:
    conn = table(3)
    listing = keyset.Listings().get(conn, ("t",))
    with pytest.raises(ValueError, match="one direction"):
        keyset.page(conn, listing, "SELECT * FROM t", "1", [], [("created", True), ("seq", False)], 0, 10)


def test_a_commit_by_another_connection_forgets_the_listing(tmp_path: Path) -> None:
    path = str(tmp_path / "db.sqlite")
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, created REAL NOT NULL, state TEXT NOT NULL)")
    conn.executemany("INSERT INTO t (created, state) VALUES (?, 'a')", [(i,) for i in range(30)])
    conn.commit()
    listings = keyset.Listings()
    listing = listings.get(conn, ("t",))
    assert listings.count(conn, listing, "t", "1", []) == 30
    keyset.page(conn, listing, "SELECT * FROM t", "1", [], ORDER, 0, 10)
    other = sqlite3.connect(path)  # another process writing to the platform's file
    other.execute("INSERT INTO t (created, state) VALUES (100, 'a')")
    other.commit()
    listing = listings.get(conn, ("t",))
    assert listings.count(conn, listing, "t", "1", []) == 31
    rows = keyset.page(conn, listing, "SELECT * FROM t", "1", [], ORDER, 10, 10)
    assert [r["seq"] for r in rows] == plain(conn, "1", [], 10, 10)
