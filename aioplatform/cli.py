"""The ``aioplatform`` command: ``serve`` (the embedded platform), ``demo``, batch commands.

Built with typer (the ``cli`` extra); the library itself never imports this module.
"""


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
        port: Annotated[int, typer.Option(help="Port to listen on (0 = a free one).")] = 8080,
        host: Annotated[
            str, typer.Option(help="Address to listen on: a loopback one unless --allow-remote is given.")
        ] = "127.0.0.1",
        allow_remote: Annotated[
            bool,
            typer.Option(
                "--allow-remote",
                help="Allow a --host other machines can reach (every service and its seeded "
                "credentials become reachable from the network).",
            ),
        ] = False,
        cors_origin: Annotated[
            list[str] | None,
            typer.Option(
                "--cors-origin",
                metavar="ORIGIN",
                help="A browser origin allowed to call the flowserv API (repeatable; default none).",
            ),
        ] = None,
        db: Annotated[str, typer.Option(help="SQLite file (':memory:' for none).")] = ":memory:",
        latency_ms: Annotated[float, typer.Option(min=0, help="Latency added to every request.")] = 0.0,
        fault_rate: Annotated[
            float,
            typer.Option(
                min=0, max=1, help="Share of requests answered 429/503 or dropped after the handler."
            ),
        ] = 0.0,
        seed: Annotated[
            int, typer.Option(help="Seed of faults and simulated outcomes (never of credentials).")
        ] = 0,
        credentials_file: Annotated[
            Path | None,
            typer.Option(help="Write the service URLs and seeded tokens to this JSON file (mode 600)."),
        ] = None,
        fixed_credentials: Annotated[
            Path | None,
            typer.Option(
                help="A JSON object of seeded secrets to use instead of random ones, by name "
                '(e.g. {"saltant_token": "..."}; names in docs/platform.md).'
            ),
        ] = None,
        agave_tls_host: Annotated[
            str | None,
            typer.Option(
                help="Also serve Agave at the root of https://HOST (e.g. 127.0.0.2), with a certificate "
                "made at start-up, for agavepy (it speaks only HTTPS on port 443; needs trustme)."
            ),
        ] = None,
        agave_tls_port: Annotated[
            int, typer.Option(min=0, max=65535, help="Port of that site (443 needs root; 0 = a free one).")
        ] = 443,
    ) -> None:
        """Run the embedded reference platform until Ctrl-C."""
        from .testing.platform import is_loopback

        if not is_loopback(host):
            if not allow_remote:
                raise typer.BadParameter(
                    f"{host!r} is not a loopback address; add --allow-remote to listen where other "
                    "machines can connect",
                    param_hint="--host",
                )
            print(
                f"warning: listening on {host}: the saltant, Astakos, flowserv and Agave APIs and "
                "their seeded credentials are reachable by anyone who can connect to this "
                "machine's port",
                file=sys.stderr,
                flush=True,
            )
        if agave_tls_host and not allow_remote and not is_loopback(agave_tls_host):
            raise typer.BadParameter(
                f"{agave_tls_host!r} is not a loopback address; add --allow-remote to listen where "
                "other machines can connect",
                param_hint="--agave-tls-host",
            )
        serving = _serve(
            host, port, db, latency_ms / 1000, fault_rate, seed, credentials_file,
            allow_remote=allow_remote, cors_origins=cors_origin or [],
            credentials=_read_fixed_credentials(fixed_credentials),
            agave_tls=(agave_tls_host, agave_tls_port) if agave_tls_host else None,
        )  # fmt: skip
        asyncio.run(serving)

    @app.command()
    def demo(
        n: Annotated[int, typer.Option("-n", "--count", min=2, help="saltant task instances.")] = 1000,
        jobs: Annotated[
            int | None,
            typer.Option(min=2, help="Sweep size: Agave jobs, Astakos commissions (default: N/10, >= 2)."),
        ] = None,
        db: Annotated[str | None, typer.Option(help="SQLite file (default: a temporary one).")] = None,
        latency_ms: Annotated[float, typer.Option(min=0, help="Latency added per request.")] = 20.0,
        fault_rate: Annotated[float, typer.Option(min=0, max=1, help="Share of faulted requests.")] = 0.05,
        seed: Annotated[int, typer.Option(help="Seed of the platform's faults and data.")] = 0,
    ) -> None:
        """Run one job across the four services of the embedded platform, then check every store."""
        from .demo import run_demo

        demo = run_demo(n, jobs=jobs, db=db, latency=latency_ms / 1000, fault_rate=fault_rate, seed=seed)
        code = asyncio.run(demo)
        raise typer.Exit(code)

    app.add_typer(_saltant_app(), name="saltant")
    app.add_typer(_astakos_app(), name="astakos")
    app.add_typer(_agave_app(), name="agave")
    return app


