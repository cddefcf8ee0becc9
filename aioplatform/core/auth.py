"""Authentication strategies: how a credential becomes a header, and how it is kept secret.

An ``Auth`` adds its header to each request (a cheap, synchronous step on the hot
path) and may *refresh* itself once when the server rejects it (saltant's JWT).
Every strategy lists its secrets so the session can scrub them from anything it
reports: reprs show ``***`` and error messages never carry a credential.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import TYPE_CHECKING

from .defaults import REDACTED

if TYPE_CHECKING:
    from .session import Response

__all__ = ["Auth", "HeaderAuth", "TokenAuth", "BearerAuth", "redact", "redact_value"]


class Auth:
    """Base strategy: no header, nothing to refresh, no secrets."""

    def apply(self, headers: MutableMapping[str, str]) -> None:
        """Add this credential to a request's headers."""

    def secrets(self) -> Iterable[str]:
        """Every secret string this strategy holds (to be scrubbed from reports)."""
        return ()

    async def refresh(self, response: Response) -> bool:
        """Called once when ``response`` rejected the credential (401/403).

        Return True when a new credential was obtained and the request should be
        sent again; the default cannot refresh.
        """
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class HeaderAuth(Auth):
    """A credential sent in one header, optionally behind a scheme word.

    >>> HeaderAuth("X-Auth-Token", "s3cret")            # Astakos
    HeaderAuth(header='X-Auth-Token', value='***')
    >>> HeaderAuth("Authorization", "s3cret", scheme="Token")  # saltant DRF token
    HeaderAuth(header='Authorization', value='***')
    """

    def __init__(self, header: str, token: str, *, scheme: str | None = None):
        if not isinstance(token, str) or not token:
            raise ValueError("token must be a non-empty string")
        self.header = header
        self.scheme = scheme
        self._token = token
        self._value = f"{scheme} {token}" if scheme else token

    @property
    def token(self) -> str:
        return self._token

    def set_token(self, token: str) -> None:
        self._token = token
        self._value = f"{self.scheme} {token}" if self.scheme else token

    def apply(self, headers: MutableMapping[str, str]) -> None:
        headers[self.header] = self._value

    def secrets(self) -> Iterable[str]:
        return (self._token,)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(header={self.header!r}, value={REDACTED!r})"


def TokenAuth(token: str) -> HeaderAuth:
    """``Authorization: Token <token>`` (Django REST framework tokens)."""
    return HeaderAuth("Authorization", token, scheme="Token")


def BearerAuth(token: str) -> HeaderAuth:
    """``Authorization: Bearer <token>``."""
    return HeaderAuth("Authorization", token, scheme="Bearer")


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of every (non-trivial) secret in ``text`` by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_value(value: object) -> str:
    """How an argument that failed validation is shown when it may be a secret.

    A URL and a token passed the wrong way round is the usual mistake, so a value
    that is not a valid URL is never echoed: only its length and at most its first
    4 characters (fewer for a short value) are shown.

    >>> redact_value("6db2fceae34390b8dd5a62f1e79e2da74b3d0c4f")
    "<40 characters, starting '6db2'>"
    """
    if not isinstance(value, str):
        return f"<a {type(value).__name__}>"
    shown = value[: min(4, len(value) // 4)]
    start = f", starting {shown!r}" if shown else ""
    return f"<{len(value)} character{'' if len(value) == 1 else 's'}{start}>"
