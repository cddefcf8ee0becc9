"""flowserv's own errors, under the core tree so ``except PlatformError`` covers them.

rob-flask answers every authentication or permission failure with **403** and tells
the two apart only in the body: ``{"message": "not logged in"}`` (no or unusable
``api_key``) versus ``{"message": "not authorized"}`` (logged in, or not, but not a
member of the group / not allowed to act).
"""

from __future__ import annotations

from ..core.errors import Forbidden, NotFound, Unauthorized

__all__ = ["LoginFailed", "NotLoggedIn", "NotAuthorized"]


class LoginFailed(NotFound, Unauthorized):
    """A login was refused. flowserv answers an unknown user, an inactive one and a wrong
    password alike (404 "unknown user ..."), so ``str()`` says all three (``.message`` stays
    the server's); it is a ``NotFound`` (what it used to be) and an ``Unauthorized`` (what
    it means)."""

    status_code = 404

    def __str__(self) -> str:
        return (
            f"{self.status} login failed: unknown user, inactive user or wrong password "
            f"(flowserv answers all three alike: {self.message}) ({self.method} {self.url})"
        )


class NotLoggedIn(Unauthorized):
    """403 "not logged in": the request carried no ``api_key``, or one that is unknown or expired."""

    status_code = 403


class NotAuthorized(Forbidden):
    """403 "not authorized": the caller is not a member of the group (or has no valid login for it)."""
