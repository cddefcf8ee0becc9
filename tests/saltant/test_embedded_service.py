"""The embedded saltant service on the wire (raw aiohttp, no SDK): bodies, pages, errors, restarts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from aioplatform.testing import LocalPlatform


class Raw:
    """A bare HTTP client for the service, with the admin token unless told otherwise."""

    def __init__(self, session: aiohttp.ClientSession, platform: LocalPlatform):
        self.session = session
        self.base = platform.saltant_url
        self.token = platform.saltant_token

    async def call(self, method: str, path: str, token: str | None = "", **kwargs: Any) -> tuple[int, Any]:
        token = self.token if token == "" else token
        headers = {"Authorization": f"Token {token}"} if token else {}
        headers.update(kwargs.pop("headers", {}))
        url = path if path.startswith("http") else self.base + path
        async with self.session.request(method, URL(url, encoded=True), headers=headers, **kwargs) as r:
            text = await r.text()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text


@pytest.fixture
async def raw(platform: LocalPlatform) -> Any:
    async with aiohttp.ClientSession() as session:
        yield Raw(session, platform)


async def test_form_json_and_multipart_bodies_are_all_accepted(raw: Raw) -> None:
    status, form = await raw.call("POST", "taskqueues/", data={"name": "form", "active": "True"})
    assert status == 201
    # HTML-input mode: a missing boolean is False
    assert (form["active"], form["private"], form["runs_executable_tasks"]) == (True, False, False)
    status, as_json = await raw.call("POST", "taskqueues/", json={"name": "json"})
    assert status == 201  # JSON: model defaults
    assert (as_json["active"], as_json["private"], as_json["runs_executable_tasks"]) == (True, False, True)
    status, body = await raw.call("POST", "taskwhitelists/", data={"name": "wl"})
    assert status == 201
    multipart = aiohttp.FormData(
        [("name", "multi"), ("whitelists", str(body["id"])), ("active", "1")], default_to_multipart=True
    )
    status, multi = await raw.call("POST", "taskqueues/", data=multipart)
    assert status == 201 and multi["whitelists"] == [body["id"]] and multi["active"] is True


async def test_json_text_fields_parse_in_forms_and_native_in_json(raw: Raw) -> None:
    form = {
        "name": "t1", "command_to_run": "x", "container_image": "i", "container_type": "docker",
        "environment_variables": '["A"]', "required_arguments": '["a"]',
        "required_arguments_default_values": '{"a": 1}',
    }  # fmt: skip
    status, body = await raw.call("POST", "containertasktypes/", data=form)
    assert status == 201 and body["environment_variables"] == ["A"]
    assert body["required_arguments_default_values"] == {"a": 1}
    native = {**form, "name": "t2", "environment_variables": ["B"], "required_arguments": [],
              "required_arguments_default_values": {}}  # fmt: skip
    status, body = await raw.call("POST", "containertasktypes/", json=native)
    assert status == 201 and body["environment_variables"] == ["B"]
    status, body = await raw.call(
        "POST", "containertasktypes/", data={**form, "name": "t3", "required_arguments": "["}
    )
    assert status == 400 and body == {"required_arguments": ["Value must be valid JSON."]}


async def test_pages_link_with_absolute_urls_and_accept_a_huge_page_size(raw: Raw) -> None:
    for i in range(12):
        await raw.call("POST", "taskwhitelists/", json={"name": f"w{i:02d}"})
    status, first = await raw.call("GET", "taskwhitelists/?page_size=5&name__startswith=w")
    assert status == 200 and first["count"] == 12 and len(first["results"]) == 5
    assert first["previous"] is None
    nxt = URL(first["next"])
    assert nxt.is_absolute() and nxt.query["page"] == "2" and nxt.query["name__startswith"] == "w"
    status, second = await raw.call("GET", first["next"])
    assert URL(second["previous"]).query.get("page") is None  # DRF drops page=1
    status, third = await raw.call("GET", second["next"])
    assert third["next"] is None and [w["name"] for w in third["results"]] == ["w10", "w11"]
    assert URL(third["previous"]).query["page"] == "2"
    status, everything = await raw.call("GET", "taskwhitelists/?page=1&page_size=9223372036854775807")
    assert status == 200 and len(everything["results"]) == 12 and everything["next"] is None
    status, body = await raw.call("GET", "taskwhitelists/?page=4&page_size=5")
    assert (status, body) == (404, {"detail": "Invalid page."})


async def test_task_instances_default_to_pages_of_ten_and_others_of_a_hundred(
    raw: Raw, platform: LocalPlatform
) -> None:
    status, task_type = await raw.call(
        "POST", "executabletasktypes/", json={"name": "e", "command_to_run": "true"}
    )
    status, wl = await raw.call(
        "POST", "taskwhitelists/", json={"name": "w", "whitelisted_executable_task_types": [task_type["id"]]}
    )
    status, queue = await raw.call("POST", "taskqueues/", json={"name": "q", "whitelists": [wl["id"]]})
    for _ in range(11):
        status, _body = await raw.call(
            "POST",
            "executabletaskinstances/",
            data={"task_type": str(task_type["id"]), "task_queue": str(queue["id"])},
        )
        assert status == 201
    for i in range(101):
        await raw.call("POST", "taskwhitelists/", json={"name": f"x{i}"})
    status, page = await raw.call("GET", "executabletaskinstances/")
    assert len(page["results"]) == 10 and page["count"] == 11
    status, page = await raw.call("GET", "taskwhitelists/")
    assert len(page["results"]) == 100 and page["count"] == 102


async def test_errors_are_drf_json(raw: Raw) -> None:
    assert await raw.call("GET", "users/", token=None) == (
        403, {"detail": "Authentication credentials were not provided."},
    )  # fmt: skip
    assert await raw.call("GET", "users/", token="nope") == (403, {"detail": "Invalid token."})
    status, page = await raw.call("GET", "no/such/route/")  # the frontend's HTML page, as saltant
    assert status == 404 and page.startswith("<!doctype html>")
    assert await raw.call("GET", "taskqueues/12345/") == (404, {"detail": "Not found."})
    assert await raw.call("DELETE", "taskqueues/") == (405, {"detail": 'Method "DELETE" not allowed.'})
    assert await raw.call("PATCH", "containertasktypes/1/") == (
        405,
        {"detail": 'Method "PATCH" not allowed.'},
    )
    status, body = await raw.call("POST", "containertasktypes/", json={"name": "n"})
    assert status == 400
    assert body == {
        "command_to_run": ["This field is required."],
        "container_image": ["This field is required."],
        "container_type": ["This field is required."],
    }
    status, body = await raw.call("POST", "containertaskinstances/", json={"task_type": 1, "task_queue": 1})
    assert (status, body) == (
        400, {"task_type": ['Invalid pk "1" - object does not exist.'],
              "task_queue": ['Invalid pk "1" - object does not exist.']},
    )  # fmt: skip


async def test_the_trailing_slash_is_optional(raw: Raw) -> None:
    assert (await raw.call("GET", "users"))[0] == 200
    assert (await raw.call("GET", "users/admin"))[1] == {"username": "admin", "email": "admin@localhost"}


async def test_the_worker_status_endpoint_sets_any_state(raw: Raw, platform: LocalPlatform) -> None:
    platform.saltant.publish_delay = 10_000.0
    status, task_type = await raw.call(
        "POST", "executabletasktypes/", json={"name": "e", "command_to_run": "true"}
    )
    status, wl = await raw.call(
        "POST", "taskwhitelists/", json={"name": "w", "whitelisted_executable_task_types": [task_type["id"]]}
    )
    status, queue = await raw.call("POST", "taskqueues/", json={"name": "q", "whitelists": [wl["id"]]})
    status, instance = await raw.call(
        "POST", "executabletaskinstances/", json={"task_type": task_type["id"], "task_queue": queue["id"]}
    )
    uuid = instance["uuid"]
    assert await raw.call("PATCH", f"updatetaskinstancestatus/{uuid}/", json={"state": "failed"}) == (
        200, {"uuid": uuid, "state": "failed"},
    )  # fmt: skip
    status, body = await raw.call("GET", f"executabletaskinstances/{uuid}/")
    assert body["state"] == "failed" and body["datetime_finished"] is not None
    missing = "00000000-0000-4000-8000-000000000000"
    status, body = await raw.call("PATCH", f"updatetaskinstancestatus/{missing}/", json={"state": "running"})
    assert (status, body) == (400, f"No task instance with UUID {missing} found")


async def test_the_jwt_endpoints(raw: Raw, platform: LocalPlatform) -> None:
    status, body = await raw.call("POST", "token/", token=None, json={"username": "admin"})
    assert (status, body) == (400, {"password": ["This field is required."]})
    status, body = await raw.call("POST", "token/", token=None, data={"username": "admin", "password": "x"})
    assert (status, body) == (401, {"detail": "No active account found with the given credentials"})
    status, tokens = await raw.call(
        "POST", "token/", token=None, data={"username": "admin", "password": platform.saltant.admin_password}
    )
    assert status == 200 and set(tokens) == {"access", "refresh"}
    async with raw.session.get(
        raw.base + "users/", headers={"Authorization": f"Bearer {tokens['access']}"}
    ) as r:
        assert r.status == 200
    async with raw.session.get(
        raw.base + "users/", headers={"Authorization": f"Bearer {tokens['refresh']}"}
    ) as r:
        assert r.status == 403 and (await r.json())["code"] == "token_not_valid"
    status, body = await raw.call("POST", "token/refresh/", token=None, json={"refresh": tokens["refresh"]})
    assert status == 200 and set(body) == {"access"}
    status, body = await raw.call("POST", "token/refresh/", token=None, json={"refresh": tokens["access"]})
    assert (status, body["code"]) == (401, "token_not_valid")


async def test_a_file_database_keeps_data_and_the_admin_token_across_restarts(tmp_path: Path) -> None:
    db = tmp_path / "platform.db"
    async with LocalPlatform(db, seed=3) as first:
        token = first.saltant_token
        bob = await first.saltant.add_user("bob")
        raw = Raw(aiohttp.ClientSession(), first)
        async with raw.session:
            assert (await raw.call("POST", "taskqueues/", token=bob, json={"name": "kept"}))[0] == 201
    async with LocalPlatform(db, seed=3) as second:
        assert second.saltant_token == token
        raw = Raw(aiohttp.ClientSession(), second)
        async with raw.session:
            _, body = await raw.call("GET", "taskqueues/?name=kept", token=bob)
        assert [q["user"] for q in body["results"]] == ["bob"]


async def test_a_fixed_admin_token_wins_over_the_one_a_file_database_has(tmp_path: Path) -> None:
    db = tmp_path / "platform.db"
    async with LocalPlatform(db, seed=1) as first:
        old = first.saltant_token
    async with LocalPlatform(db, seed=1, credentials={"saltant_token": "f" * 40}) as second:
        assert second.saltant_token == "f" * 40 != old
        async with aiohttp.ClientSession() as session:
            raw = Raw(session, second)
            assert (await raw.call("GET", "users/"))[0] == 200
            assert (await raw.call("GET", "users/", token=old))[0] == 403


async def test_a_bad_regex_filter_matches_nothing(raw: Raw) -> None:
    await raw.call("POST", "taskwhitelists/", json={"name": "w"})
    status, body = await raw.call("GET", "taskwhitelists/?name__regex=%5B")
    assert (status, body["count"]) == (200, 0)


def test_add_user_works_from_a_test_thread(local_platform: LocalPlatform) -> None:
    token = local_platform.saltant.add_user_sync("threaded", "t@example.org")
    assert len(token) == 40
    with pytest.raises(ValueError, match="already exists"):
        local_platform.saltant.add_user_sync("threaded")


async def test_non_get_requests_to_unknown_urls_get_an_empty_405(raw: Raw) -> None:
    # saltant's custom error views handle GET only (protocol §9)
    assert await raw.call("POST", "no/such/route/") == (405, "")
    assert await raw.call("PUT", "users/admin/extra/") == (405, "")
    assert (await raw.call("GET", "no/such/route/"))[0] == 404


async def test_the_api_docs_are_public(raw: Raw) -> None:
    status, schema = await raw.call("GET", "swagger.json", token=None)
    assert status == 200 and schema["swagger"] == "2.0" and schema["basePath"] == "/saltant/api"
    assert set(schema["paths"]["/containertaskinstances/{uuid}/clone/"]) == {"post", "parameters"}
    assert set(schema["paths"]["/taskqueues/{id}/"]) == {"get", "put", "patch", "parameters"}
    assert schema["paths"]["/token/"]["post"]["security"] == []
    for page in ("swagger/", "redoc/"):
        status, html = await raw.call("GET", page, token=None)
        assert status == 200 and "swagger/.json" in html  # drf-yasg's path


async def test_ids_are_ascii_digits_in_signed_64_bit_or_unknown(raw: Raw, platform: LocalPlatform) -> None:
    status, queue = await raw.call("POST", "taskqueues/", json={"name": "q1"})
    assert status == 201 and queue["id"] == 1
    before = await platform.store.dump()
    for pk in ("%C2%B3", "%D9%A1", str(10**30), "9" * 5000, str(2**63)):
        for kind in ("taskqueues", "taskwhitelists", "executabletasktypes"):
            assert (await raw.call("GET", f"{kind}/{pk}/"))[0] == 404
            assert (await raw.call("PUT", f"{kind}/{pk}/", json={"name": "x"}))[0] == 404
        assert (await raw.call("PATCH", f"taskqueues/{pk}/", json={"name": "x"}))[0] == 404
    # In a body: an integer no row can have is one that does not exist.
    for pk in (10**30, "9" * 5000, 2**63):
        status, body = await raw.call("POST", "taskqueues/", json={"name": "q2", "whitelists": [pk]})
        assert status == 400 and body["whitelists"] == [f'Invalid pk "{pk}" - object does not exist.']
        status, body = await raw.call(
            "POST", "executabletaskinstances/", json={"task_type": pk, "task_queue": 1}
        )
        assert status == 400 and "does not exist" in body["task_type"][0]
        status, body = await raw.call("GET", f"executabletaskinstances/?task_queue={pk}")
        assert status == 400 and "task_queue" in body
    status, body = await raw.call("POST", "taskqueues/", json={"name": "q3", "whitelists": ["\u00b3"]})
    assert status == 400 and body["whitelists"][0].startswith("Incorrect type.")
    assert await platform.store.dump() == before


async def test_malformed_bodies_are_400s_and_change_nothing(raw: Raw, platform: LocalPlatform) -> None:
    before = await platform.store.dump()
    bodies = [
        ("application/json", b"[" * 100_000 + b"]" * 100_000),
        ("application/json", b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        ("multipart/form-data", b"no boundary"),
        ("multipart/form-data; boundary=xyz", b"garbage"),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nnot a header\r\n\r\nv\r\n--xyz--\r\n"),
        ("multipart/form-data; boundary=xyz", b'--xyz\r\nContent-Disposition: form-data; name="n"\r\n\r\nv'),
        ("application/x-www-form-urlencoded; charset=nope", b"name=x"),
        ("application/x-www-form-urlencoded", b"name=\xff"),
    ]
    for ctype, body in bodies:
        for path in ("taskqueues/", "executabletasktypes/", "taskqueues/1/"):
            status, answer = await raw.call(
                "PATCH" if path[-2].isdigit() else "POST", path, data=body, headers={"Content-Type": ctype}
            )
            assert status in (400, 404), (ctype, body[:40], status, answer)
            if status == 400 and isinstance(answer, dict) and "detail" in answer:
                assert "parse error" in answer["detail"]
    form = {"name": "t", "command_to_run": "x", "environment_variables": "[" * 5000 + "]" * 5000}
    status, answer = await raw.call("POST", "executabletasktypes/", data=form)
    assert (status, answer) == (400, {"environment_variables": ["Value must be valid JSON."]})
    assert await platform.store.dump() == before
