"""The per-call ``timeout=`` is in every service method's own signature, so type checkers see it.

Every public coroutine method of the four clients, of the resources they bind and of
saltant's models declares ``*, timeout: CallTimeout = None`` (the wrapper of
:func:`aioplatform.core.calls.per_call_options` reads it); ``mypy --strict`` accepts
``timeout=5`` on them and refuses ``timeout="5"``. Over real HTTP, tests/test_call_options.py
pins what the option does.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from aioplatform import CallTimeout, Timeouts
from aioplatform.agave import AgaveClient
from aioplatform.astakos import AstakosClient
from aioplatform.core.calls import _WRAPPED, call_timeout, per_call_options
from aioplatform.flowserv import FlowservClient
from aioplatform.saltant import SaltantClient, models

REPO = Path(__file__).resolve().parent.parent

# Methods whose ``timeout`` has a meaning of its own, kept from the library they mirror:
# how long to wait in all (seconds), not one request's deadline. per_call_options leaves
# them unwrapped.
OWN_TIMEOUT = {
    "TaskInstanceManager.wait_until_finished",  # saltant-py: wait_until_finished(timeout=)
    "TaskInstanceManager.wait_many",  # the batch form of the same wait
    "TaskInstance.wait_until_finished",  # saltant-py's model method, same meaning
}
# Still given ``timeout=`` at run time only (not in the signature, unseen by type checkers):
# BaseClient.aclose lives in core/client.py, which this change leaves alone; closing a
# client sends no request, so a deadline has nothing to bound there.
UNDECLARED = {"BaseClient.aclose"}

SALTANT_MODELS = (
    models.User,
    models.ContainerTaskType,
    models.ExecutableTaskType,
    models.ContainerTaskInstance,
    models.ExecutableTaskInstance,
    models.TaskQueue,
    models.TaskWhitelist,
)


def service_classes(clients: list[Any]) -> set[type]:
    """The client classes and the classes of every resource a client binds."""
    classes: set[type] = set(SALTANT_MODELS)
    for client in clients:
        classes.add(type(client))
        classes.update(type(v) for v in vars(client).values() if getattr(v, "_client", None) is client)
    return classes


async def test_every_service_method_declares_timeout_as_call_timeout() -> None:
    clients = [
        SaltantClient("http://x/", "t"),
        AstakosClient("t", "http://x/"),
        FlowservClient("http://x/"),
        AgaveClient("http://x/"),
    ]
    try:
        classes = service_classes(clients)
        undeclared: list[str] = []
        seen: set[str] = set()
        checked = 0
        for cls in classes:
            for name in dir(cls):
                value = inspect.getattr_static(cls, name)
                if name.startswith("_") or not inspect.iscoroutinefunction(value):
                    continue
                definition = inspect.unwrap(value)
                where = definition.__qualname__
                seen.add(where)
                parameter = inspect.signature(definition).parameters.get("timeout")
                wrapped = getattr(value, _WRAPPED, False)
                if where in OWN_TIMEOUT:
                    assert not wrapped and parameter is not None, where
                    assert parameter.annotation != "CallTimeout", where
                    continue
                assert wrapped, f"{cls.__qualname__}.{name} does not take per-call options"
                if where in UNDECLARED:
                    assert parameter is None, f"{where} declares timeout now: drop it from UNDECLARED"
                    continue
                checked += 1
                if (
                    parameter is None
                    or parameter.annotation != "CallTimeout"
                    or parameter.kind is not inspect.Parameter.KEYWORD_ONLY
                    or parameter.default is not None
                ):
                    undeclared.append(f"{where} ({inspect.getsourcefile(definition)})")
        missing = "\n".join(sorted(set(undeclared)))
        assert not missing, f"no `*, timeout: CallTimeout = None` in:\n{missing}"
        assert checked > 250  # the walk did find the services' methods
        assert seen >= OWN_TIMEOUT | UNDECLARED  # every allow-listed method still exists
    finally:
        for client in clients:
            await client.aclose()


class Sample:
    """A class of the three kinds per_call_options tells apart."""

    async def typed(self, value: int, *, timeout: CallTimeout = None) -> tuple[Any, Any]:
        return timeout, call_timeout()

    async def untyped(self, value: int) -> Any:
        return call_timeout()

    async def own(self, *, timeout: float | None = None) -> Any:
        return timeout, call_timeout()


per_call_options(Sample)


async def test_a_declared_timeout_is_read_checked_and_passed_on() -> None:
    sample = Sample()
    assert getattr(Sample.typed, _WRAPPED) and getattr(Sample.untyped, _WRAPPED)
    assert await sample.typed(1, timeout=5) == (5, 5.0)  # checked into the context, passed on
    deadline = Timeouts(deadline=2)
    assert await sample.typed(1, timeout=deadline) == (deadline, deadline)
    assert await sample.typed(1) == (None, None)
    assert call_timeout() is None  # reset after the call
    with pytest.raises(TypeError, match="timeout"):
        await sample.typed(1, timeout="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        await sample.typed(1, timeout=-1)
    assert await sample.untyped(1, timeout=3) == 3.0  # type: ignore[call-arg]  # added at run time
    # a timeout of another type keeps its own meaning: not wrapped, not put in the context
    assert not getattr(Sample.own, _WRAPPED, False)
    assert await sample.own(timeout=4) == (4, None)
    assert list(inspect.signature(Sample.typed).parameters) == ["self", "value", "timeout"]


def test_a_call_timeout_that_is_not_keyword_only_with_none_is_refused() -> None:
    class Positional:
        async def get(self, timeout: CallTimeout = None) -> None: ...

    class NoDefault:
        async def get(self, *, timeout: CallTimeout) -> None: ...

    for cls in (Positional, NoDefault):
        with pytest.raises(TypeError, match=r"get: declare timeout as `\*, timeout: CallTimeout = None`"):
            per_call_options(cls)


GOOD = """
from aioplatform import Timeouts
from aioplatform.agave import AgaveClient
from aioplatform.astakos import AstakosClient
from aioplatform.flowserv import FlowservClient
from aioplatform.saltant import SaltantClient


