"""The embedded reference platform: the four services' protocols over aiohttp.web + SQLite.

Shares no code with the clients (a bug must not be able to hide on both sides of the wire).
"""

from .faults import FaultInjector, FaultRule
from .platform import LocalPlatform, PlatformStats
from .store import Store

__all__ = ["FaultInjector", "FaultRule", "LocalPlatform", "PlatformStats", "Store"]
