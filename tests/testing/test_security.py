"""The embedded platform is secure by default: random credentials, loopback only, no key shown to others."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
import pytest

from aioplatform.testing import LocalPlatform


def _jwt(key: bytes, username: str) -> str:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = b64(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
    payload = b64(
        json.dumps(
            {"token_type": "access", "exp": time.time() + 300, "jti": "x", "user_id": username}
        ).encode()
    )
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


async def _status(url: str, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status


async def test_credentials_are_random_and_never_follow_the_seed() -> None:
    async with LocalPlatform(seed=0) as one, LocalPlatform(seed=0) as two:
        assert one.saltant_token != two.saltant_token
        assert one.saltant.admin_password != two.saltant.admin_password
        assert one.astakos_user_token != two.astakos_user_token
        assert one.astakos_service_token != two.astakos_service_token
        # What seed 0 used to give: the admin token and a JWT signed with the seed's key.
        old_token = hashlib.sha1(b"aioplatform/saltant/admin-token/0").hexdigest()
        forged = _jwt(hashlib.sha256(b"aioplatform/saltant/jwt/0").digest(), "admin")
        users = one.saltant_url + "users/"
        assert await _status(users, {"Authorization": f"Token {old_token}"}) == 403
        assert await _status(users, {"Authorization": f"Bearer {forged}"}) == 403
        assert await _status(users, {"Authorization": f"Token {one.saltant_token}"}) == 200


async def test_credentials_the_caller_fixes_are_the_ones_served() -> None:
    fixed = {
        "saltant_token": "a" * 40,
        "saltant_password": "pw-fixed",
        "saltant_jwt_key": "k" * 32,
        "astakos_user_token": "u" * 32,
        "astakos_service_token": "s" * 32,
    }
    async with LocalPlatform(credentials=fixed) as platform:
        assert platform.saltant_token == "a" * 40
        assert platform.saltant.admin_password == "pw-fixed"
        assert platform.astakos_user_token == "u" * 32
        assert platform.astakos_service_token == "s" * 32
        users = platform.saltant_url + "users/"
        assert await _status(users, {"Authorization": f"Bearer {_jwt(b'k' * 32, 'admin')}"}) == 200
        quotas = platform.astakos.account_url + "/quotas"
        assert await _status(quotas, {"X-Auth-Token": "u" * 32}) == 200
        service_quotas = platform.astakos.account_url + "/service_quotas"
        assert await _status(service_quotas, {"X-Auth-Token": "s" * 32}) == 200
        assert "a" * 40 not in repr(platform)


def test_unknown_or_malformed_credentials_are_refused_without_echoing_them() -> None:
    with pytest.raises(ValueError, match="saltant_tokn"):
        LocalPlatform(credentials={"saltant_tokn": "x"})
    with pytest.raises(TypeError, match="saltant_token") as caught:
        LocalPlatform(credentials={"saltant_token": b"secret-bytes"})  # type: ignore[dict-item]
    assert "secret-bytes" not in str(caught.value)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org"])
def test_a_host_other_machines_can_reach_needs_allow_remote(host: str) -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        LocalPlatform(host=host)
    assert LocalPlatform(host=host, allow_remote=True).host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts_need_nothing(host: str) -> None:
    assert LocalPlatform(host=host).host == host


async def test_the_flowserv_user_listing_never_shows_another_users_key() -> None:
    async with LocalPlatform() as platform, aiohttp.ClientSession() as session:
        url = platform.flowserv_url
        keys: dict[str, str] = {}
        for name in ("alice", "bob"):
            await platform.flowserv.create_user(name, "pw")
            async with session.post(url + "users/login", json={"username": name, "password": "pw"}) as r:
                keys[name] = (await r.json())["token"]

        async def listing(key: str) -> dict[str, Any]:
            async with session.get(url + "users", headers={"api_key": key}) as r:
                assert r.status == 200
                body: dict[str, Any] = await r.json()
                return body

        made_up = await listing("made-up")
        assert all("token" not in u for u in made_up["users"])
        as_alice = {u["username"]: u for u in (await listing(keys["alice"]))["users"]}
        assert as_alice["alice"]["token"] == keys["alice"]
        assert set(as_alice["bob"]) == {"id", "username"}
