"""A per-user permission or role read takes either form a server may answer: one object,
or a list of at most one (agavepy's spec declares a list for apps' and jobs' permissions,
one object for systems' roles and meta's permissions). A purpose-built server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from aioplatform import APIError
from aioplatform.agave import AgaveClient


@pytest.fixture
async def answers() -> AsyncIterator[tuple[dict[str, Any], str]]:
    """A server answering every GET with ``answer["result"]`` in Agave's envelope."""
    answer: dict[str, Any] = {"result": None}

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


async def test_per_user_reads_take_one_object_or_a_list_of_one(answers: tuple[dict[str, Any], str]) -> None:
    answer, url = answers
    pem = {"username": "bob", "permission": {"read": True, "write": False, "execute": True}}
    role = {"username": "bob", "role": "USER"}
    async with AgaveClient(url, token="t") as agave:
        for result in (pem, [pem]):
            answer["result"] = result
            apps = await agave.apps.list_permissions_for_user("wc-1.0", "bob").to_list()
            assert [(p.username, p.read, p.execute) for p in apps] == [("bob", True, True)]
            job = await agave.jobs.list_permissions_for_user("job-1", "bob")
            assert (job.username, job.read, job.write) == ("bob", True, False)
            meta = await agave.meta.list_metadata_permissions_for_user("u-1", "bob")
            assert (meta.username, meta.read) == ("bob", True)
        for result in (role, [role]):
            answer["result"] = result
            got = await agave.systems.get_role_for_user("storage", "bob")
            assert (got.username, got.role) == ("bob", "USER")
        answer["result"] = [role, {**role, "username": "eve"}]
        with pytest.raises(APIError, match="unexpected answer for SystemRole"):
            await agave.systems.get_role_for_user("storage", "bob")
