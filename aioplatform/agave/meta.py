"""Meta: agavepy's 22 metadata and schema operations as coroutines, plus batches.

>>> record = await agave.meta.add_metadata({"name": "sample", "value": {"depth": 12.5}})
>>> async for found in agave.meta.list_metadata(q={"name": "sample", "value.depth": {"$gt": 10}}):
...     print(found.uuid, found.value)
>>> await agave.meta.delete_many([record.uuid])

``q`` is Agave's MongoDB query: a dict (encoded as JSON here) or a JSON string. A
record's ``value`` is any JSON and comes back parsed. Batches (``create_many``,
``delete_many``) return a :class:`~aioplatform.BatchResult` with exactly one outcome
per input, in input order. A create is a POST the core never re-sends once it may
have reached the server; ``reconcile=True`` finds a create whose answer was lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..core import defaults
from ..core.batch import (
    BatchResult,
    Breaker,
    OutcomeCallback,
    ProgressCallback,
    check_batch_options,
    gather,
    gather_prepared,
)
from ..core.calls import CallTimeout
from ..core.checks import check_choice, check_id
from ..core.paging import AsyncPager
from ..core.paths import segment
from ..core.reconcile import date_header_skew, gather_reconciled
from .models.common import structure
from .models.meta import Metadata, MetadataSchema, MetaPermission

if TYPE_CHECKING:
    from .client import AgaveClient

__all__ = ["Meta"]

DATA = "meta/v2/data"
SCHEMAS = "meta/v2/schemas"
PAGE_SIZE = 100  # the Java services' fallback maximum (agave.md §8)
_PERMISSIONS = ("READ", "WRITE", "READ_WRITE", "ALL", "NONE")
_ORDERS = frozenset({"ASC", "DESC"})


def _uuid(name: str, value: Any) -> str:
    return segment(name, check_id(name, value, what="a uuid string"))


def _data_path(uuid: Any, *rest: str) -> str:
    return "/".join((DATA, _uuid("uuid", uuid), *rest))


def _schema_path(uuid: Any, *rest: str) -> str:
    return "/".join((SCHEMAS, _uuid("uuid", uuid), *rest))


def _username(value: Any) -> str:
    return segment("username", check_id("username", value))


def _permission(value: Any) -> str:
    return check_choice("permission", value, _PERMISSIONS, any_case=True)


def _metadata_request(body: Any, name: str = "body") -> dict[str, Any]:
    """A MetadataRequest checked for what the server requires, before anything is sent."""
    if not isinstance(body, Mapping):
        raise TypeError(f"{name} must be a mapping (name, value, associationIds, schemaId), got {body!r}")
    out = dict(body)
    if not isinstance(out.get("name"), str) or not out["name"].strip():
        raise ValueError(f"{name} must have a non-empty string 'name', got {out.get('name')!r}")
    if out.get("value") is None:
        raise ValueError(f"{name} must have a non-null 'value' (any JSON)")
    try:
        json.dumps(out["value"], allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}['value'] must be JSON-serialisable: {exc}") from None
    ids = out.get("associationIds")
    if isinstance(ids, str):
        out["associationIds"] = [ids]
    elif ids is None:
        out.pop("associationIds", None)
    elif not isinstance(ids, Iterable) or not all(isinstance(i, str) for i in ids):
        raise TypeError(f"{name}['associationIds'] must be a uuid string or a list of them, got {ids!r}")
    else:
        out["associationIds"] = list(ids)
    schema_id = out.get("schemaId")
    if schema_id is not None and (not isinstance(schema_id, str) or not schema_id):
        raise TypeError(f"{name}['schemaId'] must be a schema uuid string or None, got {schema_id!r}")
    return out


def _schema_document(schema: Any) -> Any:
    if not isinstance(schema, Mapping):
        raise TypeError(f"schema must be a mapping (a JSON Schema document), got {type(schema).__name__}")
    try:
        json.dumps(schema, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"schema must be JSON-serialisable: {exc}") from None
    return dict(schema)


def _query(q: Any) -> str:
    """``q`` as the JSON text the server reads: a mapping is encoded, a string must be a JSON object."""
    if isinstance(q, Mapping):
        try:
            return json.dumps(q, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"q must be JSON-serialisable: {exc}") from None
    if isinstance(q, str):
        try:
            parsed = json.loads(q)
        except ValueError:
            raise ValueError(f"q must be a JSON object (a MongoDB query), got {q[:80]!r}") from None
        if not isinstance(parsed, dict):
            raise ValueError(f"q must be a JSON object (a MongoDB query), got {q[:80]!r}")
        return q
    raise TypeError(f"q must be a mapping or a JSON string, got {type(q).__name__}")


def _listing_params(q: Any, order_by: Any, order: Any, privileged: Any = True) -> dict[str, str]:
    params: dict[str, str] = {}
    if q is not None:
        params["q"] = _query(q)
    if order_by is not None:
        if not isinstance(order_by, str) or not order_by.strip():
            raise ValueError(f"order_by must be a non-empty field name, got {order_by!r}")
        params["orderBy"] = order_by
    if order is not None:
        if not isinstance(order, str) or order.upper() not in _ORDERS:
            raise ValueError(f"order must be 'ASC' or 'DESC', got {order!r}")
        params["order"] = order.upper()
    if not isinstance(privileged, bool):
        raise TypeError(f"privileged must be a bool, got {type(privileged).__name__}")
    if not privileged:
        params["privileged"] = "false"
    return params


class Meta:
    """``client.meta``: agavepy's meta operations (snake_case), listings as ``AsyncPager``."""

    def __init__(self, client: AgaveClient):
        self._client = client

    # -- metadata ---------------------------------------------------------------------------

    def list_metadata(
        self,
        q: Mapping[str, Any] | str | None = None,
        *,
        order_by: str | None = None,
        order: str | None = None,
        privileged: bool = True,
        limit: int = PAGE_SIZE,
        offset: int = 0,
    ) -> AsyncPager[Metadata]:
        """The records you may read that match ``q`` (a MongoDB query: ``{"name": "x"}``,
        ``{"value.depth": {"$gt": 3}}``, ``{"associationIds": job_id}``), ordered by
        ``order_by`` (the server's default: ``lastUpdated``) ``order`` ``"ASC"``/``"DESC"``.
        ``privileged=False`` asks for the records shared with you explicitly only."""
        params = _listing_params(q, order_by, order, privileged)
        return self._client._list(DATA, Metadata, params=params, limit=limit, offset=offset)

    async def add_metadata(self, body: Mapping[str, Any], *, timeout: CallTimeout = None) -> Metadata:
        """Create a record (``{"name", "value", "associationIds", "schemaId"}``); 201.
        With a ``schemaId`` the server checks ``value`` against that schema (400 if not)."""
        return await self._client._model("POST", DATA, Metadata, json=_metadata_request(body))

    async def get_metadata(self, uuid: str, *, timeout: CallTimeout = None) -> Metadata:
        return await self._client._model("GET", _data_path(uuid), Metadata)

    async def update_metadata(
        self, uuid: str, body: Mapping[str, Any], *, timeout: CallTimeout = None
    ) -> Metadata:
        """Replace the record whole (name, value, associations, schema)."""
        # A full replacement: sending it twice leaves the record as sending it once, so a
        # lost answer is re-sent.
        return await self._client._model(
            "POST", _data_path(uuid), Metadata, json=_metadata_request(body), idempotent=True
        )

    async def delete_metadata(self, uuid: str, *, timeout: CallTimeout = None) -> None:
        """Delete the record (the server answers 401 without write permission)."""
        await self._client._call("DELETE", _data_path(uuid))

    # -- schemas ----------------------------------------------------------------------------

    def search_schema(
        self,
        q: Mapping[str, Any] | str | None = None,
        *,
        order_by: str | None = None,
        order: str | None = None,
        limit: int = PAGE_SIZE,
        offset: int = 0,
    ) -> AsyncPager[MetadataSchema]:
        """The schemas you may read (agavepy's ``searchSchema``, without its dummy ``uuid``)."""
        params = _listing_params(q, order_by, order)
        return self._client._list(SCHEMAS, MetadataSchema, params=params, limit=limit, offset=offset)

    async def add_schema(self, schema: Mapping[str, Any], *, timeout: CallTimeout = None) -> MetadataSchema:
        """Store a JSON Schema document; records naming its uuid as ``schemaId`` must match it."""
        return await self._client._model("POST", SCHEMAS, MetadataSchema, json=_schema_document(schema))

    async def get_schema(self, uuid: str, *, timeout: CallTimeout = None) -> MetadataSchema:
        return await self._client._model("GET", _schema_path(uuid), MetadataSchema)

    async def update_schema(
        self, uuid: str, schema: Mapping[str, Any], *, timeout: CallTimeout = None
    ) -> MetadataSchema:
        # A full replacement, safe to re-send (as update_metadata).
        return await self._client._model(
            "POST", _schema_path(uuid), MetadataSchema, json=_schema_document(schema), idempotent=True
        )

    async def delete_schema(self, uuid: str, *, timeout: CallTimeout = None) -> None:
        await self._client._call("DELETE", _schema_path(uuid))

    # -- permissions ------------------------------------------------------------------------

    def list_metadata_permissions(
        self, uuid: str, *, limit: int = PAGE_SIZE, offset: int = 0
    ) -> AsyncPager[MetaPermission]:
        """Who may read or write the record (its owner first)."""
        return self._client._list(_data_path(uuid, "pems"), MetaPermission, limit=limit, offset=offset)

    async def update_metadata_permissions(
        self, uuid: str, username: str, permission: str, *, timeout: CallTimeout = None
    ) -> MetaPermission | None:
        """Grant ``username`` READ, WRITE, READ_WRITE or ALL; NONE revokes (None returned)."""
        _username(username)
        body = {"username": username, "permission": _permission(permission)}
        return await self._pem(_data_path(uuid, "pems"), body)

    async def delete_metadata_permission(self, uuid: str, *, timeout: CallTimeout = None) -> None:
        """Revoke every grant on the record (its owner keeps theirs)."""
        await self._client._call("DELETE", _data_path(uuid, "pems"))

    async def list_metadata_permissions_for_user(
        self, uuid: str, username: str, *, timeout: CallTimeout = None
    ) -> MetaPermission:
        return await self._pem_of(_data_path(uuid, "pems", _username(username)), username)

    async def update_metadata_permissions_for_user(
        self, uuid: str, username: str, permission: str, *, timeout: CallTimeout = None
    ) -> MetaPermission | None:
        path = _data_path(uuid, "pems", _username(username))
        return await self._pem(path, {"username": username, "permission": _permission(permission)})

    async def delete_metadata_permissions_for_user(
        self, uuid: str, username: str, *, timeout: CallTimeout = None
    ) -> None:
        await self._client._call("DELETE", _data_path(uuid, "pems", _username(username)))

    def list_schema_permissions(
        self, uuid: str, *, limit: int = PAGE_SIZE, offset: int = 0
    ) -> AsyncPager[MetaPermission]:
        return self._client._list(_schema_path(uuid, "pems"), MetaPermission, limit=limit, offset=offset)

    async def update_schema_permissions(
        self, uuid: str, username: str, permission: str, *, timeout: CallTimeout = None
    ) -> MetaPermission | None:
        _username(username)
        body = {"username": username, "permission": _permission(permission)}
        return await self._pem(_schema_path(uuid, "pems"), body)

    async def delete_schema_permissions(self, uuid: str, *, timeout: CallTimeout = None) -> None:
        await self._client._call("DELETE", _schema_path(uuid, "pems"))

    async def list_schema_permissions_for_user(
        self, uuid: str, username: str, *, timeout: CallTimeout = None
    ) -> MetaPermission:
        return await self._pem_of(_schema_path(uuid, "pems", _username(username)), username)

    async def update_schema_permissions_for_user(
        self, uuid: str, username: str, permission: str, *, timeout: CallTimeout = None
    ) -> MetaPermission | None:
        path = _schema_path(uuid, "pems", _username(username))
        return await self._pem(path, {"username": username, "permission": _permission(permission)})

    async def delete_schema_permissions_for_user(
        self, uuid: str, username: str, *, timeout: CallTimeout = None
    ) -> None:
        await self._client._call("DELETE", _schema_path(uuid, "pems", _username(username)))

    async def _pem(self, path: str, body: dict[str, Any]) -> MetaPermission | None:
        # Setting a permission twice leaves it as setting it once: safe to re-send.
        result = await self._client._call("POST", path, json=body, idempotent=True)
        return structure(result, MetaPermission) if isinstance(result, Mapping) else None

    async def _pem_of(self, path: str, username: str) -> MetaPermission:
        return MetaPermission.of_user(await self._client._call("GET", path), username)

    # -- batches ----------------------------------------------------------------------------

    async def create_many(
        self,
        records: Iterable[Mapping[str, Any]],
        *,
        concurrency: int = defaults.CONCURRENCY,
        reconcile: bool = False,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[Metadata]:
        """Create every record; one outcome (the Metadata, or the exception) per record, in order.

        Every record is checked before the first is sent. A create is never re-sent once
        it may have reached the server. With ``reconcile=True``, once every create is done,
        each one whose answer was lost (sent, then the connection dropped or timed out, or
        a 5xx other than 503) is looked up with a ``q`` search on its ``name``: a record
        with the same ``value``, ``associationIds`` and ``schemaId``, created since it was
        sent (in server time, estimated from its ``Date`` header) and after the newest record
        before the batch, and held by no other outcome of the batch,
        becomes its outcome (oldest first); otherwise the error stays. So the server
        holds one record per Metadata outcome and none for an error. Nothing is added to
        your records to find them: an identical record another client creates during the
        batch could be taken for a lost one, so give records distinct names or values when
        that matters. Costs one listing before the batch and one search per
        lost answer. ``on_outcome`` and ``breaker`` are :func:`~aioplatform.gather`'s (a lost
        answer is reported once reconciled); ``result.items`` are the records as given.
        """
        if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Iterable):
            raise TypeError(f"records must be an iterable of metadata records, got {type(records).__name__}")
        given = list(records)
        bodies = [_metadata_request(r, f"records[{i}]") for i, r in enumerate(given)]
        if not isinstance(reconcile, bool):
            raise TypeError(f"reconcile must be a bool, got {type(reconcile).__name__}")
        check_batch_options(concurrency, on_progress, on_outcome, breaker, fail_fast, reconcile)
        if not reconcile:
            return await gather_prepared(
                self.add_metadata, given, bodies, concurrency=concurrency, fail_fast=fail_fast,
                on_progress=on_progress, on_outcome=on_outcome, breaker=breaker,
            )  # fmt: skip
        skew, newest = await self._mark()
        floor = 0.0
        if newest is not None and newest.created is not None:
            floor = newest.created.timestamp()

        async def create(body: dict[str, Any]) -> Metadata:
            return await self._client._model("POST", DATA, Metadata, json=body)

        async def find_lost(
            index: int, sent_at: float, error: BaseException, claimed: set[Any]
        ) -> Metadata | None:
            return await self._find_lost(bodies[index], max(sent_at + skew, floor), claimed, error)

        return await gather_reconciled(
            create, given, bodies, find_lost=find_lost, identity=lambda record: record.uuid,
            claimed=[] if newest is None else [newest.uuid], concurrency=concurrency,
            fail_fast=fail_fast, on_progress=on_progress, on_outcome=on_outcome, breaker=breaker,
        )  # fmt: skip

    async def _mark(self) -> tuple[float, Metadata | None]:
        """Where a reconciled batch starts: the server's clock minus ours, and the newest
        record before the batch (no lost create can be it or older).

        The skew is read from the ``Date`` header, which is truncated to the second and
        read after the answer arrived: it errs low, never high, so ``sent + skew`` is never
        later than the server's time of sending. Without the header (or on an error) the
        lookups fall back on our clock less a second, and on no floor."""
        params = {"limit": "1", "offset": "0", "orderBy": "created", "order": "DESC"}
        try:
            # Retried until its deadline, as every look-up a reconciliation cannot do without.
            response = await self._client._for_lookups()._request("GET", DATA, params=params)
        except Exception:
            return -1.0, None
        skew = date_header_skew(response.headers)
        if skew is None:
            return -1.0, None
        try:
            body = response.json()
            rows = body.get("result") if isinstance(body, dict) else body
            newest = structure(rows[0], Metadata) if isinstance(rows, list) and rows else None
        except (ValueError, TypeError, KeyError, AttributeError):
            newest = None
        return skew, newest

    async def _find_lost(
        self, body: Mapping[str, Any], since: float, claimed: set[str], error: BaseException
    ) -> Metadata | None:
        """The oldest unclaimed record equal to ``body`` created at or after ``since``."""
        ids = sorted(body.get("associationIds") or [])
        try:
            lookups = self._client._for_lookups().meta  # GETs retried until their deadline
            pager = lookups.list_metadata({"name": body["name"]}, order_by="created", order="ASC")
            async for candidate in pager:
                created = candidate.created.timestamp() if candidate.created is not None else None
                if (
                    candidate.uuid not in claimed
                    and created is not None
                    and created >= since
                    and candidate.name == body["name"]
                    and candidate.value == body["value"]
                    and sorted(candidate.association_ids) == ids
                    and (candidate.schema_id or None) == (body.get("schemaId") or None)
                ):
                    return candidate
        except Exception as lookup_error:  # the original failure is what is reported
            error.add_note(f"looking up the lost create failed: {lookup_error}")
        return None

    async def delete_many(
        self,
        uuids: Iterable[str],
        *,
        concurrency: int = defaults.CONCURRENCY,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[str]:
        """Delete every record; one outcome (the uuid, deleted, or the exception) per uuid.

        A delete is safe to repeat, but a repeat of a delete that did happen answers 404.
        So each delete is first sent once (re-sent only when it provably never reached the
        server: 429, 503, connection refused); if its answer was lost, it is sent again
        with the usual retries, and a 404 then counts as deleted — the record is gone,
        whichever request removed it. A 404 on a first answer stays a
        :class:`~aioplatform.NotFound`: that record was not there to delete.
        """
        if isinstance(uuids, (str, bytes)) or not isinstance(uuids, Iterable):
            raise TypeError(f"uuids must be an iterable of metadata uuids, got {type(uuids).__name__}")
        items = list(uuids)
        paths = [_data_path(u) for u in items]  # every uuid checked before the first request
        check_batch_options(concurrency, on_progress, on_outcome, breaker, fail_fast)
        by_uuid = dict(zip(items, paths, strict=True))

        async def delete(uuid: str) -> str:
            await self._client._delete_once(by_uuid[uuid])
            return uuid

        return await gather(
            delete, items, concurrency=concurrency, fail_fast=fail_fast, on_progress=on_progress,
            on_outcome=on_outcome, breaker=breaker,
        )  # fmt: skip
