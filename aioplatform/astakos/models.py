"""Astakos models: attrs classes for the shapes the server fixes, with astakosclient's dicts reachable.

astakosclient returns plain dicts. Every model here keeps the JSON it was parsed
from (``raw``, not part of equality or repr), answers ``model["key"]`` from it and
gives it back with :meth:`to_dict`, so code written for the dicts keeps working::

    info = await client.get_commission_info(serial)
    info.provisions[0].quantity            # typed
    info["provisions"][0]["quantity"]      # astakosclient's shape
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs
from cattrs.gen import make_dict_structure_fn, override

from ..core.serde import make_converter, parse_datetime

__all__ = [
    "Application",
    "AuthInfo",
    "CatalogEndpoint",
    "CatalogService",
    "CommissionInfo",
    "CommissionRequest",
    "Fault",
    "Membership",
    "Project",
    "ProjectQuota",
    "Provision",
    "Quota",
    "ResolveResult",
    "Resource",
    "ResourcePolicy",
    "ServiceCatalog",
    "SubmittedApplication",
    "TokenInfo",
    "UserInfo",
    "converter",
]

converter = make_converter()
W = TypeVar("W", bound="Wire")


@attrs.frozen
class Wire:
    """Base of the models: the parsed JSON stays reachable as astakosclient returned it."""

    raw: Any = attrs.field(factory=dict, eq=False, repr=False, kw_only=True)

    @classmethod
    def parse(cls: type[W], data: Any) -> W:
        return converter.structure(data, cls)

    def to_dict(self) -> Any:
        """The JSON this model was parsed from (astakosclient's return value)."""
        return self.raw

    def __getitem__(self, key: Any) -> Any:
        return self.raw[key]


# -- identity and catalog ----------------------------------------------------------------------


@attrs.frozen
class CatalogEndpoint(Wire):
    public_url: str
    version_id: str | None = None
    ui_url: str | None = None
    region: str | None = None


@attrs.frozen
class CatalogService(Wire):
    name: str
    type: str
    endpoints: list[CatalogEndpoint] = attrs.Factory(list)


@attrs.frozen
class TokenInfo(Wire):
    id: str = attrs.field(repr=False)  # the token itself: a secret
    expires: dt.datetime | None = None
    tenant: dict[str, Any] = attrs.Factory(dict)


@attrs.frozen
class UserInfo(Wire):
    id: str
    name: str
    roles: list[dict[str, Any]] = attrs.Factory(list)
    projects: list[str] = attrs.Factory(list)


@attrs.frozen
class ServiceCatalog(Wire):
    """``POST tokens`` without credentials: the services and their endpoints."""

    services: list[CatalogService]

    @classmethod
    def from_access(cls, body: Any) -> ServiceCatalog:
        entries = body["access"]["serviceCatalog"]
        return cls([CatalogService.parse(e) for e in entries], raw=body)

    def endpoint(self, name: str, version: str | None = None) -> CatalogEndpoint | None:
        """The first endpoint of service ``name`` (with ``versionId == version`` if given)."""
        for service in self.services:
            if service.name == name:
                for endpoint in service.endpoints:
                    if version is None or endpoint.version_id == version:
                        return endpoint
        return None


@attrs.frozen
class AuthInfo(Wire):
    """``authenticate()`` / ``validate_token()``: the token, the user and (authenticate) the catalog.

    ``info["access"]["user"]["id"]`` works as with astakosclient.
    """

    token: TokenInfo
    user: UserInfo
    catalog: ServiceCatalog | None = None

    @classmethod
    def from_access(cls, body: Any) -> AuthInfo:
        access = body["access"]
        catalog = ServiceCatalog.from_access(body) if "serviceCatalog" in access else None
        return cls(TokenInfo.parse(access["token"]), UserInfo.parse(access["user"]), catalog, raw=body)

    @property
    def user_id(self) -> str:
        return self.user.id


@attrs.frozen
class Resource(Wire):
    service: str
    description: str
    unit: str | None = None
    ui_visible: bool = True
    api_visible: bool = True


# -- quotas -------------------------------------------------------------------------------------


@attrs.frozen
class Quota(Wire):
    """One user's quota of one resource in one project (``usage`` includes pending imports)."""

    limit: int
    usage: int
    pending: int
    project_limit: int
    project_usage: int
    project_pending: int

    @property
    def available(self) -> int:
        """What the user may still take: ``min(limit - usage, project_limit - project_usage)``."""
        return min(self.limit - self.usage, self.project_limit - self.project_usage)


@attrs.frozen
class ProjectQuota(Wire):
    project_limit: int
    project_usage: int
    project_pending: int


# -- commissions ---------------------------------------------------------------------------------


def _prefixed(kind: str, value: str) -> str:
    return value if value.startswith(kind + ":") else f"{kind}:{value}"


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _check_quantity(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an integer, got {value!r}")
    return value


@attrs.frozen
class Provision(Wire):
    """One line of a commission: ``quantity`` of ``resource`` for ``holder`` from ``source``.

    A user holding is ``("user:<uuid>", "project:<uuid>")``, a project holding
    ``("project:<uuid>", None)``; a negative quantity releases.
    """

    holder: str
    source: str | None
    resource: str
    quantity: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "source": self.source,
            "resource": self.resource,
            "quantity": self.quantity,
        }


@attrs.frozen
class CommissionRequest:
    """A commission to issue (``issue_many`` takes these). Build one with the class methods.

    >>> CommissionRequest.one(user_uuid, project_uuid, {"cyclades.vm": 1})
    """

    provisions: tuple[Provision, ...]
    name: str = ""
    force: bool = False
    auto_accept: bool = False

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a string, got {self.name!r}")
        for flag in ("force", "auto_accept"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag} must be a bool, got {getattr(self, flag)!r}")
        if not self.provisions:
            raise ValueError("provisions must not be empty: a commission needs at least one provision")

    @classmethod
    def one(
        cls,
        holder: str,
        source: Any,
        provisions: Mapping[str, int] | None = None,
        *,
        name: str = "",
        force: bool = False,
        auto_accept: bool = False,
    ) -> CommissionRequest:
        """``holder`` takes ``provisions`` ({resource: quantity}) from project ``source``.

        Each entry gives the user provision and the matching project provision. The
        astakosclient 0.19 form ``one(holder, {(project, resource): quantity})`` works too.
        """
        _check_name(holder, "holder")
        if provisions is None and isinstance(source, Mapping):
            pairs = source
        else:
            _check_name(source, "source")
            if not isinstance(provisions, Mapping):
                raise TypeError(f"provisions must be a mapping of resource to quantity, got {provisions!r}")
            pairs = {(source, resource): q for resource, q in provisions.items()}
        lines: list[Provision] = []
        for key, quantity in pairs.items():
            if not (isinstance(key, tuple) and len(key) == 2):
                raise TypeError(f"provision keys must be (project, resource) pairs, got {key!r}")
            project, resource = _check_name(key[0], "project"), _check_name(key[1], "resource")
            q = _check_quantity(quantity, f"quantity of {resource!r}")
            lines.append(Provision(_prefixed("user", holder), _prefixed("project", project), resource, q))
            lines.append(Provision(_prefixed("project", project), None, resource, q))
        return cls(tuple(lines), name, force, auto_accept)

    @classmethod
    def generic(
        cls,
        user_provisions: Mapping[tuple[str, str, str], int],
        project_provisions: Mapping[tuple[str, str], int],
        *,
        name: str = "",
        force: bool = False,
        auto_accept: bool = False,
    ) -> CommissionRequest:
        """``{(user, project, resource): q}`` and ``{(project, resource): q}`` as given, nothing implied."""
        if not isinstance(user_provisions, Mapping) or not isinstance(project_provisions, Mapping):
            raise TypeError("user_provisions and project_provisions must be mappings")
        lines: list[Provision] = []
        for key, quantity in user_provisions.items():
            if not (isinstance(key, tuple) and len(key) == 3):
                raise TypeError(f"user_provisions keys must be (user, project, resource), got {key!r}")
            user, project, resource = (_check_name(k, "user_provisions key") for k in key)
            lines.append(
                Provision(
                    _prefixed("user", user), _prefixed("project", project), resource,
                    _check_quantity(quantity, f"quantity of {key!r}"),
                )
            )  # fmt: skip
        for pkey, quantity in project_provisions.items():
            if not (isinstance(pkey, tuple) and len(pkey) == 2):
                raise TypeError(f"project_provisions keys must be (project, resource), got {pkey!r}")
            project, resource = (_check_name(k, "project_provisions key") for k in pkey)
            lines.append(
                Provision(
                    _prefixed("project", project), None, resource, _check_quantity(quantity, repr(pkey))
                )
            )
        return cls(tuple(lines), name, force, auto_accept)

    @classmethod
    def reassignment(
        cls,
        holder: str,
        provisions: Mapping[tuple[str, str, str], int],
        *,
        name: str = "",
        force: bool = False,
        auto_accept: bool = False,
    ) -> CommissionRequest:
        """Move ``{(from_project, to_project, resource): q}`` of ``holder``'s usage between projects."""
        _check_name(holder, "holder")
        if not isinstance(provisions, Mapping):
            raise TypeError(
                "provisions must be a mapping of (from_project, to_project, resource) to quantity"
            )
        lines: list[Provision] = []
        for key, quantity in provisions.items():
            if not (isinstance(key, tuple) and len(key) == 3):
                raise TypeError(f"provisions keys must be (from_project, to_project, resource), got {key!r}")
            old, new, resource = (_check_name(k, "provisions key") for k in key)
            q = _check_quantity(quantity, f"quantity of {key!r}")
            for project, sign in ((old, -1), (new, 1)):
                lines.append(
                    Provision(_prefixed("user", holder), _prefixed("project", project), resource, sign * q)
                )
                lines.append(Provision(_prefixed("project", project), None, resource, sign * q))
        return cls(tuple(lines), name, force, auto_accept)

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "force": self.force,
            "auto_accept": self.auto_accept,
            "provisions": [p.to_wire() for p in self.provisions],
        }


