"""Groups on both backends: create/get/list/update/delete, member rules and the 403s."""

from __future__ import annotations

import uuid

import pytest

from aioplatform import BadRequest, NotFound
from aioplatform.flowserv import Group, NotAuthorized, NotLoggedIn

from .conftest import Backend, unique


async def test_workflows_list_and_get_find_the_seeded_workflow(backend: Backend) -> None:
    async with backend.client() as client:
        workflows = await client.workflows.list().to_list()
        assert backend.workflow_id in [w.id for w in workflows]
        workflow = await client.workflows.get(backend.workflow_id)
        assert workflow.id == backend.workflow_id and workflow.name
        with pytest.raises(NotFound, match="unknown workflow"):
            await client.workflows.get("nosuchworkflow")


async def test_create_adds_the_creator_as_a_member(backend: Backend) -> None:
    other = await backend.new_user()
    async with backend.logged_in() as client:
        me = await client.users.whoami()
        name = unique("team")
        group = await client.groups.create(backend.workflow_id, name, members=[other.id])
        assert isinstance(group, Group)
        assert (group.name, group.workflow_id, len(group.id)) == (name, backend.workflow_id, 32)
        assert {m.id for m in group.members} == {me.id, other.id}
        assert group.files == () and group.runs is None

        fetched = await client.groups.get(group.id)
        assert fetched.id == group.id and {m.id for m in fetched.members} == {me.id, other.id}
        assert fetched.runs == ()  # listed (none yet) for a logged-in caller


async def test_creator_listed_once_even_when_named_as_member(backend: Backend) -> None:
    async with backend.logged_in() as client:
        me = await client.users.whoami()
        group = await client.groups.create(backend.workflow_id, unique("team"), members=[me.id, me.id])
        assert [m.id for m in group.members] == [me.id]


async def test_group_names_are_unique_per_workflow(backend: Backend) -> None:
    name = unique("team")
    async with backend.logged_in() as alice, backend.logged_in() as bob:
        await alice.groups.create(backend.workflow_id, name)
        with pytest.raises(BadRequest, match=f"group '{name}' exists"):
            await bob.groups.create(backend.workflow_id, name)


async def test_create_with_an_unknown_member_is_a_bad_request(backend: Backend) -> None:
    async with backend.logged_in() as client:
        with pytest.raises(BadRequest, match=r"unknown user '0+'"):
            await client.groups.create(backend.workflow_id, unique("team"), members=["0" * 32])


async def test_create_for_an_unknown_workflow_is_not_found(backend: Backend) -> None:
    async with backend.logged_in() as client:
        with pytest.raises(NotFound, match="unknown workflow 'nosuchworkflow'"):
            await client.groups.create("nosuchworkflow", unique("team"))


async def test_create_without_login_is_not_logged_in_and_with_a_bad_token_not_authorized(
    backend: Backend,
) -> None:
    async with backend.client() as anonymous:
        with pytest.raises(NotLoggedIn):
            await anonymous.groups.create(backend.workflow_id, unique("team"))
    async with backend.client(token="f" * 32) as stale:
        with pytest.raises(NotAuthorized, match="not authorized"):
            await stale.groups.create(backend.workflow_id, unique("team"))


async def test_list_shows_only_my_groups_with_a_login(backend: Backend) -> None:
    async with backend.logged_in() as alice, backend.logged_in() as bob:
        mine = await alice.groups.create(backend.workflow_id, unique("a"))
        theirs = await bob.groups.create(backend.workflow_id, unique("b"))
        listed = {g.id: g async for g in alice.groups.list(backend.workflow_id)}
        assert mine.id in listed and theirs.id not in listed
        assert listed[mine.id].name == mine.name and listed[mine.id].workflow_id == backend.workflow_id
        assert listed[mine.id].members == ()  # a descriptor, not a handle


async def test_list_with_an_invalid_token_lists_every_group_of_the_workflow(backend: Backend) -> None:
    # rob-flask ignores a token it cannot resolve and answers as for "no user".
    async with backend.logged_in() as alice:
        group = await alice.groups.create(backend.workflow_id, unique("a"))
    async with backend.client(token="f" * 32) as stale:
        assert group.id in {g.id async for g in stale.groups.list(backend.workflow_id)}
        with pytest.raises(NotFound, match="unknown workflow"):
            await stale.groups.list("nosuchworkflow").to_list()


async def test_list_for_an_unknown_workflow_with_a_login_is_empty(backend: Backend) -> None:
    async with backend.logged_in() as client:
        assert await client.groups.list("nosuchworkflow").to_list() == []


async def test_update_renames_and_replaces_members_exactly(backend: Backend) -> None:
    other = await backend.new_user()
    async with backend.logged_in() as client:
        me = await client.users.whoami()
        group = await client.groups.create(backend.workflow_id, unique("team"))
        renamed = await client.groups.update(group.id, name=group.name + "-renamed")
        assert renamed.name == group.name + "-renamed" and [m.id for m in renamed.members] == [me.id]
        unchanged = await client.groups.update(group.id)
        assert unchanged.name == renamed.name
        # The member list is replaced as given: the owner is not re-added.
        replaced = await client.groups.update(group.id, members=[other.id])
        assert [m.id for m in replaced.members] == [other.id]
        with pytest.raises(NotAuthorized):
            await client.groups.update(group.id, name="too late")


async def test_update_with_an_unknown_member_is_not_found(backend: Backend) -> None:
    async with backend.logged_in() as client:
        group = await client.groups.create(backend.workflow_id, unique("team"))
        with pytest.raises(NotFound, match="unknown user"):
            await client.groups.update(group.id, members=["0" * 32])