# -- batch commands against any deployment ---------------------------------------------------


def _read_ids(ids: list[str], from_file: Path | None) -> list[str]:
    """Ids from the arguments, a file, or stdin (``-``), one per line or comma-separated.

    Bad input is a usage error (exit 2), raised before any request.
    """
    assert typer is not None
    raw = list(ids)
    if from_file is not None:
        try:
            text = sys.stdin.read() if str(from_file) == "-" else from_file.read_text()
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot read {from_file}: {exc.strerror}", param_hint="--from-file"
            ) from None
        raw.extend(text.split())
    found = [part.strip() for item in raw for part in item.split(",") if part.strip()]
    if not found:
        raise typer.BadParameter(
            "no ids given: pass them as arguments, or with --from-file FILE (- for stdin)",
            param_hint="UUIDS",
        )
    return found


def _check_uuids(ids: list[str]) -> list[str]:
    """The ids, each checked to be a UUID (a usage error naming the first bad one otherwise)."""
    import uuid

    assert typer is not None
    for i, value in enumerate(ids):
        try:
            uuid.UUID(value)
        except ValueError:
            raise typer.BadParameter(f"id #{i + 1} is not a UUID: {value!r}", param_hint="UUIDS") from None
    return ids


class _Reporter:
    """A progress bar on a terminal (stderr), JSON lines on stdout with --json."""

    def __init__(self, total: int, label: str, as_json: bool):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.as_json = as_json
        self.console = Console(stderr=True)
        self.progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.console.is_terminal,
            # JSON lines belong on stdout even while the bar is live on a terminal's stderr.
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.task = self.progress.add_task(label, total=total)

    def __enter__(self) -> "_Reporter":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def advance(self, done: int, total: int | None, outcome: object) -> None:
        self.progress.update(self.task, completed=done)

    def emit(self, record: dict[str, Any]) -> None:
        import json

        if self.as_json:
            print(json.dumps(record, default=str), flush=True)
        elif not record["ok"]:
            self.console.print(
                f"failed {record['input']}: {record['error']}: {record['message']}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )


def _outcome_record(item: Any, outcome: Any) -> dict[str, Any]:
    if isinstance(outcome, BaseException):
        record: dict[str, Any] = {
            "input": item,
            "ok": False,
            "error": type(outcome).__name__,
            "message": str(outcome),
        }
        status = getattr(outcome, "status", None)
        if status is not None:
            record["status"] = status
        return record
    return {
        "input": item,
        "ok": True,
        "uuid": getattr(outcome, "uuid", None),
        "state": getattr(outcome, "state", None),
    }


def _saltant_app() -> Any:
    assert typer is not None
    sub = typer.Typer(help="Batch operations on a saltant deployment.", no_args_is_help=True)
    Url = Annotated[
        str, typer.Option("--url", envvar="SALTANT_API_URL", help="API root, e.g. https://host/api/.")
    ]
    Token = Annotated[
        str, typer.Option("--token", envvar="SALTANT_AUTH_TOKEN", help="API token.", show_default=False)
    ]
    Ids = Annotated[list[str] | None, typer.Argument(help="Task instance UUIDs.", show_default=False)]
    FromFile = Annotated[
        Path | None, typer.Option("--from-file", help="Read UUIDs from a file ('-' = stdin).")
    ]
    Concurrency = Annotated[int, typer.Option(min=1, help="Requests in flight at once.")]
    Executable = Annotated[bool, typer.Option("--executable", help="Executable (not container) instances.")]
    Json = Annotated[bool, typer.Option("--json", help="One JSON line per item on stdout.")]

    def run(
        action: str,
        url: str,
        token: str,
        ids: list[str],
        executable: bool,
        concurrency: int,
        as_json: bool,
        **extra: Any,
    ) -> None:
        _check_uuids(ids)
        code = asyncio.run(_saltant_batch(action, url, token, ids, executable, concurrency, as_json, extra))
        raise typer.Exit(code)

    @sub.command("clone-many")
    def clone_many(
        url: Url,
        token: Token,
        uuids: Ids = None,
        from_file: FromFile = None,
        concurrency: Concurrency = 32,
        executable: Executable = False,
        as_json: Json = False,
        reconcile: Annotated[
            bool,
            typer.Option(
                "--reconcile",
                help="Look up clones whose answer was lost (dropped after sending) instead of "
                "reporting them failed; the server then holds one clone per ok line.",
            ),
        ] = False,
    ) -> None:
        """Clone task instances; one outcome per UUID, exit 1 if any failed."""
        ids = _read_ids(uuids or [], from_file)
        run("clone", url, token, ids, executable, concurrency, as_json, reconcile=reconcile)

    @sub.command("terminate-many")
    def terminate_many(
        url: Url,
        token: Token,
        uuids: Ids = None,
        from_file: FromFile = None,
        concurrency: Concurrency = 32,
        executable: Executable = False,
        as_json: Json = False,
    ) -> None:
        """Terminate task instances; one outcome per UUID, exit 1 if any failed."""
        run("terminate", url, token, _read_ids(uuids or [], from_file), executable, concurrency, as_json)

    @sub.command("wait")
    def wait(
        url: Url,
        token: Token,
        uuids: Ids = None,
        from_file: FromFile = None,
        concurrency: Concurrency = 32,
        executable: Executable = False,
        as_json: Json = False,
        refresh_period: Annotated[float, typer.Option(min=0.01, help="Seconds between polls.")] = 5.0,
        timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    ) -> None:
        """Wait until task instances finish; exit 1 if any failed, was terminated, or timed out."""
        run(
            "wait",
            url,
            token,
            _read_ids(uuids or [], from_file),
            executable,
            concurrency,
            as_json,
            refresh_period=refresh_period,
            timeout=timeout,
        )

    return sub


async def _saltant_batch(
    action: str,
    url: str,
    token: str,
    ids: list[str],
    executable: bool,
    concurrency: int,
    as_json: bool,
    extra: dict[str, Any],
) -> int:
    from .saltant import SaltantClient

    assert typer is not None
    try:
        client = SaltantClient(url, token)
    except (ValueError, TypeError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--url/--token") from None
    async with client:
        manager = client.executable_task_instances if executable else client.container_task_instances
        with _Reporter(len(ids), f"{action} {len(ids)}", as_json) as reporter:
            if action == "wait":
                result = await manager.wait_many(
                    ids, concurrency=concurrency, on_progress=reporter.advance, **extra
                )
            elif action == "clone":
                result = await manager.clone_many(
                    ids, concurrency=concurrency, on_progress=reporter.advance, **extra
                )
            else:
                result = await manager.terminate_many(
                    ids, concurrency=concurrency, on_progress=reporter.advance
                )
        # After the bar is gone, so lines never interleave with it.
        failed = 0
        for uuid, outcome in zip(ids, result.outcomes, strict=True):
            record = _outcome_record(uuid, outcome)
            if action == "wait" and record["ok"] and record["state"] != "successful":
                record.update(ok=False, error="Unsuccessful", message=f"finished {record['state']}")
            failed += not record["ok"]
            reporter.emit(record)
        reporter.console.print(f"{action}: {len(ids) - failed} ok, {failed} failed")
    return 1 if failed else 0


def _astakos_app() -> Any:
    assert typer is not None
    sub = typer.Typer(help="Batch operations on a Synnefo Astakos deployment.", no_args_is_help=True)

    @sub.command("resolve")
    def resolve(
        auth_url: Annotated[str, typer.Option("--auth-url", envvar="ASTAKOS_AUTH_URL", help="Identity URL.")],
        token: Annotated[
            str,
            typer.Option(
                "--token", envvar="ASTAKOS_TOKEN", help="Service (component) token.", show_default=False
            ),
        ],
        accept: Annotated[
            list[str] | None, typer.Option(help="Serials to accept (repeat or comma-separate).")
        ] = None,
        reject: Annotated[
            list[str] | None, typer.Option(help="Serials to reject (repeat or comma-separate).")
        ] = None,
        chunk_size: Annotated[
            int | None, typer.Option(min=1, help="Serials per request, sent concurrently.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON line per serial on stdout.")] = False,
    ) -> None:
        """Accept and reject pending commissions; exit 1 if any serial failed."""

        def serials(values: list[str] | None, name: str) -> list[int]:
            parts = [p for v in values or [] for p in v.split(",") if p.strip()]
            try:
                return [int(p) for p in parts]
            except ValueError:
                raise typer.BadParameter("serials are integers", param_hint=f"--{name}") from None

        acc, rej = serials(accept, "accept"), serials(reject, "reject")
        if not acc and not rej:
            raise typer.BadParameter("give at least one serial", param_hint="--accept/--reject")
        raise typer.Exit(asyncio.run(_astakos_resolve(auth_url, token, acc, rej, chunk_size, as_json)))

    return sub


async def _astakos_resolve(
    auth_url: str, token: str, accept: list[int], reject: list[int], chunk_size: int | None, as_json: bool
) -> int:
    import json

    from . import APIError, TransportError
    from .astakos import AstakosClient, Fault, ResolveResult

    assert typer is not None
    try:
        client = AstakosClient(token, auth_url)
    except (ValueError, TypeError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--auth-url/--token") from None
    async with client:
        try:
            result = await client.resolve_commissions(accept, reject, chunk_size=chunk_size)
        except (APIError, TransportError) as exc:  # the one request failed (e.g. a rejected token)
            whole = Fault.from_exception(exc)
            result = ResolveResult(failed=[(s, whole) for s in dict.fromkeys([*accept, *reject])])
    done = {"accept": set(result.accepted), "reject": set(result.rejected)}
    faults = dict(result.failed)
    failed = 0
    # One line per serial given, in input order (accepts, then rejects).
    for action, serials in (("accept", accept), ("reject", reject)):
        for serial in serials:
            record: dict[str, Any] = {"serial": serial, "action": action, "ok": serial in done[action]}
            if not record["ok"]:
                fault = faults.get(serial)
                record.update(
                    error=fault.name if fault else "Unresolved",
                    status=fault.code if fault else None,
                    message=fault.message if fault else "not in the server's answer",
                )
                failed += 1
            if as_json:
                print(json.dumps(record), flush=True)
            elif not record["ok"]:
                print(f"failed {action} {serial}: {record['error']}: {record['message']}", file=sys.stderr)
    print(
        f"resolve: {len(result.accepted)} accepted, {len(result.rejected)} rejected, {failed} failed",
        file=sys.stderr,
    )
    return 1 if failed else 0


def _agave_client(base_url: str | None, token: str | None) -> Any:
    """The Agave client the commands use: ``--base-url``/``--token`` over the ``AGAVE_*``
    variables; without a credential there, agavepy's cache (``~/.agave/current``, written
    back when a refresh spends its refresh token). A missing credential is a usage error."""
    from .agave import AgaveClient
    from .agave.cache import credentials_from_env

    assert typer is not None
    overrides: dict[str, Any] = {}
    if base_url:
        overrides["base_url"] = base_url
    if token:
        overrides["token"] = token
    try:
        env = credentials_from_env()
        if token or any(k in env for k in ("token", "refresh_token", "password")):
            return AgaveClient.from_env(**overrides)
        return AgaveClient.from_cache(persist=True, **overrides)
    except (ValueError, TypeError, OSError) as exc:
        raise typer.BadParameter(
            f"{exc} (give --base-url and --token, set AGAVE_BASE_URL and AGAVE_TOKEN, "
            "or log in with agavepy or the Tapis CLI first)",
            param_hint="--base-url/--token",
        ) from None


def _agave_record(label: Any, outcome: Any, **fields: Any) -> dict[str, Any]:
    if isinstance(outcome, BaseException):
        record: dict[str, Any] = {
            "input": label,
            "ok": False,
            "error": type(outcome).__name__,
            "message": str(outcome),
        }
        if isinstance(getattr(outcome, "status", None), int):
            record["status"] = outcome.status  # type: ignore[attr-defined]
        elif getattr(outcome, "status", None) is not None:
            record["job_status"] = outcome.status  # type: ignore[attr-defined]
        return record
    return {"input": label, "ok": True, **fields}


def _read_job_requests(path: Path) -> list[dict[str, Any]]:
    """One JSON object per non-empty line (``-`` = stdin); a bad line is a usage error."""
    import json

    assert typer is not None
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="FILE") from None
    found: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"line {number} is not JSON: {exc.msg}", param_hint="FILE") from None
        if not isinstance(request, dict):
            raise typer.BadParameter(f"line {number} is not a JSON object", param_hint="FILE")
        found.append(request)
    if not found:
        raise typer.BadParameter("no job requests in the file (one JSON object per line)", param_hint="FILE")
    return found


def _agave_app() -> Any:
    assert typer is not None
    sub = typer.Typer(help="Batch operations on an Agave / Tapis v2 tenant.", no_args_is_help=True)
    jobs = typer.Typer(help="Submit, wait for and stop many jobs.", no_args_is_help=True)
    files = typer.Typer(help="Upload and download many files, streamed.", no_args_is_help=True)
    sub.add_typer(jobs, name="jobs")
    sub.add_typer(files, name="files")
    meta = typer.Typer(help="Create many metadata records.", no_args_is_help=True)
    sub.add_typer(meta, name="meta")
    actors = typer.Typer(help="Send many messages to an actor (Abaco).", no_args_is_help=True)
    sub.add_typer(actors, name="actors")

    BaseUrl = Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Tenant base URL (default: AGAVE_BASE_URL, else baseurl in ~/.agave/current).",
            show_default=False,
        ),
    ]
    Token = Annotated[
        str | None,
        typer.Option(
            "--token",
            help="Access token (default: AGAVE_TOKEN, else ~/.agave/current, refreshed and written back "
            "when it expires).",
            show_default=False,
        ),
    ]
    Ids = Annotated[list[str] | None, typer.Argument(help="Job ids.", show_default=False)]
    FromFile = Annotated[
        Path | None, typer.Option("--from-file", help="Read job ids from a file ('-' = stdin).")
    ]
    Concurrency = Annotated[int, typer.Option(min=1, help="Requests in flight at once.")]
    Json = Annotated[bool, typer.Option("--json", help="One JSON line per item on stdout.")]
    SystemId = Annotated[
        str | None,
        typer.Option(
            "--system-id", help="Storage system (default: your default storage system).", show_default=False
        ),
    ]

    def run(action: str, base_url: str | None, token: str | None, as_json: bool, **args: Any) -> None:
        client = _agave_client(base_url, token)
        raise typer.Exit(asyncio.run(_agave_batch(action, client, as_json, args)))

    @jobs.command("submit-many")
    def submit_many(
        file: Annotated[Path, typer.Argument(help="Job requests, one JSON object per line ('-' = stdin).")],
        base_url: BaseUrl = None,
        token: Token = None,
        concurrency: Concurrency = 32,
        as_json: Json = False,
        reconcile: Annotated[
            bool,
            typer.Option(
                "--reconcile",
                help="Look up jobs whose submit answer was lost (by name, appId and time) instead of "
                "reporting them failed; give every request a unique name.",
            ),
        ] = False,
    ) -> None:
        """Submit jobs; one outcome per line (input = line number), exit 1 if any failed."""
        requests = _read_job_requests(file)
        run(
            "submit", base_url, token, as_json,
            requests=requests, concurrency=concurrency, reconcile=reconcile,
        )  # fmt: skip

    @jobs.command("wait")
    def wait(
        ids: Ids = None,
        from_file: FromFile = None,
        base_url: BaseUrl = None,
        token: Token = None,
        concurrency: Concurrency = 32,
        as_json: Json = False,
        poll_interval: Annotated[float, typer.Option(min=0.01, help="First pause between polls, s.")] = 1.0,
        max_interval: Annotated[float, typer.Option(min=0.01, help="Longest pause between polls, s.")] = 15.0,
        timeout: Annotated[float | None, typer.Option(min=0, help="Give up after this many seconds.")] = None,
    ) -> None:
        """Wait until jobs end; exit 1 if any did not finish (FAILED, STOPPED, KILLED) or timed out."""
        job_ids = _read_ids(ids or [], from_file)
        run(
            "wait", base_url, token, as_json, ids=job_ids, concurrency=concurrency,
            poll_interval=poll_interval, max_interval=max(max_interval, poll_interval), deadline=timeout,
        )  # fmt: skip

    @jobs.command("stop-many")
    def stop_many(
        ids: Ids = None,
        from_file: FromFile = None,
        base_url: BaseUrl = None,
        token: Token = None,
        concurrency: Concurrency = 32,
        as_json: Json = False,
    ) -> None:
        """Stop jobs; one outcome per id, exit 1 if any failed."""
        run("stop", base_url, token, as_json, ids=_read_ids(ids or [], from_file), concurrency=concurrency)

    @files.command("upload-many")
    def upload_many(
        remote_dir: Annotated[str, typer.Argument(help="Remote directory to upload into.")],
        paths: Annotated[list[Path], typer.Argument(help="Local files.", show_default=False)],
        system_id: SystemId = None,
        base_url: BaseUrl = None,
        token: Token = None,
        concurrency: Concurrency = 8,
        as_json: Json = False,
    ) -> None:
        """Upload local files into a remote directory (streamed); exit 1 if any failed."""
        for path in paths:
            if not path.is_file():
                raise typer.BadParameter(f"not a file: {path}", param_hint="PATHS")
        run(
            "upload", base_url, token, as_json,
            system_id=system_id, remote_dir=remote_dir, paths=paths, concurrency=concurrency,
        )  # fmt: skip

    @files.command("download-many")
    def download_many(
        remote_path: Annotated[str, typer.Argument(help="Remote directory (or file) to download.")],
        dest: Annotated[Path, typer.Argument(help="Local directory (the remote layout is kept below it).")],
        system_id: SystemId = None,
        include: Annotated[
            list[str] | None, typer.Option("--include", help="Only paths matching this glob (repeatable).")
        ] = None,
        exclude: Annotated[
            list[str] | None, typer.Option("--exclude", help="Skip paths matching this glob (repeatable).")
        ] = None,
        base_url: BaseUrl = None,
        token: Token = None,
        concurrency: Concurrency = 8,
        as_json: Json = False,
    ) -> None:
        """Download a remote tree (streamed, each file written atomically); exit 1 if any failed."""
        run(
            "download", base_url, token, as_json, system_id=system_id, remote_path=remote_path, dest=dest,
            include=include or None, exclude=exclude or None, concurrency=concurrency,
        )  # fmt: skip

    @meta.command("create-many")
    def meta_create_many(
        file: Annotated[
            Path, typer.Argument(help="Records {name, value, ...}, one JSON object per line ('-' = stdin).")
        ],
        base_url: BaseUrl = None,
        token: Token = None,
        concurrency: Concurrency = 32,
        as_json: Json = False,
        reconcile: Annotated[
            bool,
            typer.Option(
                "--reconcile",
                help="Look up records whose create answer was lost (by name, value, associationIds and "
                "time) instead of reporting them failed.",
            ),
        ] = False,
    ) -> None:
        """Create metadata records; one outcome per line (input = line number), exit 1 if any failed."""
        records = _read_job_requests(file)
        for number, record in enumerate(records, 1):
            if not isinstance(record.get("name"), str) or not record["name"] or record.get("value") is None:
                raise typer.BadParameter(
                    f"record {number} needs a 'name' and a non-null 'value'", param_hint="FILE"
                )
        run(
            "create", base_url, token, as_json,
            requests=records, concurrency=concurrency, reconcile=reconcile,
        )  # fmt: skip

    @actors.command("send-many")
    def actors_send_many(
        actor_id: Annotated[str, typer.Argument(help="Actor id (or alias).")],
        file: Annotated[
            Path, typer.Argument(help="Messages, one JSON value per line ('-' = stdin); see --text.")
        ],
        base_url: BaseUrl = None,
        token: Token = None,
        concurrency: Concurrency = 32,
        as_json: Json = False,
        text: Annotated[bool, typer.Option("--text", help="Send each line as a plain string.")] = False,
        env: Annotated[
            list[str] | None,
            typer.Option("--env", help="KEY=VALUE for every execution's environment (repeatable)."),
        ] = None,
        wait: Annotated[bool, typer.Option("--wait", help="Wait for the executions to finish.")] = False,
        timeout: Annotated[
            float | None, typer.Option(min=0, help="With --wait: give up after this many seconds.")
        ] = None,
    ) -> None:
        """Send messages to an actor; one outcome per line (input = line number), exit 1 if any failed
        (a message whose answer was lost is reported, never re-sent)."""
        messages = _read_messages(file, text)
        environment: dict[str, str] = {}
        for pair in env or []:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--env")
            environment[key] = value
        run(
            "send", base_url, token, as_json, actor_id=actor_id, requests=messages, environment=environment,
            concurrency=concurrency, wait=wait, deadline=timeout,
        )  # fmt: skip

    return sub


