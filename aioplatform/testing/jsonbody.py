"""The one JSON reader of the embedded platform: any input it cannot parse is a ``ValueError``.

``json.loads`` raises ``RecursionError`` (not ``ValueError``) for nesting deeper than the
interpreter's stack, so ``[[[[…]]]]`` 100,000 deep would escape every service's
``except ValueError`` and answer 500. Every service reads request JSON through
:func:`loads` and answers a failure as its real server answers malformed JSON.

Values nested deeper than :data:`MAX_DEPTH` are refused too: what is accepted must still
be writable by ``json.dumps`` when it is stored and served again (a stack that parsed
it may not be deep enough to print it).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_DEPTH", "loads"]

MAX_DEPTH = 200


def _depth_ok(value: Any) -> bool:
    # Iterative, so that checking cannot itself run out of stack.
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        if depth >= MAX_DEPTH:
            return False
        pending.extend((child, depth + 1) for child in item)
    return True


def loads(raw: str | bytes | bytearray) -> Any:
    """``json.loads(raw)``; ``ValueError`` for malformed, undecodable or too deeply nested input."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise ValueError(f"JSON nested more than {MAX_DEPTH} levels deep") from None
    if not _depth_ok(value):
        raise ValueError(f"JSON nested more than {MAX_DEPTH} levels deep")
    return value
