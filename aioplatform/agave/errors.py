"""Agave's own exceptions (all under :class:`aioplatform.PlatformError`)."""

from __future__ import annotations

from typing import Any

from ..core.errors import PlatformError, Unauthorized

__all__ = ["AuthenticationError", "ExecutionWaitTimeout", "JobWaitTimeout", "MessageOutcomeUnknown"]


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


class ExecutionWaitTimeout(PlatformError, TimeoutError):
    """An actor execution did not finish (COMPLETE or ERROR) before the deadline
    (``actors.wait_executions``). ``status`` is the last status seen (None if no poll
    answered), ``last`` the last :class:`~aioplatform.agave.models.Execution` read."""

    def __init__(
        self, actor_id: str, execution_id: str, status: str | None, deadline: float, last: Any = None
    ):
        self.actor_id = actor_id
        self.execution_id = execution_id
        self.status = status
        self.deadline = deadline
        self.last = last
        super().__init__(str(self))

    def __str__(self) -> str:
        return (
            f"execution {self.execution_id} of actor {self.actor_id} still {self.status or 'unknown'} "
            f"after {self.deadline:g}s"
        )


class MessageOutcomeUnknown(PlatformError):
    """A message POST was sent but its answer was lost (``actors.send_many``): the server
    may or may not have started an execution for it, and Abaco keeps no message content
    to tell which. Never re-sent (that could run the message twice).

    ``cause`` is the failure; ``orphans`` the ids of executions of the actor that appeared
    during the batch and that no outcome of the batch holds (None if they could not be
    listed): the executions that lost answers may have started, to check by hand.
    """

    def __init__(self, actor_id: str, cause: BaseException, orphans: tuple[str, ...] | None = None):
        self.actor_id = actor_id
        self.cause = cause
        self.orphans = orphans
        super().__init__(str(self))

    def __str__(self) -> str:
        found = "" if self.orphans is None else f"; {len(self.orphans)} unclaimed execution(s) appeared"
        return f"message to actor {self.actor_id} may or may not have run (answer lost: {self.cause}){found}"
