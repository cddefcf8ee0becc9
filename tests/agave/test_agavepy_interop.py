"""agavepy 0.9.5 runs unmodified against the embedded Agave (issue 11).

The real agavepy from PyPI talks to the platform's TLS site (``https://127.0.0.2``,
port 443, ``verify=<ca.pem>``, a fresh ``HOME``); every result agavepy returns is
checked against the embedded store or the files on disk, not just for "no exception".
Under ``CI=true`` nothing here may skip (see agavepy_harness.py).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from aioplatform.testing import LocalPlatform
from aioplatform.testing.agave.defaults import DEFAULT_EXECUTION_SYSTEM, DEFAULT_STORAGE_SYSTEM, SEEDED_APP

from .agavepy_harness import agavepy_client, agavepy_platform, query

STORAGE = DEFAULT_STORAGE_SYSTEM


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    with agavepy_platform(tmp_path_factory.mktemp("agavepy-home")) as p:
        yield p


@pytest.fixture(scope="module")
def ag(platform: LocalPlatform) -> Any:
    """One agavepy client for the module, from the password grant at construction."""
    return agavepy_client(platform)


def _disk(platform: LocalPlatform, system_id: str, path: str) -> Path:
    assert platform.data_dir is not None
    return platform.data_dir / "agave" / system_id / path


def _token_user(platform: LocalPlatform, access_token: str) -> list[tuple[Any, ...]]:
    return query(platform, "SELECT username FROM agave_tokens WHERE access_token = ?", access_token)


# -- tokens ------------------------------------------------------------------------------------


def test_password_grant_at_construction_gives_a_token_the_store_issued(platform: LocalPlatform) -> None:
    before = platform.stats.count("POST", "/token")
    client = agavepy_client(platform)
    info = client.token.token_info
    assert platform.stats.count("POST", "/token") == before + 1
    assert _token_user(platform, info["access_token"]) == [(platform.agave.username,)]
    assert query(platform, "SELECT 1 FROM agave_tokens WHERE refresh_token = ?", info["refresh_token"]) == [
        (1,)
    ]
    assert int(info["expires_in"]) == 14400


def test_expired_access_token_is_refreshed_by_agavepy_itself(platform: LocalPlatform) -> None:
    access, refresh = platform.call(lambda: platform.agave.issue_token(lifetime=0))
    client = agavepy_client(platform, username=None, password=None, token=access, refresh_token=refresh)
    tokens_before = platform.stats.count("POST", "/token")
    listing_path = f"/files/v2/listings/system/{STORAGE}/"
    listings_before = platform.stats.count("GET", listing_path)

    listing = client.files.list(systemId=STORAGE, filePath="")

    assert listing[0]["name"] == "."
    # One 401 fault, one refresh grant, one retry that succeeded.
    assert platform.stats.count("POST", "/token") == tokens_before + 1
    assert platform.stats.count("GET", listing_path) == listings_before + 2
    new_access = client.token.token_info["access_token"]
    new_refresh = client.token.token_info["refresh_token"]
    assert new_access != access and new_refresh != refresh
    assert _token_user(platform, new_access) == [(platform.agave.username,)]
    # The old refresh token is spent (rotated), as the gateway does.
    assert query(platform, "SELECT refresh_used FROM agave_tokens WHERE refresh_token = ?", refresh) == [(1,)]
    # Later calls carry the new token without another refresh.
    client.files.list(systemId=STORAGE, filePath="")
    assert platform.stats.count("POST", "/token") == tokens_before + 1


def test_an_unknown_token_without_refresh_credentials_surfaces_as_http_error(platform: LocalPlatform) -> None:
    client = agavepy_client(
        platform, username=None, password=None, api_key=None, api_secret=None, token="0" * 32
    )
    with pytest.raises(requests.HTTPError) as caught:
        client.files.list(systemId=STORAGE, filePath="")
    assert caught.value.response.status_code == 401
    assert caught.value.response.json()["fault"]["code"] == 900901


def test_token_expired_mid_session_is_refreshed_and_rotated(platform: LocalPlatform) -> None:
    client = agavepy_client(platform)  # the password grant; then the gateway expires its token
    old_access = client.token.token_info["access_token"]
    old_refresh = client.token.token_info["refresh_token"]
    platform.call(lambda: platform.agave.expire_token(old_access))
    assert _token_user(platform, old_access) == [(platform.agave.username,)]  # still known, expired

    listed = client.apps.list()

    assert SEEDED_APP in {app["id"] for app in listed}
    new_access = client.token.token_info["access_token"]
    assert new_access != old_access and client.token.token_info["refresh_token"] != old_refresh
    live = query(
        platform, "SELECT 1 FROM agave_tokens WHERE access_token = ? AND expires > ?", new_access, time.time()
    )
    assert live == [(1,)]
    assert query(platform, "SELECT refresh_used FROM agave_tokens WHERE refresh_token = ?", old_refresh) == [
        (1,)
    ]


def test_injected_faults_reach_agavepy_which_does_not_retry(platform: LocalPlatform, ag: Any) -> None:
    platform.faults.script("GET /systems/v2/", [503])
    before = platform.stats.count("GET", "/systems/v2/")
    with pytest.raises(requests.HTTPError) as caught:
        ag.systems.list()
    assert caught.value.response.status_code == 503
    assert platform.stats.count("GET", "/systems/v2/") == before + 1  # one attempt, no retry
    assert STORAGE in {system["id"] for system in ag.systems.list()}  # the next call is answered


# -- files -------------------------------------------------------------------------------------


def test_files_mkdir_upload_list_download_rename_history_pems_delete(
    platform: LocalPlatform, ag: Any, tmp_path: Path
) -> None:
    made = ag.files.manage(systemId=STORAGE, filePath="", body={"action": "mkdir", "path": "interop"})
    assert made["name"] == "interop"
    assert _disk(platform, STORAGE, "interop").is_dir()

    source = tmp_path / "up.txt"
    source.write_bytes(b"one two three\nfour\n")
    with source.open("rb") as fh:
        uploaded = ag.files.importData(systemId=STORAGE, filePath="interop", fileToUpload=fh)
    assert uploaded["name"] == "up.txt"
    assert uploaded["status"] == "STAGING_QUEUED"
    assert _disk(platform, STORAGE, "interop/up.txt").read_bytes() == source.read_bytes()
    owner = query(
        platform,
        "SELECT owner FROM agave_files_entries WHERE system_id = ? AND path = ?",
        STORAGE,
        "interop/up.txt",
    )
    assert owner == [(platform.agave.username,)]

    listing = ag.files.list(systemId=STORAGE, filePath="interop")
    assert [entry["name"] for entry in listing] == [".", "up.txt"]
    assert listing[1]["length"] == len(source.read_bytes())
    assert listing[1]["type"] == "file"
    on_default = ag.files.listOnDefaultSystem(filePath="interop")
    assert [entry["name"] for entry in on_default] == [".", "up.txt"]

    downloaded = ag.files.download(systemId=STORAGE, filePath="interop/up.txt")
    assert downloaded.content == source.read_bytes()

    ag.files.manage(
        systemId=STORAGE, filePath="interop/up.txt", body={"action": "rename", "path": "renamed.txt"}
    )
    assert not _disk(platform, STORAGE, "interop/up.txt").exists()
    assert _disk(platform, STORAGE, "interop/renamed.txt").read_bytes() == source.read_bytes()

    history = ag.files.getHistory(systemId=STORAGE, filePath="interop/renamed.txt")
    stored = query(
        platform,
        "SELECT status FROM agave_files_history WHERE system_id = ? AND path = ? ORDER BY id",
        STORAGE,
        "interop/renamed.txt",
    )
    assert [event["status"] for event in history] == [row[0] for row in stored]
    assert "STAGING_QUEUED" in [event["status"] for event in history]

    platform.call(lambda: platform.agave.add_user("bob", "bob-password"))
    ag.files.updatePermissions(
        systemId=STORAGE, filePath="interop/renamed.txt", body={"username": "bob", "permission": "READ"}
    )
    pems = query(
        platform,
        "SELECT read, write, execute FROM agave_files_pems "
        "WHERE system_id = ? AND path = ? AND username = 'bob'",
        STORAGE,
        "interop/renamed.txt",
    )
    assert pems == [(1, 0, 0)]
    listed = ag.files.listPermissions(systemId=STORAGE, filePath="interop/renamed.txt")
    by_user = {p["username"]: p["permission"] for p in listed}
    assert by_user["bob"] == {"read": True, "write": False, "execute": False}

    assert ag.files.delete(systemId=STORAGE, filePath="interop/renamed.txt") is None
    assert not _disk(platform, STORAGE, "interop/renamed.txt").exists()
    gone = query(
        platform,
        "SELECT 1 FROM agave_files_entries WHERE system_id = ? AND path = ?",
        STORAGE,
        "interop/renamed.txt",
    )
    assert gone == []
    with pytest.raises(requests.HTTPError) as caught:
        ag.files.download(systemId=STORAGE, filePath="interop/renamed.txt")
    assert caught.value.response.status_code == 404
    assert caught.value.response.json()["status"] == "error"


def _wait_for_history(ag: Any, system_id: str, path: str, status: str) -> list[str]:
    deadline = time.monotonic() + 10
    while True:
        events = [event["status"] for event in ag.files.getHistory(systemId=system_id, filePath=path)]
        if status in events or time.monotonic() > deadline:
            return events
        time.sleep(0.05)


def test_files_filename_ingest_copy_move_default_system_and_pems_removal(
    platform: LocalPlatform, ag: Any, tmp_path: Path
) -> None:
    ag.files.manage(systemId=STORAGE, filePath="", body={"action": "mkdir", "path": "interop-more"})
    source = tmp_path / "x.txt"
    source.write_bytes(b"hello agave\n")
    # agavepy never sends fileName with fileToUpload (agavepy#36): the part's name is kept.
    with source.open("rb") as fh:
        uploaded = ag.files.importData(
            systemId=STORAGE, filePath="interop-more", fileToUpload=fh, fileName="renamed.txt"
        )
    assert uploaded["name"] == "x.txt"
    assert _disk(platform, STORAGE, "interop-more/x.txt").read_bytes() == source.read_bytes()
    assert not _disk(platform, STORAGE, "interop-more/renamed.txt").exists()

    # urlToIngest (a form, fileName honoured): the emulator fetches loopback URLs only, so
    # the platform's own description page stands in for a remote file.
    ingested = ag.files.importData(
        systemId=STORAGE, filePath="interop-more", urlToIngest=platform.url + "/", fileName="described.json"
    )
    assert ingested["name"] == "described.json"
    assert _wait_for_history(ag, STORAGE, "interop-more/described.json", "STAGING_COMPLETED")[-1] == (
        "STAGING_COMPLETED"
    )
    assert json.loads(_disk(platform, STORAGE, "interop-more/described.json").read_text())["platform"] == (
        "aioplatform"
    )

    copied = ag.files.manage(
        systemId=STORAGE,
        filePath="interop-more/x.txt",
        body={"action": "copy", "path": "interop-more/copy.txt"},
    )
    assert copied["name"] == "copy.txt"
    assert _disk(platform, STORAGE, "interop-more/copy.txt").read_bytes() == source.read_bytes()
    ag.files.manage(
        systemId=STORAGE,
        filePath="interop-more/copy.txt",
        body={"action": "move", "path": "interop-moved/copy.txt"},
    )
    assert not _disk(platform, STORAGE, "interop-more/copy.txt").exists()
    assert _disk(platform, STORAGE, "interop-moved/copy.txt").read_bytes() == source.read_bytes()

    # The same on the default system (agave-storage), through the *OnDefaultSystem operations.
    second = tmp_path / "y.txt"
    second.write_bytes(b"default system\n")
    with second.open("rb") as fh:
        ag.files.importToDefaultSystem(sourcefilePath="interop-more", fileToUpload=fh)
    assert _disk(platform, STORAGE, "interop-more/y.txt").read_bytes() == second.read_bytes()
    assert (
        ag.files.downloadFromDefaultSystem(sourcefilePath="interop-more/y.txt").content == second.read_bytes()
    )
    names = [entry["name"] for entry in ag.files.listOnDefaultSystem(filePath="interop-more")]
    assert names == [".", "described.json", "x.txt", "y.txt"]
    assert "STAGING_QUEUED" in [
        event["status"] for event in ag.files.getHistoryOnDefaultSystem(filePath="interop-more/y.txt")
    ]

    ag.files.updatePermissions(
        systemId=STORAGE, filePath="interop-more/x.txt", body={"username": "erin", "permission": "READ_WRITE"}
    )
    pems_sql = (
        "SELECT read, write FROM agave_files_pems WHERE system_id = ? AND path = ? AND username = 'erin'"
    )
    assert query(platform, pems_sql, STORAGE, "interop-more/x.txt") == [(1, 1)]
    ag.files.deletePermissions(systemId=STORAGE, filePath="interop-more/x.txt")
    assert query(platform, pems_sql, STORAGE, "interop-more/x.txt") == []


# -- apps --------------------------------------------------------------------------------------

_APP_FIELDS = (
    "executionSystem",
    "executionType",
    "deploymentSystem",
    "deploymentPath",
    "templatePath",
    "testPath",
    "parallelism",
    "defaultQueue",
    "label",
    "shortDescription",
    "inputs",
    "parameters",
    "outputs",
)


def _app_row(platform: LocalPlatform, app_id: str) -> list[tuple[Any, ...]]:
    return query(
        platform,
        "SELECT revision, owner, public, available, deleted FROM agave_apps_apps WHERE id = ?",
        app_id,
    )


def test_apps_list_get_add_update_manage_pems_delete(platform: LocalPlatform, ag: Any) -> None:
    listed = ag.apps.list()
    stored = query(platform, "SELECT id FROM agave_apps_apps WHERE deleted = 0 ORDER BY id")
    assert sorted(app["id"] for app in listed) == [row[0] for row in stored]
    assert SEEDED_APP in {app["id"] for app in listed}

    seeded = ag.apps.get(appId=SEEDED_APP)
    assert seeded["executionSystem"] == DEFAULT_EXECUTION_SYSTEM
    assert [item["id"] for item in seeded["inputs"]] == ["query1"]
    assert seeded["revision"] == _app_row(platform, SEEDED_APP)[0][0]

    body = {field: seeded[field] for field in _APP_FIELDS}
    body.update(name="interop-wc", version="0.1")
    added = ag.apps.add(body=body)
    assert added["id"] == "interop-wc-0.1"
    assert _app_row(platform, "interop-wc-0.1") == [(1, platform.agave.username, 0, 1, 0)]

    updated = ag.apps.update(appId="interop-wc-0.1", body={**body, "label": "Word count, again"})
    assert updated["revision"] == 2
    assert _app_row(platform, "interop-wc-0.1")[0][0] == 2

    disabled = ag.apps.manage(appId="interop-wc-0.1", body={"action": "disable"})
    assert disabled["available"] is False
    assert _app_row(platform, "interop-wc-0.1")[0][3] == 0
    ag.apps.manage(appId="interop-wc-0.1", body={"action": "enable"})
    assert _app_row(platform, "interop-wc-0.1")[0][3] == 1

    mine = ag.apps.list(privateOnly=True, search={"name.like": "interop*"})
    assert [app["id"] for app in mine] == ["interop-wc-0.1"]
    on_exec = ag.apps.listBySystemId(systemId=DEFAULT_EXECUTION_SYSTEM)
    assert {"interop-wc-0.1", SEEDED_APP} <= {app["id"] for app in on_exec}

    ag.apps.updateApplicationPermissions(
        appId="interop-wc-0.1", body={"username": "carol", "permission": "READ_EXECUTE"}
    )
    grants = query(
        platform,
        "SELECT read, write, execute FROM agave_apps_pems WHERE app_id = ? AND username = ?",
        "interop-wc-0.1",
        "carol",
    )
    assert grants == [(1, 0, 1)]
    pems = {p["username"]: p["permission"] for p in ag.apps.listPermissions(appId="interop-wc-0.1")}
    assert pems["carol"] == {"read": True, "write": False, "execute": True}
    assert pems[platform.agave.username] == {"read": True, "write": True, "execute": True}

    assert ag.apps.delete(appId="interop-wc-0.1") is None
    assert _app_row(platform, "interop-wc-0.1")[0][4] == 1
    with pytest.raises(requests.HTTPError) as caught:
        ag.apps.get(appId="interop-wc-0.1")
    assert caught.value.response.status_code == 404


# -- systems -----------------------------------------------------------------------------------


def test_systems_list_by_type_and_default_get_roles_credentials(platform: LocalPlatform, ag: Any) -> None:
    storage = ag.systems.list(type="STORAGE", default=True)
    assert [system["id"] for system in storage] == [STORAGE]
    assert storage[0]["default"] is True
    executions = ag.systems.list(type="EXECUTION")
    stored = query(platform, "SELECT id FROM agave_systems_systems WHERE type = 'EXECUTION' ORDER BY id")
    assert sorted(system["id"] for system in executions) == [row[0] for row in stored]
    assert DEFAULT_EXECUTION_SYSTEM in {system["id"] for system in executions}

    system = ag.systems.get(systemId=STORAGE)
    doc = query(
        platform,
        "SELECT type, public, global_default, owner FROM agave_systems_systems WHERE id = ?",
        STORAGE,
    )
    assert [(system["type"], system["public"], system["globalDefault"], system["owner"])] == [
        (t, bool(p), bool(g), o) for t, p, g, o in doc
    ]
    assert system["storage"]["rootDir"]

    roles = ag.systems.listRoles(systemId=STORAGE)
    stored_roles = query(
        platform, "SELECT username, role FROM agave_systems_roles WHERE system_id = ?", STORAGE
    )
    assert {(r["username"], r["role"]) for r in roles} >= {(u, r) for u, r in stored_roles}
    assert (platform.agave.username, "OWNER") in {(r["username"], r["role"]) for r in roles}

    # The spec declares one StoredCredential, the server answers a list: agavepy hands back
    # the whole envelope (agave.md §8), whose result matches the store, secrets left out.
    credentials = ag.systems.listCredentials(systemId=STORAGE)
    assert credentials["version"] == "2.2.22-r7deb380"
    stored_types = query(
        platform, "SELECT credential_type FROM agave_systems_credentials WHERE system_id = ?", STORAGE
    )
    assert sorted(c["credentialType"] for c in credentials["result"]) == sorted(
        row[0] for row in stored_types
    )
    assert all("password" not in c and "privateKey" not in c for c in credentials["result"])


def test_systems_add_role_default_files_on_it_and_delete(platform: LocalPlatform, ag: Any) -> None:
    template = ag.systems.get(systemId=STORAGE)
    body = {field: template[field] for field in ("name", "type", "description", "site")}
    body.update(id="interop-store", storage={**template["storage"], "auth": {"type": "LOCAL"}})
    added = ag.systems.add(body=body)
    assert (added["id"], added["public"], added["default"]) == ("interop-store", False, False)
    row = query(platform, "SELECT owner, type, public FROM agave_systems_systems WHERE id = 'interop-store'")
    assert row == [(platform.agave.username, "STORAGE", 0)]

    ag.systems.updateRole(systemId="interop-store", body={"username": "frank", "role": "USER"})
    assert query(
        platform,
        "SELECT role FROM agave_systems_roles WHERE system_id = 'interop-store' AND username = 'frank'",
    ) == [("USER",)]
    roles = {r["username"]: r["role"] for r in ag.systems.listRoles(systemId="interop-store")}
    assert roles == {platform.agave.username: "OWNER", "frank": "USER"}

    try:
        made_default = ag.systems.manage(systemId="interop-store", body={"action": "setDefault"})
        assert made_default["default"] is True
        assert query(
            platform,
            "SELECT system_id FROM agave_systems_defaults WHERE username = ? AND type = 'STORAGE'",
            platform.agave.username,
        ) == [("interop-store",)]
        assert [s["id"] for s in ag.systems.list(type="STORAGE", default=True)] == ["interop-store"]
        # Files on the new system land in its own tree.
        ag.files.manage(systemId="interop-store", filePath="", body={"action": "mkdir", "path": "d"})
        assert _disk(platform, "interop-store", "d").is_dir()
    finally:
        ag.systems.manage(systemId="interop-store", body={"action": "unsetDefault"})
    assert [s["id"] for s in ag.systems.list(type="STORAGE", default=True)] == [STORAGE]

    assert ag.systems.delete(systemId="interop-store") is None
    with pytest.raises(requests.HTTPError) as caught:
        ag.systems.get(systemId="interop-store")
    assert caught.value.response.status_code == 404


def test_listing_projection_and_paging_parameters_pass_through(platform: LocalPlatform, ag: Any) -> None:
    projected = ag.apps.list(filter="id,revision")
    assert projected and all(set(app) == {"id", "revision"} for app in projected)
    first = ag.systems.list(limit=1, offset=0)
    second = ag.systems.list(limit=1, offset=1)
    assert len(first) == 1 and len(second) == 1 and first[0]["id"] != second[0]["id"]


# -- jobs --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _job_steps(platform: LocalPlatform, seconds: float) -> Iterator[None]:
    """Jobs submitted meanwhile take a status step every ``seconds`` (fixed per job at submission)."""
    before = platform.agave.job_step_seconds
    platform.agave.job_step_seconds = seconds
    try:
        yield
    finally:
        platform.agave.job_step_seconds = before


def _job_row(platform: LocalPlatform, job_id: str) -> tuple[Any, ...]:
    rows = query(
        platform, "SELECT owner, name, app_id, status, visible FROM agave_jobs_jobs WHERE id = ?", job_id
    )
    assert len(rows) == 1, rows
    return rows[0]


def _wc_request(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "appId": SEEDED_APP,
        "archive": False,
        "inputs": {"query1": f"agave://{STORAGE}/interop-jobs/in.txt"},
        "parameters": {"printLongestLine": True},
        # What agavepy users send; a remote URL the embedded platform never posts to (loopback only).
        "notifications": [{"url": "https://example.org/hook/${JOB_ID}", "event": "*", "persistent": True}],
    }


def test_jobs_submit_poll_history_search_outputs_and_pems(
    platform: LocalPlatform, ag: Any, tmp_path: Path
) -> None:
    ag.files.manage(systemId=STORAGE, filePath="", body={"action": "mkdir", "path": "interop-jobs"})
    source = tmp_path / "in.txt"
    source.write_text("the quick brown fox\n")
    with source.open("rb") as fh:
        ag.files.importData(systemId=STORAGE, filePath="interop-jobs", fileToUpload=fh)

    with _job_steps(platform, 0.01):
        job = ag.jobs.submit(body=_wc_request("interop-wc"))
    job_id = job["id"]
    assert job["status"] == "PENDING"
    assert job["appId"] == SEEDED_APP and job["owner"] == platform.agave.username
    assert _job_row(platform, job_id)[:3] == (platform.agave.username, "interop-wc", SEEDED_APP)

    deadline = time.monotonic() + 20
    status = ag.jobs.getStatus(jobId=job_id)["status"]
    while status != "FINISHED" and time.monotonic() < deadline:
        time.sleep(0.05)
        status = ag.jobs.getStatus(jobId=job_id)["status"]
    assert status == "FINISHED"
    assert _job_row(platform, job_id)[3] == "FINISHED"

    got = ag.jobs.get(jobId=job_id)
    assert got["status"] == "FINISHED"
    assert got["inputs"] == {"query1": [f"agave://{STORAGE}/interop-jobs/in.txt"]}
    assert got["parameters"] == {"printLongestLine": True}

    history = ag.jobs.getHistory(jobId=job_id)
    stored = query(platform, "SELECT status FROM agave_jobs_history WHERE job_id = ? ORDER BY seq", job_id)
    assert [event["status"] for event in history] == [row[0] for row in stored]
    assert history[0]["status"] == "PENDING" and history[-1]["status"] == "FINISHED"

    found = ag.jobs.list(search={"status.eq": "FINISHED", "appId.like": "wc*"})
    finished = query(
        platform,
        "SELECT id FROM agave_jobs_jobs "
        "WHERE status = 'FINISHED' AND app_id LIKE 'wc%' AND visible = 1 AND owner = ?",
        platform.agave.username,
    )
    assert {summary["id"] for summary in found} == {row[0] for row in finished}
    assert job_id in {summary["id"] for summary in found}
    assert {summary["status"] for summary in found} == {"FINISHED"}

    output_dir = _disk(platform, STORAGE, got["outputPath"].strip("/"))
    outputs = ag.jobs.listOutputs(jobId=job_id, filePath="")
    assert outputs[0]["name"] == "."
    assert sorted(entry["name"] for entry in outputs[1:]) == sorted(p.name for p in output_dir.iterdir())
    assert "wc_out.txt" in {entry["name"] for entry in outputs}
    wc_out = (output_dir / "wc_out.txt").read_bytes()
    assert wc_out  # the job wrote its output when it finished

    # agavepy json-decodes every answer except files.download's, so downloadOutput of a text
    # file raises inside agavepy (against a real Agave too); the bytes it got are the file's.
    with pytest.raises(ValueError) as caught:
        ag.jobs.downloadOutput(jobId=job_id, filePath="wc_out.txt")
    assert caught.value.doc == wc_out.decode()  # type: ignore[attr-defined]
    # agavepy's own helper for job output URLs streams them to a file.
    local = tmp_path / "wc_out.txt"
    ag.download_uri(f"{platform.agave_tls_url}/jobs/v2/{job_id}/outputs/listings/wc_out.txt", str(local))
    assert local.read_bytes() == wc_out

    ag.jobs.updatePermissions(jobId=job_id, body={"username": "dave", "permission": "READ"})
    grants = query(
        platform, "SELECT read, write FROM agave_jobs_pems WHERE job_id = ? AND username = 'dave'", job_id
    )
    assert grants == [(1, 0)]
    pems = {p["username"]: p["permission"] for p in ag.jobs.listPermissions(jobId=job_id)}
    assert pems["dave"] == {"read": True, "write": False}
    assert pems[platform.agave.username] == {"read": True, "write": True}


def test_jobs_stop_resubmit_and_delete(platform: LocalPlatform, ag: Any) -> None:
    with _job_steps(platform, 3600):  # stays PENDING for the test's length
        job = ag.jobs.submit(body=_wc_request("interop-stop"))
    job_id = job["id"]

    stopped = ag.jobs.manage(jobId=job_id, body={"action": "stop"})
    assert stopped["id"] == job_id and stopped["status"] == "STOPPED"
    assert _job_row(platform, job_id)[3] == "STOPPED"
    assert ag.jobs.getHistory(jobId=job_id)[-1]["status"] == "STOPPED"

    with _job_steps(platform, 3600):
        again = ag.jobs.manage(jobId=job_id, body={"action": "resubmit"})
    assert again["id"] != job_id
    assert again["status"] == "PENDING"
    assert _job_row(platform, again["id"]) == (
        platform.agave.username,
        "interop-stop",
        SEEDED_APP,
        "PENDING",
        1,
    )
    assert again["inputs"] == ag.jobs.get(jobId=job_id)["inputs"]

    assert ag.jobs.delete(jobId=job_id) is None
    assert _job_row(platform, job_id)[4] == 0
    with pytest.raises(requests.HTTPError) as caught:
        ag.jobs.get(jobId=job_id)
    assert caught.value.response.status_code == 404
    assert job_id not in {summary["id"] for summary in ag.jobs.list()}


# -- clients (HTTP Basic username:password) -----------------------------------------------------


def test_clients_create_list_get_subscriptions_delete(platform: LocalPlatform) -> None:
    ag = agavepy_client(platform)  # its own: clients.create switches it to the new key
    user = platform.agave.username
    listed = ag.clients.list()
    stored = query(platform, "SELECT name, consumer_key FROM agave_oauth_clients WHERE owner = ?", user)
    assert {(c["name"], c["consumerKey"]) for c in listed} == set(stored)

    created = ag.clients.create(body={"clientName": "interop-client", "description": "from agavepy"})
    key, secret = created["consumerKey"], created["consumerSecret"]
    assert query(
        platform,
        "SELECT owner, description, consumer_secret FROM agave_oauth_clients WHERE consumer_key = ?",
        key,
    ) == [(user, "from agavepy", secret)]
    assert ag.api_key == key and ag.api_secret == secret  # agavepy adopted the new client

    # The new key and secret work at /token at once, for another agavepy.
    other = agavepy_client(platform, api_key=key, api_secret=secret)
    issued = query(
        platform,
        "SELECT username, consumer_key FROM agave_tokens WHERE access_token = ?",
        other.token.token_info["access_token"],
    )
    assert issued == [(user, key)]
    assert other.files.list(systemId=STORAGE, filePath="")[0]["name"] == "."

    # (clients.getClientByName is left out: agavepy's spec declares a list of clients for it,
    # so agavepy mangles the single Client a real server answers, agave.md §2.4.)
    after = {c["name"]: c for c in ag.clients.list()}
    assert after["interop-client"]["consumerKey"] == key
    assert "consumerSecret" not in after["interop-client"]  # shown at creation only

    subscriptions = ag.clients.listSubscriptionsForClient(clientName="interop-client")
    assert {"Apps", "Files", "Jobs", "Systems"} <= {s["apiName"] for s in subscriptions}
    assert {s["apiContext"] for s in subscriptions} >= {"/apps/v2", "/files/v2", "/jobs/v2", "/systems/v2"}

    assert ag.clients.delete(clientName="interop-client") is None
    assert query(platform, "SELECT 1 FROM agave_oauth_clients WHERE consumer_key = ?", key) == []
    # Its tokens are revoked with it.
    assert query(platform, "SELECT 1 FROM agave_tokens WHERE consumer_key = ?", key) == []
