"""FlowservClient: rob-flask's REST API (flowserv's user and group services) as coroutines.

>>> async with FlowservClient(base_url) as client:
...     user = await client.users.login("alice@example.org", "secret")
...     async for group in client.groups.list(workflow_id):
...         print(group.name)

Auth is flowserv's custom header ``api_key: <token>``; :meth:`Users.login` stores the
token it receives (and :meth:`Users.logout` forgets it), or pass ``token=`` to start
with one. flowserv answers ``{"message": ...}`` error bodies, 403 for every auth
failure (:class:`NotLoggedIn` vs :class:`NotAuthorized` by message) and Flask's
HTML pages for routes it does not serve.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from ..core.auth import Auth
from ..core.calls import CallTimeout
from ..core.client import BaseClient
from ..core.defaults import REDACTED
from ..core.errors import APIError
from ..core.retry import RetryPolicy
from ..core.serde import structure
from ..core.session import Limits, Response, Session, Timeouts, default_error_message
from .errors import NotAuthorized, NotLoggedIn
from .groups import Groups
from .models import ServiceDescriptor, converter
from .users import Users
from .workflows import Workflows

__all__ = ["FlowservClient", "ApiKeyAuth", "HEADER_TOKEN", "DEFAULT_API_PATH"]

HEADER_TOKEN = "api_key"
DEFAULT_API_PATH = "/flowserv/api/v1"
_NOT_LOGGED_IN = "not logged in"
_HTML_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class ApiKeyAuth(Auth):
    """flowserv's ``api_key`` header; the token may be absent (then no header is sent).

    The token is mutable so that a login and a logout change what every later call
    (and every :meth:`~FlowservClient.with_options` copy) sends.
    """

    def __init__(self, token: str | None = None):
        if token is not None and not isinstance(token, str):
            raise TypeError(f"token must be a string or None, got {type(token).__name__}")
        if token is not None and not token:
            raise ValueError("token must be a non-empty string or None")
        self.token = token
        # The id of the user whose login issued the token (None if it came from elsewhere).
        self.user_id: str | None = None

    def apply(self, headers: MutableMapping[str, str]) -> None:
        if self.token:
            headers[HEADER_TOKEN] = self.token

    def secrets(self) -> Iterable[str]:
        return (self.token,) if self.token else ()

    def __repr__(self) -> str:
        return f"ApiKeyAuth(token={REDACTED if self.token else None!r})"


def flowserv_error_message(response: Response) -> str:
    """The message of a flowserv error body: ``message`` or ``error`` key, or the HTML page's title."""
    content_type = response.headers.get("Content-Type", "")
    if content_type.startswith("text/html"):
        match = _HTML_TITLE.search(response.text)
        title = match.group(1).strip() if match else f"{response.status} {response.reason}"
        return f"{title} ({response.method} is not served at this URL)"
    return default_error_message(response)


class FlowservClient(BaseClient):
    """An async flowserv client: ``users``, ``groups`` (with their files) and ``workflows``.

    ``base_url`` is the API root, e.g. ``http://localhost:5000/flowserv/api/v1`` (a bare
    ``http://host:port`` gets the default path ``/flowserv/api/v1``);
    ``token`` an API key from an earlier login (optional). ``session`` shares a pool
    with other clients (it is then not closed by this one); ``retry``, ``timeouts``
    and ``limits`` configure the client's own.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        session: Session | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        limits: Limits | None = None,
    ):
        self._api_key = ApiKeyAuth(token)
        if isinstance(base_url, str) and urlsplit(base_url).path in ("", "/"):
            base_url = base_url.rstrip("/") + DEFAULT_API_PATH  # a bare host: rob-flask's default root
        super().__init__(
            base_url, auth=self._api_key, session=session, retry=retry, timeouts=timeouts, limits=limits
        )
        self._rebind()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **options: Any) -> FlowservClient:
        """A client configured as flowserv's own remote client is: from its environment variables.

        The API root is built like ``flowserv.config.API_URL``: ``FLOWSERV_API_PROTOCOL``
        (default ``http``), ``FLOWSERV_API_HOST`` (``localhost``), ``FLOWSERV_API_PORT``
        (``5000``, left out when 80) and ``FLOWSERV_API_PATH`` (``/flowserv/api/v1``); the
        token is ``FLOWSERV_ACCESS_TOKEN`` if set. ``env`` defaults to ``os.environ``;
        ``options`` (session, retry, timeouts, limits) are passed on.
        """
        env = os.environ if env is None else env
        protocol = env.get("FLOWSERV_API_PROTOCOL") or "http"
        host = env.get("FLOWSERV_API_HOST") or "localhost"
        raw_port = env.get("FLOWSERV_API_PORT") or "5000"
        try:
            port = int(raw_port)
        except ValueError:
            raise ValueError(f"FLOWSERV_API_PORT must be an integer, got {raw_port!r}") from None
        if not 0 < port < 65536:
            raise ValueError(f"FLOWSERV_API_PORT must be a port number (1-65535), got {port}")
        path = env.get("FLOWSERV_API_PATH") or DEFAULT_API_PATH
        if not path.startswith("/"):
            path = "/" + path
        netloc = host if port == 80 else f"{host}:{port}"
        token = env.get("FLOWSERV_ACCESS_TOKEN") or None
        return cls(f"{protocol}://{netloc}{path}", token=token, **options)

    def _rebind(self) -> None:
        self.users = Users(self)
        self.groups = Groups(self)
        self.workflows = Workflows(self)

    @property
    def token(self) -> str | None:
        """The API key sent with every request (set by login, cleared by logout)."""
        return self._api_key.token

    @token.setter
    def token(self, value: str | None) -> None:
        if value is not None and not isinstance(value, str):
            raise TypeError(f"token must be a string or None, got {type(value).__name__}")
        if value is not None and not value:
            raise ValueError("token must be a non-empty string or None")
        self._api_key.token = value
        self._api_key.user_id = None

    def _logged_in(self, token: str | None, user_id: str | None) -> None:
        """Keep a login's key and whose it is (shared with every ``with_options`` copy)."""
        self.token = token
        self._api_key.user_id = user_id if token else None

    def _error(self, response: Response) -> APIError:
        message = flowserv_error_message(response)
        cls: type[APIError] | None = None
        if response.status == 403:
            cls = NotLoggedIn if message == _NOT_LOGGED_IN else NotAuthorized
        return response.error(message, cls=cls)

    async def describe(self, *, timeout: CallTimeout = None) -> ServiceDescriptor:
        """The service descriptor (``GET /``): name, version, url, routes (and username if
        logged in), as a :class:`~aioplatform.flowserv.models.ServiceDescriptor` (which also
        answers ``descriptor["version"]`` as the dict it used to be)."""
        response = await self._request("GET", "")
        body = structure(response, converter, dict[str, Any])
        descriptor = structure(response, converter, ServiceDescriptor)
        return attrs.evolve(descriptor, body=body)
