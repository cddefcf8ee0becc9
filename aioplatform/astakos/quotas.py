"""Quotas: the caller's, every user's of a component, and projects' (astakos.md §5.3)."""

from __future__ import annotations

from typing import Any

from ..core.calls import CallTimeout
from ..core.serde import parse
from .base import AstakosBase, check_ids, one_of
from .models import ProjectQuota, Quota, converter

__all__ = ["QuotasMixin"]


def _joined(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            raise ValueError(f"{name} must be a non-empty string")
        return value
    ids = check_ids(value, name)
    if not ids:
        raise ValueError(f"{name} must not be empty")
    return ",".join(ids)


class QuotasMixin(AstakosBase):
    async def get_quotas(self, *, timeout: CallTimeout = None) -> dict[str, dict[str, Quota]]:
        """The caller's quotas: ``{project: {resource: Quota}}``."""
        response = await self._account("GET", "quotas")
        return parse(response, lambda body: converter.structure(body, dict[str, dict[str, Quota]]))

    async def service_get_quotas(
        self,
        user: str | list[str] | None = None,
        project_id: str | list[str] | None = None,
        *,
        project: str | list[str] | None = None,
        timeout: CallTimeout = None,
    ) -> dict[str, dict[str, dict[str, Quota]]]:
        """Every user's quotas of the calling component's resources: ``{user: {project: {resource: Quota}}}``.

        ``user`` and ``project_id`` (a uuid or a list) restrict the answer; an unknown
        ``user`` is :class:`~aioplatform.NotFound`. ``project=`` is the same as
        ``project_id=`` (astakosclient 0.19's code names it so).
        """
        project_id = one_of(project_id, project)
        params = {}
        if (u := _joined(user, "user")) is not None:
            params["user"] = u
        if (p := _joined(project_id, "project_id")) is not None:
            params["project"] = p
        response = await self._account("GET", "service_quotas", params=params or None)
        return parse(response, lambda body: converter.structure(body, dict[str, dict[str, dict[str, Quota]]]))

    async def service_get_project_quotas(
        self,
        project_id: str | list[str] | None = None,
        *,
        project: str | list[str] | None = None,
        timeout: CallTimeout = None,
    ) -> dict[str, dict[str, ProjectQuota]]:
        """Projects' quotas of the calling component's resources: ``{project: {resource: ProjectQuota}}``.

        ``project_id`` (a uuid or a list; ``project=`` as in astakosclient 0.19) restricts it.
        """
        p = _joined(one_of(project_id, project), "project_id")
        response = await self._account("GET", "service_project_quotas", params={"project": p} if p else None)
        return parse(response, lambda body: converter.structure(body, dict[str, dict[str, ProjectQuota]]))
