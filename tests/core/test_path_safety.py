"""No client method can be made to send a request to a resource other than the one named.

For every public method of saltant, Astakos and flowserv that puts an id or a name
in the URL path, and for any value: either the call is refused before anything is
sent (``ValueError``/``TypeError``, the server saw nothing), or the server received
exactly the intended route, with the value as one percent-encoded segment — checked
on the raw path the loopback server received, not on what the client meant to send.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Any
from urllib.parse import unquote

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aioplatform import PlatformError

from .loopback import ASTAKOS_ACCOUNT, ASTAKOS_AUTH, FLOWSERV, SALTANT, Loopback

Call = Callable[[Loopback, Any], Coroutine[Any, Any, Any]]
G = "0" * 32  # a fixed, valid flowserv id for the other argument of two-id routes


@attrs.frozen
class Case:
    name: str
    call: Call
    method: str
    route: str  # the path the server must see, "{}" standing for the value


async def _list(pager: Any) -> Any:
    return await pager.to_list()


_QUEUE: dict[str, Any] = dict(
    name="q", description="d", private=False, runs_executable_tasks=True, runs_docker_container_tasks=True,
    runs_singularity_container_tasks=True, active=True, whitelists=[],
)  # fmt: skip
_TYPE: dict[str, Any] = dict(
    name="t", description="d", command_to_run="true", environment_variables=[], required_arguments=[],
    required_arguments_default_values={},
)  # fmt: skip

CASES = [
    # saltant: the 7 methods of the issue, and every other id in a path
    Case("saltant users.get", lambda w, v: w.saltant.users.get(v), "GET", SALTANT + "users/{}/"),
    Case("saltant task_queues.get", lambda w, v: w.saltant.task_queues.get(id=v), "GET",
         SALTANT + "taskqueues/{}/"),
    Case("saltant task_queues.patch", lambda w, v: w.saltant.task_queues.patch(v, description="x"), "PATCH",
         SALTANT + "taskqueues/{}/"),
    Case("saltant task_queues.put", lambda w, v: w.saltant.task_queues.put(v, **_QUEUE), "PUT",
         SALTANT + "taskqueues/{}/"),
    Case("saltant task_whitelists.get", lambda w, v: w.saltant.task_whitelists.get(id=v), "GET",
         SALTANT + "taskwhitelists/{}/"),
    Case("saltant task_whitelists.patch", lambda w, v: w.saltant.task_whitelists.patch(v, name="x"),
         "PATCH", SALTANT + "taskwhitelists/{}/"),
    Case("saltant task_whitelists.put", lambda w, v: w.saltant.task_whitelists.put(v, "n", "d", [], []),
         "PUT", SALTANT + "taskwhitelists/{}/"),
    Case("saltant container_task_types.get", lambda w, v: w.saltant.container_task_types.get(id=v), "GET",
         SALTANT + "containertasktypes/{}/"),
    Case("saltant container_task_types.put",
         lambda w, v: w.saltant.container_task_types.put(
             v, **_TYPE, logs_path=None, results_path=None, container_image="i", container_type="docker"),
         "PUT", SALTANT + "containertasktypes/{}/"),
    Case("saltant executable_task_types.get", lambda w, v: w.saltant.executable_task_types.get(id=v), "GET",
         SALTANT + "executabletasktypes/{}/"),
    Case("saltant executable_task_types.put",
         lambda w, v: w.saltant.executable_task_types.put(v, **_TYPE, json_file_option=None),
         "PUT", SALTANT + "executabletasktypes/{}/"),
    Case("saltant container_task_instances.get", lambda w, v: w.saltant.container_task_instances.get(v),
         "GET", SALTANT + "containertaskinstances/{}/"),
    Case("saltant container_task_instances.clone",
         lambda w, v: w.saltant.container_task_instances.clone(v), "POST",
         SALTANT + "containertaskinstances/{}/clone/"),
    Case("saltant executable_task_instances.terminate",
         lambda w, v: w.saltant.executable_task_instances.terminate(v), "POST",
         SALTANT + "executabletaskinstances/{}/terminate/"),
    Case("saltant container_task_instances.terminate",
         lambda w, v: w.saltant.container_task_instances.terminate(v), "POST",
         SALTANT + "containertaskinstances/{}/terminate/"),
    Case("saltant executable_task_instances.get", lambda w, v: w.saltant.executable_task_instances.get(v),
         "GET", SALTANT + "executabletaskinstances/{}/"),
    Case("saltant executable_task_instances.clone",
         lambda w, v: w.saltant.executable_task_instances.clone(v), "POST",
         SALTANT + "executabletaskinstances/{}/clone/"),
    Case("saltant container_task_instances.wait_until_finished",
         lambda w, v: w.saltant.container_task_instances.wait_until_finished(v, timeout=0), "GET",
         SALTANT + "containertaskinstances/{}/"),
    # Astakos: the 5 methods of the issue, and the integer ids in paths
    Case("astakos get_project", lambda w, v: w.astakos.get_project(v), "GET",
         ASTAKOS_ACCOUNT + "projects/{}"),
    Case("astakos modify_project", lambda w, v: w.astakos.modify_project(v, {"name": "x"}), "PUT",
         ASTAKOS_ACCOUNT + "projects/{}"),
    Case("astakos project_action", lambda w, v: w.astakos.project_action(v, "suspend"), "POST",
         ASTAKOS_ACCOUNT + "projects/{}/action"),
    Case("astakos application_action", lambda w, v: w.astakos.application_action(v, 1, "approve"), "POST",
         ASTAKOS_ACCOUNT + "projects/{}/action"),
    Case("astakos validate_token", lambda w, v: w.astakos.validate_token(v), "GET",
         ASTAKOS_AUTH + "/tokens/{}"),
    Case("astakos get_membership", lambda w, v: w.astakos.get_membership(v), "GET",
         ASTAKOS_ACCOUNT + "projects/memberships/{}"),
    Case("astakos membership_action", lambda w, v: w.astakos.membership_action(v, "accept"), "POST",
         ASTAKOS_ACCOUNT + "projects/memberships/{}/action"),
    Case("astakos get_commission_info", lambda w, v: w.astakos.get_commission_info(v), "GET",
         ASTAKOS_ACCOUNT + "commissions/{}"),
    Case("astakos commission_action", lambda w, v: w.astakos.commission_action(v, "accept"), "POST",
         ASTAKOS_ACCOUNT + "commissions/{}/action"),
    # flowserv
    Case("flowserv workflows.get", lambda w, v: w.flowserv.workflows.get(v), "GET",
         FLOWSERV + "workflows/{}"),
    Case("flowserv groups.create", lambda w, v: w.flowserv.groups.create(v, "g"), "POST",
         FLOWSERV + "workflows/{}/groups"),
    Case("flowserv groups.list", lambda w, v: _list(w.flowserv.groups.list(v)), "GET",
         FLOWSERV + "workflows/{}/groups"),
    Case("flowserv groups.get", lambda w, v: w.flowserv.groups.get(v), "GET", FLOWSERV + "groups/{}"),
    Case("flowserv groups.update", lambda w, v: w.flowserv.groups.update(v, name="g"), "PUT",
         FLOWSERV + "groups/{}"),
    Case("flowserv groups.delete", lambda w, v: w.flowserv.groups.delete(v), "DELETE",
         FLOWSERV + "groups/{}"),
    Case("flowserv groups.upload_file", lambda w, v: w.flowserv.groups.upload_file(v, b"x", "a.txt"), "POST",
         FLOWSERV + "uploads/{}/files"),
    Case("flowserv groups.upload_many", lambda w, v: w.flowserv.groups.upload_many(v, [(b"x", "a.txt")]),
         "POST", FLOWSERV + "uploads/{}/files"),
    Case("flowserv groups.list_files", lambda w, v: _list(w.flowserv.groups.list_files(v)), "GET",
         FLOWSERV + "uploads/{}/files"),
    Case("flowserv groups.download_file (group)", lambda w, v: w.flowserv.groups.download_file(v, G), "GET",
         FLOWSERV + "uploads/{}/files/" + G),
    Case("flowserv groups.download_file (file)", lambda w, v: w.flowserv.groups.download_file(G, v), "GET",
         FLOWSERV + f"uploads/{G}/files/{{}}"),
    Case("flowserv groups.delete_file (group)", lambda w, v: w.flowserv.groups.delete_file(v, G), "DELETE",
         FLOWSERV + "uploads/{}/files/" + G),
    Case("flowserv groups.delete_file (file)", lambda w, v: w.flowserv.groups.delete_file(G, v), "DELETE",
         FLOWSERV + f"uploads/{G}/files/{{}}"),
]  # fmt: skip

EXPLOITS = (
    ".", "..", "%2e%2e", "%2E.", ".%2e", "?x", "#x", "a/b", "../x", "..%2f", "%", "%25", "%2F", "",
    " ", "memberships", "memberships/1", "x/action", "a?b#c", "\\", "é", "~",
)  # fmt: skip
# What an attacker or a careless caller passes: any text, the measured exploits, ints, UUIDs.
VALUES = st.one_of(
    st.text(max_size=24),
    st.sampled_from(EXPLOITS),
    st.integers(min_value=-3, max_value=10**6),
    st.uuids().map(str),
    st.uuids().map(lambda u: f"{u}/.."),
)
CASE = {c.name: c for c in CASES}


@pytest.fixture(scope="module")
def wire() -> Iterator[Loopback]:
    with Loopback().running() as loopback:
        yield loopback


def test_the_table_covers_the_methods_named_in_the_issue() -> None:
    names = {c.name for c in CASES}
    for required in (
        "saltant users.get",
        "saltant task_queues.get", "saltant task_queues.patch", "saltant task_queues.put",
        "saltant task_whitelists.get", "saltant task_whitelists.patch", "saltant task_whitelists.put",
        "saltant container_task_types.get", "saltant container_task_types.put",
        "astakos get_project", "astakos modify_project", "astakos project_action",
        "astakos application_action", "astakos validate_token",
    ):  # fmt: skip
        assert required in names


@pytest.mark.parametrize(
    ("value", "case"),
    [
        ("..", CASE["saltant task_queues.patch"]),  # sent PATCH /saltant/api/
        (".", CASE["saltant users.get"]),  # sent GET /saltant/api/users/
        ("%2e%2e", CASE["astakos get_project"]),  # GOT the account root
        ("..", CASE["astakos validate_token"]),
    ],
    ids=lambda x: x.name if isinstance(x, Case) else repr(x),
)
def test_the_measured_exploits_are_refused_before_sending(wire: Loopback, value: str, case: Case) -> None:
    wire.seen.clear()
    with pytest.raises(ValueError):
        wire.run(case.call(wire, value))
    assert wire.seen == []


def test_structure_characters_travel_encoded_in_one_segment(wire: Loopback) -> None:
    wire.seen.clear()
    with pytest.raises(PlatformError):  # the harmless 404
        wire.run(wire.saltant.users.get("a/b?c#d%e"))
    with pytest.raises(PlatformError):  # project_action("?x") POSTed to the project create endpoint
        wire.run(wire.astakos.project_action("?x", "suspend"))
    with pytest.raises(PlatformError):
        wire.run(wire.astakos.validate_token("a?b#c%d"))
    assert wire.seen == [
        ("GET", SALTANT + "users/a%2Fb%3Fc%23d%25e/"),
        ("POST", ASTAKOS_ACCOUNT + "projects/%3Fx/action"),
        ("GET", ASTAKOS_AUTH + "/tokens/a%3Fb%23c%25d"),
    ]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@settings(max_examples=50, deadline=None)
@given(value=VALUES)
def test_any_value_is_refused_or_reaches_exactly_the_named_route(
    wire: Loopback, case: Case, value: Any
) -> None:
    wire.seen.clear()
    try:
        wire.run(case.call(wire, value))
    except (ValueError, TypeError):
        assert wire.seen == [], f"refused after sending: {wire.seen}"
        return
    except PlatformError:
        pass  # the server's harmless 404 (or an answer the client cannot use)
    assert len(wire.seen) == 1, wire.seen
    method, raw_path = wire.seen[0]
    assert method == case.method
    assert "?" not in raw_path and "#" not in raw_path
    want = case.route.split("/")
    got = raw_path.split("/")
    assert len(got) == len(want), (raw_path, case.route)
    for got_part, want_part in zip(got, want, strict=True):
        if want_part == "{}":
            assert unquote(got_part) == str(value)
            assert got_part not in ("", ".", "..") and unquote(got_part) not in ("", ".", "..")
        else:
            assert got_part == want_part


@pytest.mark.parametrize(
    ("value", "case"),
    [
        ("memberships", CASE["astakos get_project"]),  # GET projects/memberships is the membership listing
        ("memberships/5", CASE["astakos get_project"]),  # Django decodes %2F: the membership 5
        ("x/action", CASE["astakos modify_project"]),
        ("x/groups", CASE["flowserv workflows.get"]),  # Flask decodes %2F: the group listing
        ("a%2Fb", CASE["flowserv groups.get"]),
    ],
    ids=lambda x: x.name if isinstance(x, Case) else repr(x),
)
def test_ids_a_decoding_server_would_route_elsewhere_are_refused(
    wire: Loopback, value: str, case: Case
) -> None:
    wire.seen.clear()
    with pytest.raises(ValueError, match="_id"):
        wire.run(case.call(wire, value))
    assert wire.seen == []
