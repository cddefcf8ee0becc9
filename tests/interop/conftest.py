"""The real rob-flask server for the interop tests (see robflask.py)."""

from .fixtures import robflask, robflask_short_ttl  # noqa: F401
