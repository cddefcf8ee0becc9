"""The embedded Astakos on the wire (raw HTTP): the quirks a client of the real server relies on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from aioplatform.testing import LocalPlatform


async def call(
    method: str, url: str, token: str | None = None, **kwargs: Any
) -> tuple[int, dict[str, str], str]:
    headers = {"X-Auth-Token": token} if token else {}
    headers.update(kwargs.pop("headers", {}))
    async with aiohttp.ClientSession() as s, s.request(method, url, headers=headers, **kwargs) as r:
        return r.status, dict(r.headers), await r.text()


async def test_public_catalog_names_absolute_account_and_ui_roots(platform: LocalPlatform) -> None:
    status, _, text = await call("POST", platform.astakos_auth_url + "/tokens")
    assert status == 200
    entry = json.loads(text)["access"]["serviceCatalog"][0]
    assert entry["name"] == "astakos_account"
    endpoint = entry["endpoints"][0]
    assert endpoint["versionId"] == "v1.0" and endpoint["region"] == "default"
    assert endpoint["publicURL"] == platform.url + "/astakos/account/v1.0"
    assert endpoint["SNF:uiURL"] == platform.url + "/astakos/ui"


async def test_password_credentials_must_name_the_tokens_user(platform: LocalPlatform) -> None:
    a = platform.astakos
    body = {"auth": {"passwordCredentials": {"username": a.user_uuid, "password": a.user_token}}}
    status, _, text = await call("POST", a.auth_url + "/tokens", json=body)
    assert status == 200 and json.loads(text)["access"]["user"]["id"] == a.user_uuid
    body["auth"]["passwordCredentials"]["username"] = a.uuids["other"]
    status, _, text = await call("POST", a.auth_url + "/tokens", json=body)
    assert status == 401 and json.loads(text)["unauthorized"]["message"] == "Invalid credentials"
    status, _, text = await call("POST", a.auth_url + "/tokens", json={"auth": {}})
    assert status == 400 and "missing credentials" in text


async def test_missing_token_unknown_route_and_wrong_method_are_cloudfaults(platform: LocalPlatform) -> None:
    a = platform.astakos
    status, _, text = await call("GET", a.account_url + "/quotas")
    assert status == 401
    assert json.loads(text) == {
        "unauthorized": {"message": "Access denied. No authentication token", "code": 401, "details": ""}
    }
    status, _, text = await call("GET", a.account_url + "/commissions/abc", a.service_token)
    assert status == 400 and json.loads(text)["badRequest"]["message"] == "API endpoint not found"
    status, headers, text = await call("DELETE", a.account_url + "/quotas", a.user_token)
    assert status == 405 and "notAllowed" in json.loads(text) and "GET" in headers["Allow"]


async def test_trailing_slashes_and_the_token_as_query_parameter_are_accepted(
    platform: LocalPlatform,
) -> None:
    a = platform.astakos
    status, _, _ = await call("GET", a.account_url + "/quotas/", params={"X-Auth-Token": a.user_token})
    assert status == 200


async def test_json_endpoints_refuse_other_content_types(platform: LocalPlatform) -> None:
    a = platform.astakos
    status, _, text = await call(
        "POST",
        a.account_url + "/commissions",
        a.service_token,
        data=b"{}",
        headers={"Content-Type": "text/plain"},
    )
    assert status == 400 and "Unsupported Content-type" in text


async def test_feedback_is_parsed_as_a_form_whatever_its_content_type(platform: LocalPlatform) -> None:
    a = platform.astakos
    status, _, text = await call(
        "POST",
        a.account_url + "/feedback",
        a.user_token,
        data=b"feedback_msg=hello&feedback_data=x",
        headers={"Content-Type": "application/octet-stream"},  # what astakosclient sends
    )
    assert (status, text) == (200, "")
    status, _, text = await call(
        "POST", a.account_url + "/feedback", a.user_token, data={"feedback_data": "x"}
    )
    assert status == 400 and "Invalid data" in text


async def test_an_over_limit_issue_carries_data_and_no_details(platform: LocalPlatform) -> None:
    a = platform.astakos
    u = a.user_uuid
    provision = {"holder": f"user:{u}", "source": f"project:{u}", "resource": "cyclades.vm", "quantity": 11}
    status, _, text = await call(
        "POST", a.account_url + "/commissions", a.service_token, json={"provisions": [provision]}
    )
    assert status == 413
    fault = json.loads(text)["overLimit"]
    assert "details" not in fault
    assert fault["data"] == {"name": "NoCapacityError", "provision": provision, "limit": 10, "usage": 0}


async def test_get_services_answers_jsonp_with_a_callback(platform: LocalPlatform) -> None:
    status, headers, text = await call(
        "GET", platform.astakos.ui_url + "/get_services", params={"callback": "f"}
    )
    assert status == 200 and text.startswith("f([") and "javascript" in headers["Content-Type"]


async def test_seeded_ids_follow_the_seed_tokens_never_do_and_a_file_database_keeps_its_data(
    tmp_path: Path,
) -> None:
    async with LocalPlatform(seed=3) as one, LocalPlatform(seed=3) as two:
        assert one.astakos.project_uuid == two.astakos.project_uuid
        assert one.astakos.user_uuid == two.astakos.user_uuid
        assert one.astakos_user_token != two.astakos_user_token
        assert one.astakos_service_token != two.astakos_service_token
    db = tmp_path / "platform.db"
    async with LocalPlatform(db) as first:
        token = first.astakos_service_token
        u = first.astakos.user_uuid
        await first.astakos.set_limit(f"user:{u}", f"project:{u}", "cyclades.vm", 77)
    async with LocalPlatform(db, seed=99) as second:
        assert second.astakos_service_token == token
        assert (await second.astakos.holding(f"user:{u}", f"project:{u}", "cyclades.vm") or {})["limit"] == 77


async def test_resolve_refuses_serials_that_are_not_integers(platform: LocalPlatform) -> None:
    a = platform.astakos
    body = {"accept": ["1"], "reject": []}
    status, _, text = await call("POST", a.account_url + "/commissions/action", a.service_token, json=body)
    assert status == 400 and json.loads(text)["badRequest"]["message"] == "Serials should be integer."
    status, _, text = await call(
        "POST", a.account_url + "/commissions/1/action", a.service_token, json={"accept": "", "reject": ""}
    )
    assert status == 400 and "Specify either accept or reject action." in text
