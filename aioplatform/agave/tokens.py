"""The ``tokens`` resource: the client's OAuth token pair, as agavepy's ``ag.token``.

>>> info = await agave.tokens.create("jdoe", password)   # the password grant
>>> info = await agave.tokens.refresh()                  # the refresh grant, now
>>> agave.tokens.info.expires_at                         # what the client holds

The client keeps its token fresh by itself (see :mod:`aioplatform.agave.auth`); these
calls are for when a program wants a grant made explicitly. Every grant replaces the
pair the client holds, and the refresh token the server returned last is the one kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.calls import CallTimeout
from .auth import TokenSet

if TYPE_CHECKING:
    from .client import AgaveClient

__all__ = ["Tokens"]


class Tokens:
    """The OAuth token pair of one :class:`AgaveClient` (shared by its ``with_options`` copies)."""

    def __init__(self, client: AgaveClient):
        self._client = client

    async def create(self, username: str, password: str, *, timeout: CallTimeout = None) -> TokenSet:
        """The password grant (``POST /token`` with the OAuth client's key and secret); the
        new pair becomes the client's, and ``username``/``password`` are kept so that a
        spent refresh token can be replaced by logging in again."""
        return await self._client.credentials.login(username, password)

    async def refresh(self, *, timeout: CallTimeout = None) -> TokenSet:
        """The refresh grant now, whatever the expiry (the password grant when the refresh
        token is refused and the password is known). Concurrent calls share one grant."""
        return await self._client.credentials.renew()

    async def ensure(self, *, timeout: CallTimeout = None) -> None:
        """Get a token if there is none and renew one about to expire (what every request
        does first)."""
        await self._client.credentials.ensure()

    @property
    def info(self) -> TokenSet | None:
        """The pair the client holds, with ``expires_at``/``expires_in``/``created_at``
        when known (``None`` before the first grant of a client built without a token)."""
        return self._client.credentials.token_set()

    @property
    def access_token(self) -> str | None:
        return self._client.credentials.access_token

    @property
    def refresh_token(self) -> str | None:
        return self._client.credentials.refresh_token

    @property
    def expires_at(self) -> float | None:
        return self._client.credentials.expires_at

    @property
    def refreshes(self) -> int:
        """Grants this client has made (password and refresh)."""
        return self._client.credentials.refreshes

    def __repr__(self) -> str:
        return f"<Tokens of {self._client!r}>"
