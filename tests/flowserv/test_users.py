"""Users on both backends: register/activate/login/logout/whoami, listing, password reset, failures."""

from __future__ import annotations

import asyncio

import pytest

from aioplatform import BadRequest, NotFound, ServerError
from aioplatform.flowserv import FlowservClient, NotAuthorized, NotLoggedIn

from .conftest import PASSWORD, Backend, unique


async def test_register_login_whoami_logout_round_trip(backend: Backend) -> None:
    async with backend.client() as client:
        name = unique()
        registered = await client.users.register(name, PASSWORD)
        assert registered.username == name and len(registered.id) == 32 and registered.token is None

        user = await client.users.login(name, PASSWORD)
        assert user.id == registered.id and user.token and client.token == user.token
        me = await client.users.whoami()
        assert (me.id, me.username, me.token) == (user.id, name, user.token)

        out = await client.users.logout()
        assert out.id == user.id and out.token is None and client.token is None
        with pytest.raises(NotLoggedIn):
            await client.users.whoami()


async def test_the_old_token_is_rejected_after_logout(backend: Backend) -> None:
    async with backend.logged_in() as client:
        token = client.token
        await client.users.logout()
    async with backend.client(token=token) as stale:
        with pytest.raises(NotLoggedIn, match="not logged in"):
            await stale.users.whoami()


async def test_login_again_before_expiry_returns_the_same_token(backend: Backend) -> None:
    user = await backend.new_user()
    async with backend.client() as a, backend.client() as b:
        first = await a.users.login(user.username, PASSWORD)
        second = await b.users.login(user.username, PASSWORD)
    assert first.token == second.token


async def test_registering_with_verify_needs_activation_before_login(backend: Backend) -> None:
    async with backend.client() as client:
        name = unique()
        user = await client.users.register(name, PASSWORD, verify=True)
        with pytest.raises(NotFound, match="unknown user"):
            await client.users.login(name, PASSWORD)
        activated = await client.users.activate(user.id)
        assert activated.id == user.id
        assert (await client.users.activate(user.id)).id == user.id  # a second activation is a no-op
        assert (await client.users.login(name, PASSWORD)).id == user.id


async def test_activating_an_unknown_user_is_not_found(backend: Backend) -> None:
    async with backend.client() as client:
        with pytest.raises(NotFound, match=r"unknown user 'f+'"):
            await client.users.activate("f" * 32)


async def test_wrong_password_and_unknown_user_read_the_same(backend: Backend) -> None:
    user = await backend.new_user()
    async with backend.client() as client:
        with pytest.raises(NotFound) as wrong:
            await client.users.login(user.username, "not the password")
        with pytest.raises(NotFound) as unknown:
            await client.users.login("nobody-" + user.username, PASSWORD)
    assert wrong.value.status == unknown.value.status == 404
    assert str(wrong.value.message) == f"unknown user '{user.username}'"
    assert client.token is None


async def test_duplicate_user_is_a_bad_request(backend: Backend) -> None:
    user = await backend.new_user()
    async with backend.client() as client:
        with pytest.raises(BadRequest, match=f"duplicate user '{user.username}'"):
            await client.users.register(user.username, "another password")


async def test_registering_strips_the_username(backend: Backend) -> None:
    async with backend.client() as client:
        name = unique()
        user = await client.users.register(f"  {name} ", PASSWORD)
        assert user.username == name
        assert (await client.users.login(name, PASSWORD)).id == user.id


