"""astakosclient 0.19, unmodified, in Python 2.7 against the embedded platform: proof it speaks Astakos.

astakosclient is blocking (httplib, or objpool's pooled keep-alive connections, which
the real components such as Cyclades use), discovers the account and ui roots from
``POST tokens`` with no body, sends every body as a byte string (the feedback form
labelled ``application/octet-stream``), reads exactly ``Content-Length`` bytes and maps
statuses to its own exceptions. Each test drives one Python 2.7 process
(:class:`.astakosclient27.Astakos27`) and checks what it got against the emulator's
store. Skipped when no Python 2.7 runs here or pip cannot install astakosclient 0.19.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aioplatform.testing import LocalPlatform

from .astakosclient27 import Astakos27, Astakos27Error, install_astakosclient, python27, tuple_keys

VM, RAM = "cyclades.vm", "cyclades.ram"
DEMO = "demo.example.org"


@pytest.fixture(scope="session")
def py27() -> tuple[str, Path]:
    python, why = python27()
    if python is None:
        pytest.skip(why)
    site, why = install_astakosclient(python)
    if site is None:
        pytest.skip(why)
    return python, site


@pytest.fixture
async def py2(platform: LocalPlatform, py27: tuple[str, Path]) -> AsyncIterator[Astakos27]:
    a = platform.astakos
    tokens = {
        "user": a.user_token, "admin": a.admin_token, "other": a.tokens["other"],
        "service": a.service_token, "pithos": a.component_tokens["pithos"], "nobody": "0" * 32,
    }  # fmt: skip
    # The service client pools its connections as Cyclades does; the user clients do not.
    async with Astakos27(*py27, a.auth_url, tokens, pooled=("service", "pithos")) as driver:
        assert driver.loaded_from.startswith(str(py27[1]))  # the pip-installed copy, not a stray one
        yield driver


async def fails(call: Any) -> Astakos27Error:
    with pytest.raises(Astakos27Error) as caught:
        await call
    return caught.value


def issue(py2: Astakos27, holder: str, provisions: dict[tuple[str, str], int], **options: Any) -> Any:
    """``issue_one_commission(holder, {(project, resource): quantity}, ...)`` with the service token."""
    return py2.call("service", "issue_one_commission", holder, tuple_keys(provisions), **options)


async def holding(platform: LocalPlatform, holder: str, source: str | None, resource: str) -> dict[str, int]:
    found = await platform.astakos.holding(holder, source, resource)
    assert found is not None
    return dict(found)


# -- identity ----------------------------------------------------------------------------------------


async def test_authenticate_get_endpoints_and_validate_token(platform: LocalPlatform, py2: Astakos27) -> None:
    a = platform.astakos
    access = (await py2.call("user", "authenticate"))["access"]
    assert access["token"]["id"] == a.user_token
    assert access["token"]["tenant"] == {"id": a.user_uuid, "name": "Ursula User"}
    assert access["user"]["id"] == a.user_uuid and access["user"]["name"] == "Ursula User"
    assert set(access["user"]["projects"]) == {a.system_project, a.project_uuid}
    # What astakosclient took from the catalog: the account and ui roots of this platform.
    assert await py2.call("user", "account_url") == a.account_url
    assert await py2.call("user", "ui_url") == a.ui_url
    assert await py2.call("user", "account_prefix") == "/astakos/account/v1.0"

    access = (await py2.call("user", "authenticate", tenant_name=a.user_uuid))["access"]
    assert access["user"]["id"] == a.user_uuid
    err = await fails(py2.call("user", "authenticate", tenant_name=a.uuids["admin"]))
    assert (err.type, err.status) == ("BadRequest", 400)
    err = await fails(py2.call("nobody", "authenticate"))
    assert (err.type, err.status) == ("Unauthorized", 401)

    # Public mode (no body, any token): the catalog only.
    catalog = (await py2.call("nobody", "get_endpoints"))["access"]
    assert set(catalog) == {"serviceCatalog"}
    account = [c for c in catalog["serviceCatalog"] if c["name"] == "astakos_account"]
    assert account[0]["endpoints"][0]["versionId"] == "v1.0"
    assert account[0]["endpoints"][0]["publicURL"] == a.account_url

    validated = (await py2.call("service", "validate_token", a.user_token))["access"]
    assert validated["user"]["id"] == a.user_uuid and validated["token"]["id"] == a.user_token
    validated = await py2.call("service", "validate_token", a.user_token, belongs_to=a.user_uuid)
    assert validated["access"]["token"]["tenant"]["id"] == a.user_uuid
    err = await fails(py2.call("service", "validate_token", a.user_token, belongs_to=a.uuids["other"]))
    assert (err.type, err.status) == ("NotFound", 404)


async def test_user_catalogs_with_user_and_service_tokens(platform: LocalPlatform, py2: Astakos27) -> None:
    a = platform.astakos
    me, admin, unknown = a.user_uuid, a.uuids["admin"], "00000000-0000-4000-8000-000000000000"
    expected = {me: "user@example.org", admin: "admin@example.org"}
    for who, prefix in (("user", ""), ("service", "service_")):
        assert await py2.call(who, f"{prefix}get_usernames", [me, admin, unknown]) == expected
        assert await py2.call(who, f"{prefix}get_username", admin) == "admin@example.org"
        err = await fails(py2.call(who, f"{prefix}get_username", unknown))
        assert err.type == "NoUserName"  # raised by the client: the catalog simply omits it
        # Case-insensitive, keyed by the caller's spelling (which get_uuid then looks up).
        names = ["USER@example.org", "other@example.org", "ghost@example.org"]
        assert await py2.call(who, f"{prefix}get_uuids", names) == {
            "USER@example.org": me, "other@example.org": a.uuids["other"],
        }  # fmt: skip
        assert await py2.call(who, f"{prefix}get_uuid", "Admin@Example.org") == admin
        assert (await fails(py2.call(who, f"{prefix}get_uuid", "ghost@example.org"))).type == "NoUUID"
    # Each endpoint takes one kind of token.
    assert (await fails(py2.call("service", "get_usernames", [me]))).status == 401
    assert (await fails(py2.call("user", "service_get_usernames", [me]))).status == 401


async def test_resources_services_and_feedback(platform: LocalPlatform, py2: Astakos27) -> None:
    resources = await py2.call("nobody", "get_resources")  # no auth needed
    assert set(resources) == set(platform.astakos.resources)
    assert "astakos.pending_app" not in resources  # not api-visible
    assert resources[RAM]["unit"] == "bytes" and resources[RAM]["service"] == "cyclades_compute"
    assert resources[VM]["api_visible"] is True

    services = await py2.call("user", "get_services")
    assert [s["name"] for s in services] == ["astakos", "cyclades", "pithos"]

    # urlencoded but labelled application/octet-stream by astakosclient; UTF-8 bytes survive.
    assert await py2.call("user", "send_feedback", "caf\u00e9 is slow", "vm=42&x=1") is None
    assert (await fails(py2.call("nobody", "send_feedback", "hi", ""))).status == 401

    def read(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
        return conn.execute("SELECT user, message, data FROM astakos_feedback ORDER BY id").fetchall()

    rows = await platform.astakos.store.run(read)
    assert [tuple(r) for r in rows] == [(platform.astakos.user_uuid, "caf\u00e9 is slow", "vm=42&x=1")]


# -- quotas ------------------------------------------------------------------------------------------------


async def test_quotas_follow_the_holdings(platform: LocalPlatform, py2: Astakos27) -> None:
    a = platform.astakos
    me, system, demo = a.user_uuid, a.system_project, a.project_uuid
    await a.set_limit(f"user:{me}", f"project:{system}", VM, 7)
    serial = await issue(py2, me, {(system, VM): 2})
    assert isinstance(serial, int)

    quotas = await py2.call("user", "get_quotas")
    assert set(quotas) == {system, demo}
    assert set(quotas[system]) == set(a.resources)
    assert quotas[system][VM] == {
        "limit": 7, "usage": 2, "pending": 2, "project_limit": 10, "project_usage": 2, "project_pending": 2,
    }  # fmt: skip
    user_demo = await holding(platform, f"user:{me}", f"project:{demo}", RAM)
    project_demo = await holding(platform, f"project:{demo}", None, RAM)
    assert quotas[demo][RAM]["limit"] == user_demo["limit"]
    assert quotas[demo][RAM]["project_limit"] == project_demo["limit"]

    # The cyclades component sees only cyclades.* resources, keyed by user then project.
    service = await py2.call("service", "service_get_quotas", user=me)
    assert set(service) == {me} and set(service[me]) == {system, demo}
    assert set(service[me][system]) == {r for r in a.resources if r.startswith("cyclades.")}
    assert service[me][system][VM] == quotas[system][VM]
    both = await py2.call("service", "service_get_quotas", user=[me, a.uuids["other"]], project=system)
    assert set(both) == {me} and set(both[me]) == {system}  # other is no member of this system project
    everyone = await py2.call("service", "service_get_quotas")
    assert set(everyone) == set(a.uuids.values())
    err = await fails(py2.call("service", "service_get_quotas", user="no-such-user"))
    assert (err.type, err.status) == ("NotFound", 404)
    pithos = await py2.call("pithos", "service_get_quotas", user=me)
    assert set(pithos[me][system]) == {"pithos.diskspace"}

    projects = await py2.call("service", "service_get_project_quotas", project=[system, demo])
    assert projects[system][VM] == {"project_limit": 10, "project_usage": 2, "project_pending": 2}
    assert projects[demo][RAM]["project_limit"] == project_demo["limit"]
    err = await fails(py2.call("service", "service_get_project_quotas", project="no-such-project"))
    assert err.status == 404
    assert (await fails(py2.call("user", "service_get_quotas"))).status == 401
    assert (await fails(py2.call("service", "get_quotas"))).status == 401


# -- commissions ------------------------------------------------------------------------------------------


async def test_issue_info_accept_and_reject(platform: LocalPlatform, py2: Astakos27) -> None:
    a = platform.astakos
    me, system = a.user_uuid, a.system_project
    user_key, project_key = (f"user:{me}", f"project:{system}", VM), (f"project:{system}", None, VM)

    first = await issue(py2, me, {(system, VM): 3}, name="three")
    second = await issue(py2, me, {(system, VM): 2})
    assert sorted(await a.commissions()) == [first, second]
    assert await py2.call("service", "get_pending_commissions") == [first, second]
    assert await holding(platform, *user_key) == {"limit": 10, "usage_min": 0, "usage_max": 5}
    assert await holding(platform, *project_key) == {"limit": 10, "usage_min": 0, "usage_max": 5}

    info = await py2.call("service", "get_commission_info", first)
    assert info["serial"] == first and info["name"] == "three" and info["issue_time"]
    assert (
        info["provisions"]
        == (await a.commissions())[first]
        == [
            {"holder": f"user:{me}", "source": f"project:{system}", "resource": VM, "quantity": 3},
            {"holder": f"project:{system}", "source": None, "resource": VM, "quantity": 3},
        ]
    )
    # Another component's namespace does not hold these serials.
    assert await py2.call("pithos", "get_pending_commissions") == []
    assert (await fails(py2.call("pithos", "get_commission_info", first))).type == "NotFound"
    assert (await fails(py2.call("pithos", "accept_commission", first))).type == "NotFound"

    assert await py2.call("service", "accept_commission", first) is None
    assert await holding(platform, *user_key) == {"limit": 10, "usage_min": 3, "usage_max": 5}
    assert await py2.call("service", "reject_commission", second) is None
    assert await holding(platform, *user_key) == {"limit": 10, "usage_min": 3, "usage_max": 3}
    assert await holding(platform, *project_key) == {"limit": 10, "usage_min": 3, "usage_max": 3}
    assert await py2.call("service", "get_pending_commissions") == [] and await a.commissions() == {}
    # Resolved commissions are gone: 404 with an empty body (astakosclient keeps it as `details`).
    err = await fails(py2.call("service", "get_commission_info", first))
    assert (err.type, err.status, err.message, err.details) == ("NotFound", 404, "Not Found", "")
    assert (await fails(py2.call("service", "reject_commission", second))).status == 404

    # A release, auto-accepted: the usage drops at once and nothing stays pending.
    auto = await issue(py2, me, {(system, VM): -1}, auto_accept=True)
    assert isinstance(auto, int) and await py2.call("service", "get_pending_commissions") == []
    assert await holding(platform, *user_key) == {"limit": 10, "usage_min": 2, "usage_max": 2}


async def test_generic_issue_reassignment_and_resolve(platform: LocalPlatform, py2: Astakos27) -> None:
    a = platform.astakos
    me, system, demo = a.user_uuid, a.system_project, a.project_uuid
    before = await a.holdings()

    generic = await py2.call(
        "service", "issue_commission_generic",
        tuple_keys({(me, demo, RAM): 1024}), tuple_keys({(demo, RAM): 1024}), name="generic",
    )  # fmt: skip
    assert {(p["holder"], p["source"], p["quantity"]) for p in (await a.commissions())[generic]} == {
        (f"user:{me}", f"project:{demo}", 1024), (f"project:{demo}", None, 1024),
    }  # fmt: skip
    await issue(py2, me, {(system, VM): 2}, auto_accept=True)
    moved = await py2.call("service", "issue_resource_reassignment", me, tuple_keys({(system, demo, VM): 2}))
    assert len((await a.commissions())[moved]) == 4
    conflicting = await issue(py2, me, {(demo, RAM): 1})

    unknown = max(await a.commissions()) + 1000
    result = await py2.call(
        "service", "resolve_commissions", [generic, moved, unknown, conflicting], [conflicting]
    )
    assert sorted(result["accepted"]) == sorted([generic, moved]) and result["rejected"] == []
    assert [f[0] for f in result["failed"]] == [unknown, conflicting]
    assert result["failed"][0][1]["itemNotFound"]["code"] == 404
    assert result["failed"][1][1]["badRequest"]["code"] == 400
    assert sorted(await a.commissions()) == [conflicting]  # still pending: neither accepted nor rejected

    result = await py2.call("service", "resolve_commissions", [], [conflicting])
    assert result == {"accepted": [], "rejected": [conflicting], "failed": []}
    after = await a.holdings()
    # The two VMs left the system project for the demo project; the RAM import was accepted.
    assert after[(f"user:{me}", f"project:{system}", VM)] == {"limit": 10, "usage_min": 0, "usage_max": 0}
    assert after[(f"user:{me}", f"project:{demo}", VM)]["usage_min"] == 2
    assert after[(f"project:{demo}", None, VM)]["usage_max"] == 2
    user_ram = before[(f"user:{me}", f"project:{demo}", RAM)]
    assert after[(f"user:{me}", f"project:{demo}", RAM)] == {**user_ram, "usage_min": 1024, "usage_max": 1024}


async def test_over_limit_raises_quota_limit_and_changes_nothing(
    platform: LocalPlatform, py2: Astakos27
) -> None:
    a = platform.astakos
    me, system = a.user_uuid, a.system_project
    await a.set_limit(f"user:{me}", f"project:{system}", VM, 4)
    await issue(py2, me, {(system, VM): 2}, auto_accept=True)
    pending = await issue(py2, me, {(system, VM): 1})
    before = await a.holdings()
    assert before[(f"user:{me}", f"project:{system}", VM)] == {"limit": 4, "usage_min": 2, "usage_max": 3}

    err = await fails(issue(py2, me, {(system, RAM): 1, (system, VM): 2}))
    assert (err.type, err.status) == ("QuotaLimit", 413)
    assert err.message == "Resource Limit Exceeded for your account."
    # Rendered from overLimit.data: limit 4 - usage 3 (pending imports count) = 1 available.
    assert err.details == (
        "Limit for resource 'Virtual Machine' exceeded for your account. Available: 1, Requested: 2"
    )
    assert await a.holdings() == before and sorted(await a.commissions()) == [pending]  # all or nothing

    # force lets an import past the limit; it never lets a release below zero.
    forced = await issue(py2, me, {(system, VM): 2}, force=True)
    assert (await holding(platform, f"user:{me}", f"project:{system}", VM))["usage_max"] == 5
    await py2.call("service", "reject_commission", forced)
    err = await fails(issue(py2, me, {(system, VM): -4}, force=True))
    # NoQuantityError: limit 0, usage = the accepted 2 (usage_min).
    assert err.type == "QuotaLimit" and err.details.endswith("Available: -2, Requested: -4")

    # No such holding: 404, not a quota error.
    err = await fails(issue(py2, me, {("no-such-project", VM): 1}))
    assert (err.type, err.status) == ("NotFound", 404)
    assert await a.holdings() == before


# -- projects and memberships -------------------------------------------------------------------------------


async def test_projects_applications_and_memberships(platform: LocalPlatform, py2: Astakos27) -> None:
    a = platform.astakos
    me, other, demo = a.user_uuid, a.uuids["other"], a.project_uuid

    listed = await py2.call("user", "get_projects")
    assert {p["id"] for p in listed} == {a.system_project, demo}
    assert [p["id"] for p in await py2.call("user", "get_projects", name=DEMO)] == [demo]
    assert await py2.call("user", "get_projects", state="suspended") == []
    assert (await fails(py2.call("user", "get_projects", state="sleeping"))).type == "BadRequest"
    project = await py2.call("user", "get_project", demo)
    assert project["name"] == DEMO and project["state"] == "active" and project["system_project"] is False
    assert project["resources"][VM] == {"member_capacity": 100, "project_capacity": 1000}
    assert (await fails(py2.call("user", "get_project", "no-such-project"))).type == "NotFound"

    specs = {
        "name": "science.example.org", "end_date": "2099-01-01T00:00:00+00:00", "join_policy": "auto",
        "leave_policy": "auto", "description": "from astakosclient",
        "resources": {VM: {"project_capacity": 6, "member_capacity": 2}},
    }  # fmt: skip
    created = await py2.call("user", "create_project", specs)
    pid, app = created["id"], created["application"]
    assert isinstance(app, int)
    project = await py2.call("user", "get_project", pid)
    assert project["state"] == "uninitialized" and project["owner"] == me
    assert project["last_application"]["id"] == app and project["last_application"]["state"] == "pending"
    err = await fails(py2.call("user", "application_action", pid, app, "approve", reason="mine"))
    assert (err.type, err.status) == ("Forbidden", 403)
    assert await py2.call("admin", "application_action", pid, app, "approve", reason="fine") is None
    assert (await py2.call("user", "get_project", pid))["state"] == "active"
    assert await holding(platform, f"project:{pid}", None, VM) == {"limit": 6, "usage_min": 0, "usage_max": 0}

    # A second application, cancelled by its applicant: the project never existed.
    cancelled = await py2.call("user", "create_project", {**specs, "name": "gone.example.org"})
    await py2.call("user", "application_action", cancelled["id"], cancelled["application"], "cancel")
    assert (await py2.call("admin", "get_project", cancelled["id"]))["state"] == "deleted"

    # Memberships: join (auto policy), enroll, leave.
    joined = (await py2.call("other", "join_project", pid))["id"]
    membership = await py2.call("user", "get_membership", joined)  # the owner sees it
    assert membership["user"] == other and membership["project"] == pid and membership["state"] == "accepted"
    assert await holding(platform, f"user:{other}", f"project:{pid}", VM) == {
        "limit": 2, "usage_min": 0, "usage_max": 0,
    }  # fmt: skip
    assert [m["id"] for m in await py2.call("user", "get_memberships", pid)] == [joined]
    assert [m["id"] for m in await py2.call("user", "get_memberships", project=pid)] == [joined]
    mine = await py2.call("user", "get_memberships")
    assert {(m["project"], m["state"]) for m in mine if m["user"] == me} == {
        (a.system_project, "accepted"), (demo, "accepted"),
    }  # fmt: skip
    assert await py2.call("other", "membership_action", joined, "leave", "bye") is None
    assert (await py2.call("other", "get_membership", joined))["state"] == "removed"
    assert (await holding(platform, f"user:{other}", f"project:{pid}", VM))["limit"] == 0
    enrolled = (await py2.call("user", "enroll_member", pid, "other@example.org"))["id"]
    assert enrolled == joined and (await py2.call("other", "get_membership", joined))["state"] == "accepted"
    assert (await fails(py2.call("user", "join_project", "no-such-project"))).status == 404

    # Project actions (admins only) and a modification.
    assert (await fails(py2.call("user", "project_action", pid, "suspend", "no"))).status == 403
    assert await py2.call("admin", "project_action", pid, "suspend", "audit") is None
    assert (await py2.call("user", "get_project", pid))["state"] == "suspended"
    assert await py2.call("admin", "project_action", pid, "unsuspend") is None
    modified = await py2.call("user", "modify_project", pid, {"description": "chang\u00e9"})
    assert modified["id"] == pid and modified["application"] > app
    await py2.call("admin", "application_action", pid, modified["application"], "approve")
    assert (await py2.call("other", "get_project", pid))["description"] == "chang\u00e9"
