"""Astakos has user tokens and service (component) tokens and each endpoint takes one; its
401 does not say which, so the client does (TokenRejected), keeping the server's message."""

from __future__ import annotations

import pytest

from aioplatform import Unauthorized
from aioplatform.astakos import AstakosClient, CommissionRequest, TokenRejected
from aioplatform.testing import LocalPlatform


async def test_a_user_token_on_a_service_endpoint_says_a_service_token_is_needed(
    platform: LocalPlatform, user: AstakosClient
) -> None:
    with pytest.raises(TokenRejected) as info:
        await user.get_pending_commissions()
    error = info.value
    assert isinstance(error, Unauthorized) and error.status == 401
    assert error.message == "Invalid X-Auth-Token" and error.token_kind == "service (component)"
    assert "this endpoint takes a service (component) token" in str(error)
    assert platform.astakos_user_token not in str(error)


async def test_a_service_token_on_a_user_endpoint_says_a_user_token_is_needed(service: AstakosClient) -> None:
    with pytest.raises(TokenRejected, match="this endpoint takes a user token"):
        await service.get_quotas()


async def test_issue_many_takes_fail_fast(platform: LocalPlatform, service: AstakosClient) -> None:
    astakos = platform.astakos
    request = CommissionRequest.one(astakos.user_uuid, astakos.system_project, {"no.such.resource": 1})
    result = await service.issue_many([request] * 5, concurrency=1, fail_fast=True)
    assert not result.ok and result.not_attempted == 4 and result.stopped is not None
