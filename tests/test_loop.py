"""aioplatform._loop: the CLI's and the benchmarks' loop, uvloop only when installed and allowed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from aioplatform import _loop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def test_run_returns_the_coroutines_value_on_the_loop_it_names() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert _loop.run(answer()) == 42
    assert _loop.run(_loop_module()) == _loop.loop_name()
    expected = "uvloop" if _loop.uvloop_module() is not None else "asyncio"
    assert _loop.loop_name() == expected


def test_AIOPLATFORM_UVLOOP_0_keeps_asyncios_loop() -> None:
    code = (
        "import asyncio; from aioplatform import _loop\n"
        "async def which(): return type(asyncio.get_running_loop()).__module__\n"
        "print(_loop.loop_name(), _loop.run(which()))"
    )
    env = {**os.environ, "AIOPLATFORM_UVLOOP": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    name, module = out.stdout.split()
    assert name == "asyncio" and module.startswith("asyncio.")
