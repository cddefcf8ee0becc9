"""aioplatform.agave: Agave / Tapis v2 (agavepy's operations) as an asyncio client."""

from .auth import AgaveTokens, TokenSet
from .client import AgaveClient
from .errors import AuthenticationError
from .models import AgaveModel

__all__ = ["AgaveClient", "AgaveModel", "AgaveTokens", "AuthenticationError", "TokenSet"]