@attrs.frozen
class CommissionInfo(Wire):
    serial: int
    name: str
    issue_time: dt.datetime
    provisions: list[Provision]


@attrs.frozen
class Fault(Wire):
    """A failure in a resolve result: the cloudFault's name, code and message.

    ``exception`` is set when the client (not the server) produced the failure, e.g. a
    chunk of a chunked resolve whose request failed: the commission may or may not
    have been resolved, check it with ``get_commission_info``.
    """

    name: str
    code: int
    message: str
    exception: BaseException | None = attrs.field(default=None, eq=False)

    @classmethod
    def from_wire(cls, body: Any) -> Fault:
        if isinstance(body, dict) and len(body) == 1:
            ((name, inner),) = body.items()
            if isinstance(inner, dict):
                return cls(name, int(inner.get("code") or 0), str(inner.get("message", "")), raw=body)
        return cls("unknown", 0, str(body), raw=body)

    @classmethod
    def from_exception(cls, exc: BaseException) -> Fault:
        code = getattr(exc, "status", 0)
        body = {type(exc).__name__: {"message": str(exc), "code": code}}
        return cls(type(exc).__name__, code if isinstance(code, int) else 0, str(exc), exc, raw=body)

    def __str__(self) -> str:
        return f"{self.name} ({self.code}): {self.message}"


