"""A listing's answer is read one way for every Agave resource: a list of models, null
for none, anything else a typed error naming the model (a purpose-built server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from aioplatform import APIError
from aioplatform.agave import AgaveClient


@pytest.fixture
async def answers() -> AsyncIterator[tuple[dict[str, Any], str]]:
    """A server answering every GET with ``answers["result"]`` in Agave's envelope."""
    answer: dict[str, Any] = {"result": []}

    async def serve(_: web.Request) -> web.Response:
        return web.json_response({"status": "success", "version": "2.2.22", "result": answer["result"]})

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield answer, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_paged_listings_and_client_subscriptions_read_a_list_answer_alike(
    answers: tuple[dict[str, Any], str],
) -> None:
    answer, url = answers
    async with AgaveClient(url, token="t", username="u", password="p", api_key="k", api_secret="s") as agave:
        answer["result"] = [{"id": "wc-1.00", "name": "wc"}]
        assert [a.id for a in await agave.apps.list().to_list()] == ["wc-1.00"]
        answer["result"] = None
        assert await agave.apps.list().to_list() == []
        assert await agave.clients.list_subscriptions("c") == []
        answer["result"] = {"id": "not a list"}
        with pytest.raises(APIError, match="unexpected answer for a list of AppSummary"):
            await agave.apps.list().to_list()
        with pytest.raises(APIError, match="unexpected answer for a list of ClientSubscription"):
            await agave.clients.list_subscriptions("c")
