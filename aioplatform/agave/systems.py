"""``client.systems``: agavepy's 21 systems operations as coroutines (agave.md §6.8).

>>> system = await agave.systems.add({"id": "my-storage", "name": "My storage",
...                                   "type": "STORAGE", "storage": {...}})
>>> await agave.systems.set_default("my-storage")
>>> async for summary in agave.systems.list(type="STORAGE"):
...     print(summary.id, summary.default)

``manage`` takes agavepy's body (``{"action": "CLONE", "id": "copy"}``); each action is
also a method of its own (``enable``, ``publish``, ``set_default``, ``clone`` ...).
Credentials are write-only: the server lists their kind, never their secrets.

Retries: granting a role or storing a credential sets a value, so those POSTs are re-sent
like idempotent calls; ``add``, ``update`` (it bumps the revision) and ``clone`` are not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..core.batch import BatchResult, Breaker, OutcomeCallback, ProgressCallback
from ..core.calls import CallTimeout
from ..core.defaults import CONCURRENCY
from ..core.paging import AsyncPager
from ..core.paths import segment
from .grants import grant_body, grant_many
from .models.systems import System, SystemCredential, SystemRole, SystemSummary

if TYPE_CHECKING:
    from .client import AgaveClient

__all__ = ["ACTIONS", "ROLES", "Systems"]

ROOT = "systems/v2"
ACTIONS = (
    "ENABLE", "DISABLE", "PUBLISH", "UNPUBLISH", "SETDEFAULT", "UNSETDEFAULT",
    "SETGLOBALDEFAULT", "UNSETGLOBALDEFAULT", "CLONE",
)  # fmt: skip
ROLES = ("NONE", "GUEST", "USER", "PUBLISHER", "ADMIN", "OWNER")
SYSTEM_TYPES = ("STORAGE", "EXECUTION")


def _system(system_id: Any) -> str:
    return f"{ROOT}/{segment('system_id', system_id)}"


def json_object(name: str, value: Any) -> dict[str, Any]:
    """A JSON body given as a mapping (a copy); anything else a TypeError naming ``name``."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping (the JSON object to send), got {type(value).__name__}")
    return dict(value)


