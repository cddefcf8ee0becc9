"""The embedded flowserv service (see ../../../shared/protocols/flowserv.md)."""

from .service import FlowservService

__all__ = ["FlowservService"]
