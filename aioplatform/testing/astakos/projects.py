"""Projects, applications and memberships (astakos.md §5.5-5.6) and their effect on holdings.

A project's quota follows its state: while it is active, the project holding of each
resource has the policy's ``project_capacity`` as limit and each accepted member's
holding its ``member_capacity``; otherwise (and for members who left) the limits are
0 while usage is kept, as the real quotaholder does. All functions run inside one
store transaction and raise :class:`~.quotaholder.Fault` for cloudFault answers.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import uuid as uuidlib
from typing import Any

from .quotaholder import INT64_MAX, Fault, now, set_holding

__all__ = [
    "SCHEMA",
    "create_project",
    "membership_action",
    "membership_object",
    "modify_project",
    "project_action",
    "project_object",
    "sync_project_quotas",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS astakos_projects (
    uuid TEXT PRIMARY KEY, state TEXT NOT NULL, creation_date TEXT NOT NULL, name TEXT NOT NULL,
    owner TEXT, homepage TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
    end_date TEXT, join_policy TEXT NOT NULL, leave_policy TEXT NOT NULL, max_members INTEGER NOT NULL,
    private INTEGER NOT NULL DEFAULT 0, system_project INTEGER NOT NULL DEFAULT 0,
    deactivation_date TEXT, last_application INTEGER);
CREATE TABLE IF NOT EXISTS astakos_project_resources (
    project TEXT NOT NULL, resource TEXT NOT NULL, project_capacity INTEGER NOT NULL,
    member_capacity INTEGER NOT NULL, PRIMARY KEY (project, resource));
CREATE TABLE IF NOT EXISTS astakos_applications (
    id INTEGER PRIMARY KEY AUTOINCREMENT, project TEXT NOT NULL, state TEXT NOT NULL,
    applicant TEXT NOT NULL, fields TEXT NOT NULL, issue_date TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS astakos_memberships (
    id INTEGER PRIMARY KEY AUTOINCREMENT, person TEXT NOT NULL, project TEXT NOT NULL,
    state TEXT NOT NULL, dates TEXT NOT NULL, UNIQUE (person, project));
"""

MAX_MEMBERS = 2**63 - 1
POLICIES = ("auto", "moderated", "closed")
PROJECT_STATES = ("uninitialized", "active", "suspended", "terminated", "deleted")
ALIVE = ("active", "suspended")
MEMBER_STATES = ("accepted", "leave_requested")
APP_FIELDS = (
    "name", "owner", "homepage", "description", "start_date", "end_date", "comments",
    "join_policy", "leave_policy", "max_members", "private", "resources",
)  # fmt: skip
_NAME = re.compile(r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,6}$")


def _row(conn: sqlite3.Connection, sql: str, *args: Any) -> dict[str, Any] | None:
    cursor = conn.execute(sql, args)
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row, strict=True))


def is_admin(conn: sqlite3.Connection, user: str) -> bool:
    row = conn.execute("SELECT is_admin FROM astakos_users WHERE uuid = ?", (user,)).fetchone()
    return bool(row and row[0])


def get_project(conn: sqlite3.Connection, project: str) -> dict[str, Any]:
    row = _row(conn, "SELECT * FROM astakos_projects WHERE uuid = ?", project)
    if row is None:
        raise Fault(404, "itemNotFound", f"Project {project} does not exist.")
    return row


# -- quota effects ---------------------------------------------------------------------------


def sync_project_quotas(conn: sqlite3.Connection, project: str) -> None:
    """Set the limits of the project's holdings and of its members' from state and policy."""
    state = conn.execute("SELECT state FROM astakos_projects WHERE uuid = ?", (project,)).fetchone()[0]
    active = state == "active"
    policies = {
        r[0]: (r[1], r[2])
        for r in conn.execute(
            "SELECT resource, project_capacity, member_capacity FROM astakos_project_resources "
            "WHERE project = ?",
            (project,),
        )
    }
    resources = [r[0] for r in conn.execute("SELECT name FROM astakos_resources")]
    members = {
        r[0]: r[1]
        for r in conn.execute("SELECT person, state FROM astakos_memberships WHERE project = ?", (project,))
    }
    for resource in resources:
        project_cap, member_cap = policies.get(resource, (0, 0))
        set_holding(conn, f"project:{project}", None, resource, project_cap if active else 0)
        for person, mstate in members.items():
            member = active and mstate in MEMBER_STATES
            exists = conn.execute(
                "SELECT 1 FROM astakos_holdings WHERE holder = ? AND source = ? AND resource = ?",
                (f"user:{person}", f"project:{project}", resource),
            ).fetchone()
            if member or exists:
                set_holding(
                    conn, f"user:{person}", f"project:{project}", resource, member_cap if member else 0
                )


