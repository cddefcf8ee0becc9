"""The exception tree: drawn once, in the docstring of errors.py, and the classes match it."""

from __future__ import annotations

import re

import pytest

import aioplatform
from aioplatform.core import errors


def drawn_tree() -> dict[str, str]:
    """child -> parent, read from the box-drawing tree at the top of errors.py."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        match = re.match(r"^(\s*(?:[│ ]   )*)(?:[├└]── )?([A-Z]\w+)\s", line + " ")
        if not match or not hasattr(errors, match.group(2)):
            continue
        depth, name = len(match.group(1)) // 4 + ("──" in line), match.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
    return parents


def test_the_docstring_draws_every_error_class_under_its_real_parent() -> None:
    tree = drawn_tree()
    classes = {n for n in errors.__all__ if isinstance(getattr(errors, n), type)}
    assert set(tree) | {"PlatformError"} == classes
    for child, parent in tree.items():
        assert getattr(errors, parent) in getattr(errors, child).__bases__, (child, parent)


def test_every_error_is_public_from_the_package() -> None:
    for name in errors.__all__:
        if isinstance(getattr(errors, name), type):
            assert getattr(aioplatform, name) is getattr(errors, name)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, "BadRequest"), (401, "Unauthorized"), (403, "Forbidden"), (404, "NotFound"),
     (409, "Conflict"), (429, "RateLimited"), (500, "ServerError"), (502, "ServerError"),
     (599, "ServerError"), (418, "APIError"), (422, "APIError")],
)  # fmt: skip
def test_each_status_maps_to_its_class(status: int, cls: str) -> None:
    assert errors.error_class_for_status(status) is getattr(errors, cls)


def test_messages_and_reprs_name_status_method_url_and_the_server_message() -> None:
    err = errors.NotFound("no such task", status=404, method="GET", url="http://h/api/x/", body="{}")
    assert str(err) == "404 no such task (GET http://h/api/x/)"
    assert repr(err) == "NotFound(status=404, message='no such task', method='GET', url='http://h/api/x/')"
    timeout = errors.RequestTimeout("read timeout after 5s", phase="read", method="POST", url="http://h/")
    assert str(timeout) == "read timeout after 5s (POST http://h/)"
    assert (timeout.phase, timeout.sent) == ("read", True)
    assert errors.ConnectError("refused").sent is False
    assert errors.RequestTimeout("t", phase="pool").sent is False
    limited = errors.RateLimited("slow down", status=429, method="GET", url="http://h/", retry_after=3.0)
    assert isinstance(limited, errors.APIError) and limited.retry_after == 3.0
