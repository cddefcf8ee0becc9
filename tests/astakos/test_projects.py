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
    # Awaited, as astakosclient code ported with `await` does: the whole list, in one request.
    awaited = await user.get_projects()
    assert [p.id for p in awaited] == [p.id for p in mine] and len(awaited) == len(mine)


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


async def test_memberships_go_through_reject_cancel_enroll_moderated_leave_and_remove(
    platform: LocalPlatform, user: AstakosClient, admin: AstakosClient
) -> None:
    a = platform.astakos
    pid = await approved_project(user, admin, join_policy="moderated", leave_policy="moderated")
    other_uuid = a.uuids["other"]
    holding = (f"user:{other_uuid}", f"project:{pid}", "cyclades.vm")
    async with AstakosClient(a.tokens["other"], platform.astakos_auth_url) as other:
        memb_id = await other.join_project(pid)
        membership = await other.get_membership(memb_id)
        assert membership.state == "requested"
        assert sorted(membership.allowed_actions) == ["accept", "cancel", "reject"]
        await user.membership_action(memb_id, "reject", reason="not yet")
        assert (await other.get_membership(memb_id)).state == "rejected"
        assert await other.join_project(pid) == memb_id  # the membership is reused
        with pytest.raises(Forbidden):
            await user.membership_action(memb_id, "cancel")  # only the member cancels
        await other.membership_action(memb_id, "cancel")
        assert (await other.get_membership(memb_id)).state == "cancelled"
        assert await user.enroll_member(pid, "OTHER@example.org") == memb_id
        assert (await other.get_quotas())[pid]["cyclades.vm"].limit == 2
        await other.membership_action(memb_id, "leave")  # leave_policy moderated: a request
        membership = await other.get_membership(memb_id)
        assert membership.state == "leave_requested"
        assert set(membership.dates) >= {"requested", "rejected", "cancelled", "accepted", "leave_requested"}
        assert (await a.holding(*holding) or {})["limit"] == 2  # still a member until removed
        with pytest.raises(Forbidden):
            await other.membership_action(memb_id, "remove")
        await user.membership_action(memb_id, "remove")
        assert (await other.get_membership(memb_id)).state == "removed"
        assert (await a.holding(*holding) or {})["limit"] == 0
        with pytest.raises(Conflict):
            await user.membership_action(memb_id, "remove")


async def test_closed_policies_refuse_joining_and_leaving(
    platform: LocalPlatform, user: AstakosClient, admin: AstakosClient
) -> None:
    a = platform.astakos
    closed = await approved_project(user, admin, join_policy="closed", leave_policy="closed")
    async with AstakosClient(a.tokens["other"], platform.astakos_auth_url) as other:
        with pytest.raises(Conflict):
            await other.join_project(closed)
        with pytest.raises(NotFound):
            await other.join_project("no-such-project")
        with pytest.raises(Conflict):
            await user.enroll_member(closed, "other@example.org")
        stuck = await approved_project(user, admin, name="stuck.example.org", leave_policy="closed")
        memb_id = await other.join_project(stuck)
        with pytest.raises(Conflict):
            await other.membership_action(memb_id, "leave")
        with pytest.raises(Conflict):
            await user.membership_action(memb_id, "remove")
        assert (await other.get_membership(memb_id)).state == "accepted"


async def test_a_full_project_accepts_no_more_members(
    platform: LocalPlatform, user: AstakosClient, admin: AstakosClient
) -> None:
    a = platform.astakos
    pid = await approved_project(user, admin, join_policy="moderated", max_members=1)
    await user.enroll_member(pid, "other@example.org")
    with pytest.raises(Conflict):
        await user.enroll_member(pid, "admin@example.org")
    async with AstakosClient(a.admin_token, platform.astakos_auth_url) as joiner:
        memb_id = await joiner.join_project(pid)
        with pytest.raises(Conflict):
            await user.membership_action(memb_id, "accept")


async def test_terminate_and_reinstate_take_and_give_back_the_projects_quota(
    platform: LocalPlatform, user: AstakosClient, admin: AstakosClient
) -> None:
    a = platform.astakos
    pid = await approved_project(user, admin)
    member = (f"user:{a.uuids['other']}", f"project:{pid}", "cyclades.vm")
    await user.enroll_member(pid, "other@example.org")
    assert (await a.holding(*member) or {})["limit"] == 2
    await admin.project_action(pid, "terminate", reason="over")
    project = await user.get_project(pid)
    assert project.state == "terminated" and project.deactivation_date is not None
    assert (await a.holding(f"project:{pid}", None, "cyclades.vm") or {})["limit"] == 0
    assert (await a.holding(*member) or {})["limit"] == 0
    with pytest.raises(Conflict):
        await admin.modify_project(pid, {"description": "too late"})
    await admin.project_action(pid, "reinstate")
    assert (await user.get_project(pid)).state == "active"
    assert (await a.holding(f"project:{pid}", None, "cyclades.vm") or {})["limit"] == 6
    assert (await a.holding(*member) or {})["limit"] == 2
    with pytest.raises(Conflict):
        await admin.project_action(a.user_uuid, "terminate")  # a system project is never terminated


async def test_a_denied_application_is_dismissed_and_a_denied_modification_changes_nothing(
    platform: LocalPlatform, user: AstakosClient, admin: AstakosClient
) -> None:
    first = await user.create_project(SPECS)
    await admin.application_action(first.id, first.application, "deny", reason="no")
    project = await user.get_project(first.id)
    assert project.state == "uninitialized"
    assert project.last_application is not None and project.last_application.state == "denied"
    with pytest.raises(Conflict):
        await user.application_action(first.id, first.application, "cancel")  # no longer pending
    await user.application_action(first.id, first.application, "dismiss")
    assert (await user.get_project(first.id)).state == "deleted"

    pid = await approved_project(user, admin, name="kept.example.org")
    with pytest.raises(Conflict):
        await user.modify_project(first.id, {"description": "deleted projects stay deleted"})
    change = await user.modify_project(pid, {"description": "new"})
    await admin.application_action(pid, change.application, "deny")
    project = await user.get_project(pid)
    assert project.state == "active" and project.description == ""
    replaced = await user.modify_project(pid, {"description": "a"})
    latest = await user.modify_project(pid, {"description": "b"})
    with pytest.raises(Conflict):  # only the last application can be acted on
        await admin.application_action(pid, replaced.application, "approve")
    await admin.application_action(pid, latest.application, "approve")
    assert (await user.get_project(pid)).description == "b"


async def test_system_projects_keep_their_name_and_owner(
    user: AstakosClient, platform: LocalPlatform
) -> None:
    system = await user.get_project(platform.astakos.user_uuid)
    assert system.system_project and system.id == platform.astakos.user_uuid
    with pytest.raises(Conflict):
        await user.modify_project(system.id, {"name": "renamed.example.org"})


async def test_dates_may_be_dates_or_naive_datetimes_and_are_sent_as_utc(
    platform: LocalPlatform, user: AstakosClient
) -> None:
    submitted = await user.create_project(
        {**SPECS, "end_date": dt.date(2098, 5, 6), "start_date": dt.datetime(2097, 1, 2, 3, 4)}
    )
    project = await user.get_project(submitted.id)
    assert project.end_date == dt.datetime(2098, 5, 6, tzinfo=dt.timezone.utc)
    assert project.last_application is not None
    assert project.last_application.start_date == dt.datetime(2097, 1, 2, 3, 4, tzinfo=dt.timezone.utc)
