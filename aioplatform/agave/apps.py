"""``client.apps``: agavepy's 14 apps operations (and the 3 more its spec has) as coroutines.

>>> app = await agave.apps.add({"name": "wc", "version": "1.00", "executionSystem": ..., ...})
>>> published = await agave.apps.publish(app.id)          # "wc-1.00u1", public
>>> await agave.apps.update_application_permissions(app.id, "bob", "READ_EXECUTE")
>>> async for summary in agave.apps.list_by_tag("demo"):
...     print(summary.id)

``manage`` takes agavepy's body (``{"action": "publish"}``); each action is also a method
of its own (``publish``, ``clone``, ``enable``, ``disable``, ``erase``).

Retries: granting a permission and enable/disable set a value, so they are re-sent like
idempotent calls; ``add``, ``update``, ``publish`` and ``clone`` create or bump a
revision and are not.
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
from .models.apps import App, AppPermission, AppSummary
from .systems import json_object, listing_params, query_flag

if TYPE_CHECKING:
    from .client import AgaveClient

__all__ = ["ACTIONS", "PERMISSIONS", "Apps"]

ROOT = "apps/v2"
ACTIONS = ("publish", "clone", "enable", "disable", "erase")
PERMISSIONS = (
    "READ", "WRITE", "EXECUTE", "READ_WRITE", "READ_EXECUTE", "WRITE_EXECUTE", "ALL", "NONE",
)  # fmt: skip


def _app(app_id: Any) -> str:
    return f"{ROOT}/{segment('app_id', app_id)}"


def _optional_text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string or None, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


def _permission(username: Any, permission: Any) -> dict[str, str]:
    return grant_body(username, "permission", permission, PERMISSIONS)


class Apps:
    """``client.apps``: register, find, publish and share apps."""

    def __init__(self, client: AgaveClient):
        self._client = client

    # -- listings --------------------------------------------------------------------------

    def _listing(
        self,
        path: str,
        public_only: bool | None,
        private_only: bool | None,
        search: Mapping[str, Any] | None,
        filter: str | Sequence[str] | None,
        limit: int,
        offset: int,
    ) -> AsyncPager[AppSummary]:
        params = listing_params(search, filter)
        for name, wire, value in (
            ("public_only", "publicOnly", public_only),
            ("private_only", "privateOnly", private_only),
        ):
            flag = query_flag(name, value)
            if flag is not None:
                params[wire] = flag
        if public_only and private_only:
            raise ValueError("public_only and private_only cannot both be True")
        return self._client._list(path, AppSummary, params=params, limit=limit, offset=offset)

    def list(
        self,
        *,
        public_only: bool | None = None,
        private_only: bool | None = None,
        search: Mapping[str, Any] | None = None,
        filter: str | Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> AsyncPager[AppSummary]:
        """The apps the caller can see (own, shared, public); ``search`` terms pass
        through (``{"executionSystem.eq": "agave-exec", "name.like": "wc*"}``)."""
        return self._listing(f"{ROOT}/", public_only, private_only, search, filter, limit, offset)

    def list_by_name(
        self,
        name: str,
        *,
        public_only: bool | None = None,
        private_only: bool | None = None,
        search: Mapping[str, Any] | None = None,
        filter: str | Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> AsyncPager[AppSummary]:
        """Every visible version and revision of the app called ``name``."""
        path = f"{ROOT}/name/{segment('name', name)}"
        return self._listing(path, public_only, private_only, search, filter, limit, offset)

    def list_by_tag(
        self,
        tag: str,
        *,
        public_only: bool | None = None,
        private_only: bool | None = None,
        search: Mapping[str, Any] | None = None,
        filter: str | Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> AsyncPager[AppSummary]:
        path = f"{ROOT}/tag/{segment('tag', tag)}"
        return self._listing(path, public_only, private_only, search, filter, limit, offset)

    def list_by_ontology_term(
        self,
        term: str,
        *,
        public_only: bool | None = None,
        private_only: bool | None = None,
        search: Mapping[str, Any] | None = None,
        filter: str | Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> AsyncPager[AppSummary]:
        path = f"{ROOT}/ontology/{segment('term', term)}"
        return self._listing(path, public_only, private_only, search, filter, limit, offset)

    def list_by_system_id(
        self,
        system_id: str,
        *,
        public_only: bool | None = None,
        private_only: bool | None = None,
        search: Mapping[str, Any] | None = None,
        filter: str | Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> AsyncPager[AppSummary]:
        """The apps that run on, or are deployed on, the system ``system_id``."""
        path = f"{ROOT}/system/{segment('system_id', system_id)}"
        return self._listing(path, public_only, private_only, search, filter, limit, offset)

    # -- one app ---------------------------------------------------------------------------

    async def add(self, body: Mapping[str, Any], *, timeout: CallTimeout = None) -> App:
        """Register an app (an ApplicationRequest: ``name``, ``version``, ``executionSystem``,
        ``deploymentPath``, ``templatePath``, ``testPath``, ``inputs``, ``parameters`` ...).
        Registering an existing private ``name``/``version`` again updates it."""
        return await self._client._model("POST", f"{ROOT}/", App, json=json_object("body", body))

    async def get(self, app_id: str, *, timeout: CallTimeout = None) -> App:
        return await self._client._model("GET", _app(app_id), App)

    async def update(self, app_id: str, body: Mapping[str, Any], *, timeout: CallTimeout = None) -> App:
        """Replace the app's description with ``body`` (its revision goes up by one)."""
        return await self._client._model("POST", _app(app_id), App, json=json_object("body", body))

    async def delete(self, app_id: str, *, timeout: CallTimeout = None) -> None:
        await self._client._call("DELETE", _app(app_id))

    async def get_job_submission_form(self, app_id: str, *, timeout: CallTimeout = None) -> str:
        """An HTML form for submitting a job of this app."""
        result = await self._client._call("GET", f"{_app(app_id)}/form")
        return result if isinstance(result, str) else ""

    # -- manage ----------------------------------------------------------------------------

    async def manage(
        self, app_id: str, body: Mapping[str, Any], *, timeout: CallTimeout = None
    ) -> App | None:
        """agavepy's ``manage``: ``body`` is ``{"action": "publish"|"clone"|"enable"|
        "disable"|"erase", ...}`` (publish and clone also take ``name``, ``version``,
        ``executionSystem``, ``deploymentSystem``, ``deploymentPath``). Answers the new app
        for publish and clone, the app for enable/disable, None for erase."""
        payload = json_object("body", body)
        action = payload.get("action")
        if not isinstance(action, str) or action.lower() not in ACTIONS:
            raise ValueError(f"body['action'] must be one of {', '.join(ACTIONS)}, got {action!r}")
        payload["action"] = action.lower()
        path = _app(app_id)
        if payload["action"] == "erase":
            # Not re-sent: an erase that went through would answer the retry with a 404.
            await self._client._call("PUT", path, json=payload, idempotent=False)
            return None
        # publish and clone create an app: only enable/disable (setting a state) may be re-sent.
        idempotent = payload["action"] in ("enable", "disable")
        return await self._client._model("PUT", path, App, json=payload, idempotent=idempotent)

    async def _copy(self, app_id: str, action: str, options: Mapping[str, Any]) -> App:
        payload: dict[str, Any] = {"action": action}
        for name, wire in (
            ("name", "name"),
            ("version", "version"),
            ("execution_system", "executionSystem"),
            ("deployment_system", "deploymentSystem"),
            ("deployment_path", "deploymentPath"),
        ):
            value = _optional_text(name, options.get(name))
            if value is not None:
                payload[wire] = value
        app = await self.manage(app_id, payload)
        assert app is not None
        return app

    async def publish(
        self,
        app_id: str,
        *,
        name: str | None = None,
        version: str | None = None,
        execution_system: str | None = None,
        deployment_system: str | None = None,
        deployment_path: str | None = None,
        timeout: CallTimeout = None,
    ) -> App:
        """Publish a public copy of the app, ``<name>-<version>u<revision>`` (it must run on
        a public execution system: pass ``execution_system`` to move it)."""
        options = {"name": name, "version": version, "execution_system": execution_system,
                   "deployment_system": deployment_system, "deployment_path": deployment_path}  # fmt: skip
        return await self._copy(app_id, "publish", options)

    async def clone(
        self,
        app_id: str,
        *,
        name: str | None = None,
        version: str | None = None,
        execution_system: str | None = None,
        deployment_system: str | None = None,
        deployment_path: str | None = None,
        timeout: CallTimeout = None,
    ) -> App:
        """A private copy of the app owned by the caller, ``<name>-<version>`` (give a new
        name or version: the copy's id must be free)."""
        if name is None and version is None:
            raise ValueError("clone needs a new name or version (the copy's id must differ)")
        options = {"name": name, "version": version, "execution_system": execution_system,
                   "deployment_system": deployment_system, "deployment_path": deployment_path}  # fmt: skip
        return await self._copy(app_id, "clone", options)

    async def enable(self, app_id: str, *, timeout: CallTimeout = None) -> App:
        app = await self.manage(app_id, {"action": "enable"})
        assert app is not None
        return app

    async def disable(self, app_id: str, *, timeout: CallTimeout = None) -> App:
        app = await self.manage(app_id, {"action": "disable"})
        assert app is not None
        return app

    async def erase(self, app_id: str, *, timeout: CallTimeout = None) -> None:
        """Remove the app for good (``delete`` only hides it)."""
        await self.manage(app_id, {"action": "erase"})

    # -- permissions -----------------------------------------------------------------------

    def list_permissions(
        self, app_id: str, *, limit: int = 100, offset: int = 0
    ) -> AsyncPager[AppPermission]:
        """Who may read, write, execute the app (the owner first)."""
        return self._client._list(f"{_app(app_id)}/pems", AppPermission, limit=limit, offset=offset)

    async def update_application_permissions(
        self, app_id: str, username: str, permission: str, *, timeout: CallTimeout = None
    ) -> AppPermission:
        """Grant ``username`` READ, WRITE, EXECUTE, READ_WRITE, READ_EXECUTE, WRITE_EXECUTE
        or ALL; NONE revokes."""
        path = f"{_app(app_id)}/pems"
        body = _permission(username, permission)
        return await self._client._model("POST", path, AppPermission, json=body, idempotent=True)

    async def update_permissions_many(
        self,
        app_id: str,
        permissions: Mapping[str, str],
        *,
        concurrency: int = CONCURRENCY,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[AppPermission]:
        """Share the app with many users (``{"alice": "READ_EXECUTE", "bob": "NONE"}``) at
        most ``concurrency`` at a time: one outcome per user, in the mapping's order. Every
        name and permission is checked before the first request.

        Batch options as for :func:`~aioplatform.gather`: ``on_progress(done, total,
        outcome)`` and ``on_outcome(index, (username, level), outcome)`` hear each user once
        as its outcome is final; ``fail_fast`` stops at the first failure; ``breaker`` (a
        :class:`~aioplatform.Breaker`) stops after consecutive rejections of the
        credentials or refused connections, the users not started getting
        :class:`~aioplatform.NotAttempted`. All are checked before the first request.
        """
        return await grant_many(
            self._client, f"{_app(app_id)}/pems", AppPermission, permissions, name="permissions",
            key="permission", levels=PERMISSIONS, concurrency=concurrency, fail_fast=fail_fast,
            on_progress=on_progress, on_outcome=on_outcome, breaker=breaker,
        )  # fmt: skip

    async def delete_permissions(self, app_id: str, *, timeout: CallTimeout = None) -> None:
        """Revoke every grant on the app (the owner keeps everything)."""
        await self._client._call("DELETE", f"{_app(app_id)}/pems")

    def list_permissions_for_user(
        self, app_id: str, username: str, *, limit: int = 100, offset: int = 0
    ) -> AsyncPager[AppPermission]:
        """``username``'s rights on the app (one row; all False without any). agavepy's
        spec says a list of one; a server answering the one object is read alike."""
        path = f"{_app(app_id)}/pems/{segment('username', username)}"
        return self._client._list(path, AppPermission, limit=limit, offset=offset, row=True)

    async def update_permissions_for_user(
        self, app_id: str, username: str, permission: str, *, timeout: CallTimeout = None
    ) -> AppPermission:
        path = f"{_app(app_id)}/pems/{segment('username', username)}"
        body = _permission(username, permission)
        return await self._client._model("POST", path, AppPermission, json=body, idempotent=True)

    async def delete_permissions_for_user(
        self, app_id: str, username: str, *, timeout: CallTimeout = None
    ) -> None:
        await self._client._call("DELETE", f"{_app(app_id)}/pems/{segment('username', username)}")
