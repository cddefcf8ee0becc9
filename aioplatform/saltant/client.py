"""SaltantClient: saltant's REST API (saltant-py's operations) as coroutines on a pooled session.

>>> async with SaltantClient("https://shahlabjobs.ca/api/", token) as client:
...     instance = await client.container_task_instances.get(uuid)
...     result = await client.container_task_instances.clone_many(uuids, concurrency=50)

Auth is ``Authorization: Token <key>`` (DRF token, what saltant-py sends) or a JWT
login (:meth:`SaltantClient.from_jwt`). Bodies are sent as JSON (the server accepts
JSON, form and multipart; JSON keeps booleans and empty lists unambiguous). DRF error
bodies become the exception's message; saltant answers a bad or missing credential
with **403**, which this client raises as :class:`AuthenticationFailed` (an
``Unauthorized``), keeping :class:`~aioplatform.Forbidden` for real permission denials.
"""

from __future__ import annotations

import ast
import os
from typing import Any

from ..core.auth import Auth, TokenAuth
from ..core.calls import CallTimeout
from ..core.client import BaseClient
from ..core.errors import APIError, ServerError
from ..core.retry import RetryPolicy
from ..core.serde import parse
from ..core.session import Limits, Response, Session, Timeouts
from .auth import PERMISSION_DENIED_PREFIX, JWTAuth
from .errors import AuthenticationFailed, BadEnvironmentError
from .task_instances import ContainerTaskInstanceManager, ExecutableTaskInstanceManager
from .task_queues import TaskQueueManager
from .task_types import ContainerTaskTypeManager, ExecutableTaskTypeManager
from .task_whitelists import TaskWhitelistManager
from .users import UserManager

__all__ = ["SaltantClient", "drf_error_message"]

_NO_AUTH = Auth()
_KNOWN_CLONES_CAP = 100_000  # clone uuids remembered for lost-clone lookups (oldest dropped first)


def _token_answer(body: Any) -> dict[str, Any]:
    """``token/`` and ``token/refresh/`` answers: ``access`` (and ``refresh``) JWT strings."""
    if not isinstance(body, dict):
        raise TypeError("expected a JSON object")
    for key in ("access", "refresh"):
        if key in body and not isinstance(body[key], str):
            raise TypeError(f"{key} must be a string")
    if "access" not in body:
        raise KeyError("access")
    return body


def _unwrap(message: str) -> str:
    """A model-level error saltant shows as the list repr ``"['msg']"`` (str of a Django
    ValidationError raised inside ``validate()``), as its plain message(s)."""
    if message.startswith("[") and message.endswith("]"):
        try:
            value = ast.literal_eval(message)
        except (ValueError, SyntaxError):
            return message
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return "; ".join(value)
    return message


def drf_error_message(body: Any) -> str | None:
    """The readable message of a DRF error body (``detail``, field errors, ``non_field_errors``)."""
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        return "; ".join(str(b) for b in body) or None
    if not isinstance(body, dict) or not body:
        return None
    detail = body.get("detail")
    if isinstance(detail, str):
        return detail
    parts = []
    for field, errors in body.items():
        items = errors if isinstance(errors, list) else [errors]
        text = "; ".join(_unwrap(str(e)) for e in items)
        parts.append(text if field == "non_field_errors" else f"{field}: {text}")
    return "; ".join(parts)


