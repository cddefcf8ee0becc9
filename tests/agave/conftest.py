"""Fixtures: an embedded platform in the test's loop and an Agave client on it.

The client holds the seeded token pair and the OAuth client's key and secret, so it
can refresh as a real agavepy user's client would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aioplatform.agave import AgaveClient
from aioplatform.testing import LocalPlatform


@pytest.fixture
async def platform() -> AsyncIterator[LocalPlatform]:
    async with LocalPlatform() as p:
        yield p


def client_for(platform: LocalPlatform, **options: object) -> AgaveClient:
    """A client with the seeded user's token pair and the OAuth client (``options`` override)."""
    service = platform.agave
    kwargs: dict[str, object] = {
        "token": service.access_token,
        "refresh_token": service.refresh_token,
        "api_key": service.client_key,
        "api_secret": service.client_secret,
    }
    kwargs.update(options)
    return AgaveClient(platform.agave_url, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def agave(platform: LocalPlatform) -> AsyncIterator[AgaveClient]:
    async with client_for(platform) as client:
        yield client
