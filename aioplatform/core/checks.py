"""Argument checks every service shares: a wrong type is a ``TypeError``, a wrong value a
``ValueError``, each naming the argument, raised before any request.

Values that may be secrets are never echoed (only their type); others are shown with
``repr`` so the caller sees what was wrong.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from .paths import check_segment

__all__ = [
    "check_bool", "check_choice", "check_id", "check_ids", "check_int", "check_seconds", "check_str",
]  # fmt: skip


def check_str(name: str, value: Any, *, allow_empty: bool = False) -> str:
    """``value`` if it is a (non-empty, unless ``allow_empty``) string."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if not value and not allow_empty:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def check_choice(name: str, value: Any, choices: Iterable[str], *, any_case: bool = False) -> str:
    """``value`` if it is a string among ``choices``; with ``any_case`` (upper-case
    ``choices``, as Agave's permission levels and roles) in any case, returned upper-cased."""
    allowed = list(choices)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {', '.join(allowed)}; got {type(value).__name__}")
    given = value.upper() if any_case else value
    if given not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return given


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """``value`` if it is an integer (not a bool) ``>= minimum``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_seconds(
    name: str, value: Any, *, allow_none: bool = False, positive: bool = True
) -> float | None:
    """``value`` as seconds: a finite number, > 0 (``positive``) or >= 0; None if allowed."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "a number of seconds or None" if allow_none else "a number of seconds"
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number of seconds {bound}, got {value!r}")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool (not merely truthy: ``reconcile="no"`` would be True)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def check_ids(name: str, values: Any, *, what: str = "ids") -> list[str]:
    """``values`` (an iterable of ``what``, not one string) as a list of id strings, each
    fit to be a path segment (:func:`~aioplatform.core.paths.check_segment`); an item is
    named by its index (``job_ids[2]``)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be an iterable of {what}, got {type(values).__name__}")
    ids = list(values)
    for i, value in enumerate(ids):
        check_id(f"{name}[{i}]", value)
    return ids


def check_id(name: str, value: Any, *, what: str = "a string") -> str:
    """``value`` if it is a string fit to be one path segment (an id, a username): the
    checks of :func:`~aioplatform.core.paths.check_segment`, ints refused."""
    check_segment(name, value)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    return value
