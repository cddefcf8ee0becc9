"""The async flowserv / ROB client (rob-flask's REST API: users, groups, uploaded group files).

>>> async with FlowservClient("http://localhost:5000/flowserv/api/v1") as client:
...     await client.users.login("alice", "secret")
...     group = await client.groups.create(workflow_id, "team-a")
...     handle = await client.groups.upload_file(group.id, Path("data.csv"))
"""

from .client import ApiKeyAuth, FlowservClient
from .errors import LoginFailed, NotAuthorized, NotLoggedIn
from .models import FileHandle, Group, Member, Parameter, Route, ServiceDescriptor, User, Workflow

__all__ = [
    "FlowservClient",
    "ApiKeyAuth",
    "LoginFailed",
    "NotLoggedIn",
    "NotAuthorized",
    "User",
    "Member",
    "Group",
    "FileHandle",
    "Workflow",
    "Parameter",
    "Route",
    "ServiceDescriptor",
]