def _read_messages(path: Path, text: bool) -> list[Any]:
    """One message per non-empty line: a JSON value, or the line itself with ``text``."""
    import json

    assert typer is not None
    try:
        content = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="FILE") from None
    found: list[Any] = []
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        if text:
            found.append(line)
            continue
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(
                f"line {number} is not JSON: {exc.msg} (use --text for plain lines)", param_hint="FILE"
            ) from None
    if not found:
        raise typer.BadParameter("no messages in the file (one per line)", param_hint="FILE")
    return found


async def _send_messages(client: Any, args: dict[str, Any], reporter: _Reporter) -> list[dict[str, Any]]:
    """``actors send-many``: one record per message (input = line number), then, with
    ``--wait``, each sent message's execution waited for (a second pass of the bar)."""
    actor_id = args["actor_id"]
    result = await client.actors.send_many(
        actor_id, args["requests"], environment=args["environment"], concurrency=args["concurrency"],
        on_progress=reporter.advance,
    )  # fmt: skip
    sent = [o for o in result.outcomes if isinstance(o, str)]
    finished: dict[str, Any] = {}
    if args["wait"] and sent:
        reporter.progress.update(reporter.task, description="wait", completed=0, total=len(sent))
        waited = await client.actors.wait_executions(
            actor_id, sent, deadline=args["deadline"], concurrency=args["concurrency"],
            on_progress=reporter.advance,
        )  # fmt: skip
        finished = dict(zip(sent, waited.outcomes, strict=True))
    records: list[dict[str, Any]] = []
    for number, outcome in enumerate(result.outcomes, 1):
        if isinstance(outcome, BaseException):
            record = _agave_record(number, outcome, execution_id=None)
            orphans = getattr(outcome, "orphans", None)
            if orphans is not None:  # executions no outcome holds: what a lost answer may have run
                record["orphans"] = list(orphans)
        elif outcome in finished:
            execution = finished[outcome]
            record = _agave_record(number, execution, execution_id=outcome)
            record["execution_id"] = outcome
            if record["ok"]:
                record["status"] = execution.status
                if execution.status != "COMPLETE":
                    record.update(ok=False, error="Unsuccessful", message=f"ended {execution.status}")
        else:
            record = _agave_record(number, outcome, execution_id=outcome)
        records.append(record)
    return records


