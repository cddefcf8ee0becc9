"""The client itself: login state, secrets, error translation, sessions, argument checks."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest

from aioplatform import NotFound, PlatformError, Session
from aioplatform.flowserv import ApiKeyAuth, FlowservClient, NotAuthorized, NotLoggedIn

from .conftest import PASSWORD, Backend, unique


async def test_tokens_never_appear_in_reprs_errors_or_logs(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aioplatform")
    async with backend.logged_in() as client:
        token = client.token
        assert token
        me = await client.users.whoami()
        assert me.token == token
        for text in (repr(me), repr(client), repr(client._api_key), str(me)):
            assert token not in text
        try:
            await client.groups.update("0" * 32, name="x")
        except PlatformError as exc:
            assert token not in str(exc) and token not in repr(exc)
        else:
            pytest.fail("expected NotFound")
    assert token not in caplog.text


async def test_403_bodies_become_not_logged_in_or_not_authorized(backend: Backend) -> None:
    async with backend.logged_in() as alice, backend.logged_in() as mallory:
        group = await alice.groups.create(backend.workflow_id, unique("g"))
        with pytest.raises(NotAuthorized) as denied:
            await mallory.groups.delete(group.id)
    async with backend.client() as anonymous:
        with pytest.raises(NotLoggedIn) as anon:
            await anonymous.groups.delete(group.id)
    assert denied.value.status == anon.value.status == 403
    assert (denied.value.message, anon.value.message) == ("not authorized", "not logged in")


async def test_an_html_error_page_becomes_a_short_message(backend: Backend) -> None:
    async with backend.client() as client:
        with pytest.raises(NotFound) as caught:
            await client._request("GET", "no/such/route")
    assert caught.value.message.startswith("404 Not Found") and "<" not in caught.value.message


async def test_with_options_copies_share_the_login(backend: Backend) -> None:
    user = await backend.new_user()
    async with backend.client() as client:
        patient = client.with_options()
        await client.users.login(user.username, PASSWORD)
        assert (await patient.users.whoami()).id == user.id
        await patient.users.logout()
        assert client.token is None


async def test_a_client_can_start_from_a_saved_token(backend: Backend) -> None:
    async with backend.logged_in() as first:
        token = first.token
        me = await first.users.whoami()
    async with FlowservClient(backend.url, token=token) as second:
        assert (await second.users.whoami()).id == me.id


async def test_a_shared_session_is_left_open(backend: Backend) -> None:
    async with Session() as session:
        async with FlowservClient(backend.url, session=session) as client:
            await client.workflows.list().to_list()
        async with FlowservClient(backend.url, session=session) as again:
            assert backend.workflow_id in [w.id async for w in again.workflows.list()]


async def test_describe_returns_the_service_descriptor(backend: Backend) -> None:
    async with backend.logged_in() as client:
        me = await client.users.whoami()
        doc = await client.describe()
    assert doc["version"] == "0.8.1" and doc["username"] == me.username


def test_bad_constructor_arguments_fail_at_once() -> None:
    with pytest.raises(ValueError, match="base_url"):
        FlowservClient("not a url")
    with pytest.raises(ValueError, match="token"):
        FlowservClient("http://localhost/flowserv/api/v1", token="")
    assert "***" in repr(ApiKeyAuth("s3cret-token")) and "s3cret" not in repr(ApiKeyAuth("s3cret-token"))


async def test_a_bare_host_gets_the_default_api_path(backend: Backend) -> None:
    host = backend.url.split("/flowserv/")[0]
    async with FlowservClient(host) as client:
        assert client.base_url == backend.url
        assert backend.workflow_id in [w.id async for w in client.workflows.list()]


async def test_ids_that_would_change_the_url_are_refused_before_any_request(backend: Backend) -> None:
    async with backend.client(token="f" * 32) as client:
        for bad in ("..", ".", "a?b", "a#b", "a%2Fb", "a b", "a\\b", "a\nb", "a/b"):
            with pytest.raises(ValueError, match="group_id"):
                await client.groups.get(bad)
        with pytest.raises(ValueError, match="file_id"):
            await client.groups.download_file("g" * 32, "..")
        with pytest.raises(ValueError, match="workflow_id"):
            await client.workflows.get("x?y")
        assert client.session.stats.requests == 0


async def test_passwords_never_appear_in_errors_or_logs(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aioplatform")
    secret = "pw-" + unique("secret")
    user = await backend.new_user()
    async with backend.client() as client:
        failures: list[PlatformError] = []
        for call in (
            lambda: client.users.login(user.username, secret),  # wrong password: 404
            lambda: client.users.register(user.username, secret),  # duplicate: 400
            lambda: client.users.reset_password("0" * 32, secret),  # unknown request: 404
        ):
            with pytest.raises(PlatformError) as caught:
                await call()
            failures.append(caught.value)
    for exc in failures:
        assert secret not in str(exc) and secret not in repr(exc) and secret not in exc.body
    assert secret not in caplog.text


async def test_from_env_reads_flowservs_own_variables(backend: Backend) -> None:
    url = urlsplit(backend.url)
    async with backend.logged_in() as first:
        token = first.token
        me = await first.users.whoami()
    assert token and url.port
    env = {
        "FLOWSERV_API_HOST": url.hostname or "",
        "FLOWSERV_API_PORT": str(url.port),
        "FLOWSERV_API_PATH": url.path.rstrip("/").lstrip("/"),  # flowserv adds the leading slash
        "FLOWSERV_ACCESS_TOKEN": token,
    }
    async with FlowservClient.from_env(env) as client:
        assert client.base_url == backend.url
        assert (await client.users.whoami()).id == me.id
    async with FlowservClient.from_env({}) as default:
        assert default.base_url == "http://localhost:5000/flowserv/api/v1/" and default.token is None
    async with FlowservClient.from_env({"FLOWSERV_API_HOST": "example.org", "FLOWSERV_API_PORT": "80"}) as c:
        assert c.base_url == "http://example.org/flowserv/api/v1/"
    with pytest.raises(ValueError, match="FLOWSERV_API_PORT"):
        FlowservClient.from_env({"FLOWSERV_API_PORT": "five thousand"})
