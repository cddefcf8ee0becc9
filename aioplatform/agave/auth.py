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
import collections
import contextvars
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

import attrs

from ..core.auth import Auth
from ..core.defaults import REDACTED
from .errors import AuthenticationError

if TYPE_CHECKING:
    from ..core.session import Response

__all__ = ["AgaveTokens", "TokenSet", "is_gateway_fault"]

log = logging.getLogger("aioplatform.agave")

REFRESH_MARGIN = 60.0
GATEWAY_FAULT_CODES = frozenset({900901, 900902, 900903, 900904})
_XML_FAULT = re.compile(rb"<ams:fault[^>]*>.*?<ams:code>\s*(\d+)\s*</ams:code>", re.S)

# The access token a request in this task was sent with (to tell, on a 401, whether
# another call already refreshed it).
_applied: contextvars.ContextVar[str | None] = contextvars.ContextVar("agave_applied_token", default=None)


@attrs.frozen
class TokenSet:
    """What a grant returned: the pair, and when the access token expires (epoch seconds).

    The fields agavepy keeps in ``ag.token.token_info``: ``created_at`` and ``expires_in``
    as the server sent it, ``expires_at`` = ``created_at + expires_in``."""

    access_token: str = attrs.field(repr=False)
    refresh_token: str | None = attrs.field(repr=False)
    expires_at: float | None
    expires_in: int | None = None
    created_at: float | None = None

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

# How many superseded tokens stay on the scrub list: a gateway fault echoes the key it
# refused, and that is an old token by the time the error is shown.
_RETIRED_KEPT = 16


