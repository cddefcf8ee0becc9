"""Meta of the embedded Agave: metadata records, schemas, their permissions, and ``q``.

Faithful to agave.md §6.5. A record's ``value`` is stored as JSON and answered parsed;
create answers 201; ``POST /meta/v2/data/{uuid}`` replaces the record whole; delete
answers 200 without a result, 401 without write permission (as the Java service does).
``associationIds`` is a list (a single string is accepted). A record with a
``schemaId`` must name a schema the caller may read, and its ``value`` must validate
against it (400 otherwise) — checked by the small validator below, not by
``jsonschema`` (not a dependency): ``type``, ``properties``, ``required``, ``enum``,
``const``, ``items``, ``minimum``/``maximum`` (and the exclusive forms),
``minLength``/``maxLength``, ``minItems``/``maxItems``, ``pattern`` (linear time) and
``additionalProperties``; other keywords are ignored, as JSON Schema ignores unknown ones.
The validation runs on a worker thread, never on the store's: the schema is read in one
store transaction and the record written in another if the schema is still the one the
value was validated against (validated again otherwise; ``MetaResource._save``).

``q`` is a MongoDB query over the record's JSON (``uuid``, ``owner``, ``name``,
``value``, ``schemaId``, ``associationIds``, ``created``, ``lastUpdated``): equality on
top-level and dotted fields (``value.x``; an array matches when any element does),
``$eq``, ``$ne``, ``$gt``, ``$gte``, ``$lt``, ``$lte``, ``$in``, ``$nin``, ``$exists``,
``$regex`` (with ``$options`` ``i``, ``m``, ``s``; run in linear time by
:mod:`aioplatform.testing.regex`, a pattern it refuses is a 400), ``$and``, ``$or`` and
``$nor``. A malformed ``q`` is 400 "Malformed JSON Query"; an unsupported operator is a
400 naming it. ``q`` is parsed and its patterns compiled on the event loop; the store
only runs bounded work: a ``name``/``uuid``/``owner`` equality is answered in SQL, and
the rest of the query is evaluated over the visible rows in chunks of
:data:`CHUNK` (read in one store transaction each, evaluated on a worker thread: a
``$regex`` never runs on the store's thread) until the page is full.

Permissions (READ, WRITE, READ_WRITE, ALL, NONE) per user, on records and schemas
alike: the owner has ALL; a grant needs write permission. Listings show what the caller
owns or was granted; ``privileged=false`` shows only the records granted to the caller
explicitly (agave.md §6.5). ``orderBy`` is a field (``name``, ``created``,
``lastUpdated``, ``uuid``, ``owner`` or a dotted ``value.x``), ``order`` ASC or DESC;
the default is ``lastUpdated`` DESC.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import keyset, regex
from .grants import grantee
from .wire import AgaveError, agave_uuid, api_base, iso_millis, json_body, ok, page_args, truthy, user_of

if TYPE_CHECKING:
    from .service import AgaveService

__all__ = ["install", "validate"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS agave_meta_data (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT NOT NULL UNIQUE, owner TEXT NOT NULL,
    name TEXT NOT NULL, value TEXT NOT NULL, schema_id TEXT, association_ids TEXT NOT NULL,
    created REAL NOT NULL, last_updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS agave_meta_data_owner ON agave_meta_data (owner, last_updated);
CREATE INDEX IF NOT EXISTS agave_meta_data_name ON agave_meta_data (name);
CREATE TABLE IF NOT EXISTS agave_meta_schemas (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT NOT NULL UNIQUE, owner TEXT NOT NULL,
    schema TEXT NOT NULL, created REAL NOT NULL, last_updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS agave_meta_pems (
    kind TEXT NOT NULL, uuid TEXT NOT NULL, username TEXT NOT NULL, read INTEGER NOT NULL,
    write INTEGER NOT NULL, PRIMARY KEY (kind, uuid, username));
CREATE INDEX IF NOT EXISTS agave_meta_pems_user ON agave_meta_pems (kind, username, uuid);
"""

# Rows evaluated per store transaction when a query needs Python.
CHUNK = 500
_PERMISSIONS = {
    "READ": (True, False),
    "WRITE": (False, True),
    "READ_WRITE": (True, True),
    "ALL": (True, True),
    "NONE": (False, False),
}
MALFORMED = "Malformed JSON Query"


# -- q: a MongoDB query, compiled once into a predicate ------------------------------------------

Predicate = Callable[[Mapping[str, Any]], bool]
_MISSING = object()


