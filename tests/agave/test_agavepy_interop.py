"""agavepy 0.9.5 runs unmodified against the embedded Agave (issue 11).

The real agavepy from PyPI talks to the platform's TLS site (``https://127.0.0.2``,
port 443, ``verify=<ca.pem>``, a fresh ``HOME``); every result agavepy returns is
checked against the embedded store or the files on disk, not just for "no exception".
Under ``CI=true`` nothing here may skip (see agavepy_harness.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from aioplatform.testing import LocalPlatform
from aioplatform.testing.agave.defaults import DEFAULT_STORAGE_SYSTEM

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