# -- projects ------------------------------------------------------------------------------


def _resources(conn: sqlite3.Connection, project: str) -> dict[str, dict[str, int]]:
    return {
        r[0]: {"project_capacity": r[1], "member_capacity": r[2]}
        for r in conn.execute(
            "SELECT resource, project_capacity, member_capacity FROM astakos_project_resources "
            "WHERE project = ? ORDER BY resource",
            (project,),
        )
    }


def _application(conn: sqlite3.Connection, app_id: int) -> dict[str, Any]:
    row = _row(conn, "SELECT * FROM astakos_applications WHERE id = ?", app_id)
    assert row is not None
    fields = json.loads(row["fields"])
    return {"id": row["id"], "state": row["state"], "applicant": row["applicant"], **fields}


def _may_see(conn: sqlite3.Connection, caller: str, project: dict[str, Any]) -> bool:
    if is_admin(conn, caller) or project["owner"] == caller:
        return True
    member = conn.execute(
        "SELECT 1 FROM astakos_memberships WHERE person = ? AND project = ?", (caller, project["uuid"])
    ).fetchone()
    return bool(member) or (project["state"] == "active" and not project["private"])


def project_object(conn: sqlite3.Connection, caller: str, project: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": project["uuid"],
        "state": project["state"],
        "creation_date": project["creation_date"],
        "name": project["name"],
        "owner": project["owner"],
        "homepage": project["homepage"],
        "description": project["description"],
        "end_date": project["end_date"],
        "join_policy": project["join_policy"],
        "leave_policy": project["leave_policy"],
        "max_members": project["max_members"],
        "private": bool(project["private"]),
        "system_project": bool(project["system_project"]),
        "resources": _resources(conn, project["uuid"]),
    }
    app_id = project["last_application"]
    if app_id is not None:
        app = _application(conn, app_id)
        if is_admin(conn, caller) or caller in (project["owner"], app["applicant"]):
            obj["last_application"] = app
            if project["deactivation_date"]:
                obj["deactivation_date"] = project["deactivation_date"]
    return obj


def visible_project(conn: sqlite3.Connection, caller: str, project_id: str) -> dict[str, Any]:
    project = get_project(conn, project_id)
    if not _may_see(conn, caller, project):
        raise Fault(403, "forbidden", "You do not have access to this project.")
    return project_object(conn, caller, project)


def list_projects(
    conn: sqlite3.Connection, caller: str, *, name: str | None, state: str | None, owner: str | None,
    mode: str | None,
) -> list[dict[str, Any]]:  # fmt: skip
    if state is not None and state not in PROJECT_STATES:
        raise Fault(400, "badRequest", "Unrecognized state")
    mode = mode or "default"
    if mode not in ("default", "related", "member", "active"):
        raise Fault(400, "badRequest", f"Unrecognized mode '{mode}'.")
    admin = is_admin(conn, caller)
    accepted = {
        r[0]
        for r in conn.execute(
            "SELECT project FROM astakos_memberships WHERE person = ? AND state IN (?, ?)",
            (caller, *MEMBER_STATES),
        )
    }
    rows = conn.execute("SELECT * FROM astakos_projects ORDER BY creation_date, uuid")
    columns = [d[0] for d in rows.description]
    result = []
    for values in rows.fetchall():
        p = dict(zip(columns, values, strict=True))
        if mode in ("default", "related"):
            keep = admin or p["owner"] == caller or p["uuid"] in accepted
        elif mode == "member":
            keep = p["state"] == "active" and p["uuid"] in accepted
        else:
            keep = p["state"] == "active" and (admin or not p["private"])
        if name is not None and p["name"] != name:
            keep = False
        if state is not None and p["state"] != state:
            keep = False
        if owner is not None and p["owner"] != owner:
            keep = False
        if keep:
            result.append(project_object(conn, caller, p))
    return result


