"""Agave API clients: HTTP Basic, create/list/get/delete, subscriptions, and the recorded shapes."""

from __future__ import annotations

from typing import Any

import pytest

from aioplatform.agave import AgaveClient, AuthenticationError
from aioplatform.core.errors import BadRequest, NotFound, Unauthorized
from aioplatform.testing import LocalPlatform
from aioplatform.testing.agave.defaults import DEFAULT_STORAGE_SYSTEM

# Recorded production answers (agavepy's tests/sample_responses clients-*.json), the result parts.
RECORDED_CREATE = {
    "description": "{DESCRIPTION}",
    "name": "{NAME}",
    "consumerKey": "xxxxxxxxxxxxxxxxxxxxxxxxxx",
    "_links": {
        "subscriber": {"href": "{URL_ROOT}profiles/v2/{USER}"},
        "self": {"href": "{URL_ROOT}clients/v2/{NAME}"},
        "subscriptions": {"href": "{URL_ROOT}clients/v2/{NAME}/subscriptions/"},
    },
    "tier": "{TIER}",
    "consumerSecret": "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "callbackUrl": "{CALLBACK_URL}",
}
RECORDED_LIST_ENTRY = {
    "description": "default client",
    "name": "DefaultApplication",
    "consumerKey": "Wxsaxaxsa",
    "_links": {
        "subscriber": {"href": "https://url/profiles/v2/user"},
        "self": {"href": "https://url/clients/v2/DefaultApplication"},
        "subscriptions": {"href": "https://url/clients/v2/DefaultApplication/subscriptions/"},
    },
    "tier": "Unlimited",
    "callbackUrl": "",
}
RECORDED_SUBSCRIPTION = {
    "apiName": "Apps",
    "tier": "Unlimited",
    "apiStatus": "PUBLISHED",
    "apiProvider": "admin",
    "apiContext": "/apps/v2",
    "apiVersion": "v2",
    "_links": {
        "self": {"href": "https://api.tacc.utexas.edu/clients/v2/subs/subscriptions/"},
        "api": {"href": "https://api.tacc.utexas.edu/apps/v2/"},
        "client": {"href": "https://api.tacc.utexas.edu/clients/v2/subs"},
    },
    "businessOwner": None,
}


def basic_client(platform: LocalPlatform, **options: Any) -> AgaveClient:
    service = platform.agave
    kwargs: dict[str, Any] = {"username": service.username, "password": service.password}
    kwargs.update(options)
    return AgaveClient(platform.agave_url, **kwargs)


def _shape_matches(sample: Any, ours: Any, where: str = "result") -> None:
    """Our keys are a superset of the recorded ones, with the same JSON types."""
    if isinstance(sample, dict):
        assert isinstance(ours, dict), where
        for key, value in sample.items():
            assert key in ours, f"{where}.{key} missing"
            _shape_matches(value, ours[key], f"{where}.{key}")
    elif isinstance(sample, list):
        assert isinstance(ours, list), where
        if sample and ours:
            _shape_matches(sample[0], ours[0], where + "[0]")
    elif sample is not None:
        assert type(ours) is type(sample), f"{where}: {type(ours).__name__} != {type(sample).__name__}"


async def test_a_created_client_carries_its_secret_and_its_key_works_at_the_token_endpoint(
    platform: LocalPlatform,
) -> None:
    service = platform.agave
    async with basic_client(platform) as agave:
        created = await agave.clients.create("analysis", "my analysis scripts", callback_url="")
        assert created.name == "analysis" and created.tier == "Unlimited"
        assert created.consumer_key and created.consumer_secret
        assert created.consumer_secret not in repr(created)
        assert created.raw["_links"]["self"]["href"] == platform.agave_url + "/clients/v2/analysis"
    async with AgaveClient(
        platform.agave_url, api_key=created.consumer_key, api_secret=created.consumer_secret,
        username=service.username, password=service.password,
    ) as fresh:  # fmt: skip
        system = await fresh.systems.get(DEFAULT_STORAGE_SYSTEM)
        assert system.id == DEFAULT_STORAGE_SYSTEM and fresh.tokens.refreshes == 1


async def test_create_with_use_makes_the_new_key_the_clients_own(platform: LocalPlatform) -> None:
    service = platform.agave
    async with basic_client(platform) as agave:
        created = await agave.clients.create("adopted", use=True)
        assert agave.credentials.api_key == created.consumer_key
        await agave.tokens.create(service.username, service.password)
        await agave.systems.get(DEFAULT_STORAGE_SYSTEM)


