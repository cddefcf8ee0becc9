"""saltant's JWT login (djangorestframework-simplejwt): ``token/`` and ``token/refresh/``.

:class:`JWTAuth` logs in with a username and password on first use, sends
``Authorization: Bearer <access>``, renews the access token shortly before it
expires (read from the token's ``exp`` claim) and, when the server rejects it
anyway (403 ``token_not_valid``, or 401), refreshes once and re-sends. An expired
refresh token falls back to logging in again. Concurrent requests share one renewal.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from ..core.auth import Auth
from ..core.errors import Unauthorized
from ..core.session import Response

__all__ = ["JWTAuth"]

# (path, JSON body) -> the decoded JSON answer; provided by the client that uses this auth.
TokenPoster = Callable[[str, dict[str, str]], Awaitable[Any]]

PERMISSION_DENIED_PREFIX = "You do not have permission"


def _expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (unverified: the server checks signatures, we only schedule)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims.get("exp")
    except (IndexError, ValueError, AttributeError):
        return None
    return float(exp) if isinstance(exp, (int, float)) else None


class JWTAuth(Auth):
    """A username/password credential traded for short-lived access tokens.

    >>> client = SaltantClient.from_jwt("https://host/api/", "alice", "s3cret")
    """

    def __init__(self, username: str, password: str, *, leeway: float = 10.0):
        if not isinstance(username, str) or not username:
            raise ValueError("username must be a non-empty string")
        if not isinstance(password, str) or not password:
            raise ValueError("password must be a non-empty string")
        self.username = username
        self._password = password
        self._leeway = leeway
        self._access: str | None = None
        self._refresh: str | None = None
        self._expires_at: float | None = None
        self._lock: asyncio.Lock | None = None
        self._post: TokenPoster | None = None
        self.renewals = 0  # access tokens obtained so far (logins and refreshes)

    def bind(self, post: TokenPoster) -> None:
        """Give this auth the way to reach the token endpoints (done by SaltantClient)."""
        self._post = post

    def apply(self, headers: MutableMapping[str, str]) -> None:
        if self._access is not None:
            headers["Authorization"] = f"Bearer {self._access}"

    def secrets(self) -> Iterable[str]:
        return tuple(s for s in (self._password, self._access, self._refresh) if s)

    def _fresh(self) -> bool:
        if self._access is None:
            return False
        return self._expires_at is None or time.time() < self._expires_at - self._leeway

    async def ensure(self) -> None:
        """Obtain or renew the access token if there is none or it is about to expire."""
        if self._fresh():
            return
        async with self._get_lock():
            if not self._fresh():
                await self._renew()

    async def refresh(self, response: Response) -> bool:
        if response.status not in (401, 403):
            return False
        try:
            body = response.json()
        except ValueError:
            body = None
        detail = body.get("detail") if isinstance(body, dict) else None
        if isinstance(detail, str) and detail.startswith(PERMISSION_DENIED_PREFIX):
            return False  # authenticated fine; simply not allowed
        stale = self._access
        async with self._get_lock():
            if self._access == stale:  # nobody renewed it meanwhile
                self._access = None
                await self._renew()
        return True

    async def _renew(self) -> None:
        if self._post is None:
            raise RuntimeError("JWTAuth is not bound to a client; use SaltantClient.from_jwt()")
        if self._refresh is not None and (_expiry(self._refresh) or float("inf")) > time.time():
            try:
                answer = await self._post("token/refresh/", {"refresh": self._refresh})
            except Unauthorized:
                self._refresh = None
            else:
                self._set(answer["access"], answer.get("refresh"))
                return
        answer = await self._post("token/", {"username": self.username, "password": self._password})
        self._set(answer["access"], answer.get("refresh"))

    def _set(self, access: str, refresh: str | None) -> None:
        self._access = access
        if refresh:
            self._refresh = refresh
        self._expires_at = _expiry(access)
        self.renewals += 1

    def _get_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    def __repr__(self) -> str:
        return f"JWTAuth(username={self.username!r}, password='***')"