async def _agave_batch(action: str, client: Any, as_json: bool, args: dict[str, Any]) -> int:
    from . import PlatformError

    async with client:
        records: list[dict[str, Any]] = []
        total = len(args.get("requests") or args.get("ids") or args.get("paths") or [])
        with _Reporter(total, action, as_json) as reporter:
            try:
                if action == "submit":
                    result = await client.jobs.submit_many(
                        args["requests"], concurrency=args["concurrency"], reconcile=args["reconcile"],
                        on_progress=reporter.advance,
                    )  # fmt: skip
                    for number, outcome in enumerate(result.outcomes, 1):
                        job = None if isinstance(outcome, BaseException) else outcome
                        records.append(_agave_record(
                            number, outcome, id=getattr(job, "id", None), status=getattr(job, "status", None),
                            name=getattr(job, "name", None),
                        ))  # fmt: skip
                elif action in ("wait", "stop"):
                    if action == "wait":
                        result = await client.jobs.wait_many(
                            args["ids"], concurrency=args["concurrency"], poll_interval=args["poll_interval"],
                            max_interval=args["max_interval"], deadline=args["deadline"],
                            on_progress=reporter.advance,
                        )  # fmt: skip
                    else:
                        result = await client.jobs.stop_many(
                            args["ids"], concurrency=args["concurrency"], on_progress=reporter.advance
                        )
                    for job_id, outcome in zip(args["ids"], result.outcomes, strict=True):
                        record = _agave_record(job_id, outcome, status=getattr(outcome, "status", None))
                        if action == "wait" and record["ok"] and record["status"] != "FINISHED":
                            record.update(ok=False, error="Unsuccessful", message=f"ended {record['status']}")
                        records.append(record)
                elif action == "create":
                    result = await client.meta.create_many(
                        args["requests"], concurrency=args["concurrency"], reconcile=args["reconcile"],
                        on_progress=reporter.advance,
                    )  # fmt: skip
                    for number, outcome in enumerate(result.outcomes, 1):
                        made = None if isinstance(outcome, BaseException) else outcome
                        records.append(_agave_record(
                            number, outcome, uuid=getattr(made, "uuid", None),
                            name=getattr(made, "name", None),
                        ))  # fmt: skip
                elif action == "send":
                    records.extend(await _send_messages(client, args, reporter))
                elif action == "upload":
                    result = await client.files.upload_many(
                        args["system_id"], args["remote_dir"], args["paths"],
                        concurrency=args["concurrency"], on_progress=reporter.advance,
                    )  # fmt: skip
                    for path, outcome in zip(args["paths"], result.outcomes, strict=True):
                        remote = None if isinstance(outcome, BaseException) else outcome
                        records.append(_agave_record(
                            str(path), outcome, path=getattr(remote, "path", None),
                            status=getattr(remote, "status", None),
                        ))  # fmt: skip
                else:

                    def advance(done: int, total: int | None, outcome: object) -> None:
                        reporter.progress.update(reporter.task, completed=done, total=total)

                    result = await client.files.download_many(
                        args["system_id"], args["remote_path"], args["dest"], include=args["include"],
                        exclude=args["exclude"], concurrency=args["concurrency"], on_progress=advance,
                    )  # fmt: skip
                    for (remote_path, _), outcome in zip(result.items, result.outcomes, strict=True):
                        saved = None if isinstance(outcome, BaseException) else str(outcome)
                        records.append(_agave_record(remote_path, outcome, path=saved))
            except PlatformError as exc:  # before any item: a listing, a walk, a refused token
                reporter.progress.stop()
                reporter.console.print(
                    f"{action}: {type(exc).__name__}: {exc}", markup=False, highlight=False, soft_wrap=True
                )
                return 1
        # After the bar is gone, so lines never interleave with it.
        failed = 0
        for record in records:
            failed += not record["ok"]
            reporter.emit(record)
        reporter.console.print(f"{action}: {len(records) - failed} ok, {failed} failed")
    return 1 if failed else 0


