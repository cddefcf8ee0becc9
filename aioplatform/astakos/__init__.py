"""aioplatform.astakos: the async Synnefo Astakos client (astakosclient's operations as coroutines)."""

from .client import AstakosClient
from .errors import CatalogError, NoUserName, NoUUID, QuotaLimit, TokenRejected
from .models import (
    Application,
    AuthInfo,
    CatalogEndpoint,
    CatalogService,
    CommissionInfo,
    CommissionRequest,
    Fault,
    Membership,
    Project,
    ProjectQuota,
    Provision,
    Quota,
    ResolveResult,
    Resource,
    ResourcePolicy,
    ServiceCatalog,
    SubmittedApplication,
)

__all__ = [
    "Application",
    "AstakosClient",
    "AuthInfo",
    "CatalogEndpoint",
    "CatalogError",
    "CatalogService",
    "CommissionInfo",
    "CommissionRequest",
    "Fault",
    "Membership",
    "NoUUID",
    "NoUserName",
    "Project",
    "ProjectQuota",
    "Provision",
    "QuotaLimit",
    "TokenRejected",
    "Quota",
    "ResolveResult",
    "Resource",
    "ResourcePolicy",
    "ServiceCatalog",
    "SubmittedApplication",
]
