"""Identity: the service catalog, authenticate and validate_token (astakos.md §4)."""

from __future__ import annotations

from collections.abc import Iterable

from ..core.auth import HeaderAuth
from ..core.calls import CallTimeout
from ..core.paths import segment
from ..core.serde import parse
from .base import AstakosBase
from .models import AuthInfo, ServiceCatalog

__all__ = ["IdentityMixin"]


class _TokenInPath(HeaderAuth):
    """The client's credential, plus a token that travels in the URL (scrubbed as a secret too)."""

    def __init__(self, token: str, extra: str):
        super().__init__("X-Auth-Token", token)
        self._extra = extra

    def secrets(self) -> Iterable[str]:
        # The URL carries the token percent-encoded: both spellings are scrubbed.
        return (self.token, self._extra, segment("token_id", self._extra))


class IdentityMixin(AstakosBase):
    async def get_endpoints(self, extra: bool = False, *, timeout: CallTimeout = None) -> ServiceCatalog:
        """The service catalog (``POST tokens`` without credentials); also refreshes discovery.

        ``extra`` is accepted for astakosclient 0.19 code (it also looked up the OAuth2
        root, which this client does not use): the whole catalog is returned either way.
        """
        if not isinstance(extra, bool):
            raise TypeError(f"extra must be a bool, got {type(extra).__name__}")
        catalog = await self._fetch_catalog()
        self._discovery.learn(catalog)
        return catalog

    async def authenticate(self, tenant_name: str | None = None, *, timeout: CallTimeout = None) -> AuthInfo:
        """The user behind the client's token, the token's details and the service catalog.

        ``info["access"]["user"]["id"]`` as with astakosclient, or ``info.user.id``.
        """
        if tenant_name is not None and not isinstance(tenant_name, str):
            raise TypeError(f"tenant_name must be a string or None, got {type(tenant_name).__name__}")
        body: dict[str, object] = {"token": {"id": self.token}}
        if tenant_name is not None:
            body["tenantName"] = tenant_name
        # Reading the user's details: re-sending is harmless.
        response = await self._request(
            "POST", self.auth_url + "/tokens", json={"auth": body}, idempotent=True
        )
        # The answer holds the token (``access.token.id``): a malformed one is reported without it.
        info = parse(response, AuthInfo.from_access, secret=True)
        if info.catalog is not None and self._discovery.account is None:
            self._discovery.learn(info.catalog)
        return info

    async def validate_token(
        self, token_id: str, belongs_to: str | None = None, *, timeout: CallTimeout = None
    ) -> AuthInfo:
        """Validate an (OAuth2 access) token; ``belongs_to`` restricts it to a scope."""
        if not isinstance(token_id, str):
            raise TypeError(f"token_id must be a string, got {type(token_id).__name__}")
        try:
            path = f"{self.auth_url}/tokens/{segment('token_id', token_id)}"
        except ValueError:  # the message would quote the value: a token
            raise ValueError("token_id must not be empty, '.' or '..' (or their %-encodings)") from None
        if belongs_to is not None and not isinstance(belongs_to, str):
            raise TypeError(f"belongs_to must be a string or None, got {type(belongs_to).__name__}")
        params = {"belongsTo": belongs_to} if belongs_to is not None else None
        response = await self._request("GET", path, params=params, auth=_TokenInPath(self.token, token_id))
        return parse(response, AuthInfo.from_access, secret=True)
