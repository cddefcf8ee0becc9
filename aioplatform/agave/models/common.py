"""What every Agave model shares: unknown fields kept, Agave's timestamps, the converter.

Agave answers camelCase JSON (``lastModified``, ``appId``) with ISO-8601 timestamps that
carry milliseconds and a zone offset (``2018-08-24T13:44:12.000-05:00``); models keep
Python names and map the wire names explicitly (:func:`~aioplatform.core.serde.rename`).
Every model keeps the whole object it was built from in ``raw`` (fields a newer server
added, ``_links``), so nothing the server said is lost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs
import cattrs

from ...core.serde import make_converter, parse_datetime

__all__ = ["AgaveModel", "Permission", "converter", "parse_agave_datetime", "structure"]

converter: cattrs.Converter = make_converter()

M = TypeVar("M", bound="AgaveModel")


def parse_agave_datetime(value: Any) -> dt.datetime | None:
    """Agave timestamps: ISO-8601 with offset; epoch milliseconds (some views) too."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value / 1000, dt.timezone.utc)
    return parse_datetime(value)


converter.register_structure_hook(dt.datetime, lambda v, _: parse_agave_datetime(v))


@attrs.define
class AgaveModel:
    """Base of the Agave models: ``raw`` is the object as the server sent it."""

    raw: dict[str, Any] = attrs.field(factory=dict, repr=False, eq=False, kw_only=True)

    def __getitem__(self, key: str) -> Any:
        """``model["someField"]``: any wire field, known to the model or not (as agavepy's AttrDict)."""
        return self.raw[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)


def structure(data: Any, cls: type[M]) -> M:
    """Build ``cls`` from one wire object, keeping it whole in ``raw``.

    Raises ``TypeError``/``ValueError`` (cattrs' errors) for a wrong shape; the client
    turns those into a typed response error naming the URL.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"expected a JSON object for {cls.__name__}, got {type(data).__name__}")
    obj = converter.structure(data, cls)
    obj.raw = dict(data)
    return obj


@attrs.define
class Permission(AgaveModel):
    """One user's rights on an app, job, metadata record or schema:
    ``{"username", "permission": {"read", "write"[, "execute"]}}`` (apps have ``execute``;
    where the server sends no such key, the property is False)."""

    username: str = ""
    permission: dict[str, bool] = attrs.field(factory=dict)

    @property
    def read(self) -> bool:
        return bool(self.permission.get("read"))

    @property
    def write(self) -> bool:
        return bool(self.permission.get("write"))

    @property
    def execute(self) -> bool:
        return bool(self.permission.get("execute"))

    @classmethod
    def of_user(cls, result: Any, username: str) -> Permission:
        """A user's rights from an answer that is a list of at most one (or the object):
        none at all when the list is empty."""
        rows = result if isinstance(result, list) else [result]
        if not rows or not isinstance(rows[0], Mapping):
            return cls(username=username, permission={"read": False, "write": False})
        return structure(rows[0], cls)
