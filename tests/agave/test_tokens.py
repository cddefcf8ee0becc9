"""Agave tokens: password and refresh grants, proactive and reactive refresh, single-flight
under 500 concurrent calls, the password fallback, the credential cache, and secrets kept out
of reprs, logs and errors."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from aioplatform.agave import AgaveClient, AuthenticationError, TokenSet
from aioplatform.core.errors import Unauthorized
from aioplatform.testing import LocalPlatform
from aioplatform.testing.agave.defaults import DEFAULT_STORAGE_SYSTEM

from .conftest import client_for

TOKEN = "/agave/token"
SYSTEM = f"/agave/systems/v2/{DEFAULT_STORAGE_SYSTEM}"


async def _spent_refresh_token(platform: LocalPlatform) -> tuple[str, str]:
    """An (expired access, spent refresh) pair: the refresh token was used once already."""
    service = platform.agave
    access, refresh = await service.issue_token(lifetime=0)
    async with client_for(platform, token=None, refresh_token=refresh) as spender:
        await spender.tokens.ensure()
    return access, refresh


# -- grants --------------------------------------------------------------------------------------


async def test_an_expired_access_token_with_a_valid_refresh_token_is_refreshed_before_the_call(
    platform: LocalPlatform,
) -> None:
    access, refresh = await platform.agave.issue_token(lifetime=0)
    async with client_for(platform, token=access, refresh_token=refresh, expires_at=time.time() - 5) as c:
        system = await c.systems.get(DEFAULT_STORAGE_SYSTEM)
        assert system.id == DEFAULT_STORAGE_SYSTEM
        assert c.tokens.access_token != access and c.tokens.refresh_token != refresh
    assert platform.stats.count("POST", TOKEN) == 1
    assert platform.stats.count("GET", SYSTEM) == 1  # no call wasted on the known-expired token


async def test_a_streamed_download_refreshes_an_expired_token_before_it_starts(
    platform: LocalPlatform, agave: AgaveClient, tmp_path: Path
) -> None:
    await agave.files.upload(DEFAULT_STORAGE_SYSTEM, "", b"streamed\n", file_name="streamed.txt")
    access, refresh = await platform.agave.issue_token(lifetime=0)
    platform.stats.reset()
    async with client_for(platform, token=access, refresh_token=refresh, expires_at=time.time() - 5) as c:
        saved = await c.files.download(DEFAULT_STORAGE_SYSTEM, "streamed.txt", tmp_path)
        assert saved.read_bytes() == b"streamed\n"
        assert c.tokens.access_token != access
    assert platform.stats.count("POST", TOKEN) == 1
    # one GET of the file: none wasted on the known-expired token and answered 401
    assert platform.stats.count("GET", "/agave/files/v2/media/*") == 1


async def test_a_token_with_less_than_a_minute_left_is_renewed_first_and_one_with_more_is_not(
    platform: LocalPlatform,
) -> None:
    access, refresh = await platform.agave.issue_token(lifetime=30)
    async with client_for(platform, token=access, refresh_token=refresh, expires_at=time.time() + 30) as c:
        await c.systems.get(DEFAULT_STORAGE_SYSTEM)
        assert c.tokens.access_token != access
        renewed = c.tokens.info
        assert renewed is not None and renewed.expires_in == 14400
        assert renewed.expires_at is not None and renewed.expires_at - time.time() > 14000
        await c.systems.get(DEFAULT_STORAGE_SYSTEM)
    assert platform.stats.count("POST", TOKEN) == 1
    assert platform.stats.count("GET", SYSTEM) == 2


async def test_the_gateway_fault_on_an_unknown_expiry_refreshes_once_and_resends(
    platform: LocalPlatform,
) -> None:
    access, refresh = await platform.agave.issue_token()
    await platform.agave.expire_token(access)  # the client does not know
    async with client_for(platform, token=access, refresh_token=refresh) as c:
        await c.systems.get(DEFAULT_STORAGE_SYSTEM)
        assert c.tokens.refreshes == 1
    assert platform.stats.count("POST", TOKEN) == 1
    assert platform.stats.count("GET", SYSTEM) == 2  # the 401 and the resend


async def test_the_new_refresh_token_replaces_the_old_which_the_server_then_refuses(
    platform: LocalPlatform,
) -> None:
    service = platform.agave
    async with client_for(platform) as c:
        old = c.tokens.refresh_token
        first = await c.tokens.refresh()
        second = await c.tokens.refresh()
        assert first.refresh_token != old and second.refresh_token != first.refresh_token
        assert c.tokens.refresh_token == second.refresh_token
        await c.systems.get(DEFAULT_STORAGE_SYSTEM)
    basic = base64.b64encode(f"{service.client_key}:{service.client_secret}".encode()).decode()
    async with aiohttp.ClientSession() as http:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": first.refresh_token or "",
            "scope": "PRODUCTION",
        }
        headers = {"Authorization": f"Basic {basic}"}
        async with http.post(platform.agave_url + "/token", data=form, headers=headers) as response:
            assert response.status == 400
            assert (await response.json())["error"] == "invalid_grant"


async def test_tokens_create_is_the_password_grant_and_its_pair_becomes_the_clients(
    platform: LocalPlatform,
) -> None:
    service = platform.agave
    async with client_for(platform) as c:
        before = c.tokens.access_token
        info = await c.tokens.create(service.username, service.password)
        assert info.access_token == c.tokens.access_token != before
        assert info.expires_in == 14400 and info.created_at is not None
        await c.systems.get(DEFAULT_STORAGE_SYSTEM)
        with pytest.raises(AuthenticationError, match="Authentication failed"):
            await c.tokens.create(service.username, "not-the-password")
        with pytest.raises(TypeError, match="password"):
            await c.tokens.create(service.username, "")
    assert platform.stats.count("POST", TOKEN) == 2


async def test_tokens_refresh_without_a_refresh_credential_is_a_value_error_before_any_request(
    platform: LocalPlatform,
) -> None:
    async with AgaveClient(platform.agave_url, token=platform.agave.access_token) as c:
        with pytest.raises(ValueError, match="refresh"):
            await c.tokens.refresh()
    assert platform.stats.count("POST", TOKEN) == 0


# -- single-flight -------------------------------------------------------------------------------


async def test_500_concurrent_calls_on_a_known_expired_token_make_one_token_request(
    platform: LocalPlatform,
) -> None:
    access, refresh = await platform.agave.issue_token(lifetime=0)
    async with client_for(platform, token=access, refresh_token=refresh, expires_at=time.time() - 1) as c:
        systems = await asyncio.gather(*(c.systems.get(DEFAULT_STORAGE_SYSTEM) for _ in range(500)))
    assert {s.id for s in systems} == {DEFAULT_STORAGE_SYSTEM}
    assert platform.stats.count("POST", TOKEN) == 1
    assert platform.stats.count("GET", SYSTEM) == 500


async def test_500_concurrent_calls_that_all_meet_the_gateway_fault_make_one_token_request(
    platform: LocalPlatform,
) -> None:
    access, refresh = await platform.agave.issue_token()
    await platform.agave.expire_token(access)
    async with client_for(platform, token=access, refresh_token=refresh) as c:
        systems = await asyncio.gather(*(c.systems.get(DEFAULT_STORAGE_SYSTEM) for _ in range(500)))
        assert c.tokens.refreshes == 1
    assert len(systems) == 500
    assert platform.stats.count("POST", TOKEN) == 1
    assert platform.stats.count("GET", SYSTEM) == 1000  # each call: the 401, then the resend


async def test_500_calls_behind_a_spent_refresh_token_fail_typed_after_one_token_request(
    platform: LocalPlatform,
) -> None:
    access, refresh = await _spent_refresh_token(platform)
    before = platform.stats.count("POST", TOKEN)
    async with client_for(platform, token=access, refresh_token=refresh) as c:
        outcomes = await asyncio.gather(
            *(c.systems.get(DEFAULT_STORAGE_SYSTEM) for _ in range(500)), return_exceptions=True
        )
    assert all(isinstance(o, AuthenticationError) for o in outcomes)
    first = outcomes[0]
    assert isinstance(first, AuthenticationError) and isinstance(first, Unauthorized)
    assert "Invalid refresh token" in str(first) and first.error == "invalid_grant"
    assert platform.stats.count("POST", TOKEN) - before == 1


# -- failures and the password fallback ----------------------------------------------------------


async def test_a_refused_refresh_is_an_authentication_error_with_the_oauth_description(
    platform: LocalPlatform,
) -> None:
    _, refresh = await _spent_refresh_token(platform)
    async with client_for(platform, token=None, refresh_token=refresh) as c:
        with pytest.raises(AuthenticationError) as caught:
            await c.systems.get(DEFAULT_STORAGE_SYSTEM)
    error = caught.value
    assert error.status == 400 and error.error == "invalid_grant"
    assert "Invalid refresh token" in error.message
    for text in (str(error), repr(error), error.body):
        assert refresh not in text and platform.agave.client_secret not in text


async def test_a_spent_refresh_token_falls_back_to_the_password_grant_once(platform: LocalPlatform) -> None:
    service = platform.agave
    access, refresh = await _spent_refresh_token(platform)
    before = platform.stats.count("POST", TOKEN)
    async with client_for(
        platform, token=access, refresh_token=refresh, username=service.username, password=service.password
    ) as c:
        await c.systems.get(DEFAULT_STORAGE_SYSTEM)
        assert c.tokens.refresh_token not in (None, refresh)
        await c.systems.get(DEFAULT_STORAGE_SYSTEM)
    assert platform.stats.count("POST", TOKEN) - before == 2  # the refused refresh, the password grant


async def test_a_wrong_client_secret_does_not_fall_back_to_the_password_grant(
    platform: LocalPlatform,
) -> None:
    service = platform.agave
    async with client_for(
        platform,
        token=None,
        api_secret="not-the-secret",
        username=service.username,
        password=service.password,
    ) as c:
        with pytest.raises(AuthenticationError, match="Client Authentication failed") as caught:
            await c.tokens.ensure()
    assert caught.value.error == "invalid_client"
    assert platform.stats.count("POST", TOKEN) == 1


# -- secrets -------------------------------------------------------------------------------------


async def test_tokens_and_secrets_stay_out_of_reprs_logs_and_errors(
    platform: LocalPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    service = platform.agave
    caplog.set_level(logging.DEBUG, logger="aioplatform")
    access, refresh = await service.issue_token()
    await service.expire_token(access)
    seen: list[str] = [access, refresh, service.client_secret, service.password]
    async with client_for(
        platform, token=access, refresh_token=refresh, username=service.username, password=service.password
    ) as c:
        await c.systems.get(DEFAULT_STORAGE_SYSTEM)  # reactive refresh
        info = c.tokens.info
        assert info is not None and info.refresh_token
        seen += [info.access_token, info.refresh_token]
        texts = [repr(c), repr(c.tokens), repr(c.credentials), repr(info), str(info)]
        await service.expire_token(info.access_token)
        # Refresh refused next time: revoke every token of the seeded user on the server.
        await service.store.run(lambda conn: conn.execute("UPDATE agave_tokens SET refresh_used = 1"))
        await service.store.run(lambda conn: conn.execute("UPDATE agave_users SET password = 'changed'"))
        with pytest.raises(AuthenticationError) as caught:
            await c.systems.get(DEFAULT_STORAGE_SYSTEM)
        texts += [str(caught.value), repr(caught.value), caught.value.body, caught.value.url]
    texts.append(caplog.text)
    assert "token obtained" in caplog.text  # the refresh was logged, without its secrets
    for text in texts:
        for secret in seen:
            assert secret not in text


def test_credentials_are_checked_before_any_request() -> None:
    url = "http://127.0.0.1:1/agave"
    with pytest.raises(ValueError, match="api_key"):
        AgaveClient(url, token="t0ken-value", refresh_token="r3fresh")
    with pytest.raises(ValueError, match="together"):
        AgaveClient(url, token="t0ken-value", api_key="key")
    with pytest.raises(ValueError, match="username"):
        AgaveClient(url, password="pa55word")
    with pytest.raises(TypeError, match="expires_at"):
        AgaveClient(url, token="t0ken-value", expires_at="tomorrow")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="refresh_token"):
        AgaveClient(url, token="t0ken-value", refresh_token="")


# -- the XML fault of older gateways (a purpose-built server) -------------------------------------


class XmlGateway:
    """A gateway that answers the first call with the XML ``<ams:fault>`` 900903 (echoing the
    whole refused token, as WSO2 does), and a token endpoint handing out fresh pairs."""

    def __init__(self) -> None:
        self.valid: set[str] = set()
        self.refuse_all = False
        self.token_requests = 0
        self.calls: list[str] = []

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        assert request.headers["Authorization"].startswith("Basic ")
        assert form["grant_type"] == "refresh_token"
        access = f"fresh-access-{self.token_requests:04d}"
        self.valid.add(access)
        return web.json_response(
            {"access_token": access, "refresh_token": f"fresh-refresh-{self.token_requests:04d}",
             "token_type": "bearer", "expires_in": 14400}
        )  # fmt: skip

    async def jobs(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.calls.append(token)
        if token not in self.valid or self.refuse_all:
            xml = (
                '<ams:fault xmlns:ams="http://wso2.org/apimanager/security">'
                "<ams:code>900903</ams:code><ams:message>Access Token Expired</ams:message>"
                f"<ams:description>Access failure for API: /jobs/v2, version: v2 with key: {token}"
                "</ams:description></ams:fault>"
            )
            return web.Response(status=401, text=xml, content_type="application/xml")
        return web.json_response(
            {"status": "success", "message": None, "version": "2.2.22-r7deb380", "result": []}
        )


@pytest.fixture
async def xml_gateway() -> AsyncIterator[tuple[str, XmlGateway]]:
    gateway = XmlGateway()
    app = web.Application()
    app.router.add_post("/token", gateway.token)
    app.router.add_get("/jobs/v2/", gateway.jobs)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", gateway
    finally:
        await runner.cleanup()


async def test_the_xml_fault_refreshes_once_and_resends(xml_gateway: tuple[str, XmlGateway]) -> None:
    url, gateway = xml_gateway
    stale = "stale-access-token-0001"
    async with AgaveClient(url, token=stale, refresh_token="r-0001", api_key="k", api_secret="s3cret") as c:
        results = await asyncio.gather(*(c._call("GET", "jobs/v2/") for _ in range(50)))
        assert results == [[]] * 50
    assert gateway.token_requests == 1
    assert gateway.calls.count(stale) == 50 and gateway.calls.count("fresh-access-0001") == 50


async def test_the_xml_fault_without_a_refresh_is_a_readable_authentication_error(
    xml_gateway: tuple[str, XmlGateway],
) -> None:
    url, gateway = xml_gateway
    stale = "stale-access-token-0002"
    async with AgaveClient(url, token=stale) as c:
        with pytest.raises(AuthenticationError, match="Access Token Expired") as caught:
            await c._call("GET", "jobs/v2/")
    assert caught.value.status == 401 and gateway.token_requests == 0
    for text in (str(caught.value), repr(caught.value), caught.value.body):
        assert stale not in text and "<ams:" not in str(caught.value)


async def test_a_retired_token_echoed_by_the_gateway_is_still_scrubbed(
    xml_gateway: tuple[str, XmlGateway],
) -> None:
    url, gateway = xml_gateway
    stale = "stale-access-token-0003"
    async with AgaveClient(url, token=stale, refresh_token="r-0003", api_key="k", api_secret="s3cret") as c:
        await c._call("GET", "jobs/v2/")
        gateway.refuse_all = True  # every token is refused now, and echoed in the fault
        with pytest.raises(AuthenticationError) as caught:
            await c._call("GET", "jobs/v2/")
    assert gateway.token_requests == 2  # one refresh, one resend with its token, refused
    text = caught.value.body + str(caught.value)
    for token in (stale, "fresh-access-0001", "fresh-access-0002"):
        assert token not in text


# -- from_env and from_cache ---------------------------------------------------------------------


async def test_from_env_reads_the_agave_variables(
    platform: LocalPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = platform.agave
    access, refresh = await service.issue_token()
    await service.expire_token(access)
    for name, value in {
        "AGAVE_TENANT_BASEURL": platform.agave_url, "AGAVE_ACCESS_TOKEN": access,
        "AGAVE_REFRESH_TOKEN": refresh, "AGAVE_API_KEY": service.client_key,
        "AGAVE_API_SECRET": service.client_secret, "AGAVE_USERNAME": service.username,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AGAVE_BASE_URL", raising=False)
    async with AgaveClient.from_env() as c:
        await c.systems.get(DEFAULT_STORAGE_SYSTEM)
        assert c.tokens.refreshes == 1 and c.credentials.username == service.username
    monkeypatch.setenv("AGAVE_BASE_URL", "http://127.0.0.1:1/elsewhere")
    async with AgaveClient.from_env(base_url=platform.agave_url) as c:  # arguments win
        assert c.base_url == platform.agave_url + "/"


def test_from_env_without_a_base_url_or_credential_names_the_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for names in ("AGAVE_BASE_URL", "AGAVE_TENANT_BASEURL", "TAPIS_BASE_URL", "AGAVE_TOKEN",
                  "AGAVE_ACCESS_TOKEN", "TAPIS_TOKEN", "AGAVE_REFRESH_TOKEN", "TAPIS_REFRESH_TOKEN",
                  "AGAVE_PASSWORD", "TAPIS_PASSWORD"):  # fmt: skip
        monkeypatch.delenv(names, raising=False)
    with pytest.raises(ValueError, match="AGAVE_BASE_URL"):
        AgaveClient.from_env()
    monkeypatch.setenv("AGAVE_BASE_URL", "http://127.0.0.1:1/agave")
    with pytest.raises(ValueError, match="AGAVE_TOKEN"):
        AgaveClient.from_env()


def _write_cache(
    path: Path, platform: LocalPlatform, access: str, refresh: str, created_at: int
) -> dict[str, str]:
    service = platform.agave
    entry = {
        "tenantid": "local.test", "baseurl": platform.agave_url, "devurl": "",
        "apisecret": service.client_secret, "apikey": service.client_key, "username": service.username,
        "access_token": access, "refresh_token": refresh, "created_at": str(created_at),
        "expires_in": "14400", "expires_at": time.ctime(created_at + 14400),
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entry))
    return entry


async def test_from_cache_starts_from_an_expired_token_and_leaves_the_file_alone_unless_asked(
    platform: LocalPlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    access, refresh = await platform.agave.issue_token(lifetime=0)
    monkeypatch.setenv("AGAVE_CACHE_DIR", str(tmp_path / "cache"))
    entry = _write_cache(tmp_path / "cache" / "current", platform, access, refresh, int(time.time()) - 20000)
    seen: list[TokenSet] = []
    async with AgaveClient.from_cache(on_token_refresh=seen.append) as c:
        await c.systems.get(DEFAULT_STORAGE_SYSTEM)
    assert platform.stats.count("GET", SYSTEM) == 1  # the expiry was known: no 401 first
    assert len(seen) == 1 and seen[0].access_token != access
    assert json.loads((tmp_path / "cache" / "current").read_text()) == entry


async def test_from_cache_with_persist_writes_the_new_pair_atomically_keeping_the_other_keys(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    access, refresh = await platform.agave.issue_token()
    await platform.agave.expire_token(access)
    path = tmp_path / "current"
    entry = _write_cache(path, platform, access, refresh, int(time.time()))  # expiry unknown to us
    os.chmod(path, 0o644)
    async with AgaveClient.from_cache(path, persist=True) as c:
        await c.systems.get(DEFAULT_STORAGE_SYSTEM)  # reactive refresh
        info = c.tokens.info
    assert info is not None
    written = json.loads(path.read_text())
    assert written["access_token"] == info.access_token and written["refresh_token"] == info.refresh_token
    assert written["expires_in"] == "14400" and int(written["created_at"]) >= int(entry["created_at"])
    for key in ("tenantid", "baseurl", "devurl", "apikey", "apisecret", "username"):
        assert written[key] == entry[key]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["current"]  # no temporary file left
    # The file now starts a client whose token is valid: no grant needed.
    async with AgaveClient.from_cache(path) as again:
        await again.systems.get(DEFAULT_STORAGE_SYSTEM)
        assert again.tokens.refreshes == 0


def test_from_cache_reports_a_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no Agave credential cache"):
        AgaveClient.from_cache(tmp_path / "absent")
    (tmp_path / "broken").write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        AgaveClient.from_cache(tmp_path / "broken")
    with pytest.raises(TypeError, match="persist"):
        AgaveClient.from_cache(tmp_path / "broken", persist="yes")  # type: ignore[arg-type]


async def test_from_cache_reads_the_older_list_form_and_a_display_only_expiry(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    service = platform.agave
    access, refresh = await service.issue_token(lifetime=0)
    path = tmp_path / "current"
    # Older CLIs wrote a list; agavepy's token helper writes expires_at for display only.
    past = time.time() - 3600
    path.write_text(json.dumps([{
        "baseurl": platform.agave_url, "apikey": service.client_key, "apisecret": service.client_secret,
        "access_token": access, "refresh_token": refresh,
        "expires_at": time.strftime("%a %b %d %H:%M:%S UTC %Y", time.localtime(past)),
    }]))  # fmt: skip
    async with AgaveClient.from_cache(path, persist=True) as c:
        assert c.tokens.expires_at is not None and abs(c.tokens.expires_at - past) < 2
        await c.systems.get(DEFAULT_STORAGE_SYSTEM)
        info = c.tokens.info
    assert platform.stats.count("GET", SYSTEM) == 1  # refreshed first: the expiry was known
    written = json.loads(path.read_text())
    assert isinstance(written, list) and info is not None
    assert written[0]["access_token"] == info.access_token and written[0]["apikey"] == service.client_key
