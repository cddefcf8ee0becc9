"""A success answer the client cannot use is an UnexpectedResponse naming the field and the URL.

A loopback server answers each service's calls with bodies of the wrong shape (a
listing where an object belongs, a missing or mistyped field, HTML, a field that is
no number); the client raises :class:`aioplatform.UnexpectedResponse` — never a raw
cattrs ``ClassValidationError``, ``KeyError``, ``TypeError`` or ``JSONDecodeError`` —
with ``.field``, ``.problem``, the response's status/method/URL, and the parsing
error chained as ``__cause__``. Bodies that carry credentials are never kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cattrs
import pytest

import aioplatform
from aioplatform import APIError, UnexpectedResponse

from .loopback import ASTAKOS_ACCOUNT, ASTAKOS_AUTH, FLOWSERV, SALTANT, Loopback

SECRET = "f00dfacecafe1234f00dfacecafe1234"


@pytest.fixture(scope="module")
def server() -> Iterator[Loopback]:
    with Loopback().running() as loopback:
        yield loopback


@pytest.fixture
def wire(server: Loopback) -> Loopback:
    server.answers.clear()
    server.seen.clear()
    return server


def unexpected(wire: Loopback, call: Any) -> UnexpectedResponse:
    with pytest.raises(UnexpectedResponse) as caught:
        wire.run(call)
    error = caught.value
    assert isinstance(error, APIError) and error.status == 200
    assert error.url.startswith(wire.url)
    assert error.field in str(error) and error.url in str(error)
    return error


def test_unexpected_response_is_public_and_an_api_error() -> None:
    assert aioplatform.UnexpectedResponse is UnexpectedResponse
    assert "UnexpectedResponse" in aioplatform.__all__
    assert issubclass(UnexpectedResponse, APIError)


def test_saltant_a_missing_field_is_named_with_its_path(wire: Loopback) -> None:
    wire.answer(SALTANT + "users/alice/", {"email": "a@example.org"})
    error = unexpected(wire, wire.saltant.users.get("alice"))
    assert (error.field, error.problem) == ("$.username", "required field missing")
    assert error.method == "GET" and error.url.endswith("/saltant/api/users/alice/")
    assert isinstance(error.__cause__, cattrs.BaseValidationError)


def test_saltant_a_listing_item_of_the_wrong_type_is_named_with_its_index(wire: Loopback) -> None:
    results = [{"id": 1, "name": "a"}, {"id": "x", "name": "b"}]
    wire.answer(SALTANT + "taskqueues/", {"count": 2, "next": None, "results": results})
    error = unexpected(wire, wire.saltant.task_queues.list().to_list())
    assert error.field == "$.results[1].id"
    assert "expected int" in error.problem


def test_saltant_a_listing_where_one_object_belongs_is_unexpected(wire: Loopback) -> None:
    # what users.get(".") used to receive (GET users/ instead of users/./)
    wire.answer(SALTANT + "users/bob/", {"count": 0, "next": None, "results": []})
    error = unexpected(wire, wire.saltant.users.get("bob"))
    assert error.field == "$.username"


def test_a_body_that_is_not_json_is_unexpected(wire: Loopback) -> None:
    wire.answer(SALTANT + "taskqueues/3/", b"<html>maintenance</html>", content_type="text/html")
    error = unexpected(wire, wire.saltant.task_queues.get(id=3))
    assert (error.field, error.problem) == ("$", "the body is not JSON")
    assert error.body == "<html>maintenance</html>"
    assert isinstance(error.__cause__, ValueError)


def test_saltant_a_token_answer_without_access_is_reported_without_its_body(wire: Loopback) -> None:
    wire.answer(SALTANT + "token/", {"refresh": SECRET})

    async def call() -> None:
        async with aioplatform.saltant.SaltantClient.from_jwt(wire.url + SALTANT, "alice", "pw") as client:
            await client.users.get("alice")

    error = unexpected(wire, call())
    assert (error.field, error.problem) == ("$", "required field 'access' missing")
    assert SECRET not in str(error) and SECRET not in repr(error) and SECRET not in error.body


def test_astakos_a_listing_where_a_project_belongs_is_unexpected(wire: Loopback) -> None:
    wire.answer(ASTAKOS_ACCOUNT + "projects/p1", [])
    error = unexpected(wire, wire.astakos.get_project("p1"))
    assert error.url.endswith("/astakos/account/v1.0/projects/p1")


def test_astakos_a_serial_that_is_no_number_is_unexpected(wire: Loopback) -> None:
    wire.answer(ASTAKOS_ACCOUNT + "commissions", {"serial": "abc"})
    request = aioplatform.astakos.CommissionRequest.one("u1", "p1", {"cyclades.vm": 1})
    error = unexpected(wire, wire.astakos.issue_commission(request))
    assert error.method == "POST" and "abc" in error.problem
    wire.answer(ASTAKOS_ACCOUNT + "commissions", {"serials": [1]})
    assert unexpected(wire, wire.astakos.issue_commission(request)).field == "$.serial"


def test_astakos_a_quota_of_the_wrong_type_is_named_with_its_path(wire: Loopback) -> None:
    quota = {"limit": 1, "usage": 0, "pending": 0, "project_limit": 1, "project_usage": 0}
    wire.answer(ASTAKOS_ACCOUNT + "quotas", {"p1": {"cyclades.vm": {**quota, "project_pending": "many"}}})
    error = unexpected(wire, wire.astakos.get_quotas())
    assert error.field == "$['p1']['cyclades.vm'].project_pending"
    assert error.problem == "invalid value for type, expected int"


def test_flowserv_a_listing_that_is_no_list_is_unexpected(wire: Loopback) -> None:
    wire.answer(FLOWSERV + "workflows", {"workflows": 5})
    error = unexpected(wire, wire.flowserv.workflows.list().to_list())
    assert error.field == "$.workflows"
    wire.answer(FLOWSERV + "workflows", {"benchmarks": []})
    assert unexpected(wire, wire.flowserv.workflows.list().to_list()).field == "$.workflows"


def test_flowserv_a_group_without_its_name_is_unexpected(wire: Loopback) -> None:
    wire.answer(FLOWSERV + "groups/" + "a" * 32, {"id": "a" * 32})
    error = unexpected(wire, wire.flowserv.groups.get("a" * 32))
    assert (error.field, error.problem) == ("$.name", "required field missing")


def test_flowserv_a_login_answer_is_reported_without_the_key_it_carries(wire: Loopback) -> None:
    wire.answer(FLOWSERV + "users/login", {"username": "alice", "token": SECRET})
    error = unexpected(wire, wire.flowserv.users.login("alice", "pw"))
    assert error.field == "$.id"
    assert SECRET not in str(error) and SECRET not in repr(error) and SECRET not in error.body


def test_flowserv_a_service_descriptor_that_is_no_object_is_unexpected(wire: Loopback) -> None:
    wire.answer(FLOWSERV, ["not", "a", "descriptor"])
    error = unexpected(wire, wire.flowserv.describe())
    assert error.url.endswith("/flowserv/api/v1/")


def test_astakos_a_catalog_without_its_services_is_unexpected(wire: Loopback) -> None:
    wire.answer(ASTAKOS_AUTH + "/tokens/t1", {"access": {"token": {"id": "t1"}}})
    error = unexpected(wire, wire.astakos.validate_token("t1"))
    assert error.field == "$" and "'user'" in error.problem  # missing below the top: named, not placed
    assert "t1" not in error.body  # a token answer keeps no body
