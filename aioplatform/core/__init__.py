"""aioplatform.core: the transport every service client shares (knows no service)."""
