"""agavepy 0.9.5's notifications and profiles operations, unmodified, against the embedded Agave.

Each result agavepy returns is checked against the embedded store; a subscription made by
agavepy fires at a loopback receiver. Uses the harness of test_agavepy_interop.py (a
platform of its own: agavepy needs port 443 at a host's root).
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from aioplatform.testing import LocalPlatform
from aioplatform.testing.agave.defaults import DEFAULT_STORAGE_SYSTEM, SEEDED_APP

from .agavepy_harness import agavepy_client, agavepy_platform, query


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    with agavepy_platform(tmp_path_factory.mktemp("agavepy-notifications-home")) as p:
        yield p


@pytest.fixture(scope="module")
def ag(platform: LocalPlatform) -> Any:
    return agavepy_client(platform)


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """A loopback webhook receiver in a thread: (its URL, the (path, body) it got)."""
    got: list[tuple[str, dict[str, Any]]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            got.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    finally:
        server.shutdown()
        server.server_close()


def _job(platform: LocalPlatform, ag: Any, name: str) -> str:
    before = platform.agave.job_step_seconds
    platform.agave.job_step_seconds = 3600  # stays PENDING for the test's length
    try:
        job = ag.jobs.submit(
            body={"name": name, "appId": SEEDED_APP, "archive": False,
                  "inputs": {"query1": f"agave://{DEFAULT_STORAGE_SYSTEM}/x/in.txt"}}
        )  # fmt: skip
    finally:
        platform.agave.job_step_seconds = before
    return str(job["id"])


def _subscription(platform: LocalPlatform, uuid: str) -> tuple[Any, ...] | None:
    rows = query(
        platform,
        "SELECT owner, url, associated_uuid, event, persistent, status, attempts FROM agave_notifications"
        " WHERE id = ?",
        uuid,
    )
    return rows[0] if rows else None


def test_notifications_add_list_get_update_delete(platform: LocalPlatform, ag: Any) -> None:
    job_id = _job(platform, ag, "agavepy-subscribed")
    made = ag.notifications.add(
        body={"associatedUuid": job_id, "event": "FINISHED", "url": "ops@example.org", "persistent": True}
    )
    uuid = made["id"]
    assert uuid.endswith("-011") and made["uuid"] == uuid
    assert _subscription(platform, uuid) == (
        platform.agave.username, "ops@example.org", job_id, "FINISHED", 1, "ACTIVE", 0,
    )  # fmt: skip
    listed = ag.notifications.list(associatedUuid=job_id)
    assert [n["id"] for n in listed] == [uuid]
    everything = ag.notifications.list()
    stored = query(platform, "SELECT id FROM agave_notifications WHERE owner = ?", platform.agave.username)
    assert {n["id"] for n in everything} == {row[0] for row in stored}
    got = ag.notifications.get(uuid=uuid)
    assert (got["associatedUuid"], got["event"], got["persistent"]) == (job_id, "FINISHED", True)
    body = {"associatedUuid": job_id, "event": "*", "url": "team@example.org", "persistent": False}
    changed = ag.notifications.update(uuid=uuid, body=body)
    assert changed["event"] == "*" and changed["url"] == "team@example.org"
    assert _subscription(platform, uuid)[1:5] == ("team@example.org", job_id, "*", 0)  # type: ignore[index]
    ag.notifications.delete(uuid=uuid)
    assert _subscription(platform, uuid) is None
    with pytest.raises(requests.HTTPError) as caught:
        ag.notifications.get(uuid=uuid)
    assert caught.value.response.status_code == 404
    with pytest.raises(requests.HTTPError) as caught:
        ag.notifications.add(body={"associatedUuid": job_id, "url": "ops@example.org"})  # no event
    assert caught.value.response.status_code == 400


def test_a_subscription_made_by_agavepy_fires_at_a_loopback_receiver(
    platform: LocalPlatform, ag: Any, receiver: tuple[str, list[tuple[str, dict[str, Any]]]]
) -> None:
    url, got = receiver
    job_id = _job(platform, ag, "agavepy-fired")
    made = ag.notifications.add(
        body={"associatedUuid": job_id, "event": "STOPPED", "url": url + "/${JOB_ID}/${STATUS}"}
    )
    ag.jobs.manage(jobId=job_id, body={"action": "stop"})
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [(path, body["id"], body["status"]) for path, body in got] == [
        (f"/hook/{job_id}/STOPPED", job_id, "STOPPED")
    ]
    deadline = time.monotonic() + 10
    while _subscription(platform, made["id"])[6] != 1 and time.monotonic() < deadline:  # type: ignore[index]
        time.sleep(0.02)
    fired = ag.notifications.get(uuid=made["id"])
    assert (fired["attempts"], fired["responseCode"], fired["status"]) == (1, 200, "COMPLETE")


def test_profiles_me_by_username_list_and_admin_create_update_delete(
    platform: LocalPlatform, ag: Any
) -> None:
    me = ag.profiles.get()
    assert me["username"] == platform.agave.username and me["full_name"] == "Test User"
    assert "password" not in me
    made = ag.profiles.create(
        body=json.dumps({"username": "pyuser", "password": "pw-123", "email": "py@lab.org",
                         "first_name": "Py", "last_name": "User"})
    )  # fmt: skip
    assert made["username"] == "pyuser"
    assert query(platform, "SELECT email, first_name FROM agave_users WHERE username = 'pyuser'") == [
        ("py@lab.org", "Py")
    ]
    one = ag.profiles.listByUsername(username="pyuser")
    assert (one["email"], one["last_name"], one["full_name"]) == ("py@lab.org", "User", "Py User")
    listed = ag.profiles.list(last_name="User")
    stored = query(platform, "SELECT username FROM agave_users WHERE lower(last_name) = 'user'")
    assert sorted(p["username"] for p in listed) == sorted(row[0] for row in stored)
    assert "pyuser" in {p["username"] for p in listed}
    changed = ag.profiles.update(username="pyuser", body=json.dumps({"email": "user@lab.org"}))
    assert changed["email"] == "user@lab.org"
    assert query(platform, "SELECT email FROM agave_users WHERE username = 'pyuser'") == [("user@lab.org",)]
    ag.profiles.delete(username="pyuser")
    assert query(platform, "SELECT 1 FROM agave_users WHERE username = 'pyuser'") == []
    with pytest.raises(requests.HTTPError) as caught:
        ag.profiles.listByUsername(username="pyuser")
    assert caught.value.response.status_code == 404
