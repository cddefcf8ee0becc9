"""What every saltant manager shares: its path, its model, DRF page-number listings, get by id or name.

A manager only validates arguments and calls the client's ``_request``; the
listing is an :class:`~aioplatform.AsyncPager` over DRF pages, one page in memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import attrs

from ..core.checks import check_int, check_str
from ..core.errors import NotFound
from ..core.paging import AsyncPager, Page
from ..core.paths import segment
from ..core.serde import parse
from ..core.session import Response
from .errors import NameNotFound
from .models import Model, converter

if TYPE_CHECKING:
    from .client import SaltantClient

__all__ = ["Resource", "DEFAULT_PAGE_SIZE"]

M = TypeVar("M", bound=Model)

# Items per page the client asks for (the server's defaults are 10 for task instances
# and 100 elsewhere; asking for 100 everywhere keeps long listings to few round trips).
DEFAULT_PAGE_SIZE = 100


def encode_filter_value(name: str, value: Any) -> str:
    """A django-filter query value: lists comma-joined (``__in``, ``__range``), booleans lower-case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(encode_filter_value(name, v) for v in value)
    raise TypeError(f"filters[{name!r}] must be a str, number, bool, date or a list of them, got {value!r}")


def check_positive_int(name: str, value: Any) -> int:
    return check_int(name, value, minimum=1)


def _as_int(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


@attrs.frozen
class _DRFPage(Generic[M]):
    """One page of a DRF listing, structured whole so a bad item is named ``$.results[i]...``."""

    results: list[M]
    count: int | None = None
    next: str | None = None


# django-filter's lookups by field kind, as saltant's filtersets declare them
# (tasksapi/filters.py): the exact lookup is the bare field name.
LOOKUPS: Mapping[str, frozenset[str]] = {
    "char": frozenset({"exact", "contains", "in", "startswith", "endswith", "regex"}),
    "bool": frozenset({"exact"}),
    "fk": frozenset({"exact", "in"}),
    "date": frozenset({"exact", "year", "range", "lt", "lte", "gt", "gte"}),
}


def filter_names(fields: Mapping[str, str]) -> frozenset[str]:
    """Every query parameter a filterset of ``fields`` (name -> kind) understands."""
    return frozenset(
        field if lookup == "exact" else f"{field}__{lookup}"
        for field, kind in fields.items()
        for lookup in LOOKUPS[kind]
    )


class Resource(Generic[M]):
    """Base manager: ``path`` (e.g. ``"taskqueues/"``), ``model``, and ``filter_fields``: the
    fields its listing filters on and their kind (``LOOKUPS``), from saltant's filtersets."""

    path: ClassVar[str] = ""
    model: type[M]
    filter_fields: ClassVar[Mapping[str, str]] = {}

    def __init__(self, client: SaltantClient):
        self._client = client

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"

    # -- models ------------------------------------------------------------------------

    def response_data_to_model_instance(self, response_data: Mapping[str, Any]) -> M:
        """Build a model from one object of a response (as saltant-py's method of that name)."""
        obj = converter.structure(response_data, self.model)
        obj._manager = self
        return obj

    def response_data_to_model_instances_list(self, response_data: Mapping[str, Any]) -> list[M]:
        """Build models from a list response's ``results``."""
        return [self.response_data_to_model_instance(d) for d in response_data["results"]]

    def _model(self, response: Response) -> M:
        """The model in a response's body (:class:`~aioplatform.UnexpectedResponse` if it does not fit)."""
        return parse(response, self.response_data_to_model_instance)

    # -- listing -----------------------------------------------------------------------

    def list(
        self,
        filters: Mapping[str, Any] | None = None,
        *,
        page_size: int | None = None,
        allow_unknown: bool = False,
    ) -> AsyncPager[M]:
        """Every object matching ``filters`` (django-filter lookups), one page at a time.

        ``filters`` maps ``field`` or ``field__lookup`` to a value, e.g.
        ``{"name__startswith": "azure", "state__in": ["running", "published"]}``; values
        are URL-encoded. A ``page``/``page_size`` entry sets the first page / the page size.
        A filter saltant does not know is a ``ValueError`` naming the known ones (saltant
        would silently ignore it and list everything); ``allow_unknown=True`` sends it
        anyway, for a server newer than this client.

        >>> async for queue in client.task_queues.list({"active": True}):
        ...     print(queue.name)
        """
        if filters is not None and not isinstance(filters, Mapping):
            raise TypeError(f"filters must be a mapping or None, got {type(filters).__name__}")
        if not isinstance(allow_unknown, bool):
            raise TypeError(f"allow_unknown must be a bool, got {type(allow_unknown).__name__}")
        known = filter_names(self.filter_fields)
        params: dict[str, str] = {}
        first, size = 1, DEFAULT_PAGE_SIZE
        for key, value in (filters or {}).items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"filter names must be non-empty strings, got {key!r}")
            if key not in known and key not in ("page", "page_size") and not allow_unknown:
                raise ValueError(
                    f"filters: {self.path.rstrip('/')} cannot be filtered on {key!r}; known filters: "
                    f"{', '.join(sorted(known))} (allow_unknown=True sends it anyway)"
                )
            if key == "page":
                first = check_positive_int("filters['page']", _as_int(value))
            elif key == "page_size":
                size = check_positive_int("filters['page_size']", _as_int(value))
            else:
                params[key] = encode_filter_value(key, value)
        if page_size is not None:
            size = check_positive_int("page_size", page_size)
        client = self._client
        path = self.path
        page_type: Any = _DRFPage[self.model]  # type: ignore[name-defined]

        async def fetch(page: int) -> Page[M]:
            try:
                response = await client._request(
                    "GET", path, params={**params, "page": str(page), "page_size": str(size)}
                )
            except NotFound as exc:
                # DRF numbers pages afresh on every request: when items leave the listing
                # while it is read (instances moving out of a state filter), a later page can
                # cease to exist ("Invalid page."). The listing has ended; it is not an error.
                if page > first and exc.message.startswith("Invalid page"):
                    return Page([], next=None)
                raise
            drf: _DRFPage[M] = parse(response, lambda body: converter.structure(body, page_type))
            for item in drf.results:
                item._manager = self
            return Page(drf.results, next=page + 1 if drf.next else None, total=drf.count)

        return AsyncPager(fetch, first=first)

    # -- single objects ----------------------------------------------------------------

    async def _get(self, key: Any, name: str = "id") -> M:
        response = await self._client._request("GET", f"{self.path}{segment(name, key)}/")
        return self._model(response)

    async def _get_by_id_or_name(self, id: int | None, name: str | None) -> M:
        if (id is None) == (name is None):
            raise ValueError("Either id or name must be set (but not both!)")
        if id is not None:
            return await self._get(check_int("id", id, minimum=1))
        check_str("name", name)
        found = await self.list({"name": name}, page_size=1).to_list(max_items=1)
        if not found:
            raise NameNotFound(
                f"no {self.model.__name__} named {name!r}",
                status=404,
                method="GET",
                url=self._client.base_url + self.path,
            )
        return found[0]

    async def _send(self, method: str, path: str, body: dict[str, Any]) -> M:
        response = await self._client._request(method, path, json=body)
        return self._model(response)
