"""Projects, their applications, and memberships (astakos.md §5.5-5.6; user token).

Listings are returned whole by the server; they come as an
:class:`~aioplatform.AsyncPager` like every listing of aioplatform::

    projects = await client.get_projects(mode="member").to_list()
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ..core.calls import CallTimeout
from ..core.checks import check_choice, check_int, check_str
from ..core.paging import AsyncPager
from ..core.paths import check_segment, segment
from ..core.serde import parse
from .base import AstakosBase, one_of
from .models import Membership, Project, SubmittedApplication

__all__ = ["ProjectsMixin"]

PROJECT_ACTIONS = ("suspend", "unsuspend", "terminate", "reinstate")
APPLICATION_ACTIONS = ("approve", "deny", "dismiss", "cancel")
MEMBERSHIP_ACTIONS = ("accept", "reject", "cancel", "leave", "remove")


def _project_id(value: Any) -> str:
    """A project id (its uuid, or its integer id) as one path segment: core.paths' rule, and
    Astakos's own on top. Django decodes ``%2F`` before routing, so an id with ``/`` would
    reach another view (``memberships/5`` the membership 5), and ``memberships`` alone is
    the membership listing's path."""
    text = check_segment("project_id", value)
    if "/" in text or text == "memberships":
        raise ValueError(
            f"project_id must be a project's uuid or id (no '/', not 'memberships'), got {value!r}"
        )
    return segment("project_id", text)


def _check_int(value: Any, name: str) -> int:
    return check_int(name, value)


def _specs(specs: Any) -> dict[str, Any]:
    if not isinstance(specs, Mapping):
        raise TypeError(f"specs must be a mapping, got {type(specs).__name__}")
    body = dict(specs)
    for key in ("start_date", "end_date"):
        value = body.get(key)
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time(), tzinfo=dt.timezone.utc)  # midnight UTC
        if isinstance(value, dt.datetime):
            body[key] = (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).isoformat()
    return body


class ProjectsMixin(AstakosBase):
    def get_projects(
        self,
        name: str | None = None,
        state: str | None = None,
        owner: str | None = None,
        mode: str | None = None,
    ) -> AsyncPager[Project]:
        """Accessible projects, filtered by ``name``, ``state``, ``owner`` (uuid) and ``mode``.

        ``mode``: ``"default"``/``"related"`` (owned or member of), ``"member"``, ``"active"``.
        """
        params = {k: v for k, v in (("name", name), ("state", state), ("owner", owner), ("mode", mode)) if v}
        for key, value in params.items():
            if not isinstance(value, str):
                raise TypeError(f"{key} must be a string or None, got {value!r}")

        async def fetch() -> list[Project]:
            response = await self._account("GET", "projects", params=params or None)
            return parse(response, lambda body: [Project.parse(p) for p in body])

        return AsyncPager.single(fetch)

    async def get_project(self, project_id: str, *, timeout: CallTimeout = None) -> Project:
        """One project, if the caller may see it (Forbidden otherwise)."""
        response = await self._account("GET", f"projects/{_project_id(project_id)}")
        return parse(response, Project.parse)

    async def create_project(
        self, specs: Mapping[str, Any], *, timeout: CallTimeout = None
    ) -> SubmittedApplication:
        """Apply for a new project (``name``, ``end_date`` required); it starts uninitialized.

        Returns the project's uuid (``.id``) and the application's id (``.application``).
        """
        body = _specs(specs)
        if not body.get("name") or not body.get("end_date"):
            raise ValueError("specs must include 'name' and 'end_date'")
        response = await self._account("POST", "projects", json=body)
        return parse(response, SubmittedApplication.parse)

    async def modify_project(
        self, project_id: str, specs: Mapping[str, Any], *, timeout: CallTimeout = None
    ) -> SubmittedApplication:
        """Apply for a change of a project; it takes effect when the application is approved."""
        body = _specs(specs)
        path = f"projects/{_project_id(project_id)}"
        # A PUT, but not idempotent: each one files a new application (replacing the pending
        # one), so it is retried only under the POST rules.
        response = await self._account("PUT", path, json=body, idempotent=False)
        return parse(response, SubmittedApplication.parse)

    async def project_action(
        self, project_id: str, action: str, reason: str = "", *, timeout: CallTimeout = None
    ) -> None:
        """``suspend``, ``unsuspend``, ``terminate`` or ``reinstate`` a project (project admins)."""
        check_choice("action", action, PROJECT_ACTIONS)
        if not isinstance(reason, str):
            raise TypeError("reason must be a string")
        path = f"projects/{_project_id(project_id)}/action"
        await self._account("POST", path, json={action: {"reason": reason}})

    async def application_action(
        self, project_id: str, app_id: int, action: str, reason: str = "", *, timeout: CallTimeout = None
    ) -> None:
        """Act on the project's last application: ``approve``/``deny`` (admins), ``dismiss``/``cancel``."""
        check_choice("action", action, APPLICATION_ACTIONS)
        _check_int(app_id, "app_id")
        if not isinstance(reason, str):
            raise TypeError("reason must be a string")
        path = f"projects/{_project_id(project_id)}/action"
        # astakosclient sent the reason as "reasons", which the server ignores; "reason" is read.
        await self._account("POST", path, json={action: {"reason": reason, "app_id": app_id}})

    def get_memberships(
        self, project_id: str | None = None, *, project: str | None = None
    ) -> AsyncPager[Membership]:
        """The caller's memberships and those of projects the caller owns (one project's if given).

        ``project=`` is the same as ``project_id=`` (astakosclient 0.19's code names it so).
        """
        project_id = one_of(project_id, project)
        params = {"project": check_segment("project_id", project_id)} if project_id is not None else None

        async def fetch() -> list[Membership]:
            response = await self._account("GET", "projects/memberships", params=params)
            return parse(response, lambda body: [Membership.parse(m) for m in body])

        return AsyncPager.single(fetch)

    async def get_membership(self, memb_id: int, *, timeout: CallTimeout = None) -> Membership:
        """One membership (the member, the project owner or an admin may see it)."""
        path = f"projects/memberships/{segment('memb_id', _check_int(memb_id, 'memb_id'))}"
        return parse(await self._account("GET", path), Membership.parse)

    async def membership_action(
        self, memb_id: int, action: str, reason: str = "", *, timeout: CallTimeout = None
    ) -> None:
        """``accept``, ``reject``, ``remove`` (project owner), ``cancel``, ``leave`` (the member)."""
        check_choice("action", action, MEMBERSHIP_ACTIONS)
        if not isinstance(reason, str):
            raise TypeError("reason must be a string")
        path = f"projects/memberships/{segment('memb_id', _check_int(memb_id, 'memb_id'))}/action"
        await self._account("POST", path, json={action: reason})

    async def join_project(self, project_id: str, *, timeout: CallTimeout = None) -> int:
        """Ask to join a project (accepted at once if its join policy is ``auto``); the membership id."""
        body = {"join": {"project": check_segment("project_id", project_id)}}
        response = await self._account("POST", "projects/memberships", json=body)
        return parse(response, int, key="id")

    async def enroll_member(self, project_id: str, email: str, *, timeout: CallTimeout = None) -> int:
        """Enroll the user ``email`` in a project you own (accepted at once); the membership id."""
        check_str("email", email)
        body = {"enroll": {"project": check_segment("project_id", project_id), "user": email}}
        response = await self._account("POST", "projects/memberships", json=body)
        return parse(response, int, key="id")
