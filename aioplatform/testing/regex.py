"""Regular expressions from requests, matched in linear time or refused: one facility for every service.

Saltant's ``__regex`` filters, Agave's ``rlike`` and metadata ``$regex`` run a pattern a
client sent over stored values. Run inside a store transaction with Python's :mod:`re`,
``(b*)*c`` over ``'b' * 24 + '!'`` took seconds (growing ~4x per two characters) while
every request to every service waited on the store's one thread. So a pattern is
compiled with google-re2 (RE2: time linear in the text, memory bounded by the compiled
program), a pattern RE2 cannot run (backreferences, lookaround) is refused as a bad
request rather than handed to a backtracking engine, and a scan over many rows matches
on a worker thread (:func:`search_all`), never on the store's thread: read the candidate
values in one transaction, match, read the matching rows in another.

Why google-re2 is an extra, not a runtime dependency: the runtime dependencies
(aiohttp, attrs, cattrs, tenacity) are what the client SDK needs, and the SDK never
matches a regex. The embedded platform runs from the ``test`` and ``cli`` extras, which
install google-re2. A platform started without it (a bare ``pip install aioplatform``)
still serves every other request; a regex filter is then refused with a 400 naming the
extra (:class:`RegexRefused`), never run under a backtracking engine.

>>> matcher = compile_pattern("^a.*e$")
>>> matcher.search("alpha one")
True
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["BadPattern", "Matcher", "RegexRefused", "compile_pattern", "search", "search_all"]

try:  # the test and cli extras install it
    import re2 as _re2
except ImportError:  # pragma: no cover - exercised only without the extras
    _re2 = None

# Patterns longer than this are refused: a filter is a few dozen characters, and the
# compiled program's memory is bounded by RE2's max_mem besides.
MAX_PATTERN = 1000
INSTALL_HINT = "pip install 'aioplatform[test]' (or [cli]) to install google-re2"


class RegexRefused(ValueError):
    """A pattern the platform will not run (no linear-time engine for it): a 400, with the reason."""


class BadPattern(ValueError):
    """A pattern no regex engine accepts (e.g. ``[``): each service answers it as its server does."""


class Matcher:
    """A compiled pattern; :meth:`search` is linear in the text."""

    def __init__(self, compiled: Any, pattern: str):
        self._compiled = compiled
        self.pattern = pattern

    def search(self, text: str | None) -> bool:
        return text is not None and self._compiled.search(text) is not None

    def __repr__(self) -> str:
        return f"<Matcher {self.pattern!r}>"


def _options() -> Any:
    assert _re2 is not None
    options = _re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    return options


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str, *, ignore_case: bool = False) -> Matcher:
    """Compile ``pattern`` for linear-time search, or raise :class:`RegexRefused` / :class:`BadPattern`.

    Cached: the same filter compiled on the event loop (to answer a refusal before the
    store is touched) is found again by :func:`search_all` on its worker thread.
    """
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a str, got {type(pattern).__name__}")
    if len(pattern) > MAX_PATTERN:
        raise RegexRefused(f"regular expression longer than {MAX_PATTERN} characters")
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise BadPattern(f"invalid regular expression: {exc}") from None
    if _re2 is None:
        raise RegexRefused(f"regular expression filters need google-re2: {INSTALL_HINT}")
    options = _options()
    options.case_sensitive = not ignore_case
    try:
        compiled = _re2.compile(pattern, options)
    except _re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise RegexRefused(
            f"regular expression not supported ({reason}): only patterns that match in linear time "
            "are run (no backreferences or lookaround)"
        ) from None
    return Matcher(compiled, pattern)


async def search_all(
    pattern: str, texts: Sequence[str | None], *, ignore_case: bool = False
) -> list[bool]:
    """Whether ``pattern`` is found in each of ``texts``, matched on a worker thread.

    Neither the event loop nor the store's thread runs the matching: a filter over 10,000
    long values takes a few hundred milliseconds of RE2, and meanwhile every other request
    keeps being served (the worker gives the GIL up between matches). So a service reads
    the candidate values in one store transaction, matches them here, and reads the
    matching rows in another.
    """
    matcher = compile_pattern(pattern, ignore_case=ignore_case)
    return await asyncio.to_thread(lambda: [matcher.search(text) for text in texts])


def search(pattern: str, text: str | None, *, ignore_case: bool = False) -> bool:
    """``compile_pattern(pattern).search(text)``; a refused or bad pattern matches nothing.

    For one value at a time (the pattern checked by :func:`compile_pattern` beforehand);
    a scan over many rows goes through :func:`search_all`, off the store's thread.
    """
    try:
        return compile_pattern(pattern, ignore_case=ignore_case).search(text)
    except ValueError:
        return False
