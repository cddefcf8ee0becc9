"""The account root's small calls: resources, feedback, and the ui root's service list (§5.2, 5.7, 5.8)."""

from __future__ import annotations

from typing import Any

from ..core.calls import CallTimeout
from ..core.checks import check_str
from ..core.serde import parse
from .base import AstakosBase
from .models import Resource, converter

__all__ = ["AccountMixin"]


class AccountMixin(AstakosBase):
    async def get_resources(self, *, timeout: CallTimeout = None) -> dict[str, Resource]:
        """Every API-visible resource by name (``service``, ``description``, ``unit`` ...)."""
        response = await self._account("GET", "resources")
        return parse(response, lambda body: converter.structure(body, dict[str, Resource]))

    async def get_services(self, *, timeout: CallTimeout = None) -> list[dict[str, Any]]:
        """The registered services (presentation metadata from the ui root)."""
        response = await self._request("GET", await self.ui_url() + "get_services")
        return parse(response, lambda body: converter.structure(body, list[dict[str, Any]]))

    async def send_feedback(self, message: str, data: str = "", *, timeout: CallTimeout = None) -> None:
        """Send feedback to Astakos; ``data`` may describe the client's state."""
        check_str("message", message)
        if not isinstance(data, str):
            raise TypeError(f"data must be a string, got {type(data).__name__}")
        # A form, labelled as one (astakosclient labelled it octet-stream, which Django ignores).
        await self._account("POST", "feedback", data={"feedback_msg": message, "feedback_data": data})
