"""The engine under AstakosClient: token auth, cloudFault errors and lazy catalog discovery.

Astakos has three roots. The client is given the identity root (``auth_url``); the
account and ui roots come from the service catalog (``POST {auth_url}/tokens``
without a body), fetched the first time an account or ui call needs them — exactly
once, however many coroutines need them at the same moment (they wait on one lock).
Clients made with ``with_options`` share what was discovered.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ..core.auth import HeaderAuth
from ..core.calls import CallTimeout
from ..core.checks import check_str
from ..core.client import BaseClient, check_http_url
from ..core.errors import APIError, NotFound, PlatformError
from ..core.retry import RetryPolicy
from ..core.serde import parse
from ..core.session import Body, Limits, Response, Session, Timeouts, default_error_message, scrub_url
from .errors import CatalogError, QuotaLimit, TokenRejected
from .models import ServiceCatalog

__all__ = ["AstakosBase", "cloud_fault"]

ACCOUNT_SERVICE = "astakos_account"
ACCOUNT_VERSION = "v1.0"


def cloud_fault(body: Any) -> tuple[str, dict[str, Any]] | None:
    """``(faultName, inner)`` of a cloudFault body ``{"<faultName>": {"code", "message", ...}}``."""
    if isinstance(body, dict) and len(body) == 1:
        ((name, inner),) = body.items()
        if isinstance(inner, dict) and ("message" in inner or "code" in inner):
            return name, inner
    return None


class _Discovery:
    """The roots found in the catalog; shared by a client and its ``with_options`` copies."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.account: str | None = None
        self.ui: str | None = None
        self.catalog: ServiceCatalog | None = None

    def learn(self, catalog: ServiceCatalog) -> None:
        endpoint = catalog.endpoint(ACCOUNT_SERVICE, ACCOUNT_VERSION)
        if endpoint is None or not endpoint.public_url:
            raise CatalogError(f"the service catalog has no {ACCOUNT_SERVICE} {ACCOUNT_VERSION} endpoint")
        self.catalog = catalog
        self.ui = (endpoint.ui_url or "").rstrip("/") + "/" if endpoint.ui_url else None
        self.account = endpoint.public_url.rstrip("/") + "/"


# The account API's endpoints that take a service (component) token; the others a user's.
_SERVICE_PATHS = re.compile(
    r"/(service/user_catalogs|service_quotas|service_project_quotas|commissions)(/|\?|$)"
)


def _token_kind(url: str) -> str | None:
    """Which token an account endpoint takes, from its URL (None: not an account endpoint)."""
    path = urlsplit(url).path
    if "/tokens" in path:
        return None
    return "service (component)" if _SERVICE_PATHS.search(path) else "user"


class AstakosBase(BaseClient):
    """Auth, errors and roots; the operations live in the mixins that AstakosClient combines."""

    def __init__(
        self,
        token: str,
        auth_url: str,
        *,
        session: Session | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        limits: Limits | None = None,
        logger: logging.Logger | None = None,
    ):
        check_str("token", token)
        check_http_url("auth_url", auth_url)
        if logger is not None and not isinstance(logger, logging.Logger):
            raise TypeError(f"logger must be a logging.Logger, got {type(logger).__name__}")
        super().__init__(
            auth_url,
            auth=HeaderAuth("X-Auth-Token", token),
            session=session,
            retry=retry,
            timeouts=timeouts,
            limits=limits,
        )
        self.auth_url = auth_url.rstrip("/")
        self.logger = logger or logging.getLogger("aioplatform.astakos")
        self._discovery = _Discovery()

    @property
    def token(self) -> str:
        assert isinstance(self._auth, HeaderAuth)
        return self._auth.token

    # -- requests -----------------------------------------------------------------------------------

    async def _request(self, method: str, path: str, **options: Any) -> Response:
        # astakosclient logs each request to the logger it is given; so does this client, at
        # DEBUG, with every secret (the token, a token in the path) scrubbed from the URL.
        if not self.logger.isEnabledFor(logging.DEBUG):
            return await super()._request(method, path, **options)
        auth = options.get("auth") or self._auth
        shown = scrub_url(self._url(path), tuple(auth.secrets()) if auth is not None else ())
        self.logger.debug("astakos: %s %s", method, shown)
        try:
            response = await super()._request(method, path, **options)
        except PlatformError as exc:
            self.logger.debug("astakos: %s %s failed: %s: %s", method, shown, type(exc).__name__, exc)
            raise
        self.logger.debug("astakos: %s %s -> %d", method, shown, response.status)
        return response

    # -- errors -------------------------------------------------------------------------------------

    def _error(self, response: Response) -> APIError:
        try:
            body = response.json()
        except ValueError:
            body = None
        fault = cloud_fault(body)
        message = str(fault[1].get("message") or "") if fault else ""
        details = fault[1].get("details") if fault else None
        if isinstance(details, str) and details and details != message:
            message = f"{message} ({details})" if message else details
        if response.status == 413:
            data = fault[1].get("data") if fault else None
            data = data if isinstance(data, dict) else {}
            error = response.error(QuotaLimit.render(data, message or "over limit"), cls=QuotaLimit)
            assert isinstance(error, QuotaLimit)
            error.attach(data)
            return error
        if response.status == 404 and not response.body:
            return response.error("Not Found", cls=NotFound)
        text = message or default_error_message(response)
        kind = _token_kind(response.url) if response.status == 401 else None
        if kind is not None:
            # Astakos has two kinds of token and each endpoint takes one; its 401 does not say which.
            rejected = response.error(text, cls=TokenRejected)
            assert isinstance(rejected, TokenRejected)
            rejected.token_kind = kind
            return rejected
        return response.error(text)

    # -- discovery ----------------------------------------------------------------------------------

    async def _fetch_catalog(self) -> ServiceCatalog:
        # POST without a body only reads the public catalog: re-sending it is harmless.
        response = await self._request("POST", self.auth_url + "/tokens", idempotent=True)
        return parse(response, ServiceCatalog.from_access)

    async def _roots(self) -> _Discovery:
        found = self._discovery
        if found.account is None:
            async with found.lock:
                if found.account is None:
                    found.learn(await self._fetch_catalog())
                    self.logger.debug("astakos: account root %s, ui root %s", found.account, found.ui)
        return found

    async def account_url(self, *, timeout: CallTimeout = None) -> str:
        """The account root from the service catalog (discovered on first use)."""
        root = (await self._roots()).account
        assert root is not None
        return root

    async def ui_url(self, *, timeout: CallTimeout = None) -> str:
        """The ui root (``SNF:uiURL``) from the service catalog."""
        root = (await self._roots()).ui
        if root is None:
            raise CatalogError(f"the {ACCOUNT_SERVICE} endpoint has no SNF:uiURL")
        return root

    async def _account(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        data: Body = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Response:
        root = await self.account_url()
        return await self._request(
            method, root + path, params=params, json=json, data=data, headers=headers, idempotent=idempotent
        )


def check_ids(values: Any, name: str, kind: type = str) -> list[Any]:
    """A list of ids from an iterable (a lone string is refused: it is iterable by character)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a list of {kind.__name__}, got {type(values).__name__}")
    result = list(values)
    for value in result:
        if not isinstance(value, kind) or isinstance(value, bool):
            raise TypeError(f"{name} must contain only {kind.__name__} values, got {value!r}")
    return result


def one_of(project_id: Any, project: Any) -> Any:
    """``project_id`` (astakosclient's documented name) or ``project`` (its 0.19 code's name)."""
    if project is not None:
        if project_id is not None:
            raise TypeError("give project_id or project (the same argument), not both")
        return project
    return project_id