def _text(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


def query_flag(name: str, value: Any) -> str | None:
    """A boolean query parameter as ``true``/``false`` (None: not sent); anything else a TypeError."""
    if value is None:
        return None
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True, False or None, got {type(value).__name__}")
    return "true" if value else "false"


def listing_params(search: Mapping[str, Any] | None, filter: str | Sequence[str] | None) -> dict[str, str]:
    """Search terms passed through (``{"status.eq": "UP"}``) and the ``filter`` projection."""
    params: dict[str, str] = {}
    if search is not None:
        if not isinstance(search, Mapping):
            raise TypeError(f"search must be a mapping of terms to values, got {type(search).__name__}")
        for key, value in search.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"search keys must be non-empty strings, got {key!r}")
            if key.lower() in ("limit", "offset"):
                raise ValueError("search must not set limit or offset: pass them as arguments")
            params[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if filter is not None:
        fields = [filter] if isinstance(filter, str) else list(filter)
        if not fields or not all(isinstance(f, str) and f.strip() for f in fields):
            raise ValueError("filter must be a field name or a list of field names")
        params["filter"] = ",".join(f.strip() for f in fields)
    return params


class Systems:
    """``client.systems``: storage and execution systems, their roles and credentials."""

    def __init__(self, client: AgaveClient):
        self._client = client

    # -- systems ---------------------------------------------------------------------------

    def list(
        self,
        *,
        type: str | None = None,
        default: bool | None = None,
        public: bool | None = None,
        search: Mapping[str, Any] | None = None,
        filter: str | Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> AsyncPager[SystemSummary]:
        """The systems the caller can see: ``type`` STORAGE or EXECUTION, ``default`` only
        (not) the caller's defaults, ``public`` only (not) public ones; ``search`` terms
        pass through (``{"status.eq": "UP"}``)."""
        params = listing_params(search, filter)
        if type is not None:
            params["type"] = _text("type", type).upper()
        for name, value in (("default", default), ("public", public)):
            flag = query_flag(name, value)
            if flag is not None:
                params[name] = flag
        return self._client._list(f"{ROOT}/", SystemSummary, params=params, limit=limit, offset=offset)

    async def add(self, body: Mapping[str, Any], *, timeout: CallTimeout = None) -> System:
        """Register a system from a SystemRequest (``id``, ``name``, ``type``, ``storage`` ...;
        execution systems also ``executionType``, ``scheduler``, ``login``, ``queues``)."""
        return await self._client._model("POST", f"{ROOT}/", System, json=json_object("body", body))

    async def get(self, system_id: str, *, timeout: CallTimeout = None) -> System:
        return await self._client._model("GET", _system(system_id), System)

    async def update(self, system_id: str, body: Mapping[str, Any], *, timeout: CallTimeout = None) -> System:
        """Replace the system's description with ``body`` (a full SystemRequest)."""
        path = _system(system_id)
        return await self._client._model("POST", path, System, json=json_object("body", body))

    async def delete(self, system_id: str, *, timeout: CallTimeout = None) -> None:
        await self._client._call("DELETE", _system(system_id))

    async def manage(self, system_id: str, body: Mapping[str, Any], *, timeout: CallTimeout = None) -> System:
        """agavepy's ``manage``: ``body`` is ``{"action": ...}`` (case-insensitive; CLONE
        also ``"id"``, the new system's id). Answers the system acted on (the clone for CLONE)."""
        path = _system(system_id)
        payload = json_object("body", body)
        action = payload.get("action")
        if not isinstance(action, str) or action.upper() not in ACTIONS:
            raise ValueError(f"body['action'] must be one of {', '.join(ACTIONS)}, got {action!r}")
        if action.upper() == "CLONE":
            segment("body['id']", payload.get("id"))
        # A PUT, but CLONE creates: only the other actions (setting a state) may be re-sent.
        idempotent = action.upper() != "CLONE"
        return await self._client._model("PUT", path, System, json=payload, idempotent=idempotent)

    async def enable(self, system_id: str, *, timeout: CallTimeout = None) -> System:
        return await self.manage(system_id, {"action": "ENABLE"})

    async def disable(self, system_id: str, *, timeout: CallTimeout = None) -> System:
        return await self.manage(system_id, {"action": "DISABLE"})

    async def publish(self, system_id: str, *, timeout: CallTimeout = None) -> System:
        """Make the system public (tenant admins only)."""
        return await self.manage(system_id, {"action": "PUBLISH"})

    async def unpublish(self, system_id: str, *, timeout: CallTimeout = None) -> System:
        return await self.manage(system_id, {"action": "UNPUBLISH"})

    async def set_default(self, system_id: str, *, timeout: CallTimeout = None) -> System:
        """Make the system the caller's default of its type (files "on the default system")."""
        return await self.manage(system_id, {"action": "SETDEFAULT"})

    async def unset_default(self, system_id: str, *, timeout: CallTimeout = None) -> System:
        return await self.manage(system_id, {"action": "UNSETDEFAULT"})

    async def set_global_default(self, system_id: str, *, timeout: CallTimeout = None) -> System:
        """Make a public system every user's default of its type (tenant admins only)."""
        return await self.manage(system_id, {"action": "SETGLOBALDEFAULT"})

    async def unset_global_default(self, system_id: str, *, timeout: CallTimeout = None) -> System:
        return await self.manage(system_id, {"action": "UNSETGLOBALDEFAULT"})

    async def clone(self, system_id: str, new_id: str, *, timeout: CallTimeout = None) -> System:
        """A private copy of the system under ``new_id``, owned by the caller (no credentials)."""
        segment("new_id", new_id)
        return await self.manage(system_id, {"action": "CLONE", "id": new_id})

    # -- roles -----------------------------------------------------------------------------

    def list_roles(self, system_id: str, *, limit: int = 100, offset: int = 0) -> AsyncPager[SystemRole]:
        """Who holds which role on the system (the owner first, as OWNER)."""
        path = f"{_system(system_id)}/roles"
        return self._client._list(path, SystemRole, limit=limit, offset=offset)

    async def update_role(
        self, system_id: str, username: str, role: str, *, timeout: CallTimeout = None
    ) -> SystemRole:
        """Grant ``username`` a role (GUEST, USER, PUBLISHER, ADMIN); NONE revokes it."""
        path = f"{_system(system_id)}/roles"
        return await self._client._model(
            "POST", path, SystemRole, json=_role(username, role), idempotent=True
        )

    async def update_roles_many(
        self,
        system_id: str,
        roles: Mapping[str, str],
        *,
        concurrency: int = CONCURRENCY,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[SystemRole]:
        """Grant many users their roles (``{"alice": "USER", "bob": "NONE"}``) at most
        ``concurrency`` at a time: one outcome per user, in the mapping's order. Every
        name and role is checked before the first request.

        Batch options as for :func:`~aioplatform.gather`: ``on_progress(done, total,
        outcome)`` and ``on_outcome(index, (username, level), outcome)`` hear each user once
        as its outcome is final; ``fail_fast`` stops at the first failure; ``breaker`` (a
        :class:`~aioplatform.Breaker`) stops after consecutive rejections of the
        credentials or refused connections, the users not started getting
        :class:`~aioplatform.NotAttempted`. All are checked before the first request.
        """
        return await grant_many(
            self._client, f"{_system(system_id)}/roles", SystemRole, roles, name="roles", key="role",
            levels=ROLES, concurrency=concurrency, fail_fast=fail_fast, on_progress=on_progress,
            on_outcome=on_outcome, breaker=breaker,
        )  # fmt: skip

    async def delete_roles(self, system_id: str, *, timeout: CallTimeout = None) -> None:
        """Revoke every role granted on the system (the owner's stays)."""
        await self._client._call("DELETE", f"{_system(system_id)}/roles")

    async def get_role_for_user(
        self, system_id: str, username: str, *, timeout: CallTimeout = None
    ) -> SystemRole:
        """The role ``username`` holds (their effective one: OWNER, a grant, or what being
        public or a tenant admin gives; NONE without any). agavepy's spec says one object;
        a server answering a list of one is read alike."""
        path = f"{_system(system_id)}/roles/{segment('username', username)}"
        return await self._client._model("GET", path, SystemRole, row=True)

    async def update_role_for_user(
        self, system_id: str, username: str, role: str, *, timeout: CallTimeout = None
    ) -> SystemRole:
        path = f"{_system(system_id)}/roles/{segment('username', username)}"
        return await self._client._model(
            "POST", path, SystemRole, json=_role(username, role), idempotent=True
        )

    async def delete_role_for_user(
        self, system_id: str, username: str, *, timeout: CallTimeout = None
    ) -> None:
        await self._client._call("DELETE", f"{_system(system_id)}/roles/{segment('username', username)}")

    # -- credentials -----------------------------------------------------------------------

    def list_credentials(
        self, system_id: str, *, limit: int = 100, offset: int = 0
    ) -> AsyncPager[SystemCredential]:
        """Every credential stored on the system: kind and user, never the secret."""
        path = f"{_system(system_id)}/credentials"
        return self._client._list(path, SystemCredential, limit=limit, offset=offset)

    async def update_credentials(
        self, system_id: str, body: Mapping[str, Any], *, timeout: CallTimeout = None
    ) -> SystemCredential:
        """Store a UserCredential (``{"type": "PASSWORD", "username", "password"}``,
        ``"internalUsername"`` optional); the secret is sent once and never shown again."""
        path = f"{_system(system_id)}/credentials"
        return await self._client._model(
            "POST", path, SystemCredential, json=_credential(body), idempotent=True
        )

    async def delete_credentials(self, system_id: str, *, timeout: CallTimeout = None) -> None:
        """Remove every internal user's credentials (the system's own stay)."""
        await self._client._call("DELETE", f"{_system(system_id)}/credentials")

    def list_credentials_for_internal_user(
        self, system_id: str, internal_username: str, *, limit: int = 100, offset: int = 0
    ) -> AsyncPager[SystemCredential]:
        path = _internal(system_id, internal_username)
        return self._client._list(path, SystemCredential, limit=limit, offset=offset)

    async def update_credentials_for_internal_user(
        self, system_id: str, internal_username: str, body: Mapping[str, Any], *, timeout: CallTimeout = None
    ) -> SystemCredential:
        path = _internal(system_id, internal_username)
        return await self._client._model(
            "POST", path, SystemCredential, json=_credential(body), idempotent=True
        )

    async def delete_credentials_for_internal_user(
        self, system_id: str, internal_username: str, *, timeout: CallTimeout = None
    ) -> None:
        await self._client._call("DELETE", _internal(system_id, internal_username))

    async def list_credentials_for_internal_user_by_type(
        self, system_id: str, internal_username: str, credential_type: str, *, timeout: CallTimeout = None
    ) -> SystemCredential:
        """One internal user's credential of one type (LOGIN or STORAGE)."""
        path = _internal(system_id, internal_username, credential_type)
        return await self._client._model("GET", path, SystemCredential)

    async def update_credentials_for_internal_user_by_type(
        self,
        system_id: str,
        internal_username: str,
        credential_type: str,
        body: Mapping[str, Any],
        *,
        timeout: CallTimeout = None,
    ) -> SystemCredential:
        path = _internal(system_id, internal_username, credential_type)
        return await self._client._model(
            "POST", path, SystemCredential, json=_credential(body), idempotent=True
        )

    async def delete_credentials_for_internal_user_by_type(
        self, system_id: str, internal_username: str, credential_type: str, *, timeout: CallTimeout = None
    ) -> None:
        await self._client._call("DELETE", _internal(system_id, internal_username, credential_type))


def _role(username: Any, role: Any) -> dict[str, str]:
    return grant_body(username, "role", role, ROLES)


def _credential(body: Any) -> dict[str, Any]:
    payload = json_object("body", body)
    if not isinstance(payload.get("type"), str) or not payload["type"].strip():
        # The message names the field only: the body may hold a password.
        raise ValueError("body['type'] must name the credential type (PASSWORD, SSHKEYS, ...)")
    return payload


def _internal(system_id: Any, internal_username: Any, credential_type: Any = None) -> str:
    path = f"{_system(system_id)}/credentials/{segment('internal_username', internal_username)}"
    if credential_type is None:
        return path
    kind = _text("credential_type", credential_type).upper()
    if kind not in ("LOGIN", "STORAGE"):
        raise ValueError(f"credential_type must be LOGIN or STORAGE, got {credential_type!r}")
    return f"{path}/{segment('credential_type', kind)}"
