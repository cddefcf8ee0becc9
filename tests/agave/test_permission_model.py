"""One permission model for apps, jobs and metadata (the wire shape is the same)."""

from __future__ import annotations

from aioplatform.agave.models import AppPermission, JobPermission, MetaPermission, Permission, structure


def test_apps_jobs_and_meta_share_the_one_permission_model() -> None:
    assert AppPermission is JobPermission is MetaPermission is Permission
    rights = {"read": True, "write": False, "execute": True}
    app = structure({"username": "bob", "permission": rights}, AppPermission)
    assert (app.read, app.write, app.execute) == (True, False, True)
    wire = {"username": "bob", "permission": {"read": True, "write": True}, "_links": {}}
    job = structure(wire, JobPermission)
    assert (job.read, job.write, job.execute) == (True, True, False)  # no execute key: False
    assert job["_links"] == {}  # the wire object is kept


def test_a_users_rights_from_a_list_of_at_most_one() -> None:
    none = Permission.of_user([], "bob")
    assert none.username == "bob" and not none.read and not none.write
    one = Permission.of_user([{"username": "bob", "permission": {"read": True, "write": False}}], "bob")
    assert one.read and not one.write
    assert Permission.of_user({"username": "eve", "permission": {"write": True}}, "eve").write
