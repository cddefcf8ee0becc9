"""Agave's OAuth2 tokens: the password and refresh grants, kept fresh on one session.

:class:`AgaveTokens` is the client's :class:`~aioplatform.core.auth.Auth`. It sends
``Authorization: Bearer <access token>`` and:

* refreshes *proactively* before a request when fewer than ``refresh_margin`` seconds
  (60) of the access token remain, so no call is wasted on a known-expired token;
* refreshes *reactively*, once, when the gateway answers 401 with its fault
  (JSON ``fault`` 900901-900904 or the XML ``<ams:fault>``), and the call is re-sent once;
* is **single-flight**: however many calls find the token expired at once, one
  ``/token`` request is made and every call waits for it and uses its result;
* always keeps the refresh token the server returned last (Agave rotates them).

Tokens and secrets are never shown in a repr, a log line or an error.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

import attrs

from ..core.auth import Auth
from ..core.defaults import REDACTED

if TYPE_CHECKING:
    from ..core.session import Response

__all__ = ["AgaveTokens", "TokenSet", "is_gateway_fault"]

REFRESH_MARGIN = 60.0
GATEWAY_FAULT_CODES = frozenset({900901, 900902, 900903, 900904})
_XML_FAULT = re.compile(rb"<ams:fault[^>]*>.*?<ams:code>\s*(\d+)\s*</ams:code>", re.S)

# The access token a request in this task was sent with (to tell, on a 401, whether
# another call already refreshed it).
_applied: contextvars.ContextVar[str | None] = contextvars.ContextVar("agave_applied_token", default=None)


@attrs.frozen
class TokenSet:
    """What a grant returned: the pair, and when the access token expires (epoch seconds)."""

    access_token: str = attrs.field(repr=False)
    refresh_token: str | None = attrs.field(repr=False)
    expires_at: float | None
    expires_in: int | None = None

    def __repr__(self) -> str:
        return (
            f"TokenSet(access_token={REDACTED!r}, refresh_token={REDACTED!r}, expires_at={self.expires_at!r})"
        )


def is_gateway_fault(response: Response) -> bool:
    """Whether a 401 is the API gateway's token fault (the answer a refresh can cure)."""
    if response.status != 401:
        return False
    body = response.body
    match = _XML_FAULT.search(body[:4096])
    if match is not None:
        return int(match.group(1)) in GATEWAY_FAULT_CODES
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    fault = parsed.get("fault") if isinstance(parsed, dict) else None
    if not isinstance(fault, dict):
        return False
    code = fault.get("code")
    try:
        return int(code) in GATEWAY_FAULT_CODES  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "Invalid Credentials" in str(fault.get("message", ""))


# A grant: form fields in, TokenSet out (the client posts them to /token with Basic auth).
Grant = Callable[[dict[str, str]], Awaitable[TokenSet]]


class AgaveTokens(Auth):
    """The client's bearer credential and everything that keeps it valid."""

    def __init__(
        self,
        *,
        token: str | None = None,
        refresh_token: str | None = None,
        expires_at: float | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        username: str | None = None,
        password: str | None = None,
        refresh_margin: float = REFRESH_MARGIN,
        on_refresh: Callable[[TokenSet], Any] | None = None,
    ):
        for name, value in (
            ("token", token), ("refresh_token", refresh_token), ("api_key", api_key),
            ("api_secret", api_secret), ("username", username), ("password", password),
        ):  # fmt: skip
            if value is not None and (not isinstance(value, str) or not value):
                raise TypeError(f"{name} must be a non-empty string or None")
        if (api_key is None) != (api_secret is None):
            raise ValueError("give api_key and api_secret together (the OAuth client's key and secret)")
        if (username is None) != (password is None):
            raise ValueError("give username and password together")
        if token is None and refresh_token is None and password is None:
            raise ValueError("give a token, a refresh_token or username and password")
        if (refresh_token is not None or password is not None) and api_key is None:
            raise ValueError("refreshing or logging in needs the OAuth client's api_key and api_secret")
        self.access_token = token
        self.refresh_token = refresh_token
        self.expires_at = expires_at
        self.api_key = api_key
        self.api_secret = api_secret
        self.username = username
        self._password = password
        self.refresh_margin = refresh_margin
        self.on_refresh = on_refresh
        self._grant: Grant | None = None
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.refreshes = 0  # grants made (password and refresh): tests and stats read it

    def bind(self, grant: Grant) -> None:
        """Called by the client: how to post a grant to ``/token``."""
        self._grant = grant

    @property
    def can_refresh(self) -> bool:
        return (
            self._grant is not None
            and self.api_key is not None
            and (self.refresh_token is not None or self._password is not None)
        )

    # -- Auth -----------------------------------------------------------------------------------

    def apply(self, headers: MutableMapping[str, str]) -> None:
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        _applied.set(self.access_token)

    def secrets(self) -> Iterable[str]:
        return tuple(s for s in (self.access_token, self.refresh_token, self.api_secret, self._password) if s)

    async def refresh(self, response: Response) -> bool:
        if not is_gateway_fault(response) or not self.can_refresh:
            return False
        used = _applied.get()
        async with self._get_lock():
            if self.access_token != used and self.access_token:
                return True  # another call refreshed while this one was out
            await self._renew()
        return True

    # -- keeping it fresh -----------------------------------------------------------------------

    def _get_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop = asyncio.Lock(), loop
        return self._lock

    def _needs_renewal(self) -> bool:
        if not self.access_token:
            return True
        return self.expires_at is not None and self.expires_at - time.time() < self.refresh_margin

    async def ensure(self) -> None:
        """Before a request: get a token if there is none, renew one about to expire."""
        if not self._needs_renewal() or not self.can_refresh:
            return
        async with self._get_lock():
            if self._needs_renewal():  # not renewed by whoever held the lock before us
                await self._renew()

    async def _renew(self) -> None:
        assert self._grant is not None
        if self.refresh_token is not None:
            form = {"grant_type": "refresh_token", "refresh_token": self.refresh_token, "scope": "PRODUCTION"}
        else:
            assert self.username is not None and self._password is not None
            form = {"grant_type": "password", "username": self.username, "password": self._password,
                    "scope": "PRODUCTION"}  # fmt: skip
        tokens = await self._grant(form)
        self.access_token = tokens.access_token
        if tokens.refresh_token:
            self.refresh_token = tokens.refresh_token  # always the newest: the old one is spent
        self.expires_at = tokens.expires_at
        self.refreshes += 1
        if self.on_refresh is not None:
            outcome = self.on_refresh(tokens)
            if asyncio.iscoroutine(outcome):
                await outcome

    def token_set(self) -> TokenSet | None:
        if not self.access_token:
            return None
        return TokenSet(self.access_token, self.refresh_token, self.expires_at)

    def __repr__(self) -> str:
        return (
            f"AgaveTokens(token={REDACTED if self.access_token else None!r}, "
            f"refresh_token={REDACTED if self.refresh_token else None!r}, username={self.username!r})"
        )
