"""Agave's own exceptions (all under :class:`aioplatform.PlatformError`)."""

from __future__ import annotations

from ..core.errors import Unauthorized

__all__ = ["AuthenticationError"]


class AuthenticationError(Unauthorized):
    """The token endpoint refused a grant, or the gateway rejected the token and no
    refresh was possible. ``message`` carries the OAuth ``error_description`` (or the
    gateway fault's message); ``error`` the OAuth error code when there is one."""

    error: str | None = None
