"""AsyncPager: lazy, one page at a time, stops fetching when the caller stops."""

from __future__ import annotations

from typing import Any

import pytest

from aioplatform import AsyncPager, Page, Session

from .conftest import ScriptedServer


def pager_over(server: ScriptedServer, session: Session, last: int = 5) -> AsyncPager[int]:
    async def fetch(page: Any) -> Page[int]:
        body = (await session.request("GET", server.u("/pages"), params={"page": page, "last": last})).json()
        return Page(body["results"], next=body["next"])

    return AsyncPager(fetch, first=1)


def fetched_pages(server: ScriptedServer) -> list[int]:
    return sorted(int(k.split("=")[1]) for k in server.handled if k.startswith("/pages"))


async def test_iterating_yields_every_item_in_order_across_pages(server: ScriptedServer) -> None:
    async with Session() as session:
        items = [i async for i in pager_over(server, session)]
    assert items == list(range(50))
    assert fetched_pages(server) == [1, 2, 3, 4, 5]


async def test_nothing_is_fetched_until_iteration_starts(server: ScriptedServer) -> None:
    async with Session() as session:
        pager_over(server, session)
    assert fetched_pages(server) == []


async def test_breaking_out_early_fetches_no_further_pages(server: ScriptedServer) -> None:
    async with Session() as session:
        async for item in pager_over(server, session):
            if item == 12:
                break
    assert fetched_pages(server) == [1, 2]


async def test_to_list_with_max_items_fetches_only_the_pages_it_needs(server: ScriptedServer) -> None:
    async with Session() as session:
        items = await pager_over(server, session).to_list(max_items=15)
    assert items == list(range(15))
    assert fetched_pages(server) == [1, 2]


async def test_pages_yields_whole_pages(server: ScriptedServer) -> None:
    async with Session() as session:
        sizes = [len(p.items) async for p in pager_over(server, session, last=3).pages()]
    assert sizes == [10, 10, 10]


async def test_from_offsets_stops_at_the_first_short_page() -> None:
    data = list(range(23))
    calls: list[tuple[int, int]] = []

    async def fetch(offset: int, limit: int) -> list[int]:
        calls.append((offset, limit))
        return data[offset : offset + limit]

    assert await AsyncPager.from_offsets(fetch, limit=10).to_list() == data
    assert calls == [(0, 10), (10, 10), (20, 10)]
    with pytest.raises(ValueError, match="limit"):
        AsyncPager.from_offsets(fetch, limit=0)


async def test_single_shot_listings_are_one_page() -> None:
    async def fetch() -> list[str]:
        return ["a", "b"]

    pages = [p async for p in AsyncPager.single(fetch).pages()]
    assert len(pages) == 1 and pages[0].total == 2
    with pytest.raises(ValueError, match="max_items"):
        await AsyncPager.single(fetch).to_list(max_items=-1)


async def test_awaiting_a_pager_fetches_only_the_first_page_which_reads_as_a_sequence(
    server: ScriptedServer,
) -> None:
    async with Session() as session:
        pager = pager_over(server, session)
        page = await pager
        assert fetched_pages(server) == [1]
        assert len(page) == 10 and page[0] == 0 and page[-1] == 9 and list(page[2:4]) == [2, 3]
        assert list(page) == list(range(10)) and page.next == 2
        # The pager is still whole: iterating it starts again from the first page.
        assert await pager.to_list() == list(range(50))


async def test_awaiting_a_single_shot_listing_gives_every_item() -> None:
    calls = 0

    async def fetch() -> list[str]:
        nonlocal calls
        calls += 1
        return ["a", "b", "c"]

    everything = await AsyncPager.single(fetch)
    assert list(everything) == ["a", "b", "c"] and everything.next is None and everything.total == 3
    assert calls == 1
