"""The embedded Agave's TLS site (``LocalPlatform(agave_tls_host=...)``): Agave's routes at
the root of ``https://<loopback address>``, behind the platform's counters and faults,
with a certificate made at start-up. Port 0 here, so these run without root; the
agavepy interop test (test_agavepy_interop.py) takes port 443.
"""

from __future__ import annotations

import base64
import socket
import ssl
import sys

import aiohttp
import pytest

from aioplatform.testing import FaultRule, LocalPlatform

HOST = "127.0.0.2"


def _basic(platform: LocalPlatform) -> str:
    pair = f"{platform.agave.client_key}:{platform.agave.client_secret}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def _trusting(platform: LocalPlatform) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(platform.agave_ca_pem))


async def test_tls_site_serves_agave_at_the_root_with_a_certificate_its_ca_vouches_for() -> None:
    async with LocalPlatform(agave_tls_host=HOST, agave_tls_port=0) as platform:
        url = platform.agave_tls_url
        assert url.startswith(f"https://{HOST}:")
        service = platform.agave
        form = {"grant_type": "password", "username": service.username, "password": service.password}
        async with aiohttp.ClientSession() as http:
            async with http.post(
                url + "/token",
                data=form,
                headers={"Authorization": _basic(platform)},
                ssl=_trusting(platform),
            ) as response:
                assert response.status == 200
                token = (await response.json())["access_token"]
            async with http.get(url + "/jobs/v2/", ssl=_trusting(platform)) as response:
                assert response.status == 401
                assert (await response.json())["fault"]["code"] == 900902
        # The same store behind both sites: the token issued over TLS is in it.
        rows = await platform.store.run(
            lambda conn: conn.execute(
                "SELECT username FROM agave_tokens WHERE access_token = ?", (token,)
            ).fetchall()
        )
        assert [tuple(row) for row in rows] == [(service.username,)]
        assert platform.stats.count("POST", "/token") == 1
        assert platform.stats.count("GET", "/jobs/v2/") == 1


async def test_tls_site_certificate_is_refused_by_a_client_that_does_not_trust_its_ca() -> None:
    async with (
        LocalPlatform(agave_tls_host=HOST, agave_tls_port=0) as platform,
        aiohttp.ClientSession() as http,
    ):
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.post(platform.agave_tls_url + "/token", ssl=ssl.create_default_context())


async def test_tls_site_injects_the_platforms_faults() -> None:
    rule = FaultRule(match="POST /token", rate_503=1.0)
    async with LocalPlatform(agave_tls_host=HOST, agave_tls_port=0, faults=rule) as platform:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                platform.agave_tls_url + "/token",
                data={"grant_type": "password"},
                headers={"Authorization": _basic(platform)},
                ssl=_trusting(platform),
            ) as response,
        ):
            assert response.status == 503
        assert platform.faults.injected["503"] == 1


async def test_tls_site_port_is_released_on_close() -> None:
    async with LocalPlatform(agave_tls_host=HOST, agave_tls_port=0) as platform:
        port = int(platform.agave_tls_url.rsplit(":", 1)[1])
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))  # raises if the site still held it
    with pytest.raises(RuntimeError, match="agave_tls_host"):
        _ = platform.agave_tls_url


async def test_platform_without_a_tls_site_says_how_to_get_one() -> None:
    async with LocalPlatform() as platform:
        with pytest.raises(RuntimeError, match="agave_tls_host"):
            _ = platform.agave_tls_url
        with pytest.raises(RuntimeError, match="agave_tls_host"):
            _ = platform.agave_ca_pem


def test_tls_site_arguments_are_checked_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="agave_tls_host"):
        LocalPlatform(agave_tls_host="192.0.2.1")
    with pytest.raises(TypeError, match="agave_tls_host"):
        LocalPlatform(agave_tls_host="")
    with pytest.raises(ValueError, match="agave_tls_port"):
        LocalPlatform(agave_tls_host=HOST, agave_tls_port=70000)


async def test_tls_site_that_cannot_bind_leaves_nothing_running() -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        platform = LocalPlatform(agave_tls_host=HOST, agave_tls_port=port)
        with pytest.raises(OSError):
            await platform.start()
    # The main site was closed with it: its port answers nothing and a restart works.
    assert platform._runner is None and platform._server is None
    async with platform:
        assert platform.url


@pytest.mark.local_platform(agave_tls_host=HOST, agave_tls_port=0)
def test_local_platform_fixture_takes_the_tls_site_from_its_marker(local_platform: LocalPlatform) -> None:
    assert local_platform.agave_tls_url.startswith(f"https://{HOST}:")
    assert local_platform.agave_ca_pem.read_text().startswith("-----BEGIN CERTIFICATE-----")


async def test_tls_site_without_trustme_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "trustme", None)  # as if it were not installed
    platform = LocalPlatform(agave_tls_host=HOST, agave_tls_port=0)
    with pytest.raises(RuntimeError, match=r"trustme.*aioplatform\[test\]"):
        await platform.start()
    assert platform._runner is None and platform._server is None  # nothing left listening


async def test_agave_client_trusts_the_sites_ca_through_ssl_and_refuses_it_without() -> None:
    from aioplatform import TransportError
    from aioplatform.agave import AgaveClient

    async with LocalPlatform(agave_tls_host=HOST, agave_tls_port=0) as platform:
        service = platform.agave
        credentials = {
            "token": service.access_token,
            "refresh_token": service.refresh_token,
            "api_key": service.client_key,
            "api_secret": service.client_secret,
        }
        # An explicit port and a CA bundle path: what agavepy cannot do.
        async with AgaveClient(platform.agave_tls_url, ssl=platform.agave_ca_pem, **credentials) as agave:
            systems = await agave.systems.list().to_list()
            assert systems  # the seeded systems, over TLS
        async with AgaveClient(platform.agave_tls_url, **credentials) as untrusting:
            with pytest.raises(TransportError, match=r"(?i)certificate"):
                await untrusting.systems.list().to_list()
    with pytest.raises(ValueError, match="ssl"):
        AgaveClient("https://127.0.0.2", token="t0ken-value", ssl="/nonexistent/ca.pem")
    with pytest.raises(TypeError, match="ssl"):
        AgaveClient("https://127.0.0.2", token="t0ken-value", ssl=3)
