"""Commissions: issue, the limit checks, pending/info/accept/reject, and resolve (one request or chunked)."""

from __future__ import annotations

import pytest

from aioplatform import BadRequest, NotFound, ServerError, TransportError, Unauthorized
from aioplatform.astakos import AstakosClient, CommissionRequest, QuotaLimit
from aioplatform.astakos.commissions import RESOLVE_RESENDS
from aioplatform.testing import LocalPlatform

from .conftest import FAST

VM = "cyclades.vm"


def holder_keys(platform: LocalPlatform) -> tuple[tuple[str, str, str], tuple[str, None, str]]:
    u = platform.astakos.user_uuid
    return (f"user:{u}", f"project:{u}", VM), (f"project:{u}", None, VM)


async def usage(platform: LocalPlatform) -> tuple[dict[str, int] | None, dict[str, int] | None]:
    user_key, project_key = holder_keys(platform)
    return await platform.astakos.holding(*user_key), await platform.astakos.holding(*project_key)


async def test_issue_one_commission_holds_usage_until_accepted(
    platform: LocalPlatform, service: AstakosClient
) -> None:
    u = platform.astakos.user_uuid
    serial = await service.issue_one_commission(u, u, {VM: 3}, name="three vms")
    assert await service.get_pending_commissions() == [serial]
    info = await service.get_commission_info(serial)
    assert info.serial == serial and info.name == "three vms"
    assert [(p.holder, p.source, p.quantity) for p in info.provisions] == [
        (f"user:{u}", f"project:{u}", 3),
        (f"project:{u}", None, 3),
    ]
    assert info["provisions"][1]["source"] is None
    assert info.provisions[0]["quantity"] == 3
    user_h, project_h = await usage(platform)
    assert user_h == {"limit": 10, "usage_min": 0, "usage_max": 3}
    assert project_h == {"limit": 10, "usage_min": 0, "usage_max": 3}

    await service.accept_commission(serial)
    assert await service.get_pending_commissions() == []
    user_h, _ = await usage(platform)
    assert user_h == {"limit": 10, "usage_min": 3, "usage_max": 3}
    with pytest.raises(NotFound) as caught:
        await service.get_commission_info(serial)
    assert caught.value.body == ""


async def test_rejecting_undoes_an_import_and_a_release(
    platform: LocalPlatform, service: AstakosClient
) -> None:
    u = platform.astakos.user_uuid
    await service.issue_one_commission(u, u, {VM: 4}, auto_accept=True)
    assert await service.get_pending_commissions() == []
    release = await service.issue_one_commission(u, u, {VM: -3})
    assert (await usage(platform))[0] == {"limit": 10, "usage_min": 1, "usage_max": 4}
    await service.reject_commission(release)
    assert (await usage(platform))[0] == {"limit": 10, "usage_min": 4, "usage_max": 4}
    release = await service.issue_one_commission(u, u, {VM: -3})
    await service.commission_action(release, "accept")
    assert (await usage(platform))[0] == {"limit": 10, "usage_min": 1, "usage_max": 1}


async def test_over_the_limit_is_a_quota_limit_with_the_figures_and_nothing_is_held(
    platform: LocalPlatform, service: AstakosClient
) -> None:
    u = platform.astakos.user_uuid
    await service.issue_one_commission(u, u, {VM: 4})
    with pytest.raises(QuotaLimit) as caught:
        await service.issue_one_commission(u, u, {"cyclades.cpu": 1, VM: 7})
    error = caught.value
    assert error.status == 413
    assert error.kind == "NoCapacityError" and error.resource == VM
    assert (error.limit, error.usage, error.requested, error.available) == (10, 4, 7, 6)
    assert "Available: 6, Requested: 7" in str(error)
    # all or nothing: the cpu provision that passed was reverted too
    cpu = await platform.astakos.holding(f"user:{u}", f"project:{u}", "cyclades.cpu")
    assert cpu == {"limit": 40, "usage_min": 0, "usage_max": 0}
    assert (await usage(platform))[0] == {"limit": 10, "usage_min": 0, "usage_max": 4}