def _parse_date(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise Fault(400, "badRequest", f"Invalid {field}")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Fault(400, "badRequest", f"Invalid {field}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.isoformat()


def _validate_fields(conn: sqlite3.Connection, body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    fields: dict[str, Any] = dict.fromkeys(APP_FIELDS)
    name = body.get("name")
    if creating and name is None:
        raise Fault(400, "badRequest", "Name missing.")
    if name is not None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise Fault(400, "badRequest", "Project name should be in domain format")
        fields["name"] = name
    end_date = body.get("end_date")
    if creating and end_date is None:
        raise Fault(400, "badRequest", "Missing end date")
    if end_date is not None:
        fields["end_date"] = _parse_date(end_date, "end_date")
        if fields["end_date"] <= now():
            raise Fault(400, "badRequest", "End date should be in the future")
    if body.get("start_date") is not None:
        fields["start_date"] = _parse_date(body["start_date"], "start_date")
    for key in ("homepage", "description", "comments"):
        if body.get(key) is not None:
            if not isinstance(body[key], str):
                raise Fault(400, "badRequest", f"Invalid {key}")
            fields[key] = body[key]
    if body.get("owner") is not None:
        owner = body["owner"]
        if not isinstance(owner, str) or not conn.execute(
            "SELECT 1 FROM astakos_users WHERE uuid = ?", (owner,)
        ).fetchone():
            raise Fault(400, "badRequest", "User does not exist.")
        fields["owner"] = body["owner"]
    for key in ("join_policy", "leave_policy"):
        if body.get(key) is not None:
            if body[key] not in POLICIES:
                raise Fault(400, "badRequest", f"Invalid {key}")
            fields[key] = body[key]
    if body.get("max_members") is not None:
        value = body["max_members"]
        if value == "inf":
            value = MAX_MEMBERS
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= INT64_MAX:
            raise Fault(400, "badRequest", "Invalid max_members")
        fields["max_members"] = value
    if body.get("private") is not None:
        if not isinstance(body["private"], bool):
            raise Fault(400, "badRequest", "Invalid private")
        fields["private"] = body["private"]
    if body.get("resources") is not None:
        fields["resources"] = _validate_resources(conn, body["resources"])
    return fields


def _validate_resources(conn: sqlite3.Connection, resources: Any) -> dict[str, dict[str, int]]:
    malformed = Fault(400, "badRequest", "Malformed resource policies")
    if not isinstance(resources, dict):
        raise malformed
    visible = {r[0] for r in conn.execute("SELECT name FROM astakos_resources WHERE api_visible = 1")}
    policies: dict[str, dict[str, int]] = {}
    for name, spec in resources.items():
        if name not in visible or not isinstance(spec, dict):
            raise malformed
        pc, mc = spec.get("project_capacity"), spec.get("member_capacity")
        for v in (pc, mc):
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= INT64_MAX:
                raise malformed
        assert isinstance(pc, int) and isinstance(mc, int)
        if pc < mc:
            raise malformed
        policies[name] = {"project_capacity": pc, "member_capacity": mc}
    return policies


def _submit(conn: sqlite3.Connection, caller: str, project: str, fields: dict[str, Any]) -> int:
    pending_limit = conn.execute(
        "SELECT uplimit FROM astakos_resources WHERE name = 'astakos.pending_app'"
    ).fetchone()
    pending = conn.execute(
        "SELECT COUNT(*) FROM astakos_applications WHERE applicant = ? AND state = 'pending'", (caller,)
    ).fetchone()[0]
    if pending_limit is not None and pending >= pending_limit[0]:
        raise Fault(409, "conflict", "Maximum number of pending applications reached.")
    conn.execute(
        "UPDATE astakos_applications SET state = 'replaced' WHERE project = ? AND state = 'pending'",
        (project,),
    )
    cursor = conn.execute(
        "INSERT INTO astakos_applications (project, state, applicant, fields, issue_date) "
        "VALUES (?, 'pending', ?, ?, ?)",
        (project, caller, json.dumps(fields), now()),
    )
    app_id = int(cursor.lastrowid or 0)
    conn.execute("UPDATE astakos_projects SET last_application = ? WHERE uuid = ?", (app_id, project))
    return app_id


def create_project(
    conn: sqlite3.Connection, caller: str, body: dict[str, Any], new_uuid: str
) -> dict[str, Any]:
    fields = _validate_fields(conn, body, creating=True)
    fields["owner"] = fields["owner"] or caller
    fields["join_policy"] = fields["join_policy"] or "moderated"
    fields["leave_policy"] = fields["leave_policy"] or "auto"
    fields["max_members"] = MAX_MEMBERS if fields["max_members"] is None else fields["max_members"]
    fields["private"] = bool(fields["private"])
    fields["resources"] = fields["resources"] or {}
    conn.execute(
        "INSERT INTO astakos_projects (uuid, state, creation_date, name, owner, homepage, description, "
        "end_date, join_policy, leave_policy, max_members, private) "
        "VALUES (?, 'uninitialized', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new_uuid, now(), fields["name"], fields["owner"], fields["homepage"] or "",
            fields["description"] or "", fields["end_date"], fields["join_policy"],
            fields["leave_policy"], fields["max_members"], int(fields["private"]),
        ),
    )  # fmt: skip
    app_id = _submit(conn, caller, new_uuid, fields)
    return {"id": new_uuid, "application": app_id}


def modify_project(
    conn: sqlite3.Connection, caller: str, project_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    project = get_project(conn, project_id)
    if not (is_admin(conn, caller) or project["owner"] == caller):
        raise Fault(403, "forbidden", "Only the owner or an admin may modify a project.")
    if project["state"] == "uninitialized":
        raise Fault(409, "conflict", "Cannot modify an uninitialized project.")
    if project["state"] not in ALIVE:
        raise Fault(409, "conflict", "Cannot modify a project that is not alive.")
    fields = _validate_fields(conn, body, creating=False)
    if project["system_project"] and any(
        fields[k] is not None for k in ("owner", "name", "homepage", "description")
    ):
        raise Fault(
            409, "conflict", "Cannot change the owner, name, homepage or description of a system project."
        )
    app_id = _submit(conn, caller, project_id, fields)
    return {"id": project_id, "application": app_id}


def _apply(conn: sqlite3.Connection, project: str, fields: dict[str, Any]) -> None:
    for key in ("name", "owner", "homepage", "description", "end_date", "join_policy",
                "leave_policy", "max_members", "private"):  # fmt: skip
        if fields.get(key) is not None:
            value = int(fields[key]) if key == "private" else fields[key]
            conn.execute(f"UPDATE astakos_projects SET {key} = ? WHERE uuid = ?", (value, project))
    if fields.get("resources") is not None:
        for name, spec in fields["resources"].items():
            conn.execute(
                "INSERT INTO astakos_project_resources (project, resource, project_capacity, "
                "member_capacity) VALUES (?, ?, ?, ?) ON CONFLICT (project, resource) DO UPDATE SET "
                "project_capacity = excluded.project_capacity, member_capacity = excluded.member_capacity",
                (project, name, spec["project_capacity"], spec["member_capacity"]),
            )


_PROJECT_ACTIONS = {
    "suspend": (("active",), "suspended"),
    "unsuspend": (("suspended",), "active"),
    "terminate": (ALIVE, "terminated"),
    "reinstate": (("terminated",), "active"),
}
_APP_ACTIONS = ("approve", "deny", "dismiss", "cancel")


def project_action(conn: sqlite3.Connection, caller: str, project_id: str, body: Any) -> None:
    if not isinstance(body, dict) or not body:
        raise Fault(400, "badRequest", "No recognized action")
    if len(body) > 1:
        raise Fault(400, "badRequest", "Multiple actions not supported")
    ((action, args),) = body.items()
    if action not in _PROJECT_ACTIONS and action not in _APP_ACTIONS:
        raise Fault(400, "badRequest", "No recognized action")
    project = get_project(conn, project_id)
    admin = is_admin(conn, caller)
    args = args if isinstance(args, dict) else {}
    if action in _PROJECT_ACTIONS:
        if not admin:
            raise Fault(403, "forbidden", f"Only project admins may {action} a project.")
        sources, target = _PROJECT_ACTIONS[action]
        if project["state"] not in sources or (action == "terminate" and project["system_project"]):
            raise Fault(409, "conflict", f"Cannot {action} a project in state '{project['state']}'.")
        deactivation = now() if target in ("suspended", "terminated") else None
        conn.execute(
            "UPDATE astakos_projects SET state = ?, deactivation_date = ? WHERE uuid = ?",
            (target, deactivation, project_id),
        )
        sync_project_quotas(conn, project_id)
        return
    app_id = args.get("app_id")
    if not isinstance(app_id, int) or isinstance(app_id, bool):
        raise Fault(400, "badRequest", "app_id is required")
    if app_id != project["last_application"]:
        raise Fault(409, "conflict", f"Application {app_id} is not the project's last application.")
    app = _application(conn, app_id)
    if action in ("approve", "deny"):
        if not admin:
            raise Fault(403, "forbidden", f"Only project admins may {action} an application.")
        if app["state"] != "pending":
            raise Fault(409, "conflict", f"Cannot {action} an application in state '{app['state']}'.")
    else:
        if caller != app["applicant"] and not admin:
            raise Fault(403, "forbidden", f"Only the applicant may {action} an application.")
        wanted = "pending" if action == "cancel" else "denied"
        if app["state"] != wanted:
            raise Fault(409, "conflict", f"Cannot {action} an application in state '{app['state']}'.")
    new_state = {"approve": "approved", "deny": "denied", "dismiss": "dismissed", "cancel": "cancelled"}
    conn.execute("UPDATE astakos_applications SET state = ? WHERE id = ?", (new_state[action], app_id))
    if action == "approve":
        _apply(conn, project_id, app)
        if project["state"] == "uninitialized":
            conn.execute("UPDATE astakos_projects SET state = 'active' WHERE uuid = ?", (project_id,))
        sync_project_quotas(conn, project_id)
    elif action in ("cancel", "dismiss") and project["state"] == "uninitialized":
        conn.execute("UPDATE astakos_projects SET state = 'deleted' WHERE uuid = ?", (project_id,))


# -- memberships ---------------------------------------------------------------------------

_ALLOWED = {
    "requested": ["accept", "reject", "cancel"],
    "accepted": ["leave", "remove"],
    "leave_requested": ["leave", "remove"],
    "suspended": ["leave", "remove"],
}


def membership_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "user": row["person"],
        "project": row["project"],
        "state": row["state"],
        "allowed_actions": _ALLOWED.get(row["state"], []),
        **json.loads(row["dates"]),
    }


def _set_state(conn: sqlite3.Connection, membership: dict[str, Any], state: str) -> None:
    dates = json.loads(membership["dates"])
    dates[state] = now()
    conn.execute(
        "UPDATE astakos_memberships SET state = ?, dates = ? WHERE id = ?",
        (state, json.dumps(dates), membership["id"]),
    )
    sync_project_quotas(conn, membership["project"])


def add_membership(conn: sqlite3.Connection, person: str, project: str, state: str) -> int:
    existing = _row(
        conn, "SELECT * FROM astakos_memberships WHERE person = ? AND project = ?", person, project
    )
    if existing is not None:
        _set_state(conn, existing, state)
        return int(existing["id"])
    cursor = conn.execute(
        "INSERT INTO astakos_memberships (person, project, state, dates) VALUES (?, ?, ?, ?)",
        (person, project, state, json.dumps({state: now()})),
    )
    sync_project_quotas(conn, project)
    return int(cursor.lastrowid or 0)


def list_memberships(conn: sqlite3.Connection, caller: str, project: str | None) -> list[dict[str, Any]]:
    admin = is_admin(conn, caller)
    rows = conn.execute(
        "SELECT m.*, p.owner AS owner FROM astakos_memberships m "
        "JOIN astakos_projects p ON p.uuid = m.project ORDER BY m.id"
    )
    columns = [d[0] for d in rows.description]
    result = []
    for values in rows.fetchall():
        m = dict(zip(columns, values, strict=True))
        if not (admin or m["person"] == caller or m["owner"] == caller):
            continue
        if project is not None and m["project"] != project:
            continue
        result.append(membership_object(m))
    return result


def get_membership(conn: sqlite3.Connection, caller: str, memb_id: int) -> dict[str, Any]:
    m = _row(
        conn,
        "SELECT m.*, p.owner AS owner FROM astakos_memberships m "
        "JOIN astakos_projects p ON p.uuid = m.project WHERE m.id = ?",
        memb_id,
    )
    if m is None:
        raise Fault(404, "itemNotFound", f"Membership {memb_id} does not exist.")
    if not (is_admin(conn, caller) or caller in (m["person"], m["owner"])):
        raise Fault(403, "forbidden", "You do not have access to this membership.")
    return m


def _members(conn: sqlite3.Connection, project: str) -> int:
    return int(conn.execute(
        "SELECT COUNT(*) FROM astakos_memberships WHERE project = ? AND state IN (?, ?)",
        (project, *MEMBER_STATES),
    ).fetchone()[0])  # fmt: skip


def _check_accept(conn: sqlite3.Connection, project: dict[str, Any]) -> None:
    if project["state"] not in ALIVE:
        raise Fault(409, "conflict", "Project is not alive.")
    if project["join_policy"] == "closed":
        raise Fault(409, "conflict", "The project does not accept new members.")
    if _members(conn, project["uuid"]) >= project["max_members"]:
        raise Fault(409, "conflict", "The project's member limit has been reached.")


def join_project(conn: sqlite3.Connection, caller: str, project_id: str) -> int:
    project = get_project(conn, project_id)
    if project["state"] not in ALIVE:
        raise Fault(409, "conflict", "Project is not alive.")
    if project["join_policy"] == "closed":
        raise Fault(409, "conflict", "The project does not accept new members.")
    existing = _row(
        conn, "SELECT state FROM astakos_memberships WHERE person = ? AND project = ?", caller, project_id
    )
    if existing and existing["state"] in ("requested", "accepted", "leave_requested", "suspended"):
        raise Fault(409, "conflict", f"Membership already exists in state '{existing['state']}'.")
    state = "requested"
    if project["join_policy"] == "auto" and _members(conn, project_id) < project["max_members"]:
        state = "accepted"
    return add_membership(conn, caller, project_id, state)


def enroll_member(conn: sqlite3.Connection, caller: str, project_id: str, email: str) -> int:
    project = _row(conn, "SELECT * FROM astakos_projects WHERE uuid = ?", project_id)
    if project is None:
        raise Fault(409, "conflict", f"Project {project_id} does not exist.")
    if not (is_admin(conn, caller) or project["owner"] == caller):
        raise Fault(403, "forbidden", "Only the project owner or an admin may enroll members.")
    user = conn.execute(
        "SELECT uuid FROM astakos_users WHERE username = ? COLLATE NOCASE AND active = 1", (email,)
    ).fetchone()
    if user is None:
        raise Fault(409, "conflict", f"User {email} does not exist.")
    existing = _row(
        conn, "SELECT state FROM astakos_memberships WHERE person = ? AND project = ?", user[0], project_id
    )
    if existing and existing["state"] in MEMBER_STATES:
        raise Fault(409, "conflict", "User is already a member.")
    _check_accept(conn, project)
    return add_membership(conn, user[0], project_id, "accepted")


_MEMBERSHIP_ACTIONS = {
    "accept": (("requested",), "owner"),
    "reject": (("requested",), "owner"),
    "cancel": (("requested",), "member"),
    "leave": (("accepted", "leave_requested", "suspended"), "member"),
    "remove": (("accepted", "leave_requested", "suspended"), "owner"),
}


def membership_action(conn: sqlite3.Connection, caller: str, memb_id: int, body: Any) -> None:
    if not isinstance(body, dict) or not body:
        raise Fault(400, "badRequest", "No recognized action")
    if len(body) > 1:
        raise Fault(400, "badRequest", "Multiple actions not supported")
    ((action, _reason),) = body.items()
    if action not in _MEMBERSHIP_ACTIONS:
        raise Fault(400, "badRequest", "No recognized action")
    m = get_membership(conn, caller, memb_id)
    sources, who = _MEMBERSHIP_ACTIONS[action]
    admin = is_admin(conn, caller)
    if who == "owner" and not (admin or caller == m["owner"]):
        raise Fault(403, "forbidden", f"Only the project owner or an admin may {action} a membership.")
    if who == "member" and not (admin or caller == m["person"]):
        raise Fault(403, "forbidden", f"Only the member may {action} a membership.")
    if m["state"] not in sources:
        raise Fault(409, "conflict", f"Cannot {action} a membership in state '{m['state']}'.")
    project = get_project(conn, m["project"])
    if action == "accept":
        _check_accept(conn, project)
        _set_state(conn, m, "accepted")
    elif action in ("leave", "remove"):
        if project["leave_policy"] == "closed":
            raise Fault(409, "conflict", "The project does not allow members to leave.")
        auto = action == "remove" or project["leave_policy"] == "auto"
        _set_state(conn, m, "removed" if auto else "leave_requested")
    else:
        _set_state(conn, m, {"reject": "rejected", "cancel": "cancelled"}[action])


def new_project_uuid(rng_bits: int) -> str:
    return str(uuidlib.UUID(int=rng_bits, version=4))
