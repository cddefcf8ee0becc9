"""What every embedded Agave resource shares on the wire: the envelope, errors, ids, times,
``naked``/``filter``, ``limit``/``offset`` and the search terms of agave.md §4.

A resource handler returns ``ok(request, result, status=...)`` or raises
:class:`AgaveError`; the service's middleware turns the error into the same envelope
(``status: "error"``, ``message``, ``version``, no ``result`` key, as the Java services do).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import hashlib
import hmac
import itertools
import json
import re
import secrets
import sqlite3
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from aiohttp import web

from ..regex import compile_pattern, search_all

__all__ = [
    "positive_int",
    "hash_password",
    "password_matches",
    "set_user",
    "user_of",
    "VERSION",
    "AgaveError",
    "agave_uuid",
    "api_base",
    "envelope_body",
    "iso_millis",
    "json_body",
    "matches_search",
    "newest_first",
    "ok",
    "rlike_filter",
    "rlike_window",
    "search_text",
    "split_rlike",
    "page",
    "page_args",
    "window",
    "search_terms",
    "truthy",
]

# What agavepy compares against to pick the classic job schema (agave.md §3, §8).
VERSION = "2.2.22-r7deb380"
# The Java services' fallback default and maximum page size (agave.md §8).
DEFAULT_PAGE = 100
MAX_PAGE = 100

# The query parameters that are not search terms.
RESERVED_PARAMS = frozenset(
    {"limit", "offset", "filter", "naked", "pretty", "orderby", "order", "q", "x-nonce", "environment"}
)

_UUID_TYPES = {
    "profile": "001",
    "file": "002",
    "user": "003",
    "app": "005",
    "system": "006",
    "job": "007",
    "postit": "010",
    "notification": "011",
    "metadata": "012",
    "schema": "013",
    "monitor": "014",
}


class AgaveError(Exception):
    """An error answer: the HTTP status and the envelope's ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def agave_uuid(kind: str) -> str:
    """An Agave UUID, ``<19 digits>-<hex>-0001-<type>`` (agave.md §5)."""
    digits = str(time.time_ns() % 10**13).rjust(13, "0") + str(secrets.randbelow(10**6)).rjust(6, "0")
    return f"{digits}-{secrets.token_hex(4)}-0001-{_UUID_TYPES[kind]}"


# The first Agave root in a request path; what precedes it is the mount prefix ("/agave" on
# the platform's port, nothing on a site of its own).
_API_ROOT = re.compile(
    r"/(?:actors|apps|clients|files|jobs|meta|notifications|profiles|systems)/v2(?:/|$)|/token$"
)


# Who the gateway authenticated, on the request. aiohttp 3.14 warns on plain string
# request keys and offers RequestKey; older versions have neither.
_USER: Any = web.RequestKey("agave_user", str) if hasattr(web, "RequestKey") else "agave_user"


def set_user(request: web.Request, username: str) -> None:
    """Called by the gateway once it has authenticated the request's token."""
    request[_USER] = username


def user_of(request: web.Request) -> str:
    """The username the gateway authenticated for this request."""
    return str(request[_USER])


def hash_password(password: str) -> str:
    """How the embedded Agave stores a password: salted SHA-256 (never the password itself).

    A test server's users are throw-away, so a fast hash (the token and clients endpoints
    check one on the store's thread) is enough to keep plain passwords out of the database.
    """
    salt = secrets.token_hex(8)
    return f"sha256${salt}${hashlib.sha256((salt + password).encode()).hexdigest()}"


def password_matches(stored: str | None, password: str) -> bool:
    """Whether ``password`` is the one :func:`hash_password` stored (constant-time compare)."""
    scheme, _, rest = (stored or "").partition("$")
    salt, _, digest = rest.partition("$")
    if scheme != "sha256" or not digest:
        return False
    given = hashlib.sha256((salt + password).encode()).hexdigest()
    return hmac.compare_digest(given, digest)


def api_base(request: web.Request) -> str:
    """The absolute API root the request came through, for ``_links`` hrefs
    (``http://127.0.0.1:PORT/agave`` on the platform, ``https://127.0.0.2`` on the TLS site)."""
    match = _API_ROOT.search(request.path)
    prefix = request.path[: match.start()] if match else ""
    return str(request.url.origin()) + prefix


def iso_millis(when: float | None = None) -> str:
    """Joda's ``DateTime.toString()``: milliseconds and the zone offset (UTC here, ``-00:00`` style)."""
    moment = dt.datetime.fromtimestamp(time.time() if when is None else when, dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "+00:00")


def truthy(value: str | None) -> bool:
    """agavepy sends booleans as ``True``/``False``; other clients ``true``/``1``."""
    return value is not None and value.strip().lower() in ("true", "1", "yes", "on")


def envelope_body(result: Any, *, status: str = "success", message: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "message": message, "version": VERSION}
    if result is not None:
        body["result"] = result
    return body


