"""LocalPlatform: the embedded reference platform (aiohttp.web + SQLite).

One server on 127.0.0.1 (a free port unless ``port`` is given) mounts every
embedded service under its own prefix, keeps state in SQLite (``":memory:"`` or a
file that survives a restart), injects seeded faults, and counts what it saw.

>>> async with LocalPlatform() as platform:
...     async with SaltantClient(platform.saltant_url, platform.saltant_token) as client:
...         ...

From synchronous code (or a test whose client is blocking) run it on its own thread:

>>> with LocalPlatform.in_thread(latency=0.02) as platform:
...     requests.get(platform.saltant_url + "users/", headers=...)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fnmatch
import ipaddress
import shutil
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from .faults import FaultInjector, FaultRule
from .services import EmbeddedService
from .store import Store

__all__ = ["LocalPlatform", "PlatformStats"]


# Distinct (method, path) pairs PlatformStats counts one by one: a long-lived platform (every
# clone is a new path) must not grow without bound. Beyond it, requests to paths not seen
# yet are counted together under OTHER_PATHS (which "*" still matches, so totals stay right).
ROUTES_KEPT = 10_000
OTHER_PATHS = "<other paths>"


@attrs.define
class PlatformStats:
    """What the server saw: requests (every attempt, faulted ones included) and connections.

    ``by_route`` counts requests per (method, path) for the first :data:`ROUTES_KEPT`
    distinct pairs; requests to further new paths are counted under
    ``(method, OTHER_PATHS)``, so memory stays bounded and :meth:`count` of ``"*"`` stays exact.
    """

    requests: int = 0
    connections: int = 0
    by_route: collections.Counter[tuple[str, str]] = attrs.Factory(collections.Counter)

    def record(self, method: str, path: str) -> None:
        self.requests += 1
        key = (method, path)
        if key not in self.by_route and len(self.by_route) >= ROUTES_KEPT:
            key = (method, OTHER_PATHS)
        self.by_route[key] += 1

    def count(self, method: str | None = None, path: str = "*") -> int:
        """Requests whose method equals ``method`` (any if None) and path matches the glob."""
        return sum(
            n
            for (m, p), n in list(self.by_route.items())
            if (method is None or m == method.upper()) and fnmatch.fnmatchcase(p, path)
        )

    def reset(self) -> None:
        self.requests = 0
        self.connections = 0
        self.by_route.clear()


def _service_classes() -> list[type[EmbeddedService]]:
    # Imported here so that a service under construction cannot break the shell's import.
    from .agave import AgaveService
    from .astakos import AstakosService
    from .flowserv import FlowservService
    from .saltant import SaltantService

    return [SaltantService, AstakosService, FlowservService, AgaveService]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and any loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_credentials(credentials: Mapping[str, str] | None) -> dict[str, str]:
    """``credentials`` as a dict, or ValueError/TypeError naming the bad entry (never its value)."""
    if credentials is None:
        return {}
    if not isinstance(credentials, Mapping):
        raise TypeError(f"credentials must be a mapping of name to str, got {type(credentials).__name__}")
    known = {name for cls in _service_classes() for name in cls.credential_names}
    unknown = sorted(set(credentials) - known)
    if unknown:
        raise ValueError(f"credentials has unknown names {unknown}; known: {sorted(known)}")
    for name, value in credentials.items():
        if not isinstance(value, str) or not value:
            # The value itself is never shown: it is a secret.
            raise TypeError(f"credentials[{name!r}] must be a non-empty str")
    return dict(credentials)


class _NotReady(asyncio.Protocol):
    """A connection accepted before the platform's setup ended: closed at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