async def test_listing_and_getting_never_show_secrets(platform: LocalPlatform) -> None:
    async with basic_client(platform) as agave:
        created = await agave.clients.create("listed")
        listed = await agave.clients.list().to_list()
        got = await agave.clients.get_client_by_name("listed")
        assert await agave.clients.get("listed") == got
    assert {c.name for c in listed} == {"aioplatform", "listed"}
    for entry in [*listed, got]:
        assert entry.consumer_secret is None and "consumerSecret" not in entry.raw
    assert got.consumer_key == created.consumer_key


async def test_users_see_only_their_own_clients(platform: LocalPlatform) -> None:
    await platform.agave.add_user("other", "other-password")
    async with basic_client(platform, username="other", password="other-password") as other:
        await other.clients.create("others-client")
        assert [c.name for c in await other.clients.list().to_list()] == ["others-client"]
    async with basic_client(platform) as agave:
        names = [c.name for c in await agave.clients.list().to_list()]
        assert "others-client" not in names
        with pytest.raises(NotFound):
            await agave.clients.get("others-client")


async def test_deleting_a_client_revokes_its_tokens(platform: LocalPlatform) -> None:
    service = platform.agave
    async with basic_client(platform) as agave:
        created = await agave.clients.create("short-lived", use=True)
        await agave.tokens.create(service.username, service.password)
        await agave.systems.get(DEFAULT_STORAGE_SYSTEM)
        await agave.clients.delete("short-lived")
        with pytest.raises(NotFound, match="short-lived"):
            await agave.clients.get("short-lived")
        # The token died with its client, and the key no longer gets a new one.
        with pytest.raises(AuthenticationError) as caught:
            await agave.systems.get(DEFAULT_STORAGE_SYSTEM)
        assert caught.value.error == "invalid_client"
    assert created.consumer_secret is not None


async def test_subscriptions_list_add_and_delete(platform: LocalPlatform) -> None:
    async with basic_client(platform) as agave:
        await agave.clients.create("subs")
        subs = await agave.clients.list_subscriptions_for_client("subs")
        assert {s.api_name for s in subs} >= {"Apps", "Files", "Jobs", "Systems", "Profiles"}
        assert all(s.api_version == "v2" and s.api_status == "PUBLISHED" for s in subs)
        await agave.clients.delete_subscriptions_for_client("subs")
        assert await agave.clients.list_subscriptions("subs") == []
        after = await agave.clients.add_subscription_for_client("subs", "Jobs")
        assert [(s.api_name, s.api_context) for s in after] == [("Jobs", "/jobs/v2")]
        everything = await agave.clients.add_subscription("subs", "*")
        assert len(everything) == len(subs)
        with pytest.raises(BadRequest, match="No API found"):
            await agave.clients.add_subscription("subs", "NoSuchApi")
        with pytest.raises(NotFound):
            await agave.clients.list_subscriptions("no-such-client")


async def test_a_duplicate_name_is_a_bad_request(platform: LocalPlatform) -> None:
    async with basic_client(platform) as agave:
        await agave.clients.create("twice")
        with pytest.raises(BadRequest, match="already exists"):
            await agave.clients.create("twice")


async def test_a_wrong_password_is_unauthorized_and_never_shown(platform: LocalPlatform) -> None:
    async with basic_client(platform, password="wrong-password-123") as agave:
        with pytest.raises(Unauthorized, match="Invalid username/password") as caught:
            await agave.clients.list().to_list()
    for text in (str(caught.value), repr(caught.value), caught.value.body):
        assert "wrong-password-123" not in text


async def test_bad_arguments_fail_before_any_request(platform: LocalPlatform) -> None:
    async with basic_client(platform) as agave:
        with pytest.raises(ValueError, match="client_name"):
            await agave.clients.create("")
        with pytest.raises(ValueError, match="client_name"):
            await agave.clients.get("..")
        with pytest.raises(TypeError, match="client_name"):
            await agave.clients.delete(None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="description"):
            await agave.clients.create("x", 5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="api_name"):
            await agave.clients.add_subscription("x", "")
    async with AgaveClient(platform.agave_url, token=platform.agave.access_token) as bearer_only:
        with pytest.raises(ValueError, match="username and password"):
            await bearer_only.clients.create("x")
    assert platform.stats.count(None, "/agave/clients/*") == 0


async def test_answers_have_the_recorded_shapes(platform: LocalPlatform) -> None:
    async with basic_client(platform) as agave:
        created = await agave.clients.create("shapes", "described", callback_url="https://example.org/cb")
        listed = await agave.clients.list().to_list()
        subs = await agave.clients.list_subscriptions("shapes")
    _shape_matches(RECORDED_CREATE, created.raw)
    _shape_matches(RECORDED_LIST_ENTRY, listed[0].raw)
    _shape_matches(RECORDED_SUBSCRIPTION, subs[0].raw)