async def test_expired_tokens_and_reset_requests_are_refused(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    url = backend.expiring_url(request)  # keys and reset requests live 2 s
    user = await backend.new_user()
    async with FlowservClient(url) as client:
        await client.users.login(user.username, PASSWORD)
        assert (await client.users.whoami()).id == user.id
        request_id = await client.users.request_password_reset(user.username)
        await asyncio.sleep(2.5)
        with pytest.raises(NotLoggedIn):
            await client.users.whoami()
        # Elsewhere rob-flask ignores a key it cannot resolve: the caller is "no user".
        with pytest.raises(NotAuthorized):
            await client.groups.create(backend.workflow_id, unique("late"))
        with pytest.raises(NotFound, match=f"unknown request '{request_id}'"):
            await client.users.reset_password(request_id, "too late")
        # Logging in again after expiry issues a new key; the old password still works.
        old = client.token
        again = await client.users.login(user.username, PASSWORD)
        assert again.token != old
        assert (await client.users.whoami()).id == user.id


async def test_list_users_filters_by_prefix_and_hides_inactive_users(backend: Backend) -> None:
    prefix = unique("list")
    async with backend.logged_in() as client:
        names = [f"{prefix}-{i}" for i in (2, 0, 1)]
        for name in names:
            await client.users.register(name, PASSWORD)
        await client.users.register(f"{prefix}-inactive", PASSWORD, verify=True)
        listed = await client.users.list(query=prefix).to_list()
        assert [u.username for u in listed] == sorted(names)
        everyone = {u.username async for u in client.users.list()}
        assert set(names) <= everyone and f"{prefix}-inactive" not in everyone


async def test_list_users_needs_the_header(backend: Backend) -> None:
    async with backend.client() as client:
        with pytest.raises(NotLoggedIn):
            await client.users.list().to_list()


async def test_password_reset_round_trip_logs_the_user_out(backend: Backend) -> None:
    user = await backend.new_user()
    async with backend.client() as client:
        await client.users.login(user.username, PASSWORD)
        request_id = await client.users.request_password_reset(user.username)
        assert len(request_id) == 32
        stale = client.token
        reset = await client.users.reset_password(request_id, "a new password")
        assert reset.id == user.id and reset.token is None
        assert client.token is None  # the client's own login ended: it forgets the key
        async with backend.client(token=stale) as old:
            with pytest.raises(NotLoggedIn):
                await old.users.whoami()  # ... which the server no longer accepts
        with pytest.raises(NotFound):
            await client.users.login(user.username, PASSWORD)
        assert (await client.users.login(user.username, "a new password")).id == user.id
        with pytest.raises(NotFound, match=f"unknown request '{request_id}'"):
            await client.users.reset_password(request_id, "yet another")  # used up


async def test_password_request_for_an_unknown_user_looks_the_same(backend: Backend) -> None:
    async with backend.client() as client:
        request_id = await client.users.request_password_reset(unique("ghost"))
        assert len(request_id) == 32
        with pytest.raises(NotFound, match="unknown request"):
            await client.users.reset_password(request_id, "whatever")


async def test_resetting_someone_elses_password_keeps_the_clients_login(backend: Backend) -> None:
    other = await backend.new_user()
    async with backend.logged_in() as client:
        me = await client.users.whoami()
        request_id = await client.users.request_password_reset(other.username)
        await client.users.reset_password(request_id, "their new password")
        assert client.token is not None and (await client.users.whoami()).id == me.id


async def test_a_newer_password_request_replaces_the_older(backend: Backend) -> None:
    user = await backend.new_user()
    async with backend.client() as client:
        first = await client.users.request_password_reset(user.username)
        second = await client.users.request_password_reset(user.username)
        with pytest.raises(NotFound):
            await client.users.reset_password(first, "new one")
        assert (await client.users.reset_password(second, "new one")).id == user.id


async def test_logout_with_an_already_invalid_token_is_a_server_error(backend: Backend) -> None:
    # rob-flask 0.6.0 serializes the missing user and crashes (500); the emulator does the same.
    async with backend.logged_in() as client:
        token = client.token
        await client.users.logout()
        client.token = token
        with pytest.raises(ServerError) as caught:
            await client.users.logout()
    assert caught.value.status == 500
    assert token is not None and token not in str(caught.value) + caught.value.body


async def test_empty_arguments_fail_before_any_request(backend: Backend) -> None:
    async with backend.client() as client:
        with pytest.raises(ValueError, match="username"):
            await client.users.register("   ", PASSWORD)
        with pytest.raises(ValueError, match="password"):
            await client.users.register(unique(), " ")
        with pytest.raises(TypeError, match="verify"):
            await client.users.register(unique(), PASSWORD, verify="yes")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="user_id"):
            await client.users.activate("a/b")
        assert client.session.stats.requests == 0