@web.middleware
async def _unreadable_bodies(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """A body the transport cannot decode (a ``Content-Encoding: gzip`` that is not gzip) is a 400.

    aiohttp raises it from whichever read the handler makes; answered here once for every
    service, as aiohttp answers the other malformed messages (a plain-text 400), never a 500.
    """
    try:
        return await handler(request)
    except RequestPayloadError as exc:
        response = web.Response(status=400, text=f"Bad request body: {exc}")
        response.force_close()
        await response.prepare(request)
        await response.write_eof()
        # The rest of the body cannot be read either: hang up rather than leave the client
        # blocked sending a body nobody reads.
        if request.transport is not None:
            request.transport.close()
        return response


class LocalPlatform:
    """The embedded platform. An async context manager; see the module docstring."""

    def __init__(
        self,
        db: str | Path = ":memory:",
        *,
        latency: float = 0.0,
        faults: FaultRule | Iterable[FaultRule] | None = None,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: str | Path | None = None,
        allow_remote: bool = False,
        credentials: Mapping[str, str] | None = None,
        cors_origins: Iterable[str] = (),
        agave_tls_host: str | None = None,
        agave_tls_port: int = 443,
    ):
        """``credentials`` fixes seeded secrets by name (``saltant_token``, ``astakos_user_token``
        ... see each service's ``credential_names``); every one not given is drawn from
        :mod:`secrets`, never from ``seed`` (which only drives faults and simulated outcomes).
        ``host`` must be a loopback address unless ``allow_remote=True``. ``cors_origins``
        are the browser origins a service with CORS (flowserv) answers; none by default.

        ``agave_tls_host`` (e.g. ``"127.0.0.2"``) also serves Agave at the root of
        ``https://<host>`` on ``agave_tls_port`` (443 by default; binding it needs root),
        with a CA and a certificate for that host made at start-up by trustme (in the
        ``test`` extra): agavepy 0.9.5 speaks nothing but HTTPS on port 443 at the root
        of a host. ``agave_tls_url`` and ``agave_ca_pem`` (for ``verify=``) say where and
        what to trust. Any address of 127.0.0.0/8 is loopback on Linux, so parallel
        platforms can each take their own.
        """
        if not isinstance(latency, (int, float)) or latency < 0:
            raise ValueError(f"latency must be a number of seconds >= 0, got {latency!r}")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer in 0..65535, got {port!r}")
        if not isinstance(host, str) or not host:
            raise TypeError(f"host must be a non-empty str, got {type(host).__name__}")
        if not allow_remote and not is_loopback(host):
            raise ValueError(
                f"host {host!r} is not a loopback address: every service and its seeded credentials "
                "would be reachable from the network; pass allow_remote=True if that is intended"
            )
        if agave_tls_host is not None:
            if not isinstance(agave_tls_host, str) or not agave_tls_host:
                raise TypeError(
                    f"agave_tls_host must be a non-empty str, got {type(agave_tls_host).__name__}"
                )
            if not allow_remote and not is_loopback(agave_tls_host):
                raise ValueError(
                    f"agave_tls_host {agave_tls_host!r} is not a loopback address; "
                    "pass allow_remote=True if that is intended"
                )
        if not isinstance(agave_tls_port, int) or not 0 <= agave_tls_port <= 65535:
            raise ValueError(f"agave_tls_port must be an integer in 0..65535, got {agave_tls_port!r}")
        self.credentials = check_credentials(credentials)
        origins = [cors_origins] if isinstance(cors_origins, str) else list(cors_origins)
        if not all(isinstance(o, str) and o for o in origins):
            raise TypeError("cors_origins must be origin strings such as 'http://localhost:3000'")
        self.cors_origins = frozenset(o.rstrip("/") for o in origins)
        self.db = str(db)
        self.seed = seed
        self.host = host
        self.allow_remote = allow_remote
        self._port = port
        rules = [faults] if isinstance(faults, FaultRule) else list(faults or ())
        self.faults = FaultInjector(rules, seed=seed, latency=float(latency))
        self.stats = PlatformStats()
        self.store = Store(self.db)
        self._data_dir_arg = Path(data_dir) if data_dir is not None else None
        self._tmp_dir: str | None = None
        self.data_dir: Path | None = None
        self.services: dict[str, EmbeddedService] = {}
        self._runner: web.AppRunner | None = None
        self._server: asyncio.AbstractServer | None = None
        self.url = ""
        self._agave_tls = None if agave_tls_host is None else (agave_tls_host, agave_tls_port)
        self._tls_runner: web.AppRunner | None = None
        self._tls_server: asyncio.AbstractServer | None = None
        self._agave_tls_url = ""
        self._agave_ca_pem: Path | None = None

    # -- service shortcuts --------------------------------------------------------------

    def service(self, name: str) -> Any:
        try:
            return self.services[name]
        except KeyError:
            raise RuntimeError(f"service {name!r} is not mounted (is the platform running?)") from None

    @property
    def saltant(self) -> Any:
        return self.service("saltant")

    @property
    def astakos(self) -> Any:
        return self.service("astakos")

    @property
    def flowserv(self) -> Any:
        return self.service("flowserv")

    @property
    def saltant_url(self) -> str:
        return str(self.saltant.url)

    @property
    def saltant_token(self) -> str:
        return str(self.saltant.admin_token)

    @property
    def astakos_auth_url(self) -> str:
        return str(self.astakos.auth_url)

    @property
    def astakos_user_token(self) -> str:
        return str(self.astakos.user_token)

    @property
    def astakos_service_token(self) -> str:
        return str(self.astakos.service_token)

    @property
    def flowserv_url(self) -> str:
        return str(self.flowserv.url)

    @property
    def agave(self) -> Any:
        return self.service("agave")

    @property
    def agave_url(self) -> str:
        """Agave's API root on this platform (``AgaveClient(platform.agave_url, ...)``)."""
        return str(self.agave.base_url)

    @property
    def agave_token(self) -> str:
        """The seeded user's access token (the refresh token is ``platform.agave.refresh_token``)."""
        return str(self.agave.access_token)

    @property
    def agave_tls_url(self) -> str:
        """Agave at the root of its TLS site, ``https://127.0.0.2`` (``:PORT`` unless 443)."""
        if not self._agave_tls_url:
            raise RuntimeError("this platform serves no Agave TLS site (pass agave_tls_host=...)")
        return self._agave_tls_url

    @property
    def agave_ca_pem(self) -> Path:
        """The PEM file of the CA that signed the TLS site's certificate (agavepy's ``verify=``)."""
        if self._agave_ca_pem is None:
            raise RuntimeError("this platform serves no Agave TLS site (pass agave_tls_host=...)")
        return self._agave_ca_pem

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> LocalPlatform:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the platform is already running")
        if self._data_dir_arg is not None:
            self.data_dir = self._data_dir_arg
        elif self.db == ":memory:":
            self._tmp_dir = tempfile.mkdtemp(prefix="aioplatform-")
            self.data_dir = Path(self._tmp_dir)
        else:
            self.data_dir = Path(self.db + ".files")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self.store.open()

        app = web.Application(
            middlewares=[self._count_requests, self.faults.middleware(), _unreadable_bodies],
            client_max_size=64 * 1024**2,
        )
        # The port must be known before services build absolute URLs (DRF `next` links).
        loop = asyncio.get_running_loop()
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        self._runner = runner
        for cls in _service_classes():
            service = cls(self)
            self.services[service.name] = service

        def protocol() -> Any:
            self.stats.connections += 1
            if runner.server is None:
                # A connection before setup ends is closed unanswered (asyncio's loop does
                # that when this factory fails; uvloop stops accepting altogether).
                return _NotReady()
            return runner.server()

        # Listen first (port 0 picks a free port): services build absolute URLs (DRF
        # `next` links, the Astakos catalog) from it. Nothing connects before setup ends.
        self._server = await loop.create_server(protocol, self.host, self._port)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{port}"
        app.router.add_get("/", self._describe)
        for service in self.services.values():
            app.add_subapp(service.prefix, await service.setup())
        await runner.setup()
        if self._agave_tls is not None:
            try:
                await self._start_agave_tls(*self._agave_tls)
            except BaseException:
                await self.close()  # a half-started platform holds no port, thread or file
                raise

    async def _start_agave_tls(self, host: str, port: int) -> None:
        """The second site: Agave's routes at ``/`` behind the same counters and faults, on TLS."""
        try:
            import trustme
        except ImportError:
            # Only this feature needs it; the runtime dependencies stay aiohttp/attrs/cattrs/tenacity.
            raise RuntimeError(
                "agave_tls_host needs trustme to make the site's certificate: "
                "pip install 'aioplatform[test]' (or trustme)"
            ) from None
        assert self.data_dir is not None
        ca = trustme.CA(organization_name="aioplatform embedded Agave")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(host).configure_cert(context)  # an IP SAN for an address, DNS for a name
        ca_pem = self.data_dir / "agave-tls-ca.pem"
        ca.cert_pem.write_to_path(ca_pem)
        app = self.agave.routes_app([self._count_requests, self.faults.middleware()])
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        self._tls_runner = runner

        def protocol() -> Any:
            self.stats.connections += 1
            return runner.server()  # type: ignore[misc]

        loop = asyncio.get_running_loop()
        self._tls_server = await loop.create_server(protocol, host, port, ssl=context)
        bound = self._tls_server.sockets[0].getsockname()[1]
        netloc = f"[{host}]" if ":" in host else host
        self._agave_tls_url = f"https://{netloc}" if bound == 443 else f"https://{netloc}:{bound}"
        self._agave_ca_pem = ca_pem

    async def close(self) -> None:
        for service in self.services.values():
            await service.close()
        if self._tls_server is not None:
            self._tls_server.close()
            self._tls_server = None
        if self._tls_runner is not None:
            await self._tls_runner.cleanup()
            self._tls_runner = None
        self._agave_tls_url, self._agave_ca_pem = "", None
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.store.close()
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None

    async def _describe(self, request: web.Request) -> web.Response:
        """``GET /``: which services are mounted where, and the counters so far.

        A health check for ``aioplatform serve`` users, and how the benchmarks read the
        connections a run opened on a platform in another process.
        """
        return web.json_response(
            {
                "platform": "aioplatform",
                "services": {n: s.url for n, s in self.services.items()},
                "stats": {
                    "requests": self.stats.requests,
                    "connections": self.stats.connections,
                    "faults": dict(self.faults.injected),
                },
            }
        )

    @web.middleware
    async def _count_requests(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.stats.record(request.method, request.path)
        return await handler(request)

    # -- running on a thread ----------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def in_thread(cls, *args: Any, **kwargs: Any) -> Iterator[LocalPlatform]:
        """Run a platform on its own thread and event loop (for blocking clients and tests)."""
        platform = cls(*args, **kwargs)
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(platform.start())
            except BaseException as exc:
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(platform.close())
            loop.close()

        thread = threading.Thread(target=serve, name="aioplatform-platform", daemon=True)
        thread.start()
        started.wait()
        if failure:
            raise failure[0]
        platform._loop = loop  # type: ignore[attr-defined]
        try:
            yield platform
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)

    def call(self, coro_fn: Callable[[], Awaitable[Any]]) -> Any:
        """From another thread: run ``coro_fn()`` on a threaded platform's loop, wait for it."""
        loop: asyncio.AbstractEventLoop = self._loop  # type: ignore[attr-defined]
        return asyncio.run_coroutine_threadsafe(coro_fn(), loop).result()  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<LocalPlatform {self.url or 'stopped'} db={self.db!r}>"