def _fault_rules(fault_rate: float) -> list[Any]:
    from .testing import FaultRule

    if not 0 <= fault_rate <= 1:
        raise SystemExit(f"--fault-rate must be between 0 and 1, got {fault_rate}")
    return [FaultRule.uniform(fault_rate, retry_after=0.05)] if fault_rate else []


def platform_credentials(platform: Any) -> dict[str, str]:
    """URLs and seeded tokens of a running platform (for a harness in another process)."""
    found: dict[str, str] = {"url": platform.url}
    for name in (
        "saltant_url",
        "saltant_token",
        "astakos_auth_url",
        "astakos_user_token",
        "astakos_service_token",
        "flowserv_url",
        "agave_url",
        "agave_token",
        "agave_tls_url",
        "agave_ca_pem",
    ):
        try:
            found[name] = str(getattr(platform, name))
        except (AttributeError, RuntimeError):
            continue  # a service without that credential
    return found


def _read_fixed_credentials(path: Path | None) -> dict[str, str] | None:
    """The ``--fixed-credentials`` file, checked before the platform starts (a usage error, exit 2)."""
    if path is None:
        return None
    assert typer is not None
    import json

    from .testing.platform import check_credentials

    try:
        found = json.loads(path.read_text())
        if not isinstance(found, dict):
            raise TypeError("the file must hold one JSON object of name to value")
        return check_credentials(found)
    except (OSError, ValueError, TypeError) as exc:
        # The messages name the entry, never a value: they are secrets.
        raise typer.BadParameter(str(exc), param_hint="--fixed-credentials") from None


