"""The resources an :class:`AgaveClient` carries, attached in one place.

Each resource module defines one class taking the client (``Jobs(client)``); ``attach``
sets them as the client's attributes, as agavepy's ``ag.jobs``, ``ag.files`` ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import AgaveClient


def attach(client: AgaveClient) -> None:
    """Set every resource on ``client`` (called again on ``with_options`` copies)."""
    from .apps import Apps
    from .files import Files
    from .jobs import Jobs
    from .systems import Systems

    client.files = Files(client)
    client.systems = Systems(client)
    client.apps = Apps(client)
    client.jobs = Jobs(client)
    from .clients import Clients
    from .tokens import Tokens

    client.clients = Clients(client)
    client.tokens = Tokens(client)
    from .meta import Meta

    client.meta = Meta(client)
    from .notifications import Notifications
    from .profiles import Profiles

    client.notifications = Notifications(client)
    client.profiles = Profiles(client)
    from .actors import Actors

    client.actors = Actors(client)