class SaltantClient(BaseClient):
    """An async saltant client. Managers as attributes, as in saltant-py.

    ``base_url`` is the API root (e.g. ``https://host/api/``); ``token`` a DRF token.
    ``session`` shares a pool with other clients (it is then not closed by this one);
    ``retry``, ``timeouts`` and ``limits`` configure the client's own.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        auth: Auth | None = None,
        session: Session | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        limits: Limits | None = None,
    ):
        if token is not None and not isinstance(token, str):
            raise TypeError(f"token must be a string, got {type(token).__name__}")
        if auth is not None and not isinstance(auth, Auth):
            raise TypeError(f"auth must be an aioplatform Auth, got {type(auth).__name__}")
        if token is None and auth is None:
            raise ValueError("token is None: give either token or auth (e.g. JWTAuth)")
        if token is not None and auth is not None:
            raise ValueError("give either token or auth, not both")
        if token is not None and not token:
            raise ValueError("token must be a non-empty string")
        super().__init__(
            base_url,
            auth=TokenAuth(token) if token is not None else auth,
            session=session,
            retry=retry,
            timeouts=timeouts,
            limits=limits,
        )
        self._jwt = auth if isinstance(auth, JWTAuth) else None
        if self._jwt is not None:
            self._jwt.bind(self._post_token)
            self._prepare = self._jwt.ensure  # log in / renew before a request that uses it
        # Who we are (a DRF token does not say; an instance we create or clone does) and
        # the clones we were answered with: what a lost-clone lookup must not claim.
        # Shared with with_options() copies.
        self._username: str | None = self._jwt.username if self._jwt is not None else None
        self._known_clones: dict[str, None] = {}
        self._rebind()

    def _rebind(self) -> None:
        self.container_task_instances = ContainerTaskInstanceManager(self)
        self.executable_task_instances = ExecutableTaskInstanceManager(self)
        self.container_task_types = ContainerTaskTypeManager(self)
        self.executable_task_types = ExecutableTaskTypeManager(self)
        self.task_queues = TaskQueueManager(self)
        self.task_whitelists = TaskWhitelistManager(self)
        self.users = UserManager(self)

    def _learn_username(self, username: str | None) -> None:
        if self._username is None and username:
            self._username = username

    def _remember_clone(self, uuid: str, user: str | None) -> None:
        self._learn_username(user)
        known = self._known_clones
        known[uuid] = None
        if len(known) > _KNOWN_CLONES_CAP:
            del known[next(iter(known))]

    def _knows_clone(self, uuid: str) -> bool:
        return uuid in self._known_clones

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_env(cls, **options: Any) -> SaltantClient:
        """A client from ``SALTANT_API_URL`` and ``SALTANT_AUTH_TOKEN`` (as saltant-py's ``from_env``).

        ``options`` (session, retry, timeouts, limits) are passed on.
        """
        values = {}
        for name in ("SALTANT_API_URL", "SALTANT_AUTH_TOKEN"):
            value = os.environ.get(name)
            if not value:
                raise BadEnvironmentError(f"{name} not defined!")
            values[name] = value
        return cls(values["SALTANT_API_URL"], values["SALTANT_AUTH_TOKEN"], **options)

    @classmethod
    def from_jwt(cls, base_url: str, username: str, password: str, **options: Any) -> SaltantClient:
        """A client that logs in at ``token/`` and keeps its access token fresh via ``token/refresh/``."""
        return cls(base_url, auth=JWTAuth(username, password), **options)

    async def _post_token(self, path: str, body: dict[str, str]) -> Any:
        # Token endpoints need no credential; re-sending a login is harmless.
        response = await BaseClient._request(self, "POST", path, json=body, auth=_NO_AUTH, idempotent=True)
        # The answer holds the tokens: a malformed one is reported without its body.
        return parse(response, _token_answer, secret=True)

    # -- requests ---------------------------------------------------------------------------

    def _error(self, response: Response) -> APIError:
        try:
            body = response.json()
        except ValueError:
            body = None
        message = drf_error_message(body)
        if response.status == 403:
            detail = body.get("detail") if isinstance(body, dict) else None
            if not (isinstance(detail, str) and detail.startswith(PERMISSION_DENIED_PREFIX)):
                return response.error(
                    f"saltant rejected the token: {message or 'authentication failed'}",
                    cls=AuthenticationFailed,
                )
        if response.status == 405 and not response.body.strip():
            # saltant's custom error views answer non-GET server errors and unknown URLs
            # with an empty 405: a server-side failure, not a method problem.
            return response.error("server-side failure (saltant answered an empty 405)", cls=ServerError)
        return response.error(message)

    async def test_authentication(self, *, timeout: CallTimeout = None) -> None:
        """Check the credential with a cheap authenticated read (``GET users/``).

        Raises :class:`AuthenticationFailed` when saltant rejects it.
        """
        await self._request("GET", "users/", params={"page_size": "1"})