async def calls(
    agave: AgaveClient, saltant: SaltantClient, astakos: AstakosClient, flowserv: FlowservClient
) -> None:
    await agave.jobs.get("x", timeout=5)
    instance = await saltant.container_task_instances.get(
        "00000000-0000-0000-0000-000000000000", timeout=Timeouts(deadline=2)
    )
    await instance.sync(timeout=1.5)
    await saltant.container_task_instances.wait_until_finished(instance.uuid, timeout=60)
    await astakos.get_quotas(timeout=3.0)
    await flowserv.users.whoami(timeout=1)
    await flowserv.users.login("ann", "pw", timeout=None)
"""

BAD = """
from aioplatform.agave import AgaveClient
from aioplatform.astakos import AstakosClient


async def calls(agave: AgaveClient, astakos: AstakosClient) -> None:
    await agave.jobs.get("x", timeout="5")  # line 7
    await astakos.get_quotas(deadline=3)  # line 8
"""


@pytest.mark.timeout(300)
def test_mypy_strict_sees_timeout_in_the_signatures(tmp_path: Path) -> None:
    (tmp_path / "good_calls.py").write_text(textwrap.dedent(GOOD))
    (tmp_path / "bad_calls.py").write_text(textwrap.dedent(BAD))
    env = {**os.environ, "MYPYPATH": str(REPO)}
    result = subprocess.run(
        [
            sys.executable, "-m", "mypy", "--strict", "--config-file", str(REPO / "pyproject.toml"),
            "--cache-dir", str(tmp_path / ".mypy_cache"), "good_calls.py", "bad_calls.py",
        ],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert not [e for e in errors if not e.startswith("bad_calls.py")], result.stdout
    assert len(errors) == 2, result.stdout
    assert errors[0].startswith("bad_calls.py:7:") and '"timeout"' in errors[0], result.stdout
    assert "[arg-type]" in errors[0], result.stdout
    assert errors[1].startswith("bad_calls.py:8:") and '"deadline"' in errors[1], result.stdout
    assert result.returncode == 1
