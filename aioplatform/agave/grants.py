"""Granting users rights on an Agave object: one user's grant (``{"username", "permission"}``
for an app, ``{"username", "role"}`` for a system) and the batch that grants many.

Agave takes the level in any case and answers it upper-cased; a grant is idempotent
(setting it twice leaves it as setting it once), so it is retried like a GET.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..core.batch import (
    BatchResult,
    Breaker,
    OutcomeCallback,
    ProgressCallback,
    check_batch_options,
    gather_prepared,
)
from ..core.checks import check_choice
from ..core.defaults import CONCURRENCY
from ..core.paths import segment
from .models.common import AgaveModel

if TYPE_CHECKING:
    from .client import AgaveClient

__all__ = ["grant_body", "grant_many"]

M = TypeVar("M", bound=AgaveModel)


def grant_body(username: Any, key: str, level: Any, levels: Sequence[str]) -> dict[str, str]:
    """``{"username": username, key: LEVEL}``: the username checked as a path segment (it
    is one in the per-user routes), the level one of ``levels`` in any case."""
    segment("username", username)
    return {"username": str(username), key: check_choice(key, level, levels, any_case=True)}


async def grant_many(
    client: AgaveClient,
    path: str,
    model: type[M],
    grants: Mapping[str, str],
    *,
    name: str,
    key: str,
    levels: Sequence[str],
    concurrency: int = CONCURRENCY,
    fail_fast: bool = False,
    on_progress: ProgressCallback | None = None,
    on_outcome: OutcomeCallback | None = None,
    breaker: Breaker | None = None,
) -> BatchResult[M]:
    """POST one grant per ``{username: level}`` of ``grants`` (the argument ``name``) to
    ``path``, at most ``concurrency`` at a time: one outcome per user, in the mapping's
    order, with ``result.items`` the ``(username, level)`` pairs given. Every name and
    level is checked before the first request."""
    if not isinstance(grants, Mapping):
        raise TypeError(f"{name} must be a mapping of usernames to {key}s, got {type(grants).__name__}")
    pairs = list(grants.items())
    bodies = [grant_body(username, key, level, levels) for username, level in pairs]
    check_batch_options(concurrency, on_progress, on_outcome, breaker, fail_fast)

    async def grant(body: dict[str, str]) -> M:
        return await client._model("POST", path, model, json=body, idempotent=True)

    return await gather_prepared(
        grant, pairs, bodies, concurrency=concurrency, fail_fast=fail_fast, on_progress=on_progress,
        on_outcome=on_outcome, breaker=breaker,
    )  # fmt: skip
