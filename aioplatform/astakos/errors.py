"""Astakos' own errors, each under the core tree so ``except PlatformError`` covers them.

``NoUserName`` and ``NoUUID`` are raised, as astakosclient raises them, when a
catalog lookup does not know the name asked for; ``QuotaLimit`` is the 413 an
issued commission gets when a holding has not enough capacity (or quantity).
"""

from __future__ import annotations

from typing import Any

from ..core.errors import APIError, PlatformError, Unauthorized

__all__ = ["CatalogError", "NoUUID", "NoUserName", "QuotaLimit", "TokenRejected"]


class TokenRejected(Unauthorized):
    """A 401 from the account API. Astakos has two kinds of token — a user's and a service
    (component) token — and each endpoint takes one; its 401 ("Invalid X-Auth-Token") does
    not say which, so ``str()`` adds the kind this endpoint takes (``token_kind``).
    ``.message`` stays the server's."""

    token_kind: str = ""

    def __str__(self) -> str:
        hint = f"; this endpoint takes a {self.token_kind} token" if self.token_kind else ""
        return f"{self.status} {self.message}{hint} ({self.method} {self.url})"


class NoUserName(PlatformError, LookupError):
    """``get_username(uuid)``: Astakos knows no user with this uuid."""

    def __init__(self, uuid: str):
        super().__init__(f"No user name for UUID {uuid!r}")
        self.uuid = uuid


class NoUUID(PlatformError, LookupError):
    """``get_uuid(display_name)``: Astakos knows no user with this name."""

    def __init__(self, display_name: str):
        super().__init__(f"No UUID for user name {display_name!r}")
        self.display_name = display_name


class CatalogError(PlatformError, LookupError):
    """The service catalog has no ``astakos_account`` v1.0 endpoint to discover."""


class QuotaLimit(APIError):
    """413 overLimit: a commission asked for more than a holding has.

    ``kind`` is the server's error name (``NoCapacityError`` for an import over the
    limit, ``NoQuantityError`` for a release below zero), ``resource``, ``holder`` and
    ``source`` name the holding, ``limit``/``usage`` are its figures before the
    provision, ``requested`` the provision's quantity and ``available`` what was left
    (``limit - usage`` for an import, the releasable ``usage`` for a release).
    ``data`` is the fault's whole ``data`` object.
    """

    status_code = 413

    data: dict[str, Any]
    kind: str | None
    resource: str | None
    holder: str | None
    source: str | None
    limit: int | None
    usage: int | None
    requested: int | None
    available: int | None

    @staticmethod
    def render(data: dict[str, Any], fallback: str) -> str:
        """The readable message for an overLimit ``data`` object (astakosclient's wording)."""
        provision = data.get("provision") if isinstance(data.get("provision"), dict) else {}
        assert isinstance(provision, dict)
        resource, quantity = provision.get("resource"), provision.get("quantity")
        limit, usage = data.get("limit"), data.get("usage")
        if not all(isinstance(v, int) for v in (quantity, limit, usage)):
            return fallback
        assert isinstance(quantity, int) and isinstance(limit, int) and isinstance(usage, int)
        if data.get("name") == "NoQuantityError":
            return (
                f"Cannot release resource '{resource}': not enough in use. "
                f"Available: {usage}, Requested: {-quantity}"
            )
        return (
            f"Limit for resource '{resource}' exceeded for your account. "
            f"Available: {limit - usage}, Requested: {quantity}"
        )

    def attach(self, data: dict[str, Any]) -> None:
        """Fill the figures from the fault's ``data`` (tolerating missing or extra keys)."""
        self.data = data
        provision = data.get("provision") if isinstance(data.get("provision"), dict) else {}
        assert isinstance(provision, dict)
        self.kind = data.get("name")
        self.resource = provision.get("resource")
        self.holder = provision.get("holder")
        self.source = provision.get("source")
        self.limit = data.get("limit")
        self.usage = data.get("usage")
        quantity = provision.get("quantity")
        self.requested = -quantity if isinstance(quantity, int) and quantity < 0 else quantity
        self.available = None
        if isinstance(self.limit, int) and isinstance(self.usage, int):
            self.available = self.usage if self.kind == "NoQuantityError" else self.limit - self.usage