@attrs.frozen
class ResolveResult:
    """What ``resolve_commissions`` did: ``accepted``, ``rejected`` and ``failed`` ``(serial, Fault)``.

    ``result["failed"]`` etc. give astakosclient's dict shape.
    """

    accepted: list[int] = attrs.Factory(list)
    rejected: list[int] = attrs.Factory(list)
    failed: list[tuple[int, Fault]] = attrs.Factory(list)

    @classmethod
    def from_wire(cls, body: Any) -> ResolveResult:
        return cls(
            [int(s) for s in body.get("accepted", [])],
            [int(s) for s in body.get("rejected", [])],
            [(int(s), Fault.from_wire(f)) for s, f in body.get("failed", [])],
        )

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": list(self.accepted),
            "rejected": list(self.rejected),
            "failed": [[s, f.to_dict()] for s, f in self.failed],
        }

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]


# -- projects and memberships ----------------------------------------------------------------------


@attrs.frozen
class ResourcePolicy(Wire):
    project_capacity: int
    member_capacity: int


@attrs.frozen
class Application(Wire):
    """A project application; fields a modification leaves unchanged are None."""

    id: int
    state: str
    applicant: str | None = None
    name: str | None = None
    owner: str | None = None
    homepage: str | None = None
    description: str | None = None
    start_date: dt.datetime | None = None
    end_date: dt.datetime | None = None
    comments: str | None = None
    join_policy: str | None = None
    leave_policy: str | None = None
    max_members: int | None = None
    private: bool | None = None
    resources: dict[str, ResourcePolicy] | None = None


@attrs.frozen
class Project(Wire):
    id: str
    state: str
    name: str
    owner: str | None = None
    creation_date: dt.datetime | None = None
    homepage: str = ""
    description: str = ""
    end_date: dt.datetime | None = None
    join_policy: str = "moderated"
    leave_policy: str = "auto"
    max_members: int = 2**63 - 1
    private: bool = False
    system_project: bool = False
    resources: dict[str, ResourcePolicy] = attrs.Factory(dict)
    last_application: Application | None = None
    deactivation_date: dt.datetime | None = None


@attrs.frozen
class SubmittedApplication(Wire):
    """``create_project`` / ``modify_project``: the project's uuid and the new application's id."""

    id: str
    application: int


_MEMBERSHIP_FIELDS = frozenset({"id", "user", "project", "state", "allowed_actions"})


@attrs.frozen
class Membership(Wire):
    id: int
    user: str
    project: str
    state: str
    allowed_actions: list[str] = attrs.Factory(list)

    @property
    def dates(self) -> dict[str, dt.datetime | None]:
        """When the membership last entered each state it has been in (``{"accepted": ...}``)."""
        return {k: parse_datetime(v) for k, v in self.raw.items() if k not in _MEMBERSHIP_FIELDS}


# Wire names that differ from attribute names, per model.
_RENAMES: dict[type, dict[str, str]] = {
    CatalogEndpoint: {"public_url": "publicURL", "version_id": "versionId", "ui_url": "SNF:uiURL"},
}


def _structure_wire(cls: type[Wire]) -> Any:
    """Structure a model (nested ones too) and keep the JSON it came from as ``raw``."""
    overrides = {a: override(rename=w) for a, w in _RENAMES.get(cls, {}).items()}
    build = make_dict_structure_fn(cls, converter, raw=override(omit=True), **overrides)  # type: ignore[arg-type]

    def structure(data: Any, _: Any) -> Wire:
        obj = build(data, cls)
        object.__setattr__(obj, "raw", data)
        return obj

    return structure


converter.register_structure_hook_factory(
    lambda t: isinstance(t, type) and issubclass(t, Wire), _structure_wire
)