def _resolve(doc: Any, parts: Sequence[str]) -> list[Any]:
    """The values a dotted path reaches; arrays on the way fan out (Mongo's semantics)."""
    if not parts:
        return [doc]
    head, rest = parts[0], parts[1:]
    if isinstance(doc, dict):
        return _resolve(doc[head], rest) if head in doc else []
    if isinstance(doc, list):
        if head.isdigit() and int(head) < len(doc):
            return _resolve(doc[int(head)], rest)
        found: list[Any] = []
        for element in doc:
            if isinstance(element, dict):
                found.extend(_resolve(element, parts))
        return found
    return []


def _candidates(values: list[Any]) -> list[Any]:
    """What a condition is tested against: each value, and each element of an array value."""
    out: list[Any] = []
    for value in values:
        out.append(value)
        if isinstance(value, list):
            out.extend(value)
    return out


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _equal(a: Any, b: Any) -> bool:
    return _kind(a) == _kind(b) and a == b


def _compare(op: str, a: Any, b: Any) -> bool:
    if _kind(a) != _kind(b) or _kind(a) not in ("number", "string"):
        return False
    outcome: bool = {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]
    return outcome


def _operator(op: str, arg: Any, spec: Mapping[str, Any]) -> Callable[[list[Any]], bool]:
    """One ``{"$op": arg}`` condition over the values a path reached."""
    if op == "$eq":
        return lambda values: any(_equal(v, arg) for v in _candidates(values))
    if op == "$ne":
        return lambda values: not any(_equal(v, arg) for v in _candidates(values))
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return lambda values: any(_compare(op, v, arg) for v in _candidates(values))
    if op in ("$in", "$nin"):
        if not isinstance(arg, list):
            raise AgaveError(400, f"{MALFORMED}: {op} needs an array")
        negate = op == "$nin"

        def listed(values: list[Any]) -> bool:
            return any(_equal(v, a) for v in _candidates(values) for a in arg) != negate

        return listed
    if op == "$exists":
        wanted = bool(arg)
        return lambda values: bool(values) == wanted
    if op == "$regex":
        options = spec.get("$options", "")
        if not isinstance(arg, str) or not isinstance(options, str):
            raise AgaveError(400, f"{MALFORMED}: $regex and $options must be strings")
        if set(options) - set("ims"):
            raise AgaveError(400, f"{MALFORMED}: unsupported $options {options!r} (i, m and s are)")
        flags = "".join(sorted(set(options) & set("ms")))
        try:
            matcher = regex.compile_pattern(f"(?{flags}){arg}" if flags else arg, ignore_case="i" in options)
        except ValueError as exc:  # RegexRefused, BadPattern
            raise AgaveError(400, f"Invalid regular expression {arg!r}: {exc}") from None
        return lambda values: any(isinstance(v, str) and matcher.search(v) for v in _candidates(values))
    if op == "$options":
        return lambda values: True  # read with $regex
    raise AgaveError(400, f"{MALFORMED}: unsupported operator {op}")


def _field(path: str, spec: Any) -> Predicate:
    parts = path.split(".")
    if not path or any(not p for p in parts):
        raise AgaveError(400, f"{MALFORMED}: invalid field {path!r}")
    if isinstance(spec, dict) and spec and all(isinstance(k, str) and k.startswith("$") for k in spec):
        if "$options" in spec and "$regex" not in spec:
            raise AgaveError(400, f"{MALFORMED}: $options without $regex")
        tests = [_operator(op, arg, spec) for op, arg in spec.items()]
        return lambda doc: all(test(_resolve(doc, parts)) for test in tests)
    return lambda doc: any(_equal(v, spec) for v in _candidates(_resolve(doc, parts)))


def _combine(op: str, parts: list[Predicate]) -> Predicate:
    def combined(doc: Mapping[str, Any]) -> bool:
        if op == "$and":
            return all(p(doc) for p in parts)
        hit = any(p(doc) for p in parts)
        return hit if op == "$or" else not hit

    return combined


def compile_query(query: Any) -> Predicate:
    """A MongoDB query document as a predicate over a JSON document; 400 when malformed."""
    if not isinstance(query, dict):
        raise AgaveError(400, MALFORMED)
    tests: list[Predicate] = []
    for key, spec in query.items():
        if key in ("$and", "$or", "$nor"):
            if not isinstance(spec, list) or not spec:
                raise AgaveError(400, f"{MALFORMED}: {key} needs a non-empty array of queries")
            tests.append(_combine(key, [compile_query(q) for q in spec]))
        elif key.startswith("$"):
            raise AgaveError(400, f"{MALFORMED}: unsupported operator {key}")
        else:
            tests.append(_field(key, spec))
    return lambda doc: all(t(doc) for t in tests)


