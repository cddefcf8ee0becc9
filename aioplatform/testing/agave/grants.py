"""What a request to grant a user rights says: the user it is for and the level granted.

Every resource (apps, systems, jobs, metadata) names the user in the URL or the body
and refuses a body naming another user than the URL does (agave.md §6.5: ``username``
may be omitted; if present it must match the path), in one place: ``_target``.
Apps' permissions and systems' roles answer a bad level with the valid ones.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any

from aiohttp import web

from .wire import AgaveError

__all__ = ["grant_of", "grantee"]


def grant_of(request: web.Request, body: Any, key: str, levels: Sequence[str]) -> tuple[str, str]:
    """``(username, LEVEL)`` of an app permission (``key="permission"``) or a system role
    (``key="role"``) request; anything else a 400 saying what is missing."""
    if not isinstance(body, dict):
        raise AgaveError(400, f"The {key} must be a JSON object with 'username' and '{key}'")
    who = _target(request, body)
    if not isinstance(who, str) or not who.strip():
        raise AgaveError(400, f"Please specify the 'username' the {key} is for")
    level = body.get(key)
    if not isinstance(level, str) or level.upper() not in levels:
        raise AgaveError(400, f"Invalid {key}. Valid values are: {', '.join(levels)}")
    return who, level.upper()


def grantee(request: web.Request, body: Any, levels: Container[str], invalid: str = "") -> tuple[str, str]:
    """``(username, PERMISSION)`` of a job or metadata permission request: the user from the
    URL or the body (a body naming another user is a 400), the permission one of ``levels``
    (``invalid`` is added to the 400 that says it is not)."""
    if not isinstance(body, dict):
        raise AgaveError(400, "Permission request must be a JSON object")
    target = _target(request, body)
    if not isinstance(target, str) or not target:
        raise AgaveError(400, "Please specify a username")
    permission = body.get("permission", "")
    if not isinstance(permission, str) or permission.upper() not in levels:
        raise AgaveError(400, f"Invalid permission value {permission!r}{invalid}")
    return target, permission.upper()


def _target(request: web.Request, body: dict[str, Any]) -> Any:
    """The user a grant is for: the URL's, else the body's; a body naming another user than
    the URL is a 400 (an empty or absent ``username`` in the body is no name)."""
    target = request.match_info.get("username")
    named = body.get("username")
    if target is None:
        return named
    if named not in (None, "", target):
        raise AgaveError(400, "The username in the body does not match the one in the URL")
    return target
