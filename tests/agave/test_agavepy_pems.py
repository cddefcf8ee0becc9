"""agavepy 0.9.5's per-user permission and role reads, unmodified, against the embedded
Agave's TLS site: each answers the form agavepy's spec declares (apps' and jobs'
``listPermissionsForUser`` a list of at most one, systems' ``getRoleForUser`` and meta's
``listMetadataPermissionsForUser`` one object), checked against the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from aioplatform.testing import LocalPlatform
from aioplatform.testing.agave.defaults import DEFAULT_STORAGE_SYSTEM, SEEDED_APP

from .agavepy_harness import agavepy_client, agavepy_platform, query


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    with agavepy_platform(tmp_path_factory.mktemp("agavepy-pems-home")) as p:
        yield p


@pytest.fixture(scope="module")
def ag(platform: LocalPlatform) -> Any:
    return agavepy_client(platform)


def test_per_user_reads_answer_the_form_agavepys_spec_declares(platform: LocalPlatform, ag: Any) -> None:
    job = ag.jobs.submit(
        body={"name": "pems", "appId": SEEDED_APP,
              "inputs": {"query1": f"agave://{DEFAULT_STORAGE_SYSTEM}/data/pems.txt"}}
    )  # fmt: skip
    ag.jobs.updatePermissionsForUser(jobId=job["id"], username="bob", body={"permission": "READ_WRITE"})
    stored = query(
        platform, "SELECT read, write FROM agave_jobs_pems WHERE job_id = ? AND username = 'bob'", job["id"]
    )
    assert stored == [(1, 1)]
    rows = ag.jobs.listPermissionsForUser(jobId=job["id"], username="bob")
    assert isinstance(rows, list) and [(r["username"], r["permission"]) for r in rows] == [
        ("bob", {"read": True, "write": True})
    ]

    ag.apps.updatePermissionsForUser(appId=SEEDED_APP, username="bob", body={"permission": "READ_EXECUTE"})
    stored = query(
        platform, "SELECT read, write, execute FROM agave_apps_pems WHERE app_id = ? AND username = 'bob'",
        SEEDED_APP,
    )  # fmt: skip
    assert stored == [(1, 0, 1)]
    rows = ag.apps.listPermissionsForUser(appId=SEEDED_APP, username="bob")
    assert isinstance(rows, list) and [(r["username"], r["permission"]) for r in rows] == [
        ("bob", {"read": True, "write": False, "execute": True})
    ]

    ag.systems.updateRoleForUser(systemId=DEFAULT_STORAGE_SYSTEM, username="bob", body={"role": "USER"})
    stored = query(
        platform, "SELECT role FROM agave_systems_roles WHERE system_id = ? AND username = 'bob'",
        DEFAULT_STORAGE_SYSTEM,
    )  # fmt: skip
    assert stored == [("USER",)]
    role = ag.systems.getRoleForUser(systemId=DEFAULT_STORAGE_SYSTEM, username="bob")
    assert not isinstance(role, list) and (role["username"], role["role"]) == ("bob", "USER")

    record = ag.meta.addMetadata(body={"name": "pems", "value": {}})
    ag.meta.updateMetadataPermissionsForUser(uuid=record["uuid"], username="bob", body={"permission": "READ"})
    one = ag.meta.listMetadataPermissionsForUser(uuid=record["uuid"], username="bob")
    assert not isinstance(one, list) and (one["username"], one["permission"]["read"]) == ("bob", True)
