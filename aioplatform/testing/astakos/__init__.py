"""The embedded astakos service (see ../../../shared/protocols/astakos.md)."""

from .service import AstakosService

__all__ = ["AstakosService"]
