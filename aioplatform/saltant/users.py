"""Users: list and get by username (read-only in saltant's API)."""

from __future__ import annotations

from .models import User
from .resources import Resource

__all__ = ["UserManager"]


class UserManager(Resource[User]):
    """``client.users``."""

    path = "users/"
    model = User

    async def get(self, username: str) -> User:
        """The user with this username."""
        return await self._get(username, "username")
