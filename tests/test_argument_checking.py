"""Consistent argument checking over the whole public surface of the four service clients.

For every public coroutine method of every client and resource (saltant, Astakos,
flowserv, Agave) and every one of its parameters, a value of a type no parameter accepts
must fail **before any request** with a ``TypeError`` or ``ValueError`` that names an
argument of the method — and when it names the wrong-typed argument, it is a
``TypeError``. The constructors likewise: a wrong type is a ``TypeError`` naming the
argument. Hypothesis draws the method, the parameter and the wrong value; the other
required parameters get plausible placeholders from their annotations (which may be
invalid values themselves: the error may then name them instead, still before any
request). Real HTTP: the embedded platform, which counts what reaches it.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aioplatform.agave import AgaveClient
from aioplatform.astakos import AstakosClient
from aioplatform.flowserv import FlowservClient
from aioplatform.saltant import SaltantClient
from aioplatform.testing import LocalPlatform


class Opaque:
    """A type no parameter of the SDK accepts."""

    def __repr__(self) -> str:
        return "<Opaque>"


WRONG = st.sampled_from([Opaque(), 1j, object(), Ellipsis])
SKIPPED = {"timeout"}  # checked by core.calls (tests/test_call_options.py)


def make_clients(platform: LocalPlatform | None = None) -> dict[str, Any]:
    if platform is None:
        return {
            "saltant": SaltantClient("http://127.0.0.1:1/api/", "t" * 40),
            "astakos": AstakosClient("t" * 32, "http://127.0.0.1:1/identity/v2.0"),
            "flowserv": FlowservClient("http://127.0.0.1:1/api/"),
            "agave": AgaveClient("http://127.0.0.1:1/", token="t" * 32),
        }
    return {
        "saltant": SaltantClient(platform.saltant_url, platform.saltant_token),
        "astakos": AstakosClient(platform.astakos_user_token, platform.astakos_auth_url),
        "flowserv": FlowservClient(platform.flowserv_url),
        "agave": AgaveClient(platform.agave_url, token=platform.agave.access_token),
    }


def surface(client: Any) -> Iterator[tuple[str, str]]:
    """(``resource.method`` or ``method``, parameter) for every public coroutine method."""

    def methods(obj: Any, prefix: str) -> Iterator[tuple[str, Any]]:
        for name in dir(obj):
            if name.startswith("_") or name in ("aclose", "with_raw_response", "session"):
                continue
            value = getattr(obj, name)
            if inspect.iscoroutinefunction(value):
                yield prefix + name, value
            elif not prefix and getattr(value, "_client", None) is client:
                yield from methods(value, name + ".")

    for path, method in methods(client, ""):
        for name, parameter in inspect.signature(method).parameters.items():
            if (
                parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
                and name not in SKIPPED
            ):
                yield path, name


def cases() -> list[tuple[str, str, str]]:
    async def collect() -> list[tuple[str, str, str]]:
        found = []
        for service, client in make_clients().items():
            found += [(service, path, name) for path, name in surface(client)]
            await client.aclose()
        return found

    return asyncio.run(collect())


CASES = cases()


def placeholder(parameter: inspect.Parameter) -> Any:
    text = str(parameter.annotation)
    if "int" in text and "str" not in text:
        return 1
    if "Mapping" in text or "dict" in text:
        return {}
    if "Iterable" in text or "Sequence" in text or "list" in text:
        return []
    if "bool" in text:
        return False
    if "float" in text:
        return 1.0
    return "abc"


def resolve(client: Any, path: str) -> Any:
    target = client
    for part in path.split("."):
        target = getattr(target, part)
    return target


@pytest.fixture(scope="module")
def platform() -> Iterator[LocalPlatform]:
    with LocalPlatform.in_thread() as running:
        yield running


def test_the_surface_is_large_and_covers_every_service() -> None:
    services = {service for service, _, _ in CASES}
    assert services == {"saltant", "astakos", "flowserv", "agave"} and len(CASES) > 500


@settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.sampled_from(CASES), wrong=WRONG)
def test_a_wrong_typed_argument_fails_before_any_request_naming_an_argument(
    platform: LocalPlatform, case: tuple[str, str, str], wrong: Any
) -> None:
    service, path, name = case

    async def call() -> BaseException | None:
        client = make_clients(platform)[service]
        try:
            method = resolve(client, path)
            signature = inspect.signature(method)
            kwargs: dict[str, Any] = {}
            for other, parameter in signature.parameters.items():
                if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD) or other in SKIPPED:
                    continue
                if other == name:
                    kwargs[other] = wrong
                elif parameter.default is inspect.Parameter.empty:
                    kwargs[other] = placeholder(parameter)
            try:
                await asyncio.wait_for(method(**kwargs), 10)
            except Exception as exc:
                return exc
            return None
        finally:
            await client.aclose()

    before = platform.stats.requests
    error = asyncio.run(call())
    assert platform.stats.requests == before, f"{service} {path}({name}={wrong!r}) sent a request: {error!r}"
    assert isinstance(error, (TypeError, ValueError)), f"{service} {path}({name}={wrong!r}) -> {error!r}"
    message = str(error)
    parameters = [p for p in inspect.signature(resolve(make_clients_cached()[service], path)).parameters]
    named = [p for p in parameters if re.search(rf"(?<![A-Za-z_]){re.escape(p)}(?![A-Za-z_])", message)]
    assert named, f"{service} {path}({name}={wrong!r}): {type(error).__name__} names no argument: {message}"
    if name in named:
        assert isinstance(error, TypeError), (
            f"{service} {path}({name}={wrong!r}): a wrong type is a TypeError: {message}"
        )


_CACHED: dict[str, Any] = {}


def make_clients_cached() -> dict[str, Any]:
    """Clients only read for their methods' signatures (never used to send)."""
    if not _CACHED:

        async def build() -> dict[str, Any]:
            return make_clients()

        _CACHED.update(asyncio.run(build()))
    return _CACHED


CONSTRUCTORS: dict[type, dict[str, Any]] = {
    SaltantClient: {"base_url": "http://127.0.0.1:1/api/", "token": "t" * 40},
    AstakosClient: {"token": "t" * 32, "auth_url": "http://127.0.0.1:1/identity/v2.0"},
    FlowservClient: {"base_url": "http://127.0.0.1:1/api/"},
    AgaveClient: {"base_url": "http://127.0.0.1:1/", "token": "t" * 32},
}
CONSTRUCTOR_CASES = [
    (cls, name)
    for cls in CONSTRUCTORS
    for name, parameter in inspect.signature(cls.__init__).parameters.items()
    if name != "self" and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
]


@settings(max_examples=200, deadline=None)
@given(case=st.sampled_from(CONSTRUCTOR_CASES), wrong=WRONG)
def test_a_wrong_typed_constructor_argument_is_a_type_error_naming_it(
    case: tuple[type, str], wrong: Any
) -> None:
    cls, name = case

    async def build() -> BaseException | None:
        try:
            client = cls(**{**CONSTRUCTORS[cls], name: wrong})
        except Exception as exc:
            return exc
        await client.aclose()
        return None

    error = asyncio.run(build())
    assert isinstance(error, TypeError), f"{cls.__name__}({name}={wrong!r}) -> {error!r}"
    assert name in str(error), f"{cls.__name__}({name}={wrong!r}): {error}"
