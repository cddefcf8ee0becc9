"""Projects and memberships: application lifecycle, visibility, join/enroll/accept/leave, quota effects."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from aioplatform import BadRequest, Conflict, Forbidden, NotFound, TransportError, Unauthorized
from aioplatform.astakos import AstakosClient
from aioplatform.testing import LocalPlatform

from .conftest import FAST

END = dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc)
SPECS = {
    "name": "science.example.org",
    "end_date": END,
    "join_policy": "auto",
    "resources": {"cyclades.vm": {"project_capacity": 6, "member_capacity": 2}},
}


async def approved_project(user: AstakosClient, admin: AstakosClient, **changes: object) -> str:
    submitted = await user.create_project({**SPECS, **changes})
    await admin.application_action(submitted.id, submitted.application, "approve")
    return submitted.id


async def test_a_new_project_waits_for_approval_then_gets_its_quota(
    platform: LocalPlatform, user: AstakosClient, admin: AstakosClient
) -> None:
    submitted = await user.create_project(SPECS)
    project = await user.get_project(submitted.id)
    assert project.state == "uninitialized" and project.owner == platform.astakos.user_uuid
    assert project.last_application is not None and project.last_application.state == "pending"
    with pytest.raises(Forbidden):
        await user.application_action(submitted.id, submitted.application, "approve")
    await admin.application_action(submitted.id, submitted.application, "approve", reason="fine")
    project = await user.get_project(submitted.id)
    assert project.state == "active" and project.end_date == END
    assert project.resources["cyclades.vm"].member_capacity == 2
    assert project["resources"]["cyclades.vm"]["project_capacity"] == 6
    holding = await platform.astakos.holding(f"project:{submitted.id}", None, "cyclades.vm")
    assert holding == {"limit": 6, "usage_min": 0, "usage_max": 0}


async def test_listing_filters_by_mode_name_and_state(
    platform: LocalPlatform, user: AstakosClient, admin: AstakosClient
) -> None:
    pid = await approved_project(user, admin)
    mine = await user.get_projects().to_list()
    assert {p.id for p in mine} == {platform.astakos.user_uuid, platform.astakos.project_uuid, pid}
    assert [p.id for p in await user.get_projects(name="science.example.org").to_list()] == [pid]
    assert await user.get_projects(state="suspended").to_list() == []
    with pytest.raises(BadRequest, match="Unrecognized state"):
        await user.get_projects(state="sleeping").to_list()


async def test_joining_an_auto_project_gives_the_member_its_capacity_and_leaving_takes_it_back(
    platform: LocalPlatform, user: AstakosClient, admin: AstakosClient
) -> None:
    a = platform.astakos
    pid = await approved_project(user, admin)
    other_uuid, other_token = a.uuids["other"], a.tokens["other"]
    async with AstakosClient(other_token, platform.astakos_auth_url) as other:
        memb_id = await other.join_project(pid)
        membership = await other.get_membership(memb_id)
        assert membership.state == "accepted" and membership.user == other_uuid
        assert "accepted" in membership.dates
        quotas = await other.get_quotas()
        assert quotas[pid]["cyclades.vm"].limit == 2
        with pytest.raises(Conflict):
            await other.join_project(pid)
        await other.membership_action(memb_id, "leave")
        assert (await other.get_membership(memb_id)).state == "removed"
        assert pid not in await other.get_quotas()
    assert (await a.holding(f"user:{other_uuid}", f"project:{pid}", "cyclades.vm") or {})["limit"] == 0


async def test_a_moderated_project_needs_the_owner_to_accept(
    platform: LocalPlatform, user: AstakosClient, admin: AstakosClient
) -> None:
    a = platform.astakos
    pid = await approved_project(user, admin, join_policy="moderated")
    async with AstakosClient(a.tokens["other"], platform.astakos_auth_url) as other:
        memb_id = await other.join_project(pid)
        assert (await other.get_membership(memb_id)).state == "requested"
        with pytest.raises(Forbidden):
            await other.membership_action(memb_id, "accept")
        listed = await user.get_memberships(pid).to_list()
        assert [m.id for m in listed] == [memb_id]
        await user.membership_action(memb_id, "accept", reason="welcome")
        assert (await other.get_membership(memb_id)).state == "accepted"
        with pytest.raises(Conflict):
            await user.membership_action(memb_id, "accept")


async def test_enroll_accepts_a_user_by_email_and_unknown_ones_conflict(
    platform: LocalPlatform, user: AstakosClient, admin: AstakosClient
) -> None:
    pid = await approved_project(user, admin, join_policy="moderated")
    memb_id = await user.enroll_member(pid, "other@example.org")
    assert (await user.get_membership(memb_id)).state == "accepted"
    with pytest.raises(Conflict):
        await user.enroll_member(pid, "ghost@example.org")
    with pytest.raises(NotFound):
        await user.get_membership(99_999)


async def test_modify_is_an_application_applied_on_approval(
    platform: LocalPlatform, user: AstakosClient, admin: AstakosClient
) -> None:
    pid = await approved_project(user, admin)
    change = await user.modify_project(pid, {"description": "bigger", "max_members": 5})
    assert change.id == pid
    assert (await user.get_project(pid)).description == ""
    await admin.application_action(pid, change.application, "approve")
    project = await user.get_project(pid)
    assert (project.description, project.max_members) == ("bigger", 5)


async def test_suspending_a_project_zeroes_its_limits_until_unsuspended(
    platform: LocalPlatform, user: AstakosClient, admin: AstakosClient
) -> None:
    pid = await approved_project(user, admin)
    with pytest.raises(Forbidden):
        await user.project_action(pid, "suspend")
    await admin.project_action(pid, "suspend", reason="audit")
    assert (await user.get_project(pid)).state == "suspended"
    assert (await platform.astakos.holding(f"project:{pid}", None, "cyclades.vm") or {})["limit"] == 0
    with pytest.raises(Conflict):
        await admin.project_action(pid, "suspend")
    await admin.project_action(pid, "unsuspend")
    assert (await platform.astakos.holding(f"project:{pid}", None, "cyclades.vm") or {})["limit"] == 6


async def test_cancelling_the_first_application_deletes_the_project(
    platform: LocalPlatform, user: AstakosClient
) -> None:
    submitted = await user.create_project(SPECS)
    await user.application_action(submitted.id, submitted.application, "cancel")
    assert (await user.get_project(submitted.id)).state == "deleted"


async def test_a_private_project_is_hidden_from_others(
    platform: LocalPlatform, user: AstakosClient, admin: AstakosClient
) -> None:
    pid = await approved_project(user, admin, private=True)
    async with AstakosClient(platform.astakos.tokens["other"], platform.astakos_auth_url) as other:
        with pytest.raises(Forbidden):
            await other.get_project(pid)
        with pytest.raises(NotFound):
            await other.get_project("no-such-project")


async def test_bad_project_input_is_refused(platform: LocalPlatform, user: AstakosClient) -> None:
    with pytest.raises(BadRequest, match="domain format"):
        await user.create_project({**SPECS, "name": "not a domain"})
    with pytest.raises(BadRequest, match="Malformed resource policies"):
        await user.create_project(
            {**SPECS, "resources": {"cyclades.vm": {"project_capacity": 1, "member_capacity": 2}}}
        )
    with pytest.raises(ValueError, match="end_date"):
        await user.create_project({"name": "x.example.org"})
    with pytest.raises(ValueError, match="action"):
        await user.membership_action(1, "promote")


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_projects().to_list(),
        lambda c: c.get_memberships().to_list(),
        lambda c: c.join_project("x"),
        lambda c: c.send_feedback("hi"),
        lambda c: c.get_usernames(["x"]),
    ],
)
async def test_user_endpoints_refuse_a_service_token(service: AstakosClient, call: Any) -> None:
    with pytest.raises(Unauthorized, match="Invalid X-Auth-Token"):
        await call(service)


async def test_a_user_may_have_only_a_few_pending_applications(user: AstakosClient) -> None:
    for i in range(3):
        await user.create_project({**SPECS, "name": f"p{i}.example.org"})
    with pytest.raises(Conflict):
        await user.create_project({**SPECS, "name": "p3.example.org"})
    with pytest.raises(BadRequest):
        await user.get_projects(mode="everything").to_list()


async def test_nested_models_answer_in_astakosclients_dict_shape_too(
    platform: LocalPlatform, user: AstakosClient
) -> None:
    project = await user.get_project(platform.astakos.project_uuid)
    policy = project.resources["cyclades.vm"]
    assert policy["member_capacity"] == policy.member_capacity == 100
    assert project.to_dict()["resources"]["cyclades.vm"] == policy.to_dict()


async def test_a_modification_whose_answer_is_lost_is_not_sent_again(
    platform: LocalPlatform, user: AstakosClient, admin: AstakosClient
) -> None:
    pid = await approved_project(user, admin)
    route = f"PUT /astakos/account/v1.0/projects/{pid}"
    async with AstakosClient(platform.astakos_user_token, platform.astakos_auth_url, retry=FAST) as client:
        platform.faults.script(route, ["drop_after"])
        with pytest.raises(TransportError):
            await client.modify_project(pid, {"description": "once"})
        # the server filed it once (each PUT files an application): never re-sent
        assert platform.stats.count("PUT", route.split(" ", 1)[1]) == 1
        platform.faults.script(route, [503])  # answered before the handler: provably not filed
        change = await client.modify_project(pid, {"description": "twice"})
    assert platform.stats.count("PUT", route.split(" ", 1)[1]) == 3
    project = await user.get_project(pid)
    assert project.last_application is not None and project.last_application.id == change.application
    assert project.last_application.description == "twice"