class AgaveTokens(Auth):
    """The client's bearer credential and everything that keeps it valid.

    ``username``/``password`` alone (no OAuth key and secret) are enough for the
    ``clients`` resource (HTTP Basic) but not for a token. No credential at all is
    allowed too (someone holding only an Abaco nonce): requests then carry no
    ``Authorization`` header (:attr:`has_credential` is False)."""

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
        if password is not None and username is None:
            raise ValueError("a password needs its username")
        if refresh_token is not None and api_key is None:
            raise ValueError("refreshing needs the OAuth client's api_key and api_secret")
        if expires_at is not None and (
            isinstance(expires_at, bool) or not isinstance(expires_at, (int, float))
        ):
            raise TypeError("expires_at must be epoch seconds (a number) or None")
        if not isinstance(refresh_margin, (int, float)) or refresh_margin < 0:
            raise ValueError("refresh_margin must be a number of seconds >= 0")
        if on_refresh is not None and not callable(on_refresh):
            raise TypeError("on_token_refresh must be callable")
        self.access_token = token
        self.refresh_token = refresh_token
        self.expires_at = float(expires_at) if expires_at is not None else None
        self.expires_in: int | None = None
        self.created_at: float | None = None
        self.api_key = api_key
        self.api_secret = api_secret
        self.username = username
        self._password = password
        self.refresh_margin = float(refresh_margin)
        self.on_refresh = on_refresh
        self._grant: Grant | None = None
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retired: collections.deque[str] = collections.deque(maxlen=_RETIRED_KEPT)
        # Grants the server refused, by their form: the same grant is not sent again (a spent
        # refresh token stays spent), so 500 calls behind one failed refresh make one request.
        self._refused: dict[tuple[tuple[str, str], ...], AuthenticationError] = {}
        self.refreshes = 0  # grants made (password and refresh): tests and stats read it

    def bind(self, grant: Grant) -> None:
        """Called by the client: how to post a grant to ``/token``."""
        self._grant = grant

    @property
    def password(self) -> str | None:
        return self._password

    @property
    def has_credential(self) -> bool:
        """Whether there is a token, or a way to get one, to send (False: calls go unauthenticated)."""
        return bool(self.access_token) or self.can_refresh

    @property
    def can_refresh(self) -> bool:
        return (
            self._grant is not None
            and self.api_key is not None
            and (self.refresh_token is not None or self._password is not None)
        )

    def set_client(self, api_key: str, api_secret: str) -> None:
        """Use another OAuth client's key and secret for the grants from now on."""
        for name, value in (("api_key", api_key), ("api_secret", api_secret)):
            if not isinstance(value, str) or not value:
                raise TypeError(f"{name} must be a non-empty string")
        self.api_key, self.api_secret = api_key, api_secret
        self._refused.clear()

    # -- Auth -----------------------------------------------------------------------------------

    def apply(self, headers: MutableMapping[str, str]) -> None:
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        _applied.set(self.access_token)

    def secrets(self) -> Iterable[str]:
        held = (self.access_token, self.refresh_token, self.api_secret, self._password)
        return (*(s for s in held if s), *self._retired)

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

    async def renew(self) -> TokenSet:
        """Refresh now (the refresh grant, else the password grant), whatever the expiry."""
        if not self.can_refresh:
            raise ValueError(
                "no refresh is possible: give refresh_token (or username and password) "
                "with the OAuth client's api_key and api_secret"
            )
        before = self.access_token
        async with self._get_lock():
            if self.access_token == before or not self.access_token:
                await self._renew()
        current = self.token_set()
        assert current is not None
        return current

    async def login(self, username: str, password: str) -> TokenSet:
        """The password grant for ``username``; its pair replaces the current one, and the
        username and password are kept for a later fallback."""
        for name, value in (("username", username), ("password", password)):
            if not isinstance(value, str) or not value:
                raise TypeError(f"{name} must be a non-empty string")
        if self._grant is None or self.api_key is None:
            raise ValueError("the password grant needs the OAuth client's api_key and api_secret")
        async with self._get_lock():
            await self._run_grant(_password_form(username, password))
            self.username, self._password = username, password
        current = self.token_set()
        assert current is not None
        return current

    async def _renew(self) -> None:
        if self.refresh_token is not None:
            form = {"grant_type": "refresh_token", "refresh_token": self.refresh_token, "scope": "PRODUCTION"}
            try:
                await self._run_grant(form)
                return
            except AuthenticationError as exc:
                # A spent or revoked refresh token: log in again when we can, once. A refused
                # client (wrong key or secret) would refuse the password grant as well.
                if self._password is None or self.username is None or exc.error == "invalid_client":
                    raise
                log.info(
                    "Agave refresh token refused (%s); trying the password grant", exc.error or exc.status
                )
        assert self.username is not None and self._password is not None
        await self._run_grant(_password_form(self.username, self._password))

    async def _run_grant(self, form: dict[str, str]) -> None:
        assert self._grant is not None
        key = tuple(sorted(form.items()))
        refused = self._refused.get(key)
        if refused is not None:
            raise _again(refused)
        try:
            tokens = await self._grant(form)
        except AuthenticationError as exc:
            if exc.status in (400, 401):  # refused, not failed: a retry would be refused too
                self._refused[key] = exc
            raise
        for old in (self.access_token, self.refresh_token):
            if old:
                self._retired.append(old)
        self.access_token = tokens.access_token
        if tokens.refresh_token:
            self.refresh_token = tokens.refresh_token  # always the newest: the old one is spent
        self.expires_at = tokens.expires_at
        self.expires_in = tokens.expires_in
        self.created_at = tokens.created_at
        self._refused.clear()
        self.refreshes += 1
        log.info(
            "Agave token obtained with the %s grant (expires in %s s)", form["grant_type"], tokens.expires_in
        )
        if self.on_refresh is not None:
            outcome = self.on_refresh(
                TokenSet(
                    tokens.access_token,
                    self.refresh_token,
                    tokens.expires_at,
                    tokens.expires_in,
                    tokens.created_at,
                )
            )
            if asyncio.iscoroutine(outcome):
                await outcome

    def token_set(self) -> TokenSet | None:
        if not self.access_token:
            return None
        return TokenSet(
            self.access_token, self.refresh_token, self.expires_at, self.expires_in, self.created_at
        )

    def __repr__(self) -> str:
        return (
            f"AgaveTokens(token={REDACTED if self.access_token else None!r}, "
            f"refresh_token={REDACTED if self.refresh_token else None!r}, username={self.username!r})"
        )


def _password_form(username: str, password: str) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password, "scope": "PRODUCTION"}


def _again(error: AuthenticationError) -> AuthenticationError:
    """A fresh exception for a refusal seen before (one instance raised in many tasks
    would collect all their tracebacks)."""
    again = AuthenticationError(
        error.message, status=error.status, method=error.method, url=error.url, body=error.body
    )
    again.error = error.error
    return again
