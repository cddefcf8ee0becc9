"""Resources, services, feedback, quotas, and how cloudFault bodies become typed errors."""

from __future__ import annotations

import sqlite3

import pytest

from aioplatform import (
    APIError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PlatformError,
    RetryPolicy,
    ServerError,
    Unauthorized,
)
from aioplatform.astakos import AstakosClient, QuotaLimit
from aioplatform.testing import LocalPlatform


async def test_resources_lists_the_api_visible_ones(user: AstakosClient) -> None:
    resources = await user.get_resources()
    assert "astakos.pending_app" not in resources
    vm = resources["cyclades.vm"]
    assert vm.service == "cyclades_compute" and vm.api_visible
    assert resources["cyclades.ram"]["unit"] == "bytes"


async def test_services_come_from_the_discovered_ui_root(
    platform: LocalPlatform, user: AstakosClient
) -> None:
    services = await user.get_services()
    assert [s["name"] for s in services] == ["astakos", "cyclades", "pithos"]
    assert platform.stats.count("GET", "/astakos/ui/get_services") == 1


async def test_feedback_is_sent_as_a_form_and_stored(platform: LocalPlatform, user: AstakosClient) -> None:
    await user.send_feedback("it works & well", data="client=aioplatform")

    def read(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
        return conn.execute("SELECT user, message, data FROM astakos_feedback").fetchall()

    rows = await platform.store.run(read)
    assert [tuple(r) for r in rows] == [(platform.astakos.user_uuid, "it works & well", "client=aioplatform")]
    with pytest.raises(ValueError, match="message"):
        await user.send_feedback("")


async def test_get_quotas_reports_usage_and_pending_per_project(
    platform: LocalPlatform, user: AstakosClient, service: AstakosClient
) -> None:
    a = platform.astakos
    u = a.user_uuid
    await service.issue_one_commission(u, u, {"cyclades.vm": 2}, auto_accept=True)
    await service.issue_one_commission(u, u, {"cyclades.vm": 3})
    quotas = await user.get_quotas()
    assert set(quotas) == {u, a.project_uuid}
    vm = quotas[u]["cyclades.vm"]
    assert (vm.limit, vm.usage, vm.pending) == (10, 5, 3)
    assert (vm.project_limit, vm.project_usage, vm.project_pending) == (10, 5, 3)
    assert vm.available == 5 and vm["usage"] == 5


async def test_service_quotas_cover_the_components_resources_only(
    platform: LocalPlatform, service: AstakosClient
) -> None:
    a = platform.astakos
    everyone = await service.service_get_quotas()
    assert set(everyone) == {a.uuids["user"], a.uuids["admin"], a.uuids["other"]}
    resources = {r for by_p in everyone.values() for by_r in by_p.values() for r in by_r}
    assert resources == {"cyclades.vm", "cyclades.cpu", "cyclades.ram", "cyclades.disk"}
    one = await service.service_get_quotas(user=a.user_uuid, project_id=[a.project_uuid])
    assert list(one) == [a.user_uuid] and list(one[a.user_uuid]) == [a.project_uuid]
    with pytest.raises(NotFound, match="No user with UUID 'nobody'"):
        await service.service_get_quotas(user="nobody")


async def test_service_project_quotas_and_their_filter(
    platform: LocalPlatform, service: AstakosClient
) -> None:
    a = platform.astakos
    quotas = await service.service_get_project_quotas(a.project_uuid)
    vm = quotas[a.project_uuid]["cyclades.vm"]
    assert (vm.project_limit, vm.project_usage, vm.project_pending) == (1000, 0, 0)
    assert a.user_uuid in await service.service_get_project_quotas()
    with pytest.raises(NotFound, match="No project with UUID"):
        await service.service_get_project_quotas("nope")


async def test_an_unknown_endpoint_is_a_bad_request_with_the_cloudfault_message(user: AstakosClient) -> None:
    with pytest.raises(BadRequest) as caught:
        await user._account("GET", "no/such/thing")
    assert caught.value.message == "API endpoint not found"
    assert '"badRequest"' in caught.value.body


async def test_each_fault_status_is_its_error_with_the_faults_message(
    platform: LocalPlatform, user: AstakosClient, service: AstakosClient, admin: AstakosClient
) -> None:
    a = platform.astakos
    with pytest.raises(BadRequest) as bad:
        await user._account("GET", "no/such/thing")
    assert bad.value.message == "API endpoint not found" and bad.value.status == 400
    with pytest.raises(Unauthorized) as unauthorized:
        await service.get_quotas()
    assert unauthorized.value.message == "Invalid X-Auth-Token"
    submitted = await admin.create_project(
        {"name": "hidden.example.org", "end_date": "2099-01-01T00:00:00+00:00", "private": True}
    )
    with pytest.raises(Forbidden, match="You do not have access to this project"):
        await user.get_project(submitted.id)
    with pytest.raises(NotFound, match="No user with UUID 'ghost'") as fault_404:
        await service.service_get_quotas(user="ghost")
    assert '"itemNotFound"' in fault_404.value.body
    with pytest.raises(NotFound) as empty_404:
        await service.reject_commission(424242)
    assert empty_404.value.body == "" and empty_404.value.method == "POST"
    with pytest.raises(APIError, match="Method not allowed") as not_allowed:
        await user._account("DELETE", "quotas")
    assert not_allowed.value.status == 405
    with pytest.raises(Conflict, match="Membership already exists"):
        await user.join_project(a.project_uuid)
    with pytest.raises(QuotaLimit, match="Available: 10, Requested: 11") as over:
        await service.issue_one_commission(a.user_uuid, a.user_uuid, {"cyclades.vm": 11})
    assert over.value.status == 413 and isinstance(over.value, APIError)
    platform.faults.script("GET /astakos/account/v1.0/quotas", [503])
    with pytest.raises(ServerError, match="injected fault 503") as unavailable:
        await user.with_options(retry=RetryPolicy(max_attempts=1)).get_quotas()
    assert unavailable.value.status == 503
    for caught in (bad, unauthorized, fault_404, empty_404, not_allowed, over, unavailable):
        assert isinstance(caught.value, PlatformError)
        assert a.user_token not in str(caught.value) and a.service_token not in str(caught.value)


async def test_astakosclient_019_keyword_names_work_too(
    platform: LocalPlatform, service: AstakosClient, user: AstakosClient
) -> None:
    a = platform.astakos
    by_doc = await service.service_get_quotas(user=a.user_uuid, project_id=a.project_uuid)
    by_code = await service.service_get_quotas(user=a.user_uuid, project=a.project_uuid)
    assert by_doc == by_code and list(by_code[a.user_uuid]) == [a.project_uuid]
    assert await service.service_get_project_quotas(project=[a.project_uuid]) == (
        await service.service_get_project_quotas(project_id=[a.project_uuid])
    )
    memberships = await user.get_memberships(project=a.project_uuid).to_list()
    assert [m.project for m in memberships] == [a.project_uuid]
    assert (await user.get_endpoints(extra=True)).endpoint("astakos_account") is not None
    sent = platform.stats.requests
    with pytest.raises(TypeError, match="project_id or project"):
        await service.service_get_quotas(project_id="p", project="p")
    with pytest.raises(TypeError, match="project_id or project"):
        user.get_memberships("p", project="p")
    assert platform.stats.requests == sent