async def test_rename_does_not_check_uniqueness(backend: Backend) -> None:
    async with backend.logged_in() as client:
        first = await client.groups.create(backend.workflow_id, unique("team"))
        second = await client.groups.create(backend.workflow_id, unique("team"))
        assert (await client.groups.update(second.id, name=first.name)).name == first.name


async def test_non_members_cannot_update_or_delete(backend: Backend) -> None:
    async with backend.logged_in() as alice, backend.logged_in() as mallory:
        group = await alice.groups.create(backend.workflow_id, unique("team"))
        with pytest.raises(NotAuthorized):
            await mallory.groups.update(group.id, name="mine now")
        with pytest.raises(NotAuthorized):
            await mallory.groups.delete(group.id)
        # Anyone with the header may read a group.
        assert (await mallory.groups.get(group.id)).name == group.name


async def test_a_member_added_by_the_owner_may_update(backend: Backend) -> None:
    bob_user = await backend.new_user()
    async with backend.logged_in() as alice, backend.logged_in(bob_user) as bob:
        # Any iterable of ids will do (a set here), not only a list.
        group = await alice.groups.create(backend.workflow_id, unique("team"), members={bob_user.id})
        assert (await bob.groups.update(group.id, name=group.name + "-bob")).name == group.name + "-bob"


async def test_delete_then_get_is_not_found(backend: Backend) -> None:
    async with backend.logged_in() as client:
        group = await client.groups.create(backend.workflow_id, unique("team"))
        assert await client.groups.delete(group.id) is None
        with pytest.raises(NotFound, match=f"unknown group '{group.id}'"):
            await client.groups.get(group.id)
        with pytest.raises(NotFound):
            await client.groups.delete(group.id)
        assert group.id not in {g.id async for g in client.groups.list(backend.workflow_id)}


async def test_unknown_group_is_not_found_before_membership_is_checked(backend: Backend) -> None:
    async with backend.logged_in() as client:
        with pytest.raises(NotFound, match="unknown group"):
            await client.groups.update("0" * 32, name="x")


async def test_get_without_header_is_not_logged_in(backend: Backend) -> None:
    async with backend.logged_in() as alice:
        group = await alice.groups.create(backend.workflow_id, unique("team"))
    async with backend.client() as anonymous:
        with pytest.raises(NotLoggedIn):
            await anonymous.groups.get(group.id)
    async with backend.client(token="f" * 32) as stale:
        seen = await stale.groups.get(group.id)
        assert seen.id == group.id and seen.runs is None  # no runs without a valid login


async def test_bad_group_arguments_fail_before_any_request(backend: Backend) -> None:
    async with backend.client(token="f" * 32) as client:
        with pytest.raises(ValueError, match="name"):
            await client.groups.create(backend.workflow_id, "  ")
        with pytest.raises(TypeError, match="members"):
            await client.groups.create(backend.workflow_id, "x", members="abc")
        with pytest.raises(TypeError, match="members"):
            await client.groups.update("g" * 32, members=5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="members"):
            await client.groups.update("g" * 32, members={"id": "x"})
        with pytest.raises(ValueError, match="workflow_id"):
            client.groups.list("")
        assert client.session.stats.requests == 0


async def test_groups_are_listed_in_creation_order(backend: Backend) -> None:
    tag = unique("")
    async with backend.logged_in() as client:
        for prefix in "zam":
            await client.groups.create(backend.workflow_id, prefix + tag)
        listed = [g.name async for g in client.groups.list(backend.workflow_id)]
    assert listed == ["z" + tag, "a" + tag, "m" + tag]


async def test_a_failed_member_update_leaves_the_members_alone_on_the_emulator(backend: Backend) -> None:
    other = await backend.new_user()
    async with backend.logged_in() as client:
        me = await client.users.whoami()
        group = await client.groups.create(backend.workflow_id, unique("team"))
        with pytest.raises(NotFound, match="unknown user"):
            await client.groups.update(group.id, members=[other.id, "0" * 32])
        members = (await client.groups.get(group.id)).members
        if backend.name == "embedded":
            # Our choice: the update is one transaction, so a rejected one changes nothing.
            assert [m.id for m in members] == [me.id]
        else:
            # rob-flask 0.6.0 bug (docs/flowserv.md): it empties the member list, appends members
            # until it meets the unknown id, and commits that half-done list despite the 404.
            assert [m.id for m in members] == [other.id]
            with pytest.raises(NotAuthorized):
                await client.groups.update(group.id, name="locked out")


async def test_a_refused_create_stores_no_group_on_the_emulator(backend: Backend) -> None:
    async with backend.logged_in() as client:
        me = await client.users.whoami()
        names = [unique("half") for _ in range(16)]
        for name in names:
            with pytest.raises(BadRequest, match="unknown user"):
                await client.groups.create(backend.workflow_id, name, members=[uuid.uuid4().hex])
        stored = {g.name: g.id async for g in client.groups.list(backend.workflow_id) if g.name in names}
        if backend.name == "embedded":
            # Our choice: a refused create changes nothing, so the corrected retry can use the name.
            assert stored == {}
            assert (await client.groups.create(backend.workflow_id, names[0])).name == names[0]
        else:
            # rob-flask 0.6.0 bug (docs/flowserv.md): it adds the members in set order and commits
            # despite the 400, so the group is stored whenever the creator came before the unknown
            # id (about half the time; all 16 escaping has odds of 1 in 65536).
            assert stored
            for name, group_id in stored.items():
                assert [m.id for m in (await client.groups.get(group_id)).members] == [me.id]
                with pytest.raises(BadRequest, match=f"group '{name}' exists"):
                    await client.groups.create(backend.workflow_id, name)
