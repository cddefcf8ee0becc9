"""The Agave foundation: the token endpoint, the gateway's fault, the envelope."""

from __future__ import annotations

import aiohttp
import pytest

from aioplatform.agave import AgaveClient, AuthenticationError
from aioplatform.testing import LocalPlatform

from .conftest import client_for


async def test_password_grant_gets_a_token_the_gateway_accepts(platform: LocalPlatform) -> None:
    service = platform.agave
    async with client_for(
        platform, token=None, refresh_token=None, username=service.username, password=service.password
    ) as client:
        await client.tokens.ensure()
        assert client.tokens.access_token and client.tokens.refresh_token
        assert client.tokens.refreshes == 1
        assert platform.stats.count("POST", "/agave/token") == 1


async def test_a_wrong_password_is_an_authentication_error_with_the_oauth_description(
    platform: LocalPlatform,
) -> None:
    service = platform.agave
    async with client_for(
        platform, token=None, refresh_token=None, username=service.username, password="wrong"
    ) as client:
        with pytest.raises(AuthenticationError, match="Authentication failed") as caught:
            await client.tokens.ensure()
        assert caught.value.status == 400
        assert "wrong" not in str(caught.value) and "wrong" not in repr(caught.value)


async def test_unknown_token_gets_the_gateway_fault(platform: LocalPlatform) -> None:
    url, headers = platform.agave_url + "/jobs/v2/", {"Authorization": "Bearer nope"}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as r:
        body = await r.json()
    assert r.status == 401
    assert body["fault"]["code"] == 900901 and body["fault"]["message"] == "Invalid Credentials"


async def test_refresh_rotates_the_refresh_token(platform: LocalPlatform) -> None:
    service = platform.agave
    async with client_for(platform, token=None) as client:
        await client.tokens.ensure()
        first_refresh = client.tokens.refresh_token
        assert first_refresh != service.refresh_token
    # The spent refresh token is refused the second time.
    async with client_for(platform, token=None) as again:
        with pytest.raises(AuthenticationError, match="refresh_token grant"):
            await again.tokens.ensure()


def test_client_may_have_no_credential_and_hides_the_one_it_has() -> None:
    # No credential at all is allowed (a nonce holder's client); half of one is not.
    assert not AgaveClient("http://127.0.0.1:1/agave").credentials.has_credential
    with pytest.raises(ValueError, match="api_key and api_secret"):
        AgaveClient("http://127.0.0.1:1/agave", refresh_token="r")
    client = AgaveClient("http://127.0.0.1:1/agave", token="s3cret-token-value")
    assert client.credentials.has_credential
    assert "s3cret" not in repr(client) and "s3cret" not in repr(client.tokens)


async def test_a_client_without_a_credential_calls_with_a_nonce_and_is_told_none_was_given(
    platform: LocalPlatform, agave: AgaveClient
) -> None:
    platform.agave.actor_step_seconds = 0.01
    actor = await agave.actors.add({"image": "abacosamples/wc"})
    nonce = await agave.actors.add_nonce(actor.id, level="EXECUTE")
    async with AgaveClient(platform.agave_url) as anonymous:
        assert (await anonymous.actors.get(actor.id, nonce=nonce.id)).id == actor.id
        assert await anonymous.actors.send_message(actor.id, "hello", nonce=nonce.id)
        with pytest.raises(AuthenticationError, match="no credential was given") as refused:
            await anonymous.actors.get(actor.id)
        assert refused.value.status == 401
        with pytest.raises(AuthenticationError, match="no credential was given"):
            await anonymous.jobs.list().to_list()
    # Nothing asked for a token on its behalf.
    assert platform.stats.count("POST", "/agave/token") == 0


async def test_credentials_are_random_unless_fixed_and_passwords_are_never_stored() -> None:
    async with LocalPlatform() as one, LocalPlatform() as two:
        assert one.agave.client_secret != two.agave.client_secret
        assert one.agave.password != two.agave.password and one.agave_token != two.agave_token
    fixed = {
        "agave_password": "pw-fixed-1234",
        "agave_client_key": "key-fixed",
        "agave_client_secret": "secret-fixed",
        "agave_token": "token-fixed-0123456789",
        "agave_refresh_token": "refresh-fixed-0123456789",
    }
    async with LocalPlatform(credentials=fixed) as platform:
        assert platform.agave_token == "token-fixed-0123456789"
        stored = await platform.store.run(
            lambda conn: conn.execute("SELECT password FROM agave_users").fetchall()
        )
        assert all("pw-fixed-1234" not in str(row[0]) for row in stored)
        # The fixed pair works: the refresh token is accepted once, by the fixed client.
        async with client_for(platform, token=None) as client:
            await client.tokens.ensure()
            assert client.tokens.access_token not in (None, "token-fixed-0123456789")
        async with client_for(platform, token=None, refresh_token=None, username="testuser",
                              password="pw-fixed-1234") as by_password:  # fmt: skip
            await by_password.tokens.ensure()
            assert by_password.tokens.refreshes == 1
