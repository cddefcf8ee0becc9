"""AstakosClient: every astakosclient operation as a coroutine, on a pooled session.

>>> async with AstakosClient(token, "https://accounts.example.com/identity/v2.0") as client:
...     info = await client.authenticate()
...     serial = await client.issue_one_commission(user, project, {"cyclades.vm": 1})
...     result = await client.resolve_commissions([serial], [], chunk_size=500)

The argument order is astakosclient's (``token`` first, then ``auth_url``, the
identity root). The account and ui roots are discovered from the service catalog
on first use, once. Some calls need a user token, others a service (component)
token, as on the server: build one client per token.
"""

from __future__ import annotations

import os
from typing import Any

from .account import AccountMixin
from .commissions import CommissionsMixin
from .identity import IdentityMixin
from .projects import ProjectsMixin
from .quotas import QuotasMixin
from .user_catalogs import UserCatalogsMixin

__all__ = ["AstakosClient"]


class AstakosClient(
    IdentityMixin, UserCatalogsMixin, AccountMixin, QuotasMixin, CommissionsMixin, ProjectsMixin
):
    """An async Astakos client (``token``, identity ``auth_url``; options as keywords).

    ``session`` shares a pool with other clients (it is then not closed by this one);
    ``retry``, ``timeouts`` and ``limits`` configure the client's own. Use it as an
    async context manager, or call :meth:`aclose`.
    """

    @classmethod
    def from_env(cls, **options: Any) -> AstakosClient:
        """A client from ``ASTAKOS_TOKEN`` and ``ASTAKOS_AUTH_URL`` (the CLI reads the same).

        astakosclient has no environment convention; these names are ours. ``options``
        (session, retry, timeouts, limits, logger) are passed on.
        """
        values = {}
        for name in ("ASTAKOS_TOKEN", "ASTAKOS_AUTH_URL"):
            value = os.environ.get(name)
            if not value:
                raise ValueError(f"environment variable {name} is not set")
            values[name] = value
        return cls(values["ASTAKOS_TOKEN"], values["ASTAKOS_AUTH_URL"], **options)
