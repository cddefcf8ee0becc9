"""flowserv's own errors, under the core tree so ``except PlatformError`` covers them.

rob-flask answers every authentication or permission failure with **403** and tells
the two apart only in the body: ``{"message": "not logged in"}`` (no or unusable
``api_key``) versus ``{"message": "not authorized"}`` (logged in, or not, but not a
member of the group / not allowed to act).
"""

from __future__ import annotations

from ..core.errors import Forbidden, Unauthorized

__all__ = ["NotLoggedIn", "NotAuthorized"]


class NotLoggedIn(Unauthorized):
    """403 "not logged in": the request carried no ``api_key``, or one that is unknown or expired."""

    status_code = 403


class NotAuthorized(Forbidden):
    """403 "not authorized": the caller is not a member of the group (or has no valid login for it)."""
