"""A griffe extension for the docs site: Sphinx roles in docstrings read as inline code.

Our docstrings cite names the Sphinx way (``:class:`AgaveClient```, ``:meth:`~x.y.close```);
Markdown would show the role verbatim. Each becomes `` `AgaveClient` `` (a ``~`` keeps the
last part only, as Sphinx does). Loaded by mkdocs.yml's mkdocstrings ``extensions``; it is not
part of the package and not a page of the site (``exclude_docs``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):`(~?)([^`]+)`")


def plain(text: str) -> str:
    def code(match: re.Match[str]) -> str:
        name = match.group(2)
        return f"`{name.rsplit('.', 1)[-1] if match.group(1) else name}`"

    return ROLE.sub(code, text)


class SphinxRoles(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        seen: set[int] = set()
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = plain(obj.docstring.value)
            stack.extend(m for m in obj.members.values() if not m.is_alias)  # type: ignore[misc]
