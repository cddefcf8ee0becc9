"""Agave's own exceptions (all under :class:`aioplatform.PlatformError`)."""

from __future__ import annotations

from typing import Any

from ..core.errors import PlatformError, Unauthorized

__all__ = ["AuthenticationError", "JobWaitTimeout"]


class AuthenticationError(Unauthorized):
    """The token endpoint refused a grant, or the gateway rejected the token and no
    refresh was possible. ``message`` carries the OAuth ``error_description`` (or the
    gateway fault's message); ``error`` the OAuth error code when there is one."""

    error: str | None = None


class JobWaitTimeout(PlatformError, TimeoutError):
    """A job did not reach a wanted status before the deadline (``jobs.wait_many``).

    ``job_id`` names it, ``status`` is the last status seen (None if no poll answered)
    and ``deadline`` the seconds waited.
    """

    def __init__(self, job_id: str, status: str | None, deadline: float, last: Any = None):
        self.job_id = job_id
        self.status = status
        self.deadline = deadline
        self.last = last
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"job {self.job_id} still {self.status or 'unknown'} after {self.deadline:g}s"
