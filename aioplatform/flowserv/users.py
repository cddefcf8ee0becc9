"""Users: flowserv's UserService (register, activate, login, logout, whoami, list, password reset)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.calls import CallTimeout
from ..core.errors import NotFound
from ..core.paging import AsyncPager
from ..core.paths import check_segment, segment
from ..core.serde import parse, structure
from .errors import LoginFailed
from .models import User, converter

if TYPE_CHECKING:
    from .client import FlowservClient

__all__ = ["Users", "check_id", "id_segment"]


_UNSAFE_IN_ID = frozenset("/?#%\\")


def check_id(name: str, value: Any) -> str:
    """A flowserv identifier: core.paths' rule for a path segment, and flowserv's on top.

    flowserv ids are 32-hex strings (workflow ids may be chosen: letters, digits,
    ``_``). Flask decodes ``%2F`` before routing, so an encoded ``/`` would still reach
    another resource (``workflows/x%2Fgroups`` is the group listing); ids are therefore
    refused, not encoded, when they hold ``/ ? # % \\``, spaces or control characters.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    check_segment(name, value)  # empty, '.', '..' and their percent-encodings
    if any(c in _UNSAFE_IN_ID or c.isspace() or not c.isprintable() for c in value):
        raise ValueError(
            f"{name} must be a non-empty identifier without '/', '?', '#', '%', '\\' or spaces, "
            f"got {value!r}"
        )
    return value


def id_segment(name: str, value: Any) -> str:
    """A flowserv id as one URL path segment (:func:`check_id`, then core.paths' encoding)."""
    return segment(name, check_id(name, value))


def _request_id(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"requestId must be a string, got {type(value).__name__}")
    return value


def _check_text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


class Users:
    """``client.users``: the flowserv UserService operations.

    ``login`` keeps the returned API key on the client for every later call;
    ``logout`` and a password reset of the logged-in user end that login.
    """

    def __init__(self, client: FlowservClient):
        self._client = client

    async def register(
        self, username: str, password: str, verify: bool = False, *, timeout: CallTimeout = None
    ) -> User:
        """Create a user. ``verify=True`` leaves them inactive until :meth:`activate`.

        A duplicate or empty name, or an empty password, is a ``BadRequest``.
        """
        _check_text("username", username)
        _check_text("password", password)
        if not isinstance(verify, bool):
            raise TypeError(f"verify must be a bool, got {type(verify).__name__}")
        body = {"username": username, "password": password, "verify": verify}
        response = await self._client._request("POST", "users/register", json=body)
        return structure(response, converter, User, secret=True)

    async def activate(self, user_id: str, *, timeout: CallTimeout = None) -> User:
        """Activate a user registered with ``verify=True`` (no login needed)."""
        check_id("user_id", user_id)
        # Activating twice is a no-op on the server, so a re-send is harmless.
        response = await self._client._request(
            "POST", "users/activate", json={"id": user_id}, idempotent=True
        )
        return structure(response, converter, User, secret=True)

    async def login(self, username: str, password: str, *, timeout: CallTimeout = None) -> User:
        """Log in and keep the API key for the client's later calls; returns the user with ``token``.

        flowserv answers an unknown user, an inactive user and a wrong password alike
        (404 "unknown user ..."): :class:`~aioplatform.flowserv.LoginFailed` says so (a
        ``NotFound`` and an ``Unauthorized``).
        """
        _check_text("username", username)
        if not isinstance(password, str):
            raise TypeError(f"password must be a string, got {type(password).__name__}")
        # Re-sending a login is harmless: an unexpired key is re-used, only its expiry moves.
        try:
            response = await self._client._request(
                "POST", "users/login", json={"username": username, "password": password}, idempotent=True
            )
        except NotFound as exc:
            raise LoginFailed(
                exc.message,
                status=exc.status, method=exc.method, url=exc.url, body=exc.body,
                headers=exc.headers, request_id=exc.request_id,
            ) from None
        user = structure(response, converter, User, secret=True)
        self._client._logged_in(user.token, user.id)
        return user

    async def logout(self, *, timeout: CallTimeout = None) -> User:
        """End the current login (the server invalidates the key) and forget the token."""
        response = await self._client._request("POST", "users/logout")
        self._client.token = None
        return structure(response, converter, User, secret=True)

    async def whoami(self, *, timeout: CallTimeout = None) -> User:
        """The logged-in user (``NotLoggedIn`` when the token is missing, unknown or expired)."""
        response = await self._client._request("GET", "users/whoami")
        return structure(response, converter, User, secret=True)

    def list(self, query: str | None = None) -> AsyncPager[User]:
        """Active users, sorted by name; ``query`` keeps names starting with it (SQL ``LIKE``)."""
        if query is not None and not isinstance(query, str):
            raise TypeError(f"query must be a string or None, got {type(query).__name__}")
        params = {"query": query} if query is not None else None

        async def fetch() -> list[User]:
            response = await self._client._request("GET", "users", params=params)
            return structure(response, converter, list[User], key="users", secret=True)

        return AsyncPager.single(fetch)

    async def request_password_reset(self, username: str, *, timeout: CallTimeout = None) -> str:
        """Start a password reset; returns the request id (the same answer for unknown users)."""
        _check_text("username", username)
        response = await self._client._request(
            "POST", "users/password/request", json={"username": username}
        )
        return parse(response, _request_id, key="requestId")

    async def reset_password(self, request_id: str, password: str, *, timeout: CallTimeout = None) -> User:
        """Set a new password with a reset request id. The user's login ends on the server.

        If that user is the one this client logged in as, the client forgets the
        (now invalid) token too.
        """
        check_id("request_id", request_id)
        _check_text("password", password)
        response = await self._client._request(
            "POST", "users/password/reset", json={"requestId": request_id, "password": password}
        )
        user = structure(response, converter, User, secret=True)
        if user.id == self._client._api_key.user_id:
            self._client.token = None
        return user
