"""cattrs converters for wire data: one per service, built here with the shared hooks.

* datetimes parse ISO-8601 with any UTC offset, ``Z`` included, on every Python;
* wire names that differ from attribute names (camelCase) are mapped explicitly with
  :func:`rename`, never guessed;
* unknown keys from a newer server are ignored rather than failing the parse.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

__all__ = ["make_converter", "parse_datetime", "rename"]

T = TypeVar("T")


def parse_datetime(value: Any) -> dt.datetime | None:
    """An aware datetime from an ISO-8601 string (``Z`` or any offset); None stays None."""
    if value is None or isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 string, got {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def make_converter() -> cattrs.Converter:
    """A fresh converter with aioplatform's datetime hooks (one per service package)."""
    converter = cattrs.Converter(forbid_extra_keys=False)
    converter.register_structure_hook(dt.datetime, lambda v, _: parse_datetime(v))
    converter.register_unstructure_hook(dt.datetime, lambda v: v.isoformat())
    return converter


def rename(converter: cattrs.Converter, cls: type[T], **wire_names: str) -> None:
    """Map attribute names of ``cls`` to wire names in both directions.

    >>> rename(converter, FileHandle, created_at="createdAt")
    """
    overrides = {attr: override(rename=wire) for attr, wire in wire_names.items()}
    converter.register_structure_hook(
        cls, make_dict_structure_fn(cls, converter, **overrides)  # type: ignore[arg-type]
    )
    converter.register_unstructure_hook(
        cls, make_dict_unstructure_fn(cls, converter, **overrides)  # type: ignore[arg-type]
    )
