"""Users: list and get by username (read-only in saltant's API)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from ..core.calls import CallTimeout
from .models import User
from .resources import Resource

__all__ = ["UserManager"]


class UserManager(Resource[User]):
    """``client.users``."""

    filter_fields: ClassVar[Mapping[str, str]] = {"username": "char", "email": "char"}

    path = "users/"
    model = User

    async def get(self, username: str, *, timeout: CallTimeout = None) -> User:
        """The user with this username."""
        return await self._get(username, "username")