async def test_force_passes_the_limit_but_never_a_release_below_zero(
    platform: LocalPlatform, service: AstakosClient
) -> None:
    u = platform.astakos.user_uuid
    forced = await service.issue_one_commission(u, u, {VM: 15}, force=True)
    assert (await usage(platform))[0] == {"limit": 10, "usage_min": 0, "usage_max": 15}
    with pytest.raises(QuotaLimit) as caught:
        await service.issue_one_commission(u, u, {VM: -1}, force=True)
    assert caught.value.kind == "NoQuantityError" and caught.value.requested == 1
    await service.reject_commission(forced)


async def test_provisions_on_one_holding_are_merged_before_the_check(
    platform: LocalPlatform, service: AstakosClient
) -> None:
    u = platform.astakos.user_uuid
    key = (u, u, VM)
    serial = await service.issue_commission_generic({key: 6}, {(u, VM): 1})
    info = await service.get_commission_info(serial)
    assert len(info.provisions) == 2
    # 6 held; 3 + 3 more is 12 > 10 once merged, though each line alone (9) fits
    request = CommissionRequest(CommissionRequest.generic({key: 3}, {}).provisions * 2, name="merged")
    with pytest.raises(QuotaLimit) as caught:
        await service.issue_commission(request)
    assert caught.value.requested == 6


async def test_a_missing_holding_is_not_found_with_the_provision(
    platform: LocalPlatform, service: AstakosClient
) -> None:
    with pytest.raises(NotFound, match="There is no such holding") as caught:
        await service.issue_one_commission("nobody", "nowhere", {VM: 1})
    assert "NoHoldingError" in caught.value.body


async def test_resource_reassignment_moves_usage_between_projects(
    platform: LocalPlatform, service: AstakosClient
) -> None:
    a = platform.astakos
    u, p = a.user_uuid, a.project_uuid
    await service.issue_one_commission(u, u, {VM: 2}, auto_accept=True)
    await service.issue_resource_reassignment(u, {(u, p, VM): 2}, auto_accept=True)
    assert await a.holding(f"user:{u}", f"project:{u}", VM) == {"limit": 10, "usage_min": 0, "usage_max": 0}
    assert (await a.holding(f"user:{u}", f"project:{p}", VM) or {})["usage_min"] == 2


async def test_a_bad_issue_body_is_a_bad_request_with_the_servers_message(
    platform: LocalPlatform, service: AstakosClient
) -> None:
    response_error = None
    try:
        await service._account("POST", "commissions", json={"provisions": "nope"})
    except BadRequest as exc:
        response_error = exc
    assert response_error is not None and response_error.message == "Provisions should be a list."


async def test_commission_calls_need_a_service_token(platform: LocalPlatform, user: AstakosClient) -> None:
    u = platform.astakos.user_uuid
    with pytest.raises(Unauthorized):
        await user.issue_one_commission(u, u, {VM: 1})
    assert await platform.astakos.commissions() == {}


async def test_accepting_an_unknown_serial_is_an_empty_not_found(service: AstakosClient) -> None:
    with pytest.raises(NotFound) as caught:
        await service.accept_commission(999)
    assert caught.value.body == "" and caught.value.status == 404


async def test_resolve_reports_unknown_and_conflicting_serials_as_failed(
    platform: LocalPlatform, service: AstakosClient
) -> None:
    u = platform.astakos.user_uuid
    s1, s2, s3 = [await service.issue_one_commission(u, u, {VM: 1}) for _ in range(3)]
    result = await service.resolve_commissions([s1, s3, 777], [s2, s3])
    assert result.accepted == [s1] and result.rejected == [s2]
    assert [(s, f.name, f.code) for s, f in result.failed] == [
        (777, "itemNotFound", 404),
        (s3, "badRequest", 400),
    ]
    assert result["failed"][0] == [
        777,
        {"itemNotFound": {"message": "serial 777 does not exist", "code": 404}},
    ]
    assert await service.get_pending_commissions() == [s3]


