"""The ``aioplatform`` command: ``serve`` (the embedded platform), ``demo``, batch commands.

Built with typer (the ``cli`` extra); the library itself never imports this module.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

try:
    import typer
except ImportError:  # pragma: no cover - exercised only without the cli extra
    typer = None  # type: ignore[assignment]

__all__ = ["main"]


def _build_app() -> Any:
    assert typer is not None
    app = typer.Typer(
        name="aioplatform",
        help="asyncio SDK for saltant, Astakos, flowserv and Agave — and their embedded reference platform.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.command()
    def serve(
        port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 = a free one).")] = 8080,
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        db: Annotated[str, typer.Option(help="SQLite file (':memory:' for none).")] = ":memory:",
        latency_ms: Annotated[float, typer.Option(help="Latency added to every request.")] = 0.0,
        fault_rate: Annotated[
            float, typer.Option(help="Share of requests answered 429/503 or dropped after the handler.")
        ] = 0.0,
        seed: Annotated[int, typer.Option(help="Seed of the fault injector and seeded data.")] = 0,
        credentials_file: Annotated[
            Path | None,
            typer.Option(help="Write the service URLs and seeded tokens to this JSON file (mode 600)."),
        ] = None,
    ) -> None:
        """Run the embedded reference platform until Ctrl-C."""
        asyncio.run(_serve(host, port, db, latency_ms / 1000, fault_rate, seed, credentials_file))

    @app.command()
    def demo(
        db: Annotated[str | None, typer.Option(help="SQLite file (default: a temporary one).")] = None,
        latency_ms: Annotated[float, typer.Option(help="Latency the platform adds per request.")] = 20.0,
        fault_rate: Annotated[float, typer.Option(help="Share of faulted requests.")] = 0.05,
    ) -> None:
        """Start the embedded platform in-process and run a round trip against it."""
        code = asyncio.run(_demo(db, latency_ms / 1000, fault_rate))
        raise typer.Exit(code)

    return app


def _fault_rules(fault_rate: float) -> list[Any]:
    from .testing import FaultRule

    if not 0 <= fault_rate <= 1:
        raise SystemExit(f"--fault-rate must be between 0 and 1, got {fault_rate}")
    return [FaultRule.uniform(fault_rate, retry_after=0.05)] if fault_rate else []


def platform_credentials(platform: Any) -> dict[str, str]:
    """URLs and seeded tokens of a running platform (for a harness in another process)."""
    found: dict[str, str] = {"url": platform.url}
    for name in (
        "saltant_url", "saltant_token", "astakos_auth_url", "astakos_user_token",
        "astakos_service_token", "flowserv_url",
    ):  # fmt: skip
        try:
            found[name] = getattr(platform, name)
        except (AttributeError, RuntimeError):
            continue  # a service without that credential
    return found


async def _serve(
    host: str, port: int, db: str, latency: float, fault_rate: float, seed: int,
    credentials_file: Path | None = None,
) -> None:  # fmt: skip
    import json
    import os

    from .testing import LocalPlatform

    platform = LocalPlatform(
        db, host=host, port=port, latency=latency, faults=_fault_rules(fault_rate), seed=seed
    )
    async with platform:
        if credentials_file is not None:
            # Tokens go to a private file, never to the terminal or a log.
            fd = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(platform_credentials(platform), out, indent=2)
        print(f"aioplatform embedded platform on {platform.url}", flush=True)
        for name in ("saltant", "astakos", "flowserv"):
            service = platform.services.get(name)
            if service is not None:
                print(f"  {name:9} {getattr(service, 'auth_url', service.url)}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        print(
            f"stopping: {platform.stats.requests} requests on {platform.stats.connections} connections",
            flush=True,
        )


async def _demo(db: str | None, latency: float, fault_rate: float) -> int:
    import tempfile

    from . import RetryPolicy, Session
    from .testing import LocalPlatform

    with tempfile.TemporaryDirectory(prefix="aioplatform-demo-") as tmp:
        path = db or str(Path(tmp) / "platform.sqlite3")
        platform = LocalPlatform(path, latency=latency, faults=_fault_rules(fault_rate))
        session = Session(retry=RetryPolicy(backoff_base=0.05, backoff_cap=0.5))
        async with platform, session:
            response = await session.request("GET", platform.url + "/")
            services = response.json()["services"]
            print(f"platform {platform.url}: {response.status}, services {sorted(services)}")
            print(f"session: {session.stats.snapshot()}")
    return 0


def main() -> None:
    if typer is None:
        sys.exit("the aioplatform command needs the cli extra: pip install 'aioplatform[cli]'")
    _build_app()()


if __name__ == "__main__":
    main()
