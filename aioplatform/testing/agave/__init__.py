"""The embedded Agave / Tapis v2 service (one module per resource)."""

from .service import AgaveService

__all__ = ["AgaveService"]
