"""Every endpoint of astakos.md §3 accepts exactly its kind of token (raw HTTP, one row per endpoint).

For each route: the right kind gets the answer the route gives (never a 401), the other
kind is 401 "Invalid X-Auth-Token", no token is 401 "Access denied. No authentication
token"; public routes answer whatever token comes (or none).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from aioplatform.testing import LocalPlatform

NO_TOKEN = {"unauthorized": {"message": "Access denied. No authentication token", "code": 401, "details": ""}}
WRONG_TOKEN = {"unauthorized": {"message": "Invalid X-Auth-Token", "code": 401, "details": ""}}
END = "2099-01-01T00:00:00+00:00"


def routes(platform: LocalPlatform) -> list[tuple[str, str, str, dict[str, Any], int]]:
    """``(kind, method, url, request kwargs, status for the right kind)`` for each §3 endpoint."""
    a = platform.astakos
    u, p = a.user_uuid, a.project_uuid
    acc, ident = a.account_url, a.auth_url
    provision = {"holder": f"user:{u}", "source": f"project:{u}", "resource": "cyclades.vm", "quantity": 1}
    return [
        ("public", "POST", f"{ident}/tokens", {}, 200),  # 1: the catalog
        ("public", "GET", f"{ident}/tokens/{a.user_token}", {}, 200),  # 3: the token is in the path
        ("user", "POST", f"{acc}/user_catalogs", {"json": {"uuids": [u]}}, 200),  # 4
        ("service", "POST", f"{acc}/service/user_catalogs", {"json": {"uuids": [u]}}, 200),  # 5
        ("public", "GET", f"{acc}/resources", {}, 200),  # 6
        ("user", "GET", f"{acc}/quotas", {}, 200),  # 7
        ("service", "GET", f"{acc}/service_quotas", {}, 200),  # 8
        ("service", "GET", f"{acc}/service_project_quotas", {}, 200),  # 9
        ("service", "POST", f"{acc}/commissions", {"json": {"provisions": [provision]}}, 201),  # 10
        ("service", "GET", f"{acc}/commissions", {}, 200),  # 11
        ("service", "GET", f"{acc}/commissions/999", {}, 404),  # 12: unknown serial, empty body
        ("service", "POST", f"{acc}/commissions/999/action", {"json": {"accept": ""}}, 404),  # 13
        ("service", "POST", f"{acc}/commissions/action", {"json": {"accept": [], "reject": []}}, 200),  # 14
        ("user", "GET", f"{acc}/projects", {}, 200),  # 15
        ("user", "POST", f"{acc}/projects", {"json": {"name": "t.example.org", "end_date": END}}, 201),  # 16
        ("user", "GET", f"{acc}/projects/{p}", {}, 200),  # 17
        ("user", "PUT", f"{acc}/projects/{p}", {"json": {"description": "x"}}, 403),  # 18: not the owner
        ("user", "POST", f"{acc}/projects/{p}/action", {"json": {"suspend": {}}}, 403),  # 19: not an admin
        ("user", "GET", f"{acc}/projects/memberships", {}, 200),  # 20
        ("user", "POST", f"{acc}/projects/memberships", {"json": {"join": {"project": p}}}, 409),  # 21
        ("user", "GET", f"{acc}/projects/memberships/99999", {}, 404),  # 22
        ("user", "POST", f"{acc}/projects/memberships/99999/action", {"json": {"leave": ""}}, 404),  # 23
        ("user", "POST", f"{acc}/feedback", {"data": {"feedback_msg": "hi"}}, 200),  # 24
        ("public", "GET", f"{a.ui_url}/get_services", {}, 200),  # 25
    ]


async def send(session: aiohttp.ClientSession, method: str, url: str, token: str | None, **kw: Any) -> Any:
    headers = {"X-Auth-Token": token} if token is not None else {}
    async with session.request(method, url, headers=headers, **kw) as response:
        text = await response.text()
        return response.status, (json.loads(text) if text and response.status == 401 else text)


async def test_each_endpoint_accepts_exactly_its_kind_of_token(platform: LocalPlatform) -> None:
    a = platform.astakos
    tokens = {"user": a.user_token, "service": a.service_token}
    table = routes(platform)
    assert len(table) == 24  # §3 rows 1-25 but 2 (token in the body, below) and 26 (OAuth2, out of scope)
    async with aiohttp.ClientSession() as session:
        for kind, method, url, kwargs, status in table:
            where = f"{method} {url.removeprefix(platform.url)}"
            if kind == "public":
                for token in (None, a.user_token, a.service_token, "not-a-token"):
                    got, _ = await send(session, method, url, token, **kwargs)
                    assert got == status, (where, token is None)
                continue
            other = "service" if kind == "user" else "user"
            assert await send(session, method, url, None, **kwargs) == (401, NO_TOKEN), where
            assert await send(session, method, url, tokens[other], **kwargs) == (401, WRONG_TOKEN), where
            assert await send(session, method, url, "not-a-token", **kwargs) == (401, WRONG_TOKEN), where
            got, _ = await send(session, method, url, tokens[kind], **kwargs)
            assert got == status, where
    # the refused calls changed nothing: one commission and one project, both from the right token
    assert len(await a.commissions()) == 1
    created = await platform.store.run(
        lambda conn: conn.execute(
            "SELECT COUNT(*) FROM astakos_projects WHERE name = 't.example.org'"
        ).fetchone()
    )
    assert created[0] == 1


@pytest.mark.parametrize("header", [None, "service", "user"])
async def test_authenticate_reads_the_token_in_the_body_whatever_the_header(
    platform: LocalPlatform, header: str | None
) -> None:
    a = platform.astakos
    token = {None: None, "service": a.service_token, "user": a.tokens["other"]}[header]
    body = {"auth": {"token": {"id": a.user_token}}}
    async with aiohttp.ClientSession() as session:
        headers = {"X-Auth-Token": token} if token else {}
        async with session.post(a.auth_url + "/tokens", json=body, headers=headers) as response:
            assert response.status == 200
            assert (await response.json())["access"]["user"]["id"] == a.user_uuid
        # a component token is no user token: authenticating with it is 401
        body = {"auth": {"token": {"id": a.service_token}}}
        async with session.post(a.auth_url + "/tokens", json=body) as response:
            assert response.status == 401
            assert (await response.json())["unauthorized"]["message"] == "Invalid token"
