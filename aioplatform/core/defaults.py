"""Every default of the transport, in one place (httpx keeps its defaults together too).

Change a default here and every config object, docstring example and test picks it up.
"""

from __future__ import annotations

# Pool (Limits)
MAX_CONNECTIONS = 100
MAX_PER_HOST = 0  # 0 = no per-host cap beyond MAX_CONNECTIONS
KEEPALIVE = 15.0  # seconds an idle pooled connection is kept

# Timeouts (seconds; None = no limit)
POOL_TIMEOUT: float | None = 30.0  # waiting for a free connection from the pool
CONNECT_TIMEOUT: float | None = 10.0  # establishing a TCP connection
READ_TIMEOUT: float | None = 60.0  # between two reads of the response
# The whole call, across every retry and backoff. Finite, so no call with the default
# settings can run forever: the read timeout restarts on every byte, so a server that
# trickles a byte a second would otherwise hold a call without end. 300 s leaves the
# retry policy its room (4 attempts of a silent server at the 60 s read timeout, plus
# backoff, end before it) and a transfer of about 1 GB at 4 MB/s; openai-python's
# default is 600 s because a model's answer can take minutes, ours are REST calls.
# A longer transfer (a big file, a long stream) passes its own: Timeouts(deadline=None).
DEADLINE: float | None = 300.0

# Retries (RetryPolicy)
MAX_ATTEMPTS = 4
BACKOFF_BASE = 0.5  # first backoff ceiling; doubles each retry, full jitter below it
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 60.0  # a longer Retry-After raises RateLimited instead of sleeping
# RetryPolicy.until_deadline(): look-ups retry until the call's deadline; this bounds them
# only when a caller lifted the deadline (100 attempts, the jittered backoff averaging 4 s
# at the 8 s cap: about the default deadline's length).
UNTIL_DEADLINE_ATTEMPTS = 100
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# A POST/PATCH answered with one of these provably never reached the application.
UNPROCESSED_STATUSES = frozenset({429, 503})

# Batches
CONCURRENCY = 32
# Breaker(): consecutive failures that would hit every remaining item (credentials
# rejected, the only host refusing connections) before a batch stops starting items.
BREAKER_THRESHOLD = 20

# Where a server says which request an answer belongs to (RawResponse.request_id,
# APIError.request_id): the first of these headers present.
REQUEST_ID_HEADERS = (
    "X-Request-Id",
    "Request-Id",
    "X-Correlation-Id",
    "X-Openstack-Request-Id",
    "X-Compute-Request-Id",
    "X-Trans-Id",
    "X-Amzn-RequestId",
)

# Secrets are replaced by this in reprs, logs and error messages.
REDACTED = "***"
