"""What the embedded Agave seeds, in one place (resource modules and tests read it here)."""

from __future__ import annotations

# The seeded public storage system, every user's default (files "on the default system").
DEFAULT_STORAGE_SYSTEM = "agave-storage"
# The seeded public execution system apps run on (CLI / FORK scheduler).
DEFAULT_EXECUTION_SYSTEM = "agave-exec"
# The seeded public app (a word count), so a job can be submitted with nothing else set up.
SEEDED_APP = "wc-1.00"
