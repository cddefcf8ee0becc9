"""AsyncPager: a listing as an async iterator that holds one page in memory at a time.

Each service supplies only how to fetch one page from a cursor; the pager does the
rest. ``async for item in pager`` fetches lazily (breaking out early fetches no
further pages), ``pager.pages()`` yields whole pages, ``await pager.to_list()``
collects (optionally only the first ``max_items``), and ``await pager`` fetches just
the first :class:`Page` — a read-only sequence of its items, so for a listing the
server sends whole (Astakos projects, flowserv groups) ``await`` gives everything,
as the sync SDKs' plain lists did.

>>> async for instance in client.container_task_instances.list({"state": "running"}):
...     print(instance.uuid)
>>> first_50 = await client.container_task_instances.list().to_list(max_items=50)
>>> first_page = await client.container_task_instances.list()
>>> projects = list(await astakos.get_projects())
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Sequence
from typing import Any, Generic, TypeVar, overload

import attrs

__all__ = ["AsyncPager", "Page"]

T = TypeVar("T")


@attrs.frozen
class Page(Generic[T]):
    """One page: its items, the cursor of the next page (None on the last), the total if known."""

    items: Sequence[T]
    next: Any = None
    total: int | None = None

    # A page reads as the sequence of its items: len(page), page[0], for item in page.
    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...

    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        return self.items[index]


class AsyncPager(Generic[T]):
    """An async iterator over a paginated listing.

    ``fetch(cursor)`` returns one :class:`Page`; the first call gets ``first`` (None by
    default) and each later call the previous page's ``next``. Iteration stops at a
    page whose ``next`` is None. Nothing is fetched until the pager is iterated, and
    every new iteration starts again from the first page.
    """

    def __init__(self, fetch: Callable[[Any], Awaitable[Page[T]]], *, first: Any = None):
        self._fetch = fetch
        self._first = first

    @classmethod
    def from_offsets(
        cls,
        fetch: Callable[[int, int], Awaitable[Sequence[T]]],
        *,
        limit: int,
        offset: int = 0,
    ) -> AsyncPager[T]:
        """Offset/limit listings: ``fetch(offset, limit)``; a short page is the last."""
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be an integer >= 1, got {limit!r}")
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset must be an integer >= 0, got {offset!r}")

        async def page(start: int) -> Page[T]:
            items = await fetch(start, limit)
            return Page(items, next=start + len(items) if len(items) >= limit else None)

        return cls(page, first=offset)

    @classmethod
    def single(cls, fetch: Callable[[], Awaitable[Sequence[T]]]) -> AsyncPager[T]:
        """Listings the server returns whole, in one response."""

        async def page(_: Any) -> Page[T]:
            items = await fetch()
            return Page(items, next=None, total=len(items))

        return cls(page)

    async def pages(self) -> AsyncIterator[Page[T]]:
        """Yield page after page, fetching each only when the previous one was consumed."""
        cursor = self._first
        while True:
            page = await self._fetch(cursor)
            yield page
            if page.next is None:
                return
            cursor = page.next

    async def _items(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.items:
                yield item

    def __aiter__(self) -> AsyncIterator[T]:
        return self._items()

    async def first_page(self) -> Page[T]:
        """The first page only (what ``await pager`` gives)."""
        return await self._fetch(self._first)

    def __await__(self) -> Generator[Any, None, Page[T]]:
        return self.first_page().__await__()

    async def to_list(self, max_items: int | None = None) -> list[T]:
        """All items (or the first ``max_items``), fetching no page beyond what is needed."""
        if max_items is not None and (not isinstance(max_items, int) or max_items < 0):
            raise ValueError(f"max_items must be an integer >= 0 or None, got {max_items!r}")
        result: list[T] = []
        if max_items == 0:
            return result
        async for page in self.pages():
            result.extend(page.items)
            if max_items is not None and len(result) >= max_items:
                return result[:max_items]
        return result

    def __repr__(self) -> str:
        return f"<AsyncPager {getattr(self._fetch, '__qualname__', self._fetch)!s}>"