async def test_chunked_resolve_merges_the_chunks_and_never_sends_a_conflicting_serial(
    platform: LocalPlatform, service: AstakosClient
) -> None:
    u = platform.astakos.user_uuid
    await platform.astakos.set_limit(f"user:{u}", f"project:{u}", VM, 1000)
    await platform.astakos.set_limit(f"project:{u}", None, VM, 1000)
    result = await service.issue_many([CommissionRequest.one(u, u, {VM: 1}) for _ in range(50)])
    serials = result.values
    accept, reject = serials[:30], serials[30:]
    resolved = await service.resolve_commissions(
        [*accept, 999999], [*reject, serials[0]], chunk_size=7, concurrency=4
    )
    assert resolved.accepted == accept[1:]
    assert resolved.rejected == reject
    assert [(s, f.name) for s, f in resolved.failed] == [
        (999_999, "itemNotFound"),
        (serials[0], "badRequest"),
    ]
    assert (
        platform.stats.count("POST", "/astakos/account/v1.0/commissions/action") == 7
    )  # 49 pending serials sent, 7 a chunk: the unknown one is reported without being sent
    assert await service.get_pending_commissions() == [serials[0]]
    assert (await usage(platform))[0] == {"limit": 1000, "usage_min": 29, "usage_max": 30}


