"""The same raw HTTP requests to the real saltant server and to the embedded service, compared.

Each test sends one sequence of requests (aiohttp, no SDK) to both servers and
compares, request by request, the status, the media type and the JSON shape (keys
and value kinds: a datetime's format, a uuid, an absolute link, ...); error bodies
are compared exactly. Where the embedded service deliberately answers otherwise, the
test says so and pins both answers (docs/saltant.md, "Differences from the real
server").

The real server keeps its state for the session, so every name is unique; it has no
Celery worker (instances are published and never run).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import attrs
import pytest
from yarl import URL

from aioplatform.testing import LocalPlatform

from .saltant_server import PASSWORD, SaltantServer

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def unique(prefix: str = "w") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def kind(value: Any) -> Any:
    """The shape of a JSON value: keys and value kinds, recursively."""
    if isinstance(value, dict):
        return {k: kind(v) for k, v in value.items()}
    if isinstance(value, list):
        return [kind(v) for v in value[:1]]  # one element stands for all
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if value is None:
        return "null"
    if _UUID.match(value):
        return "uuid"
    if match := _DATETIME.match(value):
        return "datetime" + ("Z" if match.group(2) == "Z" else "+offset")
    if value.startswith("API/"):
        return "link"
    return "str"


@attrs.frozen
class Answer:
    status: int
    media_type: str
    body: Any  # parsed JSON, else the text

    @property
    def shape(self) -> Any:
        return kind(self.body) if self.media_type == "application/json" else None


@attrs.define
class Side:
    """One server: its API root and the tokens of the superuser ``admin`` and the user ``alice``."""

    name: str
    api: str
    admin: str
    alice: str
    http: aiohttp.ClientSession

    async def call(
        self, method: str, path: str, *, as_user: str | None = "admin", auth: str | None = None, **kwargs: Any
    ) -> Answer:
        headers = dict(kwargs.pop("headers", {}))
        if auth is not None:
            headers["Authorization"] = auth
        elif as_user is not None:
            headers["Authorization"] = f"Token {self.admin if as_user == 'admin' else self.alice}"
        url = URL(self.api + path, encoded=True)
        async with self.http.request(method, url, headers=headers, allow_redirects=False, **kwargs) as r:
            text = await r.text()
            media = r.content_type
        text = text.replace(self.api, "API/")
        body: Any = text
        if media == "application/json":
            body = json.loads(text)
        return Answer(r.status, media, body)


Flow = Callable[[Side], Awaitable[list[Answer]]]


async def run_both(sides: list[Side], flow: Flow) -> tuple[list[Answer], list[Answer]]:
    embedded, real = [await flow(side) for side in sides]
    assert len(embedded) == len(real)
    return embedded, real


def assert_same(embedded: list[Answer], real: list[Answer], *, exact_errors: bool = True) -> None:
    for i, (mine, theirs) in enumerate(zip(embedded, real, strict=True)):
        where = f"answer {i}: embedded {mine!r}\n real {theirs!r}"
        assert (mine.status, mine.media_type) == (theirs.status, theirs.media_type), where
        assert mine.shape == theirs.shape, where
        if exact_errors and theirs.status >= 400:
            assert mine.body == theirs.body, where


async def compare(sides: list[Side], flow: Flow, *, exact_errors: bool = True) -> list[Answer]:
    embedded, real = await run_both(sides, flow)
    assert_same(embedded, real, exact_errors=exact_errors)
    return real


@pytest.fixture
async def sides(saltant_server: SaltantServer) -> AsyncIterator[list[Side]]:
    async with LocalPlatform() as platform, aiohttp.ClientSession() as http:
        platform.saltant.publish_delay = 10_000.0  # like the real server here: no worker runs anything
        alice = await platform.saltant.add_user("alice", "alice@localhost", password=PASSWORD)
        yield [
            Side("embedded", platform.saltant_url, platform.saltant_token, alice, http),
            Side("real", saltant_server.url, saltant_server.admin_token, saltant_server.user_token, http),
        ]


async def make_queue(side: Side, *, as_user: str = "admin", **fields: Any) -> dict[str, Any]:
    """A container task type, a whitelist holding it and a queue using it (ids by name)."""
    task_type = await side.call(
        "POST", "containertasktypes/", as_user=as_user,
        json={"name": unique("tt"), "command_to_run": "echo", "container_image": "busybox",
              "container_type": "docker", "required_arguments": ["who", "times"],
              "required_arguments_default_values": {"times": 1}},
    )  # fmt: skip
    assert task_type.status == 201, task_type
    whitelist = await side.call(
        "POST", "taskwhitelists/", as_user=as_user,
        json={"name": unique("wl"), "whitelisted_container_task_types": [task_type.body["id"]]},
    )  # fmt: skip
    assert whitelist.status == 201, whitelist
    queue = await side.call(
        "POST", "taskqueues/", as_user=as_user,
        json={"name": unique("q"), "whitelists": [whitelist.body["id"]], **fields},
    )  # fmt: skip
    assert queue.status == 201, queue
    return {"task_type": task_type.body, "whitelist": whitelist.body, "queue": queue.body}


# -- authentication --------------------------------------------------------------------------------


async def test_authentication_failures(sides: list[Side]) -> None:
    async def flow(side: Side) -> list[Answer]:
        return [
            await side.call("GET", "users/", as_user=None),
            await side.call("GET", "users/", auth="Token " + "0" * 40),
            await side.call("GET", "users/", auth="Token"),
            await side.call("GET", "users/", auth="Token a b"),
            await side.call("GET", "users/", auth="Bearer not-a-jwt"),
            await side.call("GET", "users/", auth="Bearer a b"),
            await side.call("GET", "users/", auth="Bearer"),
            await side.call("GET", "users/", auth="bearer abc"),
            await side.call("GET", "users/", auth="Basic Zm9vOmJhcg=="),
            await side.call("POST", "taskqueues/", as_user=None, json={"name": unique()}),
        ]

    await compare(sides, flow)


async def test_the_token_keyword_is_matched_case_insensitively(sides: list[Side]) -> None:
    async def flow(side: Side) -> list[Answer]:
        return [
            await side.call("GET", "users/alice/", auth=f"token {side.alice}"),
            await side.call("GET", "users/alice/", auth=f"TOKEN {side.alice}"),
        ]

    real = await compare(sides, flow)
    assert [a.status for a in real] == [200, 200]


async def test_jwt_obtain_and_refresh(sides: list[Side]) -> None:
    async def flow(side: Side) -> list[Answer]:
        pair = await side.call(
            "POST", "token/", as_user=None, json={"username": "alice", "password": PASSWORD}
        )
        return [
            pair,
            await side.call("GET", "users/alice/", auth=f"Bearer {pair.body['access']}"),
            await side.call("POST", "token/refresh/", as_user=None, json={"refresh": pair.body["refresh"]}),
            await side.call("GET", "users/", auth=f"Bearer {pair.body['refresh']}"),  # a refresh token
            await side.call("POST", "token/", as_user=None, json={"username": "alice", "password": "wrong"}),
            await side.call("POST", "token/", as_user=None, json={"username": "alice"}),
            await side.call("POST", "token/refresh/", as_user=None, json={"refresh": "x.y.z"}),
            await side.call("POST", "token/refresh/", as_user=None, json={}),
            await side.call("POST", "token/refresh/", as_user=None, json={"refresh": pair.body["access"]}),
        ]

    real = await compare(sides, flow)
    assert [a.status for a in real[:4]] == [200, 200, 200, 403]


# -- not found, methods, unknown URLs ---------------------------------------------------------


async def test_not_found_answers(sides: list[Side]) -> None:
    missing = str(uuid.uuid4())

    async def flow(side: Side) -> list[Answer]:
        return [
            await side.call("GET", "taskqueues/999999999/"),
            await side.call("GET", "taskqueues/abc/"),
            await side.call("GET", "taskwhitelists/999999999/"),
            await side.call("GET", "containertasktypes/999999999/"),
            await side.call("GET", "executabletasktypes/999999999/"),
            await side.call("GET", f"containertaskinstances/{missing}/"),
            await side.call("GET", "containertaskinstances/not-a-uuid/"),
            await side.call("GET", f"executabletaskinstances/{missing}/"),
            await side.call("GET", "users/nobody-at-all/"),
            await side.call("PATCH", "taskqueues/999999999/", json={"description": "x"}),
            await side.call("PUT", "taskwhitelists/999999999/", json={"name": unique()}),
        ]

    await compare(sides, flow)


async def test_methods_a_resource_does_not_allow(sides: list[Side]) -> None:
    async def flow(side: Side) -> list[Answer]:
        made = await make_queue(side)
        queue, task_type = made["queue"]["id"], made["task_type"]["id"]
        return [
            await side.call("DELETE", f"taskqueues/{queue}/"),
            await side.call("PATCH", f"containertasktypes/{task_type}/", json={"description": "x"}),
            await side.call("DELETE", f"containertasktypes/{task_type}/"),
            await side.call("POST", "users/", json={"username": unique()}),
            await side.call("PUT", f"containertaskinstances/{uuid.uuid4()}/", json={}),
        ]

    await compare(sides, flow)


async def test_unknown_urls(sides: list[Side]) -> None:
    nowhere = str(uuid.uuid4())

    async def flow(side: Side) -> list[Answer]:
        return [
            await side.call("POST", "nothing-here/", json={}),
            await side.call("PATCH", f"updatetaskinstancestatus/{nowhere}/", json={"state": "running"}),
            await side.call("PATCH", "updatetaskinstancestatus/abc/", json={"state": "running"}),
            await side.call("PATCH", f"updatetaskinstancestatus/{uuid.uuid4()}/", json={}),
            await side.call("PUT", "taskqueues/1/extra/", json={}),
            await side.call("DELETE", "nothing-here/"),
        ]

    await compare(sides, flow)


# -- validation ----------------------------------------------------------------------------------


async def test_task_queue_validation_errors(sides: list[Side]) -> None:
    taken = unique("taken")

    async def flow(side: Side) -> list[Answer]:
        first = await side.call("POST", "taskqueues/", json={"name": f"{taken}-{side.name}"})
        return [
            first,
            await side.call("POST", "taskqueues/", json={"name": f"{taken}-{side.name}"}),
            await side.call("POST", "taskqueues/", json={}),
            await side.call("POST", "taskqueues/", json={"name": "has spaces"}),
            await side.call("POST", "taskqueues/", json={"name": ""}),
            await side.call("POST", "taskqueues/", json={"name": "x" * 51}),
            await side.call("POST", "taskqueues/", json={"name": unique(), "whitelists": [999999999]}),
            await side.call("POST", "taskqueues/", json={"name": unique(), "whitelists": "abc"}),
            await side.call("POST", "taskqueues/", json={"name": unique(), "active": "maybe"}),
            await side.call("POST", "taskqueues/", json=[1, 2]),
            await side.call(
                "POST", "taskqueues/", data="{not json", headers={"Content-Type": "application/json"}
            ),
            await side.call("POST", "taskqueues/", data="x", headers={"Content-Type": "text/plain"}),
            await side.call("POST", "taskqueues/", data=b"", headers={"Content-Type": "text/plain"}),
            await side.call("POST", "taskwhitelists/", json="text"),
            await side.call("POST", "token/", json=[1]),
            await side.call(
                "POST", "containertaskinstances/", data="x", headers={"Content-Type": "text/plain"}
            ),
        ]

    embedded, real = await run_both(sides, flow)
    # the duplicate's message names the side's own queue; the rest is compared exactly
    assert_same(embedded, real)


async def test_task_type_validation_errors(sides: list[Side]) -> None:
    async def flow(side: Side) -> list[Answer]:
        base = {"command_to_run": "true", "container_image": "busybox", "container_type": "docker"}
        return [
            await side.call(
                "POST", "containertasktypes/", json={**base, "name": unique(), "container_type": "x"}
            ),
            await side.call("POST", "containertasktypes/", json={"name": unique()}),
            await side.call(
                "POST",
                "containertasktypes/",
                json={
                    **base,
                    "name": unique(),
                    "required_arguments": ["a"],
                    "required_arguments_default_values": {"b": 1},
                },
            ),
            await side.call(
                "POST",
                "containertasktypes/",
                json={**base, "name": unique(), "environment_variables": {"A": 1}},
            ),
            await side.call(
                "POST", "containertasktypes/", json={**base, "name": unique(), "required_arguments": '["a"]'}
            ),
            await side.call(
                "POST",
                "containertasktypes/",
                json={**base, "name": unique(), "environment_variables": "not json"},
            ),
            await side.call("POST", "executabletasktypes/", json={"name": unique()}),
            await side.call(
                "POST", "executabletasktypes/", json={"name": unique(), "command_to_run": "true"}
            ),
        ]

    await compare(sides, flow)


async def test_task_instance_validation_errors(sides: list[Side]) -> None:
    async def flow(side: Side) -> list[Answer]:
        made = await make_queue(side)
        ids = {"task_type": made["task_type"]["id"], "task_queue": made["queue"]["id"]}
        other = await side.call(
            "POST", "containertasktypes/",
            json={"name": f"other-{side.name}-{uuid.uuid4().hex[:6]}", "command_to_run": "true",
                  "container_image": "busybox", "container_type": "docker"},
        )  # fmt: skip
        answers = [
            await side.call("POST", "containertaskinstances/", json={**ids, "arguments": {}}),
            await side.call("POST", "containertaskinstances/", json={**ids, "task_queue": 999999999}),
            await side.call("POST", "containertaskinstances/", json={**ids, "task_type": 999999999}),
            await side.call("POST", "containertaskinstances/", json={"arguments": {"who": "x"}}),
            await side.call("POST", "containertaskinstances/", json={**ids, "arguments": [1]}),
            await side.call("POST", "containertaskinstances/", json={**ids, "arguments": '{"who": "x"}'}),
            await side.call("POST", "containertaskinstances/", json={**ids, "arguments": "not json"}),
            await side.call(
                "POST",
                "executabletaskinstances/",
                json={**ids, "task_type": 999999999, "arguments": {"who": "x"}},
            ),
        ]
        refused = await side.call(
            "POST", "containertaskinstances/", json={**ids, "task_type": other.body["id"], "arguments": {}}
        )
        queue_name, other_name = made["queue"]["name"], other.body["name"]
        expected = f"Queue {queue_name} has not whitelisted task type {other_name}"
        assert (refused.status, refused.body) == (400, {"non_field_errors": [repr([expected])]}), side.name
        no_docker = await side.call(
            "POST",
            "taskqueues/",
            json={
                "name": unique("nd"),
                "whitelists": [made["whitelist"]["id"]],
                "runs_docker_container_tasks": False,
            },
        )
        refused = await side.call(
            "POST",
            "containertaskinstances/",
            json={**ids, "task_queue": no_docker.body["id"], "arguments": {"who": "x"}},
        )
        expected = f"Queue {no_docker.body['name']} does not accept Docker container tasks"
        assert (refused.status, refused.body) == (400, {"non_field_errors": [repr([expected])]}), side.name
        return answers

    await compare(sides, flow)


# -- resources: create, read, update ---------------------------------------------------------


async def test_create_get_and_update_every_resource(sides: list[Side]) -> None:
    async def flow(side: Side) -> list[Answer]:
        made = await make_queue(side, description="d", private=True)
        queue, whitelist, task_type = made["queue"], made["whitelist"], made["task_type"]
        exe = await side.call(
            "POST", "executabletasktypes/", json={"name": unique("exe"), "command_to_run": "true"}
        )
        return [
            exe,
            await side.call("GET", f"taskqueues/{queue['id']}/"),
            await side.call("GET", f"taskwhitelists/{whitelist['id']}/"),
            await side.call("GET", f"containertasktypes/{task_type['id']}/"),
            await side.call("GET", f"executabletasktypes/{exe.body['id']}/"),
            await side.call("GET", "users/admin/"),
            await side.call("PATCH", f"taskqueues/{queue['id']}/", json={"description": "patched"}),
            # PUT keeps what it leaves out (DRF skips absent non-required fields)
            await side.call("PUT", f"taskqueues/{queue['id']}/", json={"name": queue["name"]}),
            await side.call("PUT", f"taskwhitelists/{whitelist['id']}/", json={"name": whitelist["name"]}),
            await side.call(
                "PUT",
                f"containertasktypes/{task_type['id']}/",
                json={
                    "name": task_type["name"],
                    "command_to_run": "echo 2",
                    "container_image": "busybox",
                    "container_type": "singularity",
                },
            ),
            await side.call(
                "PATCH", f"taskwhitelists/{whitelist['id']}/", json={"whitelisted_container_task_types": []}
            ),
        ]

    embedded, real = await run_both(sides, flow)
    assert_same(embedded, real)
    for mine, theirs in zip(embedded, real, strict=True):
        strip = ("id", "name", "user", "whitelists", "whitelisted_container_task_types", "datetime_created")
        assert {k: v for k, v in mine.body.items() if k not in strip} == {
            k: v for k, v in theirs.body.items() if k not in strip
        }


async def test_form_bodies_as_saltant_py_sends_them(sides: list[Side]) -> None:
    async def flow(side: Side) -> list[Answer]:
        whitelist = await side.call("POST", "taskwhitelists/", data={"name": unique("fw")})
        queue = await side.call(
            "POST", "taskqueues/",
            data=[("name", unique("fq")), ("active", "True"), ("whitelists", str(whitelist.body["id"]))],
        )  # fmt: skip
        task_type = await side.call(
            "POST", "containertasktypes/",
            data={"name": unique("ft"), "command_to_run": "true", "container_image": "busybox",
                  "container_type": "docker", "required_arguments": '["a"]',
                  "required_arguments_default_values": '{"a": 1}'},
        )  # fmt: skip
        return [whitelist, queue, task_type]

    embedded, real = await run_both(sides, flow)
    assert_same(embedded, real)
    for i in (1, 2):
        strip = ("id", "name", "whitelists", "datetime_created")
        assert {k: v for k, v in embedded[i].body.items() if k not in strip} == {
            k: v for k, v in real[i].body.items() if k not in strip
        }


async def test_a_normal_user_reads_all_but_writes_only_its_own(sides: list[Side]) -> None:
    async def flow(side: Side) -> list[Answer]:
        made = await make_queue(side)
        queue = made["queue"]["id"]
        own = await make_queue(side, as_user="alice")
        return [
            await side.call("GET", f"taskqueues/{queue}/", as_user="alice"),
            await side.call("PATCH", f"taskqueues/{queue}/", as_user="alice", json={"description": "x"}),
            await side.call(
                "PUT", f"containertasktypes/{made['task_type']['id']}/", as_user="alice", json={}
            ),
            await side.call("PATCH", f"taskqueues/{own['queue']['id']}/", json={"description": "admin may"}),
            await side.call("GET", "users/", as_user="alice"),
        ]

    embedded, real = await run_both(sides, flow)
    assert_same(embedded[:4], real[:4])
    assert (embedded[4].status, embedded[4].shape["results"]) == (real[4].status, real[4].shape["results"])


# -- task instances ------------------------------------------------------------------------------


async def test_instances_create_get_clone_terminate_and_status(sides: list[Side]) -> None:
    async def flow(side: Side) -> list[Answer]:
        made = await make_queue(side)
        ids = {"task_type": made["task_type"]["id"], "task_queue": made["queue"]["id"]}
        created = await side.call(
            "POST", "containertaskinstances/", json={**ids, "name": "n", "arguments": {"who": "x"}}
        )
        uid = created.body["uuid"]
        return [
            created,
            await side.call("GET", f"containertaskinstances/{uid}/"),
            await side.call("POST", f"containertaskinstances/{uid}/clone/"),
            await side.call("POST", f"containertaskinstances/{uid}/clone/", as_user="alice"),
            await side.call("POST", f"containertaskinstances/{uid}/terminate/"),
            await side.call("PATCH", f"updatetaskinstancestatus/{uid}/", json={"state": "running"}),
            await side.call("GET", f"containertaskinstances/{uid}/"),
            await side.call("PATCH", f"updatetaskinstancestatus/{uid}/", json={"state": "successful"}),
            await side.call("GET", f"containertaskinstances/{uid}/"),
            await side.call("POST", f"containertaskinstances/{uid}/terminate/"),
            await side.call("PATCH", f"updatetaskinstancestatus/{uid}/", json={"state": "nonsense"}),
        ]

    embedded, real = await run_both(sides, flow)
    assert_same(embedded[:-1], real[:-1])
    # a documented difference: the real server stores any state a worker sends
    assert (real[-1].status, real[-1].body["state"]) == (200, "nonsense")
    assert (embedded[-1].status, embedded[-1].body) == (400, {"state": ['"nonsense" is not a valid choice.']})
    assert [a.body.get("state") for a in real[5:9]] == ["running", "running", "successful", "successful"]
    assert [a.body.get("state") for a in embedded[5:9]] == ["running", "running", "successful", "successful"]


async def test_clone_and_terminate_of_an_unknown_uuid(sides: list[Side]) -> None:
    """A documented difference: the real server crashes on the lookup (an empty 405 from its
    GET-only error view); the embedded service answers what a GET of that uuid answers."""
    missing = str(uuid.uuid4())

    async def flow(side: Side) -> list[Answer]:
        return [
            await side.call("POST", f"containertaskinstances/{missing}/clone/"),
            await side.call("POST", f"executabletaskinstances/{missing}/terminate/"),
        ]

    embedded, real = await run_both(sides, flow)
    assert [(a.status, a.body) for a in real] == [(405, ""), (405, "")]
    assert [(a.status, a.body) for a in embedded] == [(404, {"detail": "Not found."})] * 2


# -- pages and filters -----------------------------------------------------------------------------


async def test_pages(sides: list[Side]) -> None:
    prefix = unique("pg")

    async def flow(side: Side) -> list[Answer]:
        for i in range(5):
            await side.call("POST", "taskqueues/", json={"name": f"{prefix}{i}"})
        mine = f"name__startswith={prefix}"
        return [
            await side.call("GET", f"taskqueues/?{mine}&page_size=2"),
            await side.call("GET", f"taskqueues/?{mine}&page_size=2&page=2"),
            await side.call("GET", f"taskqueues/?{mine}&page_size=2&page=3"),
            await side.call("GET", f"taskqueues/?{mine}&page_size=2&page=4"),
            await side.call("GET", f"taskqueues/?{mine}&page=0"),
            await side.call("GET", f"taskqueues/?{mine}&page=abc"),
            await side.call("GET", f"taskqueues/?{mine}&page=last"),
            await side.call("GET", f"taskqueues/?{mine}&page_size=0"),
            await side.call("GET", f"taskqueues/?{mine}&page_size=-1"),
            await side.call("GET", f"taskqueues/?{mine}&page_size=abc"),
            await side.call("GET", f"taskqueues/?{mine}&page_size=9223372036854775807"),
        ]

    embedded, real = await run_both(sides, flow)
    assert_same(embedded, real)
    for mine, theirs in zip(embedded, real, strict=True):
        if theirs.status == 200:
            links = ("next", "previous")
            assert [str(mine.body[k]).replace("API/", "") for k in links] == [
                str(theirs.body[k]).replace("API/", "") for k in links
            ]
            assert [q["name"] for q in mine.body["results"]] == [q["name"] for q in theirs.body["results"]]


async def test_filters(sides: list[Side]) -> None:
    prefix = unique("fl")

    async def flow(side: Side) -> list[Answer]:
        await side.call("POST", "taskqueues/", json={"name": f"{prefix}-on"})
        await side.call("POST", "taskqueues/", json={"name": f"{prefix}-off", "active": False})
        await side.call("POST", "taskqueues/", json={"name": f"{prefix}-alice"}, as_user="alice")
        mine = f"name__startswith={prefix}"
        queries = [
            "active=False", "active=false", "active=0", "active=maybe", "user__username=alice",
            "user__username__in=alice,admin", f"name={prefix}-on", f"name__in={prefix}-on,{prefix}-off",
            "name__contains=-o", "name__icontains=-ON", "name__endswith=off", "name__regex=-o[nf]",
            "private=True", "user=1", "nonsense=1", "whitelists=1", "runs_docker_container_tasks=True",
        ]  # fmt: skip
        return [await side.call("GET", f"taskqueues/?{mine}&{query}") for query in queries]

    embedded, real = await run_both(sides, flow)
    assert_same(embedded, real)
    for mine, theirs in zip(embedded, real, strict=True):
        if theirs.status == 200:
            assert sorted(q["name"] for q in mine.body["results"]) == sorted(
                q["name"] for q in theirs.body["results"]
            )


async def test_instance_filters(sides: list[Side]) -> None:
    async def flow(side: Side) -> list[Answer]:
        made = await make_queue(side)
        ids = {"task_type": made["task_type"]["id"], "task_queue": made["queue"]["id"]}
        for name in ("alpha one", "beta & two"):
            await side.call(
                "POST", "containertaskinstances/", json={**ids, "name": name, "arguments": {"who": "x"}}
            )
        queue = f"task_queue={ids['task_queue']}"
        queries = [
            "name=beta%20%26%20two", "name__startswith=alp", "state=running", "state__in=created,published",
            "task_type=abc", "task_queue=abc", "datetime_created__gt=2000-01-01T00:00:00Z",
            "datetime_created__gt=not-a-date", "datetime_created__year=2000",
            "datetime_finished__isnull=True", "datetime_created__range=2000-01-01,2100-01-01",
            "user__username=admin", "uuid=abc",
            "datetime_created__range=2000-01-01T00:00:00Z,2100-01-01%2000:00",
            "datetime_created__gt=2000-01-01", "datetime_created__lt=2100-01-01%2000:00:00.1234567%2B01:00",
            "datetime_created__range=2000-01-01T00:00Z", "datetime_created__gte=2000-1-1T1:2",
            "datetime_created__lte=2100-13-01T00:00",
        ]  # fmt: skip
        return [await side.call("GET", f"containertaskinstances/?{queue}&{query}") for query in queries]

    embedded, real = await run_both(sides, flow)
    assert_same(embedded, real)
    for mine, theirs in zip(embedded, real, strict=True):
        if theirs.status == 200:
            assert sorted(i["name"] for i in mine.body["results"]) == sorted(
                i["name"] for i in theirs.body["results"]
            )


async def test_users_listing_and_filters(sides: list[Side]) -> None:
    async def flow(side: Side) -> list[Answer]:
        return [
            await side.call("GET", "users/?username=alice"),
            await side.call("GET", "users/?email__contains=alice@"),
            await side.call("GET", "users/?username__in=alice,admin"),
            await side.call("GET", "users/alice/"),
            await side.call("GET", "users/?page_size=1&username__in=alice,admin"),
        ]

    embedded, real = await run_both(sides, flow)
    assert_same(embedded, real)
    assert [a.body for a in embedded] == [a.body for a in real]


# -- documents -------------------------------------------------------------------------------------


async def test_trailing_slash_unknown_get_and_the_api_docs(sides: list[Side]) -> None:
    async def flow(side: Side) -> list[Answer]:
        return [
            await side.call("GET", "users"),
            await side.call("POST", "taskqueues", json={"name": unique()}),
            await side.call("GET", "nothing-here/"),  # the frontend's HTML error page
            await side.call("GET", "swagger/.json", as_user=None),
            await side.call("GET", "swagger/", as_user=None),
            await side.call("GET", "redoc/", as_user=None),
        ]

    embedded, real = await run_both(sides, flow)
    assert [(a.status, a.media_type) for a in real] == [
        (200, "application/json"), (201, "application/json"), (404, "text/html"), (200, "application/json"),
        (200, "text/html"), (200, "text/html"),
    ]  # fmt: skip
    assert [(a.status, a.media_type) for a in embedded] == [(a.status, a.media_type) for a in real]
    assert embedded[3].body["swagger"] == real[3].body["swagger"] == "2.0"
    # a documented difference: the embedded service also serves the schema at swagger.json
    alias = [await side.call("GET", "swagger.json", as_user=None) for side in sides]
    assert [(a.status, a.media_type) for a in alias] == [(200, "application/json"), (404, "text/html")]


async def test_form_put_resets_booleans_and_lists_as_html_input_does(sides: list[Side]) -> None:
    async def flow(side: Side) -> list[Answer]:
        made = await make_queue(side, private=True)
        queue = made["queue"]
        return [
            await side.call("PUT", f"taskqueues/{queue['id']}/", data={"name": queue["name"]}),
            await side.call("GET", f"taskqueues/{queue['id']}/"),
        ]

    embedded, real = await run_both(sides, flow)
    assert_same(embedded, real)
    for answers in (embedded, real):
        body = answers[1].body
        assert (body["private"], body["active"], body["runs_executable_tasks"], body["whitelists"]) == (
            False, False, False, [],
        )  # fmt: skip


async def test_executable_instances_create_clone_and_terminate(sides: list[Side]) -> None:
    async def flow(side: Side) -> list[Answer]:
        task_type = await side.call(
            "POST", "executabletasktypes/", json={"name": unique("exe"), "command_to_run": "true",
                                                  "json_file_option": "--json"},
        )  # fmt: skip
        whitelist = await side.call(
            "POST", "taskwhitelists/",
            json={"name": unique("ewl"), "whitelisted_executable_task_types": [task_type.body["id"]]},
        )  # fmt: skip
        queue = await side.call(
            "POST", "taskqueues/", json={"name": unique("eq"), "whitelists": [whitelist.body["id"]]}
        )
        created = await side.call(
            "POST", "executabletaskinstances/",
            json={"task_type": task_type.body["id"], "task_queue": queue.body["id"], "arguments": {"k": "v"}},
        )  # fmt: skip
        uid = created.body["uuid"]
        return [
            task_type,
            created,
            await side.call("POST", f"executabletaskinstances/{uid}/clone/"),
            await side.call("POST", f"executabletaskinstances/{uid}/terminate/"),
            await side.call("GET", f"executabletaskinstances/?task_queue={queue.body['id']}"),
        ]

    embedded, real = await run_both(sides, flow)
    assert_same(embedded, real)
    assert real[4].body["count"] == embedded[4].body["count"] == 2
