"""Profiles (agave.md §6.7, §8): a user of the tenant as the real profiles service shows one.

The service of TACC tenants answers snake_case (``first_name``, ``full_name``,
``mobile_phone`` ...); the older Java service (and agavepy's spec) camelCase
(``firstName``, ``lastName``): both are read. A password is never part of a profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .common import AgaveModel, converter

__all__ = ["Profile"]

_CAMEL = {
    "firstName": "first_name",
    "lastName": "last_name",
    "fullName": "full_name",
    "mobilePhone": "mobile_phone",
}


@attrs.define
class Profile(AgaveModel):
    """A user's profile: ``username``, names, ``email``, phones, ``status``, ``uid``."""

    username: str = ""
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    phone: str | None = None
    mobile_phone: str | None = None
    nonce: str | None = None
    status: str | None = None
    uid: int | None = None


def _snake(data: Any) -> Any:
    if not isinstance(data, Mapping):
        return data
    out = dict(data)
    for camel, snake in _CAMEL.items():
        if out.get(snake) is None and out.get(camel) is not None:
            out[snake] = out[camel]
    if out.get("full_name") is None and (out.get("first_name") or out.get("last_name")):
        out["full_name"] = " ".join(str(out[k]) for k in ("first_name", "last_name") if out.get(k))
    uid = out.get("uid")
    if isinstance(uid, str):
        out["uid"] = int(uid) if uid.strip().lstrip("-").isdigit() else None
    return out


_profile_hook = converter.get_structure_hook(Profile)
converter.register_structure_hook(Profile, lambda data, cls: _profile_hook(_snake(data), cls))
