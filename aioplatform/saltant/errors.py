"""saltant's own errors, each under the core tree so ``except PlatformError`` covers them."""

from __future__ import annotations

from typing import Any

from ..core.errors import NotFound, PlatformError, Unauthorized

__all__ = ["AuthenticationFailed", "BadEnvironmentError", "NameNotFound", "WaitTimeout"]


class AuthenticationFailed(Unauthorized):
    """saltant rejected the credential. It answers 403 (not 401) for a bad or missing token."""

    status_code = 403


class NameNotFound(NotFound, IndexError):
    """``get(name=...)`` found no object of that name (saltant-py raised a bare IndexError)."""


class BadEnvironmentError(PlatformError, ValueError):
    """``SaltantClient.from_env()`` is missing a variable; the message names it."""


class WaitTimeout(PlatformError, TimeoutError):
    """A task instance did not finish within ``timeout`` seconds.

    ``uuid`` names it, ``state`` is the last state seen and ``instance`` the last
    instance fetched (None if none was fetched).
    """

    def __init__(self, uuid: str, instance: Any, timeout: float):
        self.uuid = uuid
        self.instance = instance
        self.state: str | None = getattr(instance, "state", None)
        self.timeout = timeout
        super().__init__(f"task instance {uuid} not finished after {timeout}s (last state: {self.state})")

    def __str__(self) -> str:
        return f"task instance {self.uuid} not finished after {self.timeout}s (last state: {self.state})"
