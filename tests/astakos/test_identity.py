"""Identity: the catalog, authenticate, validate_token, discovery, and the token kinds."""

from __future__ import annotations

import asyncio
import logging

import pytest

from aioplatform import BadRequest, NotFound, RetryPolicy, ServerError, Unauthorized
from aioplatform.astakos import AstakosClient
from aioplatform.testing import LocalPlatform


async def test_get_endpoints_returns_the_catalog_with_the_account_and_ui_roots(
    platform: LocalPlatform, user: AstakosClient
) -> None:
    catalog = await user.get_endpoints()
    endpoint = catalog.endpoint("astakos_account", "v1.0")
    assert endpoint is not None
    assert endpoint.public_url == platform.astakos.account_url
    assert endpoint.ui_url == platform.astakos.ui_url
    assert catalog["access"]["serviceCatalog"][0]["endpoints"][0]["publicURL"] == endpoint.public_url
    assert await user.account_url() == platform.astakos.account_url + "/"


async def test_authenticate_names_the_user_and_their_projects_in_both_shapes(
    platform: LocalPlatform, user: AstakosClient
) -> None:
    info = await user.authenticate()
    astakos = platform.astakos
    assert info.user.id == astakos.user_uuid
    assert info["access"]["user"]["id"] == astakos.user_uuid
    assert set(info.user.projects) == {astakos.user_uuid, astakos.project_uuid}
    assert info.token.tenant["id"] == astakos.user_uuid
    assert info.catalog is not None and info.catalog.endpoint("astakos_account") is not None
    assert astakos.user_token not in repr(info)


async def test_authenticate_with_a_foreign_tenant_name_is_a_bad_request(
    platform: LocalPlatform, user: AstakosClient
) -> None:
    with pytest.raises(BadRequest, match="Not conforming tenantName"):
        await user.authenticate(tenant_name=platform.astakos.uuids["other"])
    assert (
        await user.authenticate(tenant_name=platform.astakos.user_uuid)
    ).user_id == platform.astakos.user_uuid


async def test_an_unknown_token_is_unauthorized_and_never_appears_in_the_error(
    platform: LocalPlatform,
) -> None:
    secret = "not-a-real-token-0123456789"
    async with AstakosClient(secret, platform.astakos_auth_url) as client:
        with pytest.raises(Unauthorized) as caught:
            await client.authenticate()
        assert caught.value.message == "Invalid token"
        with pytest.raises(Unauthorized, match="Invalid X-Auth-Token") as caught2:
            await client.get_quotas()
        assert secret not in str(caught.value) + repr(caught.value) + str(caught2.value) + caught2.value.body
        assert secret not in repr(client)


async def test_validate_token_answers_for_a_valid_token_and_404_otherwise(
    platform: LocalPlatform, user: AstakosClient
) -> None:
    astakos = platform.astakos
    info = await user.validate_token(astakos.user_token, belongs_to=astakos.user_uuid)
    assert info.user.id == astakos.user_uuid and info.catalog is None
    with pytest.raises(NotFound) as caught:
        await user.validate_token("unknown-token-abcdef")
    assert "unknown-token-abcdef" not in str(caught.value)
    with pytest.raises(NotFound):
        await user.validate_token(astakos.user_token, belongs_to=astakos.uuids["other"])


async def test_discovery_sends_one_catalog_request_under_100_concurrent_first_calls(
    platform: LocalPlatform, user: AstakosClient
) -> None:
    results = await asyncio.gather(*(user.get_quotas() for _ in range(100)))
    assert len(results) == 100 and all(r == results[0] for r in results)
    assert platform.stats.count("POST", "/astakos/identity/v2.0/tokens") == 1
    assert platform.stats.count("GET", "/astakos/account/v1.0/quotas") == 100


async def test_a_copy_with_other_options_shares_the_discovered_roots(
    platform: LocalPlatform, user: AstakosClient
) -> None:
    await user.get_quotas()
    patient = user.with_options(timeouts=None)
    await patient.get_quotas()
    assert platform.stats.count("POST", "/astakos/identity/v2.0/tokens") == 1


@pytest.mark.parametrize(
    ("call", "kind"),
    [
        ("get_quotas", "service"),
        ("get_pending_commissions", "user"),
        ("service_get_quotas", "user"),
        ("service_get_project_quotas", "user"),
        ("get_resources", None),
        ("get_endpoints", None),
    ],
)
async def test_each_endpoint_refuses_the_other_kind_of_token(
    platform: LocalPlatform, call: str, kind: str | None
) -> None:
    if kind is None:  # public endpoints: any token (even an unknown one) is fine
        async with AstakosClient("whatever-token", platform.astakos_auth_url) as client:
            assert await getattr(client, call)()
        return
    token = platform.astakos_service_token if kind == "service" else platform.astakos_user_token
    async with AstakosClient(token, platform.astakos_auth_url) as client:
        with pytest.raises(Unauthorized, match="Invalid X-Auth-Token"):
            await getattr(client, call)()


def test_bad_arguments_fail_before_any_request() -> None:
    with pytest.raises(ValueError, match="token"):
        AstakosClient("", "http://127.0.0.1:1/identity/v2.0")
    with pytest.raises(ValueError, match="auth_url"):
        AstakosClient("t0ken-value", "not a url")


