"""aioplatform.agave: Agave / Tapis v2 (agavepy's operations) as an asyncio client."""

from .auth import AgaveTokens, TokenSet
from .client import AgaveClient
from .errors import AuthenticationError, ExecutionWaitTimeout, JobWaitTimeout, MessageOutcomeUnknown
from .models import AgaveModel
from .models.jobs import Job, JobHistoryEvent, JobPermission, JobStatus, JobSummary

__all__ = ["AgaveClient", "AgaveModel", "AgaveTokens", "AuthenticationError", "TokenSet"]
__all__ += ["Job", "JobHistoryEvent", "JobPermission", "JobStatus", "JobSummary", "JobWaitTimeout"]
__all__ += ["ExecutionWaitTimeout", "MessageOutcomeUnknown"]
