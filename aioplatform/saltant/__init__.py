"""aioplatform.saltant: an asyncio client for saltant (every saltant-py operation, plus batches).

>>> from aioplatform.saltant import SaltantClient
>>> async with SaltantClient.from_env() as client:
...     async for instance in client.container_task_instances.list({"state": "running"}):
...         print(instance.uuid)
"""

from .auth import JWTAuth
from .client import SaltantClient
from .errors import AuthenticationFailed, BadEnvironmentError, NameNotFound, WaitTimeout
from .models import (
    TASK_INSTANCE_FINISH_STATUSES,
    TASK_INSTANCE_STATES,
    ContainerTaskInstance,
    ContainerTaskType,
    ExecutableTaskInstance,
    ExecutableTaskType,
    TaskInstance,
    TaskQueue,
    TaskType,
    TaskWhitelist,
    User,
)
from .task_instances import ContainerTaskInstanceManager, ExecutableTaskInstanceManager, TaskInstanceManager
from .task_queues import TaskQueueManager
from .task_types import ContainerTaskTypeManager, ExecutableTaskTypeManager, TaskTypeManager
from .task_whitelists import TaskWhitelistManager
from .users import UserManager

__all__ = [
    "AuthenticationFailed",
    "BadEnvironmentError",
    "ContainerTaskInstance",
    "ContainerTaskInstanceManager",
    "ContainerTaskType",
    "ContainerTaskTypeManager",
    "ExecutableTaskInstance",
    "ExecutableTaskInstanceManager",
    "ExecutableTaskType",
    "ExecutableTaskTypeManager",
    "JWTAuth",
    "NameNotFound",
    "SaltantClient",
    "TASK_INSTANCE_FINISH_STATUSES",
    "TASK_INSTANCE_STATES",
    "TaskInstance",
    "TaskInstanceManager",
    "TaskQueue",
    "TaskQueueManager",
    "TaskType",
    "TaskTypeManager",
    "TaskWhitelist",
    "TaskWhitelistManager",
    "User",
    "UserManager",
    "WaitTimeout",
]
