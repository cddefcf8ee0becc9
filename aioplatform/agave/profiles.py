"""Profiles: agavepy's 3 profiles operations (``me``, by username, search) and the admin
create, update and delete of its spec.

>>> me = await agave.profiles.get()
>>> async for profile in agave.profiles.list(last_name="Doe"):
...     print(profile.username, profile.email)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.calls import CallTimeout
from ..core.checks import check_id
from ..core.paging import AsyncPager
from ..core.paths import segment
from .models.profiles import Profile

if TYPE_CHECKING:
    from .client import AgaveClient

__all__ = ["Profiles"]

ROOT = "profiles/v2"
PAGE_SIZE = 100
# The list filters of agavepy's spec (snake_case on the wire).
FILTERS = ("username", "name", "email", "first_name", "last_name", "full_name", "status")


def _username(value: Any) -> str:
    return check_id("username", value)


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise TypeError(f"body must be a mapping of profile fields, got {type(body).__name__}")
    for key, value in body.items():
        if not isinstance(key, str):
            raise TypeError(f"body keys must be strings, got {key!r}")
        if (value is not None and not isinstance(value, (str, int))) or isinstance(value, bool):
            raise TypeError(f"body[{key!r}] must be a string, got {type(value).__name__}")
    return dict(body)


class Profiles:
    """``client.profiles``: who you are, and the tenant's users."""

    def __init__(self, client: AgaveClient):
        self._client = client

    async def get(self, *, timeout: CallTimeout = None) -> Profile:
        """agavepy's ``get``: the profile of the token's user (``/profiles/v2/me``)."""
        return await self._client._model("GET", ROOT + "/me", Profile)

    me = get

    async def list_by_username(self, username: str, *, timeout: CallTimeout = None) -> Profile:
        """One user's profile (a single object, not a list)."""
        return await self._client._model("GET", f"{ROOT}/{segment('username', _username(username))}", Profile)

    def list(
        self,
        *,
        username: str | None = None,
        name: str | None = None,
        email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        full_name: str | None = None,
        status: str | None = None,
        limit: int = PAGE_SIZE,
        offset: int = 0,
    ) -> AsyncPager[Profile]:
        """The tenant's profiles matching every filter given (``name`` matches the
        username, first, last or full name; ``*`` is a wildcard)."""
        given = {
            "username": username, "name": name, "email": email, "first_name": first_name,
            "last_name": last_name, "full_name": full_name, "status": status,
        }  # fmt: skip
        params: dict[str, str] = {}
        for key, value in given.items():
            if value is None:
                continue
            if not isinstance(value, str):
                raise TypeError(f"{key} must be a string, got {type(value).__name__}")
            params[key] = value
        return self._client._list(ROOT, Profile, params=params, limit=limit, offset=offset)

    async def create(self, body: Mapping[str, Any], *, timeout: CallTimeout = None) -> Profile:
        """Create a user (tenant admins only): ``{"username", "password", "email",
        "first_name", "last_name", ...}``; 201. The password is never echoed back."""
        data = _body(body)
        _username(data.get("username"))
        return await self._client._model("POST", ROOT, Profile, json=data)

    async def update(self, username: str, body: Mapping[str, Any], *, timeout: CallTimeout = None) -> Profile:
        """Change a user's profile fields (tenant admins only); the fields left out are kept."""
        path = f"{ROOT}/{segment('username', _username(username))}"
        return await self._client._model("PUT", path, Profile, json=_body(body))

    async def delete(self, username: str, *, timeout: CallTimeout = None) -> None:
        """Delete a user (tenant admins only)."""
        await self._client._call("DELETE", f"{ROOT}/{segment('username', _username(username))}")