async def test_a_failed_discovery_is_tried_again_by_the_next_call(
    platform: LocalPlatform, user: AstakosClient
) -> None:
    platform.faults.script("POST /astakos/identity/v2.0/tokens", [500])
    with pytest.raises(ServerError):
        await user.get_quotas()
    assert await user.get_quotas()
    assert platform.stats.count("POST", "/astakos/identity/v2.0/tokens") == 2


async def test_the_given_logger_hears_about_discovery_without_the_token(
    platform: LocalPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("test.astakos")
    async with AstakosClient(platform.astakos_user_token, platform.astakos_auth_url, logger=logger) as client:
        with caplog.at_level(logging.DEBUG, logger="test.astakos"):
            await client.get_quotas()
    assert any(platform.astakos.account_url in r.getMessage() for r in caplog.records)
    assert platform.astakos_user_token not in caplog.text


async def test_the_given_logger_hears_each_request_and_its_outcome_without_any_token(
    platform: LocalPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    a = platform.astakos
    logger = logging.getLogger("test.astakos.requests")
    async with AstakosClient(a.user_token, platform.astakos_auth_url, logger=logger) as client:
        with caplog.at_level(logging.DEBUG, logger="test.astakos.requests"):
            await client.get_quotas()
            await client.validate_token(a.tokens["other"])
            with pytest.raises(NotFound):
                await client.validate_token(a.tokens["other"], belongs_to="someone-else")
    messages = [r.getMessage() for r in caplog.records if r.name == "test.astakos.requests"]
    assert f"astakos: GET {a.account_url}/quotas -> 200" in messages
    assert f"astakos: GET {a.auth_url}/tokens/*** -> 200" in messages
    failed = f"astakos: GET {a.auth_url}/tokens/*** failed: NotFound: 404 Invalid token"
    assert any(m.startswith(failed) for m in messages)
    assert a.user_token not in caplog.text and a.tokens["other"] not in caplog.text


async def test_from_env_reads_the_token_and_auth_url_the_cli_reads(
    platform: LocalPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASTAKOS_TOKEN", platform.astakos_user_token)
    monkeypatch.setenv("ASTAKOS_AUTH_URL", platform.astakos_auth_url)
    async with AstakosClient.from_env() as client:
        assert (await client.authenticate()).user.id == platform.astakos.user_uuid
    monkeypatch.delenv("ASTAKOS_AUTH_URL")
    with pytest.raises(ValueError, match="ASTAKOS_AUTH_URL"):
        AstakosClient.from_env()


async def test_a_validated_token_stays_out_of_retry_logs_and_errors(
    platform: LocalPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    a = platform.astakos
    secret = a.tokens["other"]  # travels in the path of GET tokens/{token_id}
    platform.faults.script(f"GET /astakos/identity/v2.0/tokens/{secret}", [503, 503])
    retry = RetryPolicy(max_attempts=2, backoff_base=0.01, backoff_cap=0.01)
    async with AstakosClient(a.user_token, platform.astakos_auth_url, retry=retry) as client:
        with caplog.at_level(logging.DEBUG, logger="aioplatform"), pytest.raises(ServerError) as caught:
            await client.validate_token(secret)
        assert "retrying GET" in caplog.text  # the retry was logged ...
        assert secret not in caplog.text  # ... without the token
        assert secret not in str(caught.value) + repr(caught.value) + caught.value.url
        assert (await client.validate_token(secret)).user.id == a.uuids["other"]


async def test_a_deactivated_users_token_is_refused_until_reactivated(
    platform: LocalPlatform, user: AstakosClient
) -> None:
    a = platform.astakos
    await platform.astakos.set_active(a.user_uuid, False)
    with pytest.raises(Unauthorized) as on_authenticate:
        await user.authenticate()
    with pytest.raises(Unauthorized) as on_quotas:
        await user.get_quotas()
    assert on_authenticate.value.message == on_quotas.value.message == "User inactive"
    await platform.astakos.set_active(a.user_uuid, True)
    assert (await user.authenticate()).user.id == a.user_uuid


async def test_first_calls_to_both_roots_at_once_share_one_discovery(
    platform: LocalPlatform, user: AstakosClient
) -> None:
    platform.faults.latency = 0.02  # the catalog answer is slow: every first call is waiting on it
    calls = [user.get_services() if i % 2 else user.get_quotas() for i in range(100)]
    results = await asyncio.gather(*calls)
    assert len(results) == 100
    assert platform.stats.count("POST", "/astakos/identity/v2.0/tokens") == 1
    assert platform.stats.count("GET", "/astakos/ui/get_services") == 50


async def test_a_discovery_failing_under_concurrent_first_calls_fails_only_the_call_that_made_it(
    platform: LocalPlatform, user: AstakosClient
) -> None:
    platform.faults.script("POST /astakos/identity/v2.0/tokens", [500])
    results = await asyncio.gather(*(user.get_quotas() for _ in range(100)), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], ServerError)
    assert platform.stats.count("POST", "/astakos/identity/v2.0/tokens") == 2  # the next waiter re-tried
    assert platform.stats.count("GET", "/astakos/account/v1.0/quotas") == 99
