"""The resource modules of the embedded Agave, in the order they install their routes.

Each module has ``async def install(service: AgaveService) -> None``: it creates its
tables (idempotently) and registers its routes with ``service.route(method, path, handler)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .service import AgaveService

Installer = Callable[["AgaveService"], Awaitable[None]]

from . import apps, clients, files, jobs, meta, systems  # noqa: E402

# Systems first: apps seed and check against them.
INSTALLERS: list[Installer] = [systems.install, apps.install, files.install, jobs.install, clients.install]
INSTALLERS.append(meta.install)

from . import notifications  # noqa: E402

INSTALLERS.append(notifications.install)  # after jobs: it hears the jobs' status events

from . import profiles  # noqa: E402

INSTALLERS.append(profiles.install)

from . import actors  # noqa: E402

INSTALLERS.append(actors.install)
