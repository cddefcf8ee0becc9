"""aioplatform: one asyncio SDK for Agave/Tapis v2, saltant, Synnefo Astakos and flowserv.

A face only: the public names, no logic.
"""

from .core.auth import Auth, BearerAuth, HeaderAuth, TokenAuth
from .core.batch import BatchResult, Breaker, ItemError, gather
from .core.calls import CallTimeout, RawResponse
from .core.client import BaseClient
from .core.errors import (
    APIError,
    BadRequest,
    BatchError,
    Conflict,
    ConnectError,
    Forbidden,
    ItemCancelled,
    NotAttempted,
    NotFound,
    PlatformError,
    RateLimited,
    RequestTimeout,
    ServerError,
    SessionError,
    TransportError,
    Unauthorized,
    UnexpectedResponse,
)
from .core.paging import AsyncPager, Page
from .core.retry import RetryPolicy
from .core.session import Limits, Response, Session, SessionStats, Timeouts

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "AsyncPager",
    "Auth",
    "BadRequest",
    "BaseClient",
    "BatchError",
    "BatchResult",
    "BearerAuth",
    "Breaker",
    "CallTimeout",
    "Conflict",
    "ConnectError",
    "Forbidden",
    "HeaderAuth",
    "ItemCancelled",
    "ItemError",
    "Limits",
    "NotAttempted",
    "NotFound",
    "Page",
    "PlatformError",
    "RateLimited",
    "RawResponse",
    "RequestTimeout",
    "Response",
    "RetryPolicy",
    "ServerError",
    "Session",
    "SessionError",
    "SessionStats",
    "Timeouts",
    "TokenAuth",
    "TransportError",
    "Unauthorized",
    "UnexpectedResponse",
    "__version__",
    "gather",
]
