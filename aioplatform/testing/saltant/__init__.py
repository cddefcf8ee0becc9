"""The embedded saltant service (see ../../../shared/protocols/saltant.md)."""

from .service import SaltantService

__all__ = ["SaltantService"]
