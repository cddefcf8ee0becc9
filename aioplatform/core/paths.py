"""How a caller's value becomes part of a URL path: the one rule every service uses.

A resource method puts ids and names into its path with :func:`segment` (one
segment) or :func:`segments` (a slash-separated path, e.g. an Agave file path).
Whatever the caller passes, the request can only reach the resource it names:

- ``bool``, ``None`` and anything but ``str``/``int`` is a :class:`TypeError`;
- an empty value, ``.``, ``..``, or a value whose percent-decoding is one of those
  (``%2e%2E``) is a :class:`ValueError` — yarl and every server would resolve them
  as dot segments and send the call to the parent resource;
- everything outside RFC 3986's unreserved set is percent-encoded, so ``/``, ``?``,
  ``#``, ``%`` and ``\\`` can never change the URL's structure.

>>> segment("uuid", "a b/c")
'a%20b%2Fc'
>>> segments("path", "/home/alice/a b.txt")
'home/alice/a%20b.txt'
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote

__all__ = ["check_segment", "segment", "segments"]

_DOT_SEGMENTS = frozenset({"", ".", ".."})
# What quote(safe="") leaves alone: a text made only of these is its own encoding.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_segment(name: str, value: Any) -> str:
    """``value`` as text after the checks of :func:`segment`, not yet encoded."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"{name} must be a string or an integer, got {type(value).__name__}")
    text = str(value)
    if text in _DOT_SEGMENTS or unquote(text) in _DOT_SEGMENTS:
        raise ValueError(f"{name} must name one resource: not empty, '.' or '..', got {_describe(value)}")
    return text


def segment(name: str, value: Any) -> str:
    """``value`` as exactly one percent-encoded path segment (``name`` is the argument's name).

    Raises :class:`TypeError` for a value that is not ``str``/``int`` (``bool`` and
    ``None`` included) and :class:`ValueError` for an empty or dot segment.
    """
    # The common case (a uuid, a job id, a name) needs no encoding: answered without quote().
    if type(value) is str and value not in _DOT_SEGMENTS and _UNRESERVED.fullmatch(value):
        return value
    return quote(check_segment(name, value), safe="")


def segments(name: str, value: Any, *, allow_root: bool = False) -> str:
    """A slash-separated path, each segment encoded as by :func:`segment`.

    Leading and trailing slashes are dropped and repeated slashes collapse (``a//b``
    is ``a/b``, as the file services read it); any ``.``/``..`` segment is refused.
    The result has no leading slash. With ``allow_root`` an empty path (or ``"/"``)
    gives ``""`` (the root); otherwise it is a :class:`ValueError`.
    """
    if isinstance(value, bool) or not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    parts = [p for p in value.split("/") if p != ""]
    if not parts:
        if allow_root:
            return ""
        raise ValueError(f"{name} must not be empty, got {_describe(value)}")
    return "/".join(quote(check_segment(name, p), safe="") for p in parts)