def parse_query(request: web.Request) -> tuple[dict[str, Any], Predicate] | None:
    """The request's ``q`` (spaces may arrive as ``+``: the query decoding reads them so)."""
    text = request.query.get("q")
    if text is None or not text.strip():
        return None
    try:
        query = json.loads(text)
    except (ValueError, RecursionError):
        raise AgaveError(400, MALFORMED) from None
    if not isinstance(query, dict):
        raise AgaveError(400, MALFORMED)
    return query, compile_query(query)


# -- JSON Schema: the common keywords ---------------------------------------------------------

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    ),
}


def _check_schema(schema: Any, where: str = "schema") -> None:
    """A schema document the validator can apply; a 400 naming what is wrong otherwise."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise AgaveError(400, f"Invalid JSON Schema: {where} must be an object")
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    if any(k not in _TYPES for k in kinds):
        raise AgaveError(400, f"Invalid JSON Schema: {where}.type {kind!r} is not a JSON Schema type")
    for key in ("properties",):
        if key in schema:
            if not isinstance(schema[key], dict):
                raise AgaveError(400, f"Invalid JSON Schema: {where}.{key} must be an object")
            for name, sub in schema[key].items():
                _check_schema(sub, f"{where}.{key}.{name}")
    if "required" in schema and (
        not isinstance(schema["required"], list) or not all(isinstance(r, str) for r in schema["required"])
    ):
        raise AgaveError(400, f"Invalid JSON Schema: {where}.required must be an array of names")
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise AgaveError(400, f"Invalid JSON Schema: {where}.enum must be an array")
    items = schema.get("items")
    if isinstance(items, list):
        for i, sub in enumerate(items):
            _check_schema(sub, f"{where}.items[{i}]")
    elif items is not None:
        _check_schema(items, f"{where}.items")
    if isinstance(schema.get("additionalProperties"), dict):
        _check_schema(schema["additionalProperties"], f"{where}.additionalProperties")
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        flag = key.startswith("exclusive") and isinstance(schema.get(key), bool)
        if key in schema and _kind(schema[key]) != "number" and not flag:
            raise AgaveError(400, f"Invalid JSON Schema: {where}.{key} must be a number")
    for key in ("minLength", "maxLength", "minItems", "maxItems"):
        # Applied with len() comparisons: anything but a count would fail every validation.
        bound = schema.get(key)
        if key in schema and (not isinstance(bound, int) or isinstance(bound, bool) or bound < 0):
            raise AgaveError(400, f"Invalid JSON Schema: {where}.{key} must be a non-negative integer")
    if "pattern" in schema:
        try:
            regex.compile_pattern(str(schema["pattern"]))
        except ValueError as exc:
            raise AgaveError(400, f"Invalid JSON Schema: {where}.pattern: {exc}") from None


def validate(value: Any, schema: Any, where: str = "value") -> list[str]:
    """What is wrong with ``value`` under ``schema`` (empty when it validates)."""
    if schema is True or schema == {}:
        return []
    if schema is False:
        return [f"{where} is not allowed"]
    problems: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_TYPES[k](value) for k in kinds):
            return [f"{where} must be of type {' or '.join(kinds)}"]
    if "enum" in schema and not any(_equal(value, e) or value == e for e in schema["enum"]):
        problems.append(f"{where} must be one of {schema['enum']!r}")
    if "const" in schema and not (_equal(value, schema["const"]) or value == schema["const"]):
        problems.append(f"{where} must be {schema['const']!r}")
    if _kind(value) == "number":
        low, high = schema.get("minimum"), schema.get("maximum")
        ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        if isinstance(ex_low, bool):  # draft 4: a flag on minimum
            ex_low, low = (low if ex_low else None), (None if ex_low else low)
        if isinstance(ex_high, bool):
            ex_high, high = (high if ex_high else None), (None if ex_high else high)
        if low is not None and value < low:
            problems.append(f"{where} must be >= {low}")
        if high is not None and value > high:
            problems.append(f"{where} must be <= {high}")
        if ex_low is not None and value <= ex_low:
            problems.append(f"{where} must be > {ex_low}")
        if ex_high is not None and value >= ex_high:
            problems.append(f"{where} must be < {ex_high}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(f"{where} must be at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{where} must be at most {schema['maxLength']} characters")
        if "pattern" in schema and not regex.search(str(schema["pattern"]), value):
            problems.append(f"{where} must match {schema['pattern']!r}")
    if isinstance(value, list):
        items = schema.get("items")
        if "minItems" in schema and len(value) < schema["minItems"]:
            problems.append(f"{where} must have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append(f"{where} must have at most {schema['maxItems']} items")
        if isinstance(items, list):
            for i, (element, sub) in enumerate(zip(value, items, strict=False)):
                problems.extend(validate(element, sub, f"{where}[{i}]"))
        elif items is not None:
            for i, element in enumerate(value):
                problems.extend(validate(element, items, f"{where}[{i}]"))
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in value:
                problems.append(f"{where}.{name} is required")
        extra = schema.get("additionalProperties", True)
        for name, element in value.items():
            if name in properties:
                problems.extend(validate(element, properties[name], f"{where}.{name}"))
            elif extra is False:
                problems.append(f"{where}.{name} is not an allowed property")
            elif isinstance(extra, dict):
                problems.extend(validate(element, extra, f"{where}.{name}"))
    return problems


# -- the resource ---------------------------------------------------------------------------------

_ORDER_COLUMNS = {
    "name": "name", "created": "created", "lastUpdated": "last_updated", "lastModified": "last_updated",
    "uuid": "uuid", "owner": "owner", "schemaId": "schema_id", "seq": "seq",
}  # fmt: skip
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")


class Kind:
    """What differs between records (``data``) and schemas: table, uuid type, names."""

    def __init__(self, name: str, table: str, uuid_kind: str, label: str):
        self.name, self.table, self.uuid_kind, self.label = name, table, uuid_kind, label


DATA = Kind("data", "agave_meta_data", "metadata", "metadata item")
SCHEMAS = Kind("schemas", "agave_meta_schemas", "schema", "schema")


class MetaResource:
    def __init__(self, service: AgaveService):
        self.service = service
        self._listings = keyset.Listings()  # store thread only

    # -- rendering --------------------------------------------------------------------------

    @staticmethod
    def _record(row: sqlite3.Row, base: str) -> dict[str, Any]:
        here = f"{base}/meta/v2/data/{row['uuid']}"
        ids = json.loads(row["association_ids"])
        return {
            "uuid": row["uuid"],
            "owner": row["owner"],
            "internalUsername": None,
            "schemaId": row["schema_id"],
            "associationIds": ids,
            "name": row["name"],
            "value": json.loads(row["value"]),
            "created": iso_millis(row["created"]),
            "lastUpdated": iso_millis(row["last_updated"]),
            "_links": {
                "self": {"href": here},
                "permissions": {"href": f"{here}/pems"},
                "owner": {"href": f"{base}/profiles/v2/{row['owner']}"},
                "associationIds": [{"rel": i, "href": None, "title": None} for i in ids],
            },
        }

    @staticmethod
    def _schema(row: sqlite3.Row, base: str) -> dict[str, Any]:
        here = f"{base}/meta/v2/schemas/{row['uuid']}"
        return {
            "uuid": row["uuid"],
            "owner": row["owner"],
            "internalUsername": None,
            "schema": json.loads(row["schema"]),
            "created": iso_millis(row["created"]),
            "lastUpdated": iso_millis(row["last_updated"]),
            "_links": {
                "self": {"href": here},
                "permissions": {"href": f"{here}/pems"},
                "owner": {"href": f"{base}/profiles/v2/{row['owner']}"},
            },
        }

    def _render(self, kind: Kind, row: sqlite3.Row, base: str) -> dict[str, Any]:
        return self._record(row, base) if kind is DATA else self._schema(row, base)

    # -- access -----------------------------------------------------------------------------

    @staticmethod
    def _rights(conn: sqlite3.Connection, kind: Kind, row: sqlite3.Row, user: str) -> tuple[bool, bool]:
        if row["owner"] == user:
            return True, True
        pem = conn.execute(
            "SELECT read, write FROM agave_meta_pems WHERE kind = ? AND uuid = ? AND username = ?",
            (kind.name, row["uuid"], user),
        ).fetchone()
        return (False, False) if pem is None else (bool(pem["read"]), bool(pem["write"]))

    def _visible(
        self, conn: sqlite3.Connection, kind: Kind, uuid: str, user: str, *, write: bool = False
    ) -> sqlite3.Row:
        row = conn.execute(f"SELECT * FROM {kind.table} WHERE uuid = ?", (uuid,)).fetchone()
        if row is None:
            raise AgaveError(404, f"No {kind.label} found with uuid {uuid}")
        read, can_write = self._rights(conn, kind, row, user)
        if not read and not can_write:
            raise AgaveError(404, f"No {kind.label} found with uuid {uuid}")
        if write and not can_write:
            raise AgaveError(401, f"User {user} does not have permission to modify {kind.label} {uuid}")
        return row  # type: ignore[no-any-return]

    # -- records ----------------------------------------------------------------------------

    @staticmethod
    def _fields(body: Any) -> tuple[str, Any, str | None, str]:
        """(name, value, schemaId, associationIds JSON) of a MetadataRequest: the checks that need
        no store (a 400 otherwise)."""
        if not isinstance(body, dict):
            raise AgaveError(400, "Metadata request must be a JSON object")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise AgaveError(
                400, "No name attribute specified. Please provide a valid name for this metadata item."
            )
        if "value" not in body or body["value"] is None:
            raise AgaveError(400, "No value attribute specified. Please provide a valid JSON value.")
        value = body["value"]
        ids = body.get("associationIds")
        if ids is None:
            ids = []
        elif isinstance(ids, str):
            ids = [ids]
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise AgaveError(400, "associationIds must be a list of uuids")
        schema_id = body.get("schemaId")
        if schema_id is not None and (not isinstance(schema_id, str) or not schema_id):
            raise AgaveError(400, "schemaId must be a schema uuid")
        return name, value, schema_id, json.dumps(list(dict.fromkeys(ids)))

    def _schema_text(self, conn: sqlite3.Connection, schema_id: str, user: str) -> str:
        """The stored JSON of the schema a record names; a 400 when the caller cannot read it."""
        row = conn.execute("SELECT * FROM agave_meta_schemas WHERE uuid = ?", (schema_id,)).fetchone()
        if row is None or not any(self._rights(conn, SCHEMAS, row, user)):
            raise AgaveError(400, f"Invalid schemaId {schema_id}: no such schema")
        return str(row["schema"])

    @staticmethod
    def _conforming(value: Any, schema_text: str, schema_id: str) -> str:
        """``value`` as JSON once it validates against the schema (a 400 otherwise); on a worker."""
        problems = validate(value, json.loads(schema_text))
        if problems:
            raise AgaveError(
                400, f"Metadata value does not conform to schema {schema_id}: " + "; ".join(problems[:5])
            )
        return json.dumps(value)

    async def _save(
        self,
        body: Any,
        user: str,
        uuid: str | None,
        write: Callable[[sqlite3.Connection, str, str, str | None, str], dict[str, Any]],
    ) -> dict[str, Any]:
        """Check a MetadataRequest and ``write(conn, name, value, schemaId, ids)`` it.

        ``uuid`` names the record an update replaces: the caller's write permission on it is
        checked first, in each store job, and answered before anything wrong with the body
        (404, 401, then 400s, as before). A ``schemaId``'s validation (a ``pattern`` is an RE2
        match over a value that may be megabytes long) never runs on the store's thread, which
        every service shares: one store job reads the schema, a worker thread validates, and a
        second store job writes if the schema is still the one validated against. Had it
        changed in between (or been deleted, or its grant revoked), the value is validated
        again against the schema as now stored (or answered 400 as an unknown schema), so a
        record is written only when it conforms to the schema at the moment of writing, as
        when all of it ran in one transaction. A value that does not conform is answered 400
        from the schema as read (a request answered before the schema's change).
        """
        store = self.service.store

        def check_record(conn: sqlite3.Connection) -> None:
            if uuid is not None:
                self._visible(conn, DATA, uuid, user, write=True)

        try:
            name, value, schema_id, ids = self._fields(body)
        except AgaveError as refused:
            if uuid is not None:
                await store.run(check_record)  # a 404/401 comes before what the body lacks
            raise refused from None
        if schema_id is None:

            def save(conn: sqlite3.Connection) -> dict[str, Any]:
                check_record(conn)
                return write(conn, name, json.dumps(value), None, ids)

            return await store.run(save)
        checked_id = schema_id

        def read_schema(conn: sqlite3.Connection) -> str:
            check_record(conn)
            return self._schema_text(conn, checked_id, user)

        schema_text = await store.run(read_schema)
        while True:
            value_json = await asyncio.to_thread(self._conforming, value, schema_text, checked_id)

            def save_if_unchanged(
                conn: sqlite3.Connection, validated: str = schema_text, value_json: str = value_json
            ) -> dict[str, Any] | str:
                check_record(conn)
                current = self._schema_text(conn, checked_id, user)
                if current != validated:
                    return current  # changed meanwhile: validate again, off this thread
                return write(conn, name, value_json, checked_id, ids)

            saved = await store.run(save_if_unchanged)
            if not isinstance(saved, str):
                return saved
            schema_text = saved

    async def add(self, request: web.Request) -> web.StreamResponse:
        body = await json_body(request)
        user, base = user_of(request), api_base(request)

        def insert(
            conn: sqlite3.Connection, name: str, value: str, schema_id: str | None, ids: str
        ) -> dict[str, Any]:
            now = time.time()
            uuid = agave_uuid("metadata")
            conn.execute(
                "INSERT INTO agave_meta_data (uuid, owner, name, value, schema_id, association_ids,"
                " created, last_updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (uuid, user, name, value, schema_id, ids, now, now),
            )
            row = conn.execute("SELECT * FROM agave_meta_data WHERE uuid = ?", (uuid,)).fetchone()
            return self._record(row, base)

        return ok(request, await self._save(body, user, None, insert), status=201)

    async def update(self, request: web.Request) -> web.StreamResponse:
        body = await json_body(request)
        uuid, user, base = request.match_info["uuid"], user_of(request), api_base(request)

        def replace(
            conn: sqlite3.Connection, name: str, value: str, schema_id: str | None, ids: str
        ) -> dict[str, Any]:
            conn.execute(
                "UPDATE agave_meta_data SET name = ?, value = ?, schema_id = ?, association_ids = ?,"
                " last_updated = ? WHERE uuid = ?",
                (name, value, schema_id, ids, time.time(), uuid),
            )
            row = conn.execute("SELECT * FROM agave_meta_data WHERE uuid = ?", (uuid,)).fetchone()
            return self._record(row, base)

        return ok(request, await self._save(body, user, uuid, replace))

    # -- schemas ----------------------------------------------------------------------------

    async def add_schema(self, request: web.Request) -> web.StreamResponse:
        body = await json_body(request)
        _check_schema(body)
        if not isinstance(body, dict):
            raise AgaveError(400, "A schema must be a JSON object")
        user, base = user_of(request), api_base(request)

        def insert(conn: sqlite3.Connection) -> dict[str, Any]:
            now = time.time()
            uuid = agave_uuid("schema")
            conn.execute(
                "INSERT INTO agave_meta_schemas (uuid, owner, schema, created, last_updated)"
                " VALUES (?, ?, ?, ?, ?)",
                (uuid, user, json.dumps(body), now, now),
            )
            return self._schema(
                conn.execute("SELECT * FROM agave_meta_schemas WHERE uuid = ?", (uuid,)).fetchone(), base
            )

        return ok(request, await self.service.store.run(insert), status=201)

    async def update_schema(self, request: web.Request) -> web.StreamResponse:
        body = await json_body(request)
        _check_schema(body)
        if not isinstance(body, dict):
            raise AgaveError(400, "A schema must be a JSON object")
        uuid, user, base = request.match_info["uuid"], user_of(request), api_base(request)

        def replace(conn: sqlite3.Connection) -> dict[str, Any]:
            self._visible(conn, SCHEMAS, uuid, user, write=True)
            conn.execute(
                "UPDATE agave_meta_schemas SET schema = ?, last_updated = ? WHERE uuid = ?",
                (json.dumps(body), time.time(), uuid),
            )
            return self._schema(
                conn.execute("SELECT * FROM agave_meta_schemas WHERE uuid = ?", (uuid,)).fetchone(), base
            )

        return ok(request, await self.service.store.run(replace))

    # -- shared by both kinds ---------------------------------------------------------------

    def _kind(self, request: web.Request) -> Kind:
        return DATA if "/meta/v2/data" in request.path else SCHEMAS

    async def get(self, request: web.Request) -> web.StreamResponse:
        kind, uuid, user, base = (
            self._kind(request),
            request.match_info["uuid"],
            user_of(request),
            api_base(request),
        )
        return ok(
            request,
            await self.service.store.run(
                lambda conn: self._render(kind, self._visible(conn, kind, uuid, user), base)
            ),
        )

    async def delete(self, request: web.Request) -> web.StreamResponse:
        kind, uuid, user = self._kind(request), request.match_info["uuid"], user_of(request)

        def remove(conn: sqlite3.Connection) -> None:
            self._visible(conn, kind, uuid, user, write=True)
            conn.execute(f"DELETE FROM {kind.table} WHERE uuid = ?", (uuid,))
            conn.execute("DELETE FROM agave_meta_pems WHERE kind = ? AND uuid = ?", (kind.name, uuid))

        await self.service.store.run(remove)
        return ok(request, None, message=f"Successfully deleted {kind.label} {uuid}")

    @staticmethod
    def _order(request: web.Request, kind: Kind) -> tuple[str, list[Any]]:
        """The ORDER BY clause of ``orderBy``/``order`` (default lastUpdated DESC)."""
        field = request.query.get("orderBy") or request.query.get("orderby") or "lastUpdated"
        direction = (request.query.get("order") or "DESC").upper()
        if direction not in ("ASC", "DESC"):
            raise AgaveError(400, f"Invalid order {direction!r}: ASC or DESC")
        if field in _ORDER_COLUMNS and (kind is DATA or field not in ("name", "schemaId")):
            return f"{_ORDER_COLUMNS[field]} {direction}, seq {direction}", []
        head, _, rest = field.partition(".")
        document = "value" if kind is DATA else "schema"
        if head == document and rest and all(_SAFE_KEY.match(p) for p in rest.split(".")):
            path = "$" + "".join(f'."{p}"' for p in rest.split("."))
            return f"json_extract({document}, ?) {direction}, seq {direction}", [path]
        raise AgaveError(400, f"Invalid orderBy field {field!r}")

    async def listing(self, request: web.Request) -> web.StreamResponse:
        kind, user, base = self._kind(request), user_of(request), api_base(request)
        limit, offset = page_args(request)
        parsed = parse_query(request)
        order, order_args = self._order(request, kind)
        privileged = (
            kind is SCHEMAS
            or request.query.get("privileged") is None
            or truthy(request.query.get("privileged"))
        )
        shared = (
            f"uuid IN (SELECT uuid FROM agave_meta_pems WHERE kind = '{kind.name}'"
            " AND username = ? AND read = 1)"
        )
        where, args = ([f"(owner = ? OR {shared})"], [user, user]) if privileged else ([shared], [user])
        predicate: Predicate | None = None
        if parsed is not None:
            query, predicate = parsed
            # Equalities on plain columns narrow the rows in SQL (an index for name).
            columns = ("name", "uuid", "owner") if kind is DATA else ("uuid", "owner")
            pushed = {field for field in columns if isinstance(query.get(field), str)}
            for field in sorted(pushed):
                where.append(f"{field} = ?")
                args.append(query[field])
            if set(query) == pushed:
                predicate = None  # SQL answers all of it: one page, LIMIT/OFFSET in SQL
        sql = f"SELECT * FROM {kind.table} WHERE {' AND '.join(where)} ORDER BY {order}"
        render = self._record if kind is DATA else self._schema
        store = self.service.store
        if predicate is None:
            by = [(part.split()[0], part.endswith(" DESC")) for part in order.split(", ")]
            if order_args or any(column == "schema_id" for column, _ in by):
                # A JSON path or a nullable column is no keyset: LIMIT/OFFSET as it is.
                rows = await store.run(
                    lambda conn: conn.execute(
                        sql + " LIMIT ? OFFSET ?", (*args, *order_args, limit, offset)
                    ).fetchall()
                )
            else:
                # Walking the listing by offset seeks past the last page (testing/keyset.py).
                clause = " AND ".join(where)

                def read(conn: sqlite3.Connection) -> list[sqlite3.Row]:
                    listing = self._listings.get(conn, (kind.table, clause, *args, order))
                    select = f"SELECT * FROM {kind.table}"
                    return keyset.page(conn, listing, select, clause, args, by, offset, limit)

                rows = await store.run(read)
            return ok(request, [render(r, base) for r in rows])
        # The candidate rows are read a chunk per transaction, and the query (its $regex
        # patterns above all) is evaluated over them on a worker thread: one listing over
        # 10k records never holds the store's thread (shared by every service) for long,
        # nor the event loop.
        seqs: list[int] = await store.run(
            lambda conn: [
                r[0] for r in conn.execute(sql.replace("SELECT *", "SELECT seq", 1), (*args, *order_args))
            ]
        )
        matcher = predicate
        found: list[dict[str, Any]] = []
        skipped = 0
        for start in range(0, len(seqs), CHUNK):
            chunk = seqs[start : start + CHUNK]

            def read_chunk(conn: sqlite3.Connection, chunk: list[int] = chunk) -> list[sqlite3.Row]:
                marks = ",".join("?" * len(chunk))
                return conn.execute(f"SELECT * FROM {kind.table} WHERE seq IN ({marks})", chunk).fetchall()

            def evaluate(rows: list[sqlite3.Row]) -> dict[int, dict[str, Any]]:
                docs = ((int(row["seq"]), render(row, base)) for row in rows)
                return {seq: doc for seq, doc in docs if matcher(doc)}

            hits = await asyncio.to_thread(evaluate, await store.run(read_chunk))
            for seq in chunk:
                doc = hits.get(seq)
                if doc is None:
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                found.append(doc)
                if len(found) >= limit:
                    return ok(request, found)
        return ok(request, found)

    # -- permissions ------------------------------------------------------------------------

    @staticmethod
    def _pem(base: str, kind: Kind, uuid: str, username: str, read: bool, write: bool) -> dict[str, Any]:
        here = f"{base}/meta/v2/{kind.name}/{uuid}"
        return {
            "username": username,
            "internalUsername": None,
            "permission": {"read": read, "write": write},
            "_links": {
                "self": {"href": f"{here}/pems/{username}"},
                "parent": {"href": here},
                "profile": {"href": f"{base}/profiles/v2/{username}"},
            },
        }

    async def list_pems(self, request: web.Request) -> web.StreamResponse:
        kind, uuid, user, base = (
            self._kind(request),
            request.match_info["uuid"],
            user_of(request),
            api_base(request),
        )
        limit, offset = page_args(request)
        only = request.match_info.get("username")

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]] | dict[str, Any]:
            row = self._visible(conn, kind, uuid, user)
            if only is not None:  # one Permission object, as agavepy's spec declares
                r, w = self._rights(conn, kind, row, only)
                return self._pem(base, kind, uuid, only, r, w)
            pems = [self._pem(base, kind, uuid, row["owner"], True, True)]
            for p in conn.execute(
                "SELECT username, read, write FROM agave_meta_pems WHERE kind = ? AND uuid = ?"
                " ORDER BY username",
                (kind.name, uuid),
            ):
                pems.append(self._pem(base, kind, uuid, p["username"], bool(p["read"]), bool(p["write"])))
            return pems[offset : offset + limit]

        return ok(request, await self.service.store.run(read))

    async def update_pems(self, request: web.Request) -> web.StreamResponse:
        kind, uuid, user, base = (
            self._kind(request),
            request.match_info["uuid"],
            user_of(request),
            api_base(request),
        )
        invalid = ": READ, WRITE, READ_WRITE, ALL or NONE"
        target, permission = grantee(request, await json_body(request), _PERMISSIONS, invalid)
        read, write = _PERMISSIONS[permission]

        def grant(conn: sqlite3.Connection) -> tuple[int, dict[str, Any] | None]:
            row = self._visible(conn, kind, uuid, user, write=True)
            if target == row["owner"]:
                raise AgaveError(400, f"The owner's permissions on a {kind.label} cannot be changed")
            key = (kind.name, uuid, target)
            existed = conn.execute(
                "SELECT 1 FROM agave_meta_pems WHERE kind = ? AND uuid = ? AND username = ?", key
            ).fetchone()
            if not read and not write:
                conn.execute("DELETE FROM agave_meta_pems WHERE kind = ? AND uuid = ? AND username = ?", key)
                return 200, None
            conn.execute(
                "INSERT INTO agave_meta_pems (kind, uuid, username, read, write) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (kind, uuid, username)"
                " DO UPDATE SET read = excluded.read, write = excluded.write",
                (*key, int(read), int(write)),
            )
            return (200 if existed else 201), self._pem(base, kind, uuid, target, read, write)

        status, pem = await self.service.store.run(grant)
        return ok(request, pem, status=status)

    async def delete_pems(self, request: web.Request) -> web.StreamResponse:
        kind, uuid, user = self._kind(request), request.match_info["uuid"], user_of(request)
        target = request.match_info.get("username")

        def revoke(conn: sqlite3.Connection) -> None:
            self._visible(conn, kind, uuid, user, write=True)
            if target is None:
                conn.execute("DELETE FROM agave_meta_pems WHERE kind = ? AND uuid = ?", (kind.name, uuid))
            else:
                conn.execute(
                    "DELETE FROM agave_meta_pems WHERE kind = ? AND uuid = ? AND username = ?",
                    (kind.name, uuid, target),
                )

        await self.service.store.run(revoke)
        return ok(request, None)


async def install(service: AgaveService) -> None:
    await service.store.executescript(SCHEMA)
    meta = MetaResource(service)
    route = service.route
    for root in ("/meta/v2/data", "/meta/v2/schemas"):
        route("GET", root, meta.listing)
        route("POST", root, meta.add if root.endswith("data") else meta.add_schema)
        route("GET", root + "/{uuid}", meta.get)
        route("POST", root + "/{uuid}", meta.update if root.endswith("data") else meta.update_schema)
        route("DELETE", root + "/{uuid}", meta.delete)
        route("GET", root + "/{uuid}/pems", meta.list_pems)
        route("POST", root + "/{uuid}/pems", meta.update_pems)
        route("DELETE", root + "/{uuid}/pems", meta.delete_pems)
        route("GET", root + "/{uuid}/pems/{username}", meta.list_pems)
        route("POST", root + "/{uuid}/pems/{username}", meta.update_pems)
        route("DELETE", root + "/{uuid}/pems/{username}", meta.delete_pems)