def _project(value: Any, fields: Sequence[str]) -> Any:
    """``filter=f1,f2,a.b``: keep only those fields (per element of a list); ``*`` keeps all."""
    if "*" in fields or not fields:
        return value
    if isinstance(value, list):
        return [_project(v, fields) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for field in fields:
        head, _, rest = field.partition(".")
        if head in value:
            out[head] = _project(value[head], [rest]) if rest else value[head]
    return out


def ok(
    request: web.Request,
    result: Any = None,
    *,
    status: int = 200,
    message: str | None = None,
) -> web.Response:
    """A success answer, honouring ``naked``, ``filter`` and ``pretty`` (agave.md §3)."""
    query = request.query
    fields = [f.strip() for f in query.get("filter", "").split(",") if f.strip()]
    if fields and result is not None:
        result = _project(result, fields)
    indent = 2 if truthy(query.get("pretty")) else None
    if truthy(query.get("naked")):
        if result is None:
            return web.Response(status=204 if status == 200 else status)
        return web.Response(
            status=status, text=json.dumps(result, indent=indent), content_type="application/json"
        )
    return web.Response(
        status=status,
        text=json.dumps(envelope_body(result, message=message), indent=indent),
        content_type="application/json",
    )


async def json_body(request: web.Request) -> Any:
    """The request body as JSON; a malformed body is a 400, as the Java services answer."""
    raw = await request.read()
    if not raw.strip():
        raise AgaveError(400, "No request body provided")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise AgaveError(400, "Malformed JSON request body") from None


def positive_int(value: Any, message: str) -> int:
    """``value`` (an int, or a str of one) as an integer >= 1; otherwise a 400 with ``message``
    (each resource words it as its server does)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise AgaveError(400, message)
    try:
        number = int(value)
    except ValueError:
        raise AgaveError(400, message) from None
    if number < 1:
        raise AgaveError(400, message)
    return number


def page_args(request: web.Request) -> tuple[int, int]:
    """``limit`` (default and cap 100) and ``offset`` from the query; junk is a 400."""
    try:
        limit = int(request.query.get("limit", DEFAULT_PAGE))
        offset = int(request.query.get("offset", 0))
    except ValueError:
        raise AgaveError(400, "limit and offset must be integers") from None
    if limit < 0 or offset < 0:
        raise AgaveError(400, "limit and offset must not be negative")
    return min(limit or DEFAULT_PAGE, MAX_PAGE), offset


def page(request: web.Request, items: Sequence[Any]) -> list[Any]:
    limit, offset = page_args(request)
    return list(items[offset : offset + limit])


T = TypeVar("T")


def window(items: Iterable[T], offset: int, limit: int) -> list[T]:
    """One page of a filtered stream: skips ``offset`` items, takes ``limit``, and reads no
    further (a listing matched in Python stops as soon as its page is full)."""
    return list(itertools.islice(items, offset, offset + limit))


# -- search terms (agave.md §4) ----------------------------------------------------------------

_OPS = frozenset(
    {
        "eq",
        "neq",
        "lt",
        "lte",
        "gt",
        "gte",
        "like",
        "nlike",
        "rlike",
        "in",
        "nin",
        "on",
        "before",
        "after",
        "between",
    }
)


def search_terms(query: Mapping[str, str], fields: Iterable[str]) -> list[tuple[str, str, str]]:
    """``(field, op, value)`` for each search term of the query.

    ``fields`` are the JSON field names a resource can be searched on (matched
    case-insensitively, as the Java services do); an unknown field or operator is a 400.
    """
    by_lower = {f.lower(): f for f in fields}
    terms = []
    for key, value in query.items():
        if key.lower() in RESERVED_PARAMS:
            continue
        name, _, op = key.rpartition(".") if "." in key else (key, "", "eq")
        if op.lower() not in _OPS:
            name, op = key, "eq"
        field = by_lower.get(name.lower())
        if field is None:
            continue  # other declared query parameters (publicOnly, type, ...) are the resource's
        if op.lower() == "rlike":
            # Checked here, on the event loop, so a pattern RE2 cannot run in linear time is
            # a 400 before the store is touched (the compiled pattern is cached for rlike_filter).
            try:
                compile_pattern(value)
            except ValueError as exc:
                raise AgaveError(400, f"{key}: {exc}") from None
        terms.append((field, op.lower(), value))
    return terms


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def search_text(value: Any) -> str:
    """A field's value as the search terms compare it: booleans as ``true``/``false``, a
    missing value as the empty string, anything else as ``str()``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _compare(actual: Any, op: str, wanted: str) -> bool:
    actual_text = search_text(actual)
    if op in ("eq", "on"):
        return actual_text.lower() == wanted.lower()
    if op == "neq":
        return actual_text.lower() != wanted.lower()
    if op in ("like", "nlike"):
        hit = fnmatch.fnmatchcase(actual_text.lower(), wanted.lower())
        return hit if op == "like" else not hit
    if op in ("in", "nin"):
        hit = actual_text.lower() in {w.strip().lower() for w in wanted.split(",")}
        return hit if op == "in" else not hit
    if op == "between":
        low, _, high = wanted.partition(",")
        return _compare(actual, "gte", low) and _compare(actual, "lte", high)
    if op == "rlike":
        # Never matched here (that would be on the store's thread): split_rlike takes the
        # rlike terms out, and rlike_filter matches them on a worker thread.
        raise ValueError("rlike terms are matched by rlike_filter, off the store's thread")
    a, w = _as_number(actual), _as_number(wanted)
    if a is None or w is None:
        a_s, w_s = actual_text, wanted  # ISO timestamps compare as text
        pairs = {
            "lt": a_s < w_s,
            "lte": a_s <= w_s,
            "gt": a_s > w_s,
            "gte": a_s >= w_s,
            "before": a_s < w_s,
            "after": a_s > w_s,
        }
    else:
        pairs = {"lt": a < w, "lte": a <= w, "gt": a > w, "gte": a >= w, "before": a < w, "after": a > w}
    return pairs.get(op, False)


def matches_search(doc: Mapping[str, Any], terms: Sequence[tuple[str, str, str]]) -> bool:
    """Whether a JSON document satisfies every search term but ``rlike`` (see :func:`split_rlike`)."""
    return all(_compare(doc.get(field), op, value) for field, op, value in terms)


# -- rlike: matched off the store's thread ------------------------------------------------------
#
# A regular expression over every row of a listing is the one search term whose cost a
# client chooses (RE2 is linear, but linear in megabytes is seconds). The store's one
# thread serves all four services, so a listing with rlike terms reads its candidate rows
# in the store (the other terms narrowing them there), matches the patterns on a worker
# thread (regex.search_all), and only then applies offset and limit.

Term = tuple[str, str, str]
R = TypeVar("R")

# Rows read per store transaction by newest_first.
CHUNK = 500


class StoreRun(Protocol):
    """``store.run`` (or a resource's wrapper of it): ``fn`` in one store transaction."""

    def __call__(self, fn: Callable[[sqlite3.Connection], R], /) -> Awaitable[R]: ...


def split_rlike(terms: Sequence[Term]) -> tuple[list[Term], list[tuple[str, str]]]:
    """The terms :func:`matches_search` answers, and the ``(field, pattern)`` of the rlike ones."""
    plain = [term for term in terms if term[1] != "rlike"]
    patterns = [(field, value) for field, op, value in terms if op == "rlike"]
    return plain, patterns


async def rlike_filter(
    candidates: Sequence[tuple[Mapping[str, Any], T]],
    patterns: Sequence[tuple[str, str]],
    *,
    text: Callable[[Any], str | None] = search_text,
) -> list[T]:
    """The items (in order) whose document's fields match every pattern, matched on a worker
    thread by :func:`aioplatform.testing.regex.search_all`, never on the store's thread nor
    the event loop. ``text`` reads a field's value as the resource's search does (None: no
    match). Each pattern only looks at what the ones before it kept."""
    kept = list(candidates)
    for field, pattern in patterns:
        if not kept:
            break
        hits = await search_all(pattern, [text(doc.get(field)) for doc, _ in kept])
        kept = [candidate for candidate, hit in zip(kept, hits, strict=True) if hit]
    return [item for _, item in kept]


async def rlike_window(
    chunks: AsyncGenerator[Sequence[tuple[Mapping[str, Any], T]], None],
    patterns: Sequence[tuple[str, str]],
    offset: int,
    limit: int,
    *,
    text: Callable[[Any], str | None] = search_text,
) -> list[T]:
    """One page of a listing whose candidates come a chunk (one store transaction) at a time:
    each chunk is matched by :func:`rlike_filter`, ``offset`` matching items are skipped and
    ``limit`` taken, and no further chunk is read once the page is full."""
    found: list[T] = []
    skip = offset
    if limit <= 0:
        return found
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            for item in await rlike_filter(chunk, patterns, text=text):
                if skip:
                    skip -= 1
                    continue
                found.append(item)
                if len(found) >= limit:
                    return found
    return found


async def newest_first(
    run: StoreRun,
    select: str,
    args: Sequence[Any],
    candidates: Callable[[list[sqlite3.Row]], list[tuple[Mapping[str, Any], T]]],
    *,
    size: int = CHUNK,
) -> AsyncGenerator[list[tuple[Mapping[str, Any], T]], None]:
    """The rows of ``select`` (``SELECT ... FROM t WHERE ...`` over a table with an integer
    ``seq``), newest first, ``size`` at a time: one transaction each, which also turns them
    into candidates (``candidates``, run in it, may leave rows out), so no transaction holds
    the store for long and :func:`rlike_window` stops reading once its page is full."""
    after: int | None = None
    while True:

        def read(
            conn: sqlite3.Connection, after: int | None = after
        ) -> tuple[list[tuple[Mapping[str, Any], T]], int | None]:
            sql, params = select, list(args)
            if after is not None:
                sql, params = f"{sql} AND seq < ?", [*params, after]
            rows = conn.execute(f"{sql} ORDER BY seq DESC LIMIT ?", [*params, size]).fetchall()
            last = int(rows[-1]["seq"]) if len(rows) == size else None
            return candidates(rows), last

        chunk, after = await run(read)
        yield chunk
        if after is None:
            return
