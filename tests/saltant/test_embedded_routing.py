"""The embedded saltant service's routes on aiohttp's router, with the catch-all behind them.

Each route is on the app router; whatever it does not take (an encoded slash or percent, a
newline, an unknown URL) reaches the catch-all, which tries the route patterns on the
decoded path as saltant's URL resolver does. These pin answers that only that fallback
gives, so moving routes about cannot change them.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from yarl import URL

from aioplatform.testing import LocalPlatform

NOT_FOUND_HTML = "<!doctype html>"


async def _call(
    session: aiohttp.ClientSession, platform: LocalPlatform, method: str, path: str
) -> tuple[int, str, Any]:
    url = URL(platform.saltant_url + path, encoded=True)
    headers = {"Authorization": f"Token {platform.saltant_token}"}
    async with session.request(method, url, headers=headers) as r:
        text = await r.text()
        try:
            return r.status, r.content_type, json.loads(text)
        except ValueError:
            return r.status, r.content_type, text


async def test_paths_the_router_leaves_to_the_catch_all_answer_as_the_patterns_decide() -> None:
    async with LocalPlatform() as platform, aiohttp.ClientSession() as session:
        # %2F decodes to a slash: "x/clone" is the clone route, which takes POST only
        assert await _call(session, platform, "GET", "containertaskinstances/x%2Fclone/") == (
            405, "application/json", {"detail": 'Method "GET" not allowed.'},
        )  # fmt: skip
        # "a/b/clone" is no route: an unknown URL, saltant's empty 405 for a POST
        assert await _call(session, platform, "POST", "containertaskinstances/a%2Fb/clone/") == (
            405, "text/html", "",
        )  # fmt: skip
        # %25 decodes to "%": a uuid that names no instance
        assert await _call(session, platform, "GET", "containertaskinstances/a%25b/") == (
            404, "application/json", {"detail": "Not found."},
        )  # fmt: skip
        # a username with %2F decodes to two segments: no route, the HTML 404
        assert (await _call(session, platform, "GET", "users/ad%2Fmin/"))[:2] == (404, "text/html")
        status, media, body = await _call(session, platform, "GET", "users/admin/")
        assert (status, body["username"]) == (200, "admin")
        # an encoded letter is the letter
        status, media, body = await _call(session, platform, "GET", "containert%61skinstances/")
        assert (status, body["count"]) == (200, 0)
        # a newline matches no route (the catch-all's pattern stops at it): aiohttp's own 404
        assert await _call(session, platform, "GET", "containertaskinstances/abc%0A") == (
            404, "text/plain", "404: Not Found",
        )  # fmt: skip
        # a doubled trailing slash is no route either
        status, media, body = await _call(session, platform, "GET", "containertaskinstances//")
        assert (status, media) == (404, "text/html") and body.startswith(NOT_FOUND_HTML)


async def test_every_route_answers_with_and_without_its_trailing_slash() -> None:
    async with LocalPlatform() as platform, aiohttp.ClientSession() as session:
        for path in ("users", "containertaskinstances", "taskqueues", "swagger/.json", "swagger.json"):
            with_slash = await _call(session, platform, "GET", path + "/")
            without = await _call(session, platform, "GET", path)
            assert with_slash[0] == without[0] == 200, path
        assert (await _call(session, platform, "GET", "users/admin"))[0] == 200
        assert (await _call(session, platform, "PUT", "taskqueues/1"))[:2] == (404, "application/json")
        assert await _call(session, platform, "DELETE", "taskqueues/1/") == (
            405, "application/json", {"detail": 'Method "DELETE" not allowed.'},
        )  # fmt: skip
