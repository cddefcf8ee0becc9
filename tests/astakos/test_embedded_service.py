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


async def test_a_component_may_commission_only_its_own_resources(platform: LocalPlatform) -> None:
    a = platform.astakos
    u = a.user_uuid
    before = await a.holdings()
    pithos = {
        "holder": f"user:{u}", "source": f"project:{u}", "resource": "pithos.diskspace", "quantity": 2**30
    }  # fmt: skip
    cyclades = {**pithos, "resource": "cyclades.vm", "quantity": 1}
    for provisions in ([pithos], [cyclades, pithos]):
        body = {"provisions": provisions, "force": True}
        status, _, text = await call("POST", a.account_url + "/commissions", a.service_token, json=body)
        assert status == 403
        message = "Resource pithos.diskspace does not belong to component cyclades."
        assert json.loads(text) == {"forbidden": {"code": 403, "message": message}}
    assert await a.holdings() == before and await a.commissions() == {}
    # pithos's own token may
    status, _, _ = await call(
        "POST", a.account_url + "/commissions", a.component_tokens["pithos"], json={"provisions": [pithos]}
    )
    assert status == 201


async def test_quantities_stay_signed_64_bit_and_sums_are_checked_before_writing(
    platform: LocalPlatform,
) -> None:
    a = platform.astakos
    u = a.user_uuid
    holding = {"holder": f"user:{u}", "source": f"project:{u}", "resource": "cyclades.ram"}
    url = a.account_url + "/commissions"
    for quantity in (2**63, -(2**63) - 1, 10**30):
        body = {"provisions": [{**holding, "quantity": quantity}], "force": True}
        status, _, text = await call("POST", url, a.service_token, json=body)
        assert status == 400 and "signed 64-bit" in json.loads(text)["badRequest"]["message"]
    big = {"provisions": [{**holding, "quantity": 2**63 - 1}], "force": True}
    assert (await call("POST", url, a.service_token, json=big))[0] == 201
    before = await a.holdings()
    status, _, text = await call("POST", url, a.service_token, json=big)
    assert status == 413 and json.loads(text)["overLimit"]["data"]["name"] == "NoCapacityError"
    two = {"provisions": [{**holding, "resource": "cyclades.cpu", "quantity": 2**62}] * 2 + [
        {**holding, "resource": "cyclades.cpu", "quantity": 2**62}], "force": True}
    assert (await call("POST", url, a.service_token, json=two))[0] == 413
    after = await a.holdings()
    assert after == before
    assert all(isinstance(v, int) for h in after.values() for v in h.values())


async def test_ids_that_cannot_exist_are_unknown_not_errors(platform: LocalPlatform) -> None:
    a = platform.astakos
    for serial in (str(2**64), "9" * 5000):
        status, _, text = await call("GET", f"{a.account_url}/commissions/{serial}", a.service_token)
        assert (status, text) == (404, "")
        status, _, text = await call(
            "POST", f"{a.account_url}/commissions/{serial}/action", a.service_token, json={"accept": ""}
        )
        assert (status, text) == (404, "")
        status, _, text = await call("GET", f"{a.account_url}/projects/memberships/{serial}", a.user_token)
        assert status == 404 and "itemNotFound" in json.loads(text)
        status, _, text = await call(
            "POST", f"{a.account_url}/projects/memberships/{serial}/action", a.user_token, json={"leave": ""}
        )
        assert status == 404 and "itemNotFound" in json.loads(text)
    body = {"accept": [2**64], "reject": [2**63]}
    status, _, text = await call("POST", a.account_url + "/commissions/action", a.service_token, json=body)
    assert status == 200 and [f[0] for f in json.loads(text)["failed"]] == [2**64, 2**63]
    # A non-ASCII digit is no id: the route does not match (Astakos: unknown endpoint).
    status, _, text = await call("GET", f"{a.account_url}/commissions/\u0661", a.service_token)
    assert status == 400 and "API endpoint not found" in text


async def test_json_nested_too_deep_is_a_400(platform: LocalPlatform) -> None:
    a = platform.astakos
    deep = "[" * 100_000 + "]" * 100_000
    headers = {"Content-Type": "application/json"}
    targets = ((a.account_url + "/commissions", a.service_token), (a.account_url + "/projects", a.user_token))
    for url, token in targets:
        status, _, text = await call("POST", url, token, data=deep, headers=headers)
        assert status == 400 and "badRequest" in json.loads(text)
    status, _, _ = await call("POST", a.auth_url + "/tokens", data=deep, headers=headers)
    assert status == 400