async def _serve(
    host: str,
    port: int,
    db: str,
    latency: float,
    fault_rate: float,
    seed: int,
    credentials_file: Path | None = None,
    *,
    allow_remote: bool = False,
    cors_origins: list[str] | None = None,
    agave_tls: tuple[str, int] | None = None,
    credentials: dict[str, str] | None = None,
) -> None:
    import json
    import os

    from .testing import LocalPlatform

    # A dedicated server process: hand the GIL to the store's SQLite thread sooner than
    # the default 5 ms, or a busy event loop starves it and serialises every request.
    sys.setswitchinterval(0.0005)
    platform = LocalPlatform(
        db, host=host, port=port, latency=latency, faults=_fault_rules(fault_rate), seed=seed,
        allow_remote=allow_remote, cors_origins=cors_origins or (), credentials=credentials,
        agave_tls_host=agave_tls[0] if agave_tls else None, agave_tls_port=agave_tls[1] if agave_tls else 443,
    )  # fmt: skip
    async with platform:
        if credentials_file is not None:
            # Tokens go to a private file, never to the terminal or a log.
            fd = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(platform_credentials(platform), out, indent=2)
        print(f"aioplatform embedded platform on {platform.url}", flush=True)
        for name in ("saltant", "astakos", "flowserv", "agave"):
            service = platform.services.get(name)
            if service is not None:
                print(f"  {name:9} {getattr(service, 'auth_url', service.url)}", flush=True)
        if agave_tls is not None:
            print(f"  agave tls {platform.agave_tls_url} (CA: {platform.agave_ca_pem})", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        print(
            f"stopping: {platform.stats.requests} requests on {platform.stats.connections} connections",
            flush=True,
        )


def main() -> None:
    if typer is None:
        sys.exit("the aioplatform command needs the cli extra: pip install 'aioplatform[cli]'")
    _build_app()()


if __name__ == "__main__":
    main()
