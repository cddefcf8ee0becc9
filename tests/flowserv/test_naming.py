"""flowserv names made consistent: describe() returns a model (still readable as the dict it
was), a refused login says why in words, upload_many takes items (files= still accepted)."""

from __future__ import annotations

import pytest

from aioplatform import NotFound, Unauthorized
from aioplatform.flowserv import LoginFailed, Route, ServiceDescriptor

from .conftest import PASSWORD, Backend, unique


async def test_describe_returns_a_service_descriptor_model_that_still_reads_as_a_dict(
    backend: Backend,
) -> None:
    async with backend.logged_in() as client:
        me = await client.users.whoami()
        doc = await client.describe()
    assert isinstance(doc, ServiceDescriptor)
    assert doc.username == me.username == doc["username"] == doc.get("username")
    assert (
        doc.version == doc["version"] and doc.url == doc["url"]
    )  # the real server reports its configured url
    assert doc.routes and all(isinstance(r, Route) for r in doc.routes)
    assert "users:login" in {r.id for r in doc.routes}
    assert doc.get("no-such-key", 7) == 7


async def test_a_refused_login_is_login_failed_naming_the_three_causes(backend: Backend) -> None:
    user = await backend.new_user()
    async with backend.client() as client:
        with pytest.raises(LoginFailed) as wrong:
            await client.users.login(user.username, "not " + PASSWORD)
        with pytest.raises(LoginFailed):
            await client.users.login(unique("nobody"), PASSWORD)
    error = wrong.value
    assert isinstance(error, NotFound) and isinstance(error, Unauthorized)  # the old class and the meaning
    assert "unknown user, inactive user or wrong password" in str(error)
    assert error.message == f"unknown user '{user.username}'"  # the server's own words kept
    assert PASSWORD not in str(error)


async def test_upload_many_takes_items_and_still_accepts_files(backend: Backend) -> None:
    async with backend.logged_in() as client:
        workflow = backend.workflow_id
        group = await client.groups.create(workflow, unique("g"))
        by_items = await client.groups.upload_many(group.id, items=[(b"a", "a.txt")])
        by_files = await client.groups.upload_many(group.id, files=[(b"b", "b.txt")])
        positional = await client.groups.upload_many(group.id, [(b"c", "c.txt")])
        assert by_items.ok and by_files.ok and positional.ok
        assert by_files.items == [(b"b", "b.txt")]
        with pytest.raises(TypeError, match="not both"):
            await client.groups.upload_many(group.id, [(b"d", "d.txt")], files=[(b"d", "d.txt")])