async def test_bad_commission_arguments_fail_before_any_request(
    platform: LocalPlatform, service: AstakosClient
) -> None:
    with pytest.raises(TypeError, match="quantity"):
        await service.issue_one_commission("u", "p", {VM: 1.5})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="force"):
        await service.issue_one_commission("u", "p", {VM: 1}, force="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="action"):
        await service.commission_action(1, "approve")
    with pytest.raises(TypeError, match="accept_serials"):
        await service.resolve_commissions("12", [])
    with pytest.raises(ValueError, match="chunk_size"):
        await service.resolve_commissions([1], [], chunk_size=0)
    with pytest.raises(TypeError, match=r"requests\[1\]"):
        await service.issue_many([CommissionRequest.one("u", "p", {VM: 1}), {"holder": "u"}])  # type: ignore[list-item]
    assert platform.stats.requests == 0


ISSUE_ROUTE = "POST /astakos/account/v1.0/commissions"


async def test_an_issue_answered_503_is_sent_again_and_held_once(platform: LocalPlatform) -> None:
    u = platform.astakos.user_uuid
    platform.faults.script(ISSUE_ROUTE, [503, 429])
    async with AstakosClient(platform.astakos_service_token, platform.astakos_auth_url, retry=FAST) as client:
        serial = await client.issue_one_commission(u, u, {VM: 1})
    assert list(await platform.astakos.commissions()) == [serial]
    assert platform.stats.count("POST", "/astakos/account/v1.0/commissions") == 3


async def test_an_issue_whose_answer_is_lost_fails_and_is_never_sent_again(platform: LocalPlatform) -> None:
    u = platform.astakos.user_uuid
    platform.faults.script(ISSUE_ROUTE, ["drop_after"])
    async with AstakosClient(platform.astakos_service_token, platform.astakos_auth_url, retry=FAST) as client:
        with pytest.raises(TransportError):
            await client.issue_one_commission(u, u, {VM: 1})
        # the handler ran: the commission exists once, pending, and the client can find it
        assert len(await client.get_pending_commissions()) == 1
    assert platform.stats.count("POST", "/astakos/account/v1.0/commissions") == 1


async def test_an_issue_answered_500_is_a_server_error_and_not_retried(platform: LocalPlatform) -> None:
    u = platform.astakos.user_uuid
    platform.faults.script(ISSUE_ROUTE, [500])
    async with AstakosClient(platform.astakos_service_token, platform.astakos_auth_url, retry=FAST) as client:
        with pytest.raises(ServerError):
            await client.issue_one_commission(u, u, {VM: 1})
    assert platform.stats.count("POST", "/astakos/account/v1.0/commissions") == 1


RESOLVE_ROUTE = "POST /astakos/account/v1.0/commissions/action"


async def test_a_chunk_whose_answer_was_lost_after_the_server_acted_is_reported_resolved_not_resent(
    platform: LocalPlatform,
) -> None:
    u = platform.astakos.user_uuid
    async with AstakosClient(platform.astakos_service_token, platform.astakos_auth_url, retry=FAST) as client:
        serials = [await client.issue_one_commission(u, u, {VM: 1}) for _ in range(4)]
        before = platform.stats.count("POST", "*/commissions/action")
        platform.faults.script(RESOLVE_ROUTE, ["drop_after"])
        result = await client.resolve_commissions(serials[:3], serials[3:], chunk_size=2, concurrency=1)
        assert sorted(result.accepted) == serials[:3] and result.rejected == serials[3:]
        assert result.failed == []
        assert platform.stats.count("POST", "*/commissions/action") - before == 2  # nothing re-sent
        assert await client.get_pending_commissions() == []
    assert (await usage(platform))[0]["usage_min"] == 3  # accepted once each, never twice


async def test_a_chunk_that_failed_before_the_server_acted_is_sent_once_more(platform: LocalPlatform) -> None:
    u = platform.astakos.user_uuid
    async with AstakosClient(platform.astakos_service_token, platform.astakos_auth_url, retry=FAST) as client:
        serials = [await client.issue_one_commission(u, u, {VM: 1}) for _ in range(4)]
        before = platform.stats.count("POST", "*/commissions/action")
        platform.faults.script(RESOLVE_ROUTE, [500])  # answered by the middleware: the handler never ran
        result = await client.resolve_commissions(serials, [], chunk_size=2, concurrency=1)
        assert sorted(result.accepted) == serials and result.failed == []
        assert platform.stats.count("POST", "*/commissions/action") - before == 3
        assert await client.get_pending_commissions() == []


async def test_a_chunk_that_fails_on_every_resend_reports_each_of_its_serials_with_the_exception(
    platform: LocalPlatform,
) -> None:
    u = platform.astakos.user_uuid
    async with AstakosClient(platform.astakos_service_token, platform.astakos_auth_url, retry=FAST) as client:
        serials = [await client.issue_one_commission(u, u, {VM: 1}) for _ in range(4)]
        # the first send and each of the RESOLVE_RESENDS resends of the provably pending serials
        platform.faults.script(RESOLVE_ROUTE, [500, "ok", *[500] * RESOLVE_RESENDS])
        result = await client.resolve_commissions(serials, [], chunk_size=2, concurrency=1)
        assert platform.stats.count("POST", "*/commissions/action") == 2 + RESOLVE_RESENDS
        assert result.accepted == serials[2:]
        assert [s for s, _ in result.failed] == serials[:2]
        fault = result.failed[0][1]
        assert isinstance(fault.exception, ServerError) and fault.code == 500
        assert await client.get_pending_commissions() == serials[:2]


async def test_the_019_form_of_issue_one_commission_is_accepted(
    platform: LocalPlatform, service: AstakosClient
) -> None:
    a = platform.astakos
    u, p = a.user_uuid, a.project_uuid
    serial = await service.issue_one_commission(u, {(p, VM): 2, (u, "cyclades.cpu"): 1})
    info = await service.get_commission_info(serial)
    assert [(x.holder, x.source, x.resource, x.quantity) for x in info.provisions] == [
        (f"user:{u}", f"project:{p}", VM, 2),
        (f"project:{p}", None, VM, 2),
        (f"user:{u}", f"project:{u}", "cyclades.cpu", 1),
        (f"project:{u}", None, "cyclades.cpu", 1),
    ]


async def test_another_components_commissions_are_invisible(
    platform: LocalPlatform, service: AstakosClient
) -> None:
    u = platform.astakos.user_uuid
    serial = await service.issue_one_commission(u, u, {VM: 1})
    async with AstakosClient(
        platform.astakos.component_tokens["pithos"], platform.astakos_auth_url
    ) as pithos:
        assert await pithos.get_pending_commissions() == []
        with pytest.raises(NotFound):
            await pithos.get_commission_info(serial)
        result = await pithos.resolve_commissions([serial], [])
        assert [(s, f.name) for s, f in result.failed] == [(serial, "itemNotFound")]
    assert await service.get_pending_commissions() == [serial]


@pytest.mark.parametrize(
    ("quantity", "accept", "while_pending", "after"),
    [
        # §5.4: (usage_min, usage_max) from (5, 5) while pending, then once resolved
        (2, True, (5, 7), (7, 7)),  # import, accept: usage_min += q
        (2, False, (5, 7), (5, 5)),  # import, reject: usage_max -= q
        (-2, True, (3, 5), (3, 3)),  # release, accept: usage_max -= q
        (-2, False, (3, 5), (5, 5)),  # release, reject: usage_min += q
    ],
)
async def test_each_cell_of_the_resolution_table(
    platform: LocalPlatform,
    service: AstakosClient,
    quantity: int,
    accept: bool,
    while_pending: tuple[int, int],
    after: tuple[int, int],
) -> None:
    u = platform.astakos.user_uuid
    await service.issue_one_commission(u, u, {VM: 5}, auto_accept=True)
    serial = await service.issue_one_commission(u, u, {VM: quantity})
    for holding in await usage(platform):
        assert holding is not None and (holding["usage_min"], holding["usage_max"]) == while_pending
    quota = (await service.service_get_quotas(user=u))[u][u][VM]
    assert (quota.usage, quota.pending) == (while_pending[1], while_pending[1] - while_pending[0])
    await service.commission_action(serial, "accept" if accept else "reject")
    for holding in await usage(platform):
        assert holding is not None and (holding["usage_min"], holding["usage_max"]) == after
    assert await service.get_pending_commissions() == []


async def test_a_release_below_zero_names_what_can_be_released(
    platform: LocalPlatform, service: AstakosClient
) -> None:
    u = platform.astakos.user_uuid
    await service.issue_one_commission(u, u, {VM: 3}, auto_accept=True)
    with pytest.raises(QuotaLimit) as caught:
        await service.issue_one_commission(u, u, {VM: -5})
    error = caught.value
    assert (error.kind, error.limit, error.usage, error.requested, error.available) == (
        "NoQuantityError", 0, 3, 5, 3,
    )  # fmt: skip
    assert error.holder == f"user:{u}" and error.data["provision"]["quantity"] == -5
    assert "Available: 3, Requested: 5" in str(error)
    assert (await usage(platform))[0] == {"limit": 10, "usage_min": 3, "usage_max": 3}


async def test_a_lost_chunk_whose_fate_cannot_be_read_is_failed_and_the_other_chunks_are_kept(
    platform: LocalPlatform,
) -> None:
    u = platform.astakos.user_uuid
    async with AstakosClient(platform.astakos_service_token, platform.astakos_auth_url, retry=FAST) as client:
        serials = [await client.issue_one_commission(u, u, {VM: 1}) for _ in range(4)]
        platform.faults.script(RESOLVE_ROUTE, ["drop_after"])  # chunk 1 resolved, its answer lost
        # the pending list is read once before sending, then every re-read fails
        platform.faults.script("GET /astakos/account/v1.0/commissions", ["ok"] + [500] * FAST.max_attempts)
        result = await client.resolve_commissions(serials, [], chunk_size=2, concurrency=1)
        assert result.accepted == serials[2:]
        assert [s for s, _ in result.failed] == serials[:2]
        assert all(isinstance(f.exception, TransportError) for _, f in result.failed)
    assert list(await platform.astakos.commissions()) == []  # the lost chunk was resolved, once
    assert (await usage(platform))[0]["usage_min"] == 4


async def test_a_commission_without_provisions_is_refused_naming_them(
    platform: LocalPlatform, service: AstakosClient
) -> None:
    with pytest.raises(ValueError, match="provisions"):
        await service.issue_one_commission("u", "p", {})
    with pytest.raises(ValueError, match="provisions"):
        await service.issue_commission_generic({}, {})
    with pytest.raises(TypeError, match="on_progress"):
        await service.issue_many([CommissionRequest.one("u", "p", {VM: 1})], on_progress=5)  # type: ignore[arg-type]
    assert platform.stats.requests == 0
