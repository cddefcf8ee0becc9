"""Workflows (benchmarks): listed to find the ids that groups are created for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.calls import CallTimeout
from ..core.paging import AsyncPager
from ..core.serde import structure
from .models import Workflow, converter
from .users import id_segment

if TYPE_CHECKING:
    from .client import FlowservClient

__all__ = ["Workflows"]


class Workflows:
    """``client.workflows``: ``list()`` and ``get(workflow_id)``."""

    def __init__(self, client: FlowservClient):
        self._client = client

    def list(self) -> AsyncPager[Workflow]:
        """Every workflow the server offers (one unpaginated listing)."""

        async def fetch() -> list[Workflow]:
            response = await self._client._request("GET", "workflows")
            return structure(response, converter, list[Workflow], key="workflows")

        return AsyncPager.single(fetch)

    async def get(self, workflow_id: str, *, timeout: CallTimeout = None) -> Workflow:
        """One workflow by id (``NotFound`` if unknown)."""
        wid = id_segment("workflow_id", workflow_id)
        response = await self._client._request("GET", f"workflows/{wid}")
        return structure(response, converter, Workflow)
