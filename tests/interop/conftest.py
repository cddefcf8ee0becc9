"""The real rob-flask and saltant servers for the interop tests (see robflask.py, saltant_server.py)."""

from .fixtures import robflask, robflask_short_ttl, saltant_server  # noqa: F401
