"""The event loop of aioplatform's own entry points: uvloop when it is installed.

``pip install 'aioplatform[speedups]'`` installs uvloop (and orjson). The command line
(``aioplatform serve``, ``demo`` and the batch commands) and the benchmarks then run on
uvloop; without it they run on asyncio's own loop, and ``AIOPLATFORM_UVLOOP=0`` keeps them
there even when it is installed. The library itself never chooses a loop: a ``Session``,
the clients and ``LocalPlatform`` run on whatever loop they are awaited in, so an
application uses uvloop only if it starts one itself (``uvloop.run(main())``).
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Coroutine
from types import ModuleType
from typing import Any, TypeVar

__all__ = ["loop_name", "run", "uvloop_module"]

T = TypeVar("T")


def uvloop_module() -> ModuleType | None:
    """uvloop when it is installed (with ``run``) and not turned off by ``AIOPLATFORM_UVLOOP=0``."""
    if os.environ.get("AIOPLATFORM_UVLOOP", "") == "0":
        return None
    try:
        module = importlib.import_module("uvloop")
    except ImportError:
        return None
    return module if hasattr(module, "run") else None  # uvloop.run: uvloop >= 0.18


def loop_name() -> str:
    """``"uvloop"`` or ``"asyncio"``: the loop :func:`run` uses."""
    return "uvloop" if uvloop_module() is not None else "asyncio"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop when :func:`uvloop_module` finds it."""
    uvloop = uvloop_module()
    if uvloop is None:
        return asyncio.run(main)
    result: T = uvloop.run(main)
    return result
