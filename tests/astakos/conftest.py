"""Fixtures: an embedded platform in the test's loop and Astakos clients with each kind of token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aioplatform import RetryPolicy
from aioplatform.astakos import AstakosClient
from aioplatform.testing import LocalPlatform

FAST = RetryPolicy(max_attempts=8, backoff_base=0.01, backoff_cap=0.1)


@pytest.fixture
async def platform() -> AsyncIterator[LocalPlatform]:
    async with LocalPlatform() as p:
        yield p


@pytest.fixture
async def user(platform: LocalPlatform) -> AsyncIterator[AstakosClient]:
    """A client with the seeded user's token."""
    async with AstakosClient(platform.astakos_user_token, platform.astakos_auth_url) as c:
        yield c


@pytest.fixture
async def admin(platform: LocalPlatform) -> AsyncIterator[AstakosClient]:
    """A client with the seeded project admin's token."""
    async with AstakosClient(platform.astakos.admin_token, platform.astakos_auth_url) as c:
        yield c


@pytest.fixture
async def service(platform: LocalPlatform) -> AsyncIterator[AstakosClient]:
    """A client with the seeded ``cyclades`` component's token."""
    async with AstakosClient(platform.astakos_service_token, platform.astakos_auth_url) as c:
        yield c
