"""The ``aioplatform`` command: ``serve`` (the embedded platform), ``demo``, batch commands.

Built with typer (the ``cli`` extra); the library itself never imports this module.
"""


import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

from . import _loop

try:
    import typer
except ImportError:  # pragma: no cover - exercised only without the cli extra
    typer = None  # type: ignore[assignment]

__all__ = ["main"]


def _flags_without_placeholder() -> None:
    """typer's rich help shows a value type after every option, flags included (``--json
    <bool>``), which reads as if a flag took a value (``--json true``); a flag takes none, so
    its type column stays empty. (typer has no per-option switch for this.)"""
    from typer.core import TyperOption

    if getattr(TyperOption, "_aioplatform_flags", False):
        return
    shown = TyperOption.display_type_rich

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if self.is_flag and not self.count:
            return None
        return shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
    TyperOption._aioplatform_flags = True  # type: ignore[attr-defined]


def _build_app() -> Any:
    assert typer is not None
    _flags_without_placeholder()
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

        warning: str | None = None
        if not 0 <= port <= 65535:
            _serve_usage_error(f"--port must be between 0 and 65535 (0 = a free one), got {port}")
        if not is_loopback(host):
            if not allow_remote:
                _serve_usage_error(
                    f"--host {host!r} is not a loopback address; add --allow-remote to listen where "
                    "other machines can connect"
                )
            warning = (  # printed once listening: a host that fails to bind is one error line
                f"warning: listening on {host}: the saltant, Astakos, flowserv and Agave APIs and "
                "their seeded credentials are reachable by anyone who can connect to this "
                "machine's port"
            )
        if agave_tls_host and not allow_remote and not is_loopback(agave_tls_host):
            _serve_usage_error(
                f"--agave-tls-host {agave_tls_host!r} is not a loopback address; add --allow-remote to "
                "listen where other machines can connect"
            )
        serving = _serve(
            host, port, db, latency_ms / 1000, fault_rate, seed, credentials_file,
            allow_remote=allow_remote, cors_origins=cors_origin or [],
            credentials=_read_fixed_credentials(fixed_credentials),
            agave_tls=(agave_tls_host, agave_tls_port) if agave_tls_host else None, warning=warning,
        )  # fmt: skip
        try:
            _loop.run(serving)
        except _ServeUsageError as exc:
            _serve_usage_error(str(exc))

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
        code = _loop.run(demo)
        raise typer.Exit(code)

    app.add_typer(_saltant_app(), name="saltant")
    app.add_typer(_astakos_app(), name="astakos")
    app.add_typer(_flowserv_app(), name="flowserv")
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


class _BatchRun:
    """What every batch command of every service shares: one record per input, the breaker,
    JSON lines streamed as outcomes complete, and Ctrl-C.

    * ``--json``: each record is printed (flushed) as soon as it and every earlier input
      have an outcome, so stdout stays in input order while the batch runs; with
      ``--as-completed`` the moment it is final, in completion order, with its ``index``.
    * The breaker (:class:`~aioplatform.Breaker`, off with ``--keep-going``): when it stops
      the batch, the failures that tripped it and the items never started are reported by
      ONE line on stderr (every JSON line is still printed).
    * Ctrl-C (SIGINT: asyncio.run cancels the command's task): the batch's calls in flight
      are cancelled, every finished outcome is printed, then a summary saying it was
      interrupted and how many inputs have no outcome; exit 130.
    """

    def __init__(
        self,
        action: str,
        total: int | None,
        as_json: bool,
        keep_going: bool,
        record: Any,
        *,
        line: Any = None,
        summary: Any = None,
        as_completed: bool = False,
    ):
        from .core.batch import Breaker

        self.as_completed = as_completed
        self.action = action
        self.total = total
        self.as_json = as_json
        self.breaker = None if keep_going else Breaker()
        self.record = record  # (index, item, outcome) -> the JSON record
        self.line = line  # record -> the stderr line of a failure (default: _Reporter's)
        self.summary = summary  # records in input order -> the closing line
        self.records: dict[int, dict[str, Any]] = {}
        self.kinds: dict[int, Any] = {}  # failed index -> Breaker.classify of its exception
        self.skipped: set[int] = set()  # NotAttempted
        self.printed = 0
        self.reporter = _Reporter(total or 0, action, as_json)

    def on_outcome(self, index: int, item: Any, outcome: Any) -> None:
        from . import NotAttempted
        from .core.batch import Breaker

        record = self.record(index, item, outcome)
        self.records[index] = record
        if isinstance(outcome, NotAttempted):
            self.skipped.add(index)
        elif isinstance(outcome, BaseException):
            self.kinds[index] = Breaker.classify(outcome)
        self.reporter.progress.update(self.reporter.task, completed=len(self.records))
        if self.as_json and self.as_completed:  # at once, in completion order, with its index
            record["index"] = index
            self.reporter.emit(record)
        elif self.as_json:
            while self.printed in self.records:
                self.reporter.emit(self.records[self.printed])
                self.printed += 1

    async def run(self, start: Any) -> int:
        """Await ``start()`` (the batch, calling :meth:`on_outcome`), then report; the exit code."""
        from . import PlatformError

        stopped: str | None = None
        interrupted = False
        with self.reporter:
            try:
                result = await start()
                stopped = getattr(result, "stopped", None)
            except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancelled this task
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                interrupted = True
            except PlatformError as exc:  # before any item: a listing, a walk, a refused token
                self.reporter.progress.stop()
                self._print(f"{self.action}: {type(exc).__name__}: {exc}")
                return 1
        return self._finish(stopped, interrupted)

    def _print(self, text: str) -> None:
        self.reporter.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _finish(self, stopped: str | None, interrupted: bool) -> int:
        order = sorted(self.records)
        # What tripped the breaker is said once: its failures and the skipped items are not listed.
        tripped = {self.kinds.get(i) for i in order if i in self.kinds} if stopped and self.skipped else set()
        tripped.discard(None)
        for index in order:
            record = self.records[index]
            if self.as_json:
                if index >= self.printed and not self.as_completed:  # after an unfinished earlier one
                    self.reporter.emit(record)
            elif not record["ok"] and index not in self.skipped and self.kinds.get(index) not in tripped:
                if self.line is not None:
                    self._print(self.line(record))
                else:
                    self.reporter.emit(record)
        if stopped:
            self._print(stopped)
        failed = sum(not self.records[i]["ok"] for i in order)
        ok = len(order) - failed
        if interrupted:
            missing = f"{self.total - len(order)}" if self.total is not None else "the rest"
            self._print(
                f"{self.action}: interrupted — {ok} ok, {failed} failed, {missing} not attempted "
                "(or cancelled in flight)"
            )
            return 130
        if self.summary is not None:
            self._print(self.summary([self.records[i] for i in order]))
        else:
            skipped = f" ({len(self.skipped)} not attempted)" if self.skipped else ""
            self._print(f"{self.action}: {ok} ok, {failed} failed{skipped}")
        return 1 if failed else 0


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
    KeepGoing = Annotated[bool, _keep_going_option()]
    AsCompleted = Annotated[bool, _as_completed_option()]

    def run(
        action: str,
        url: str,
        token: str,
        ids: list[str],
        executable: bool,
        concurrency: int,
        as_json: bool,
        keep_going: bool = False,
        *,
        as_completed: bool = False,
        **extra: Any,
    ) -> None:
        _check_uuids(ids)
        code = _loop.run(
            _saltant_batch(
                action, url, token, ids, executable, concurrency, as_json, extra, keep_going, as_completed
            )
        )
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
        keep_going: KeepGoing = False,
        as_completed: AsCompleted = False,
    ) -> None:
        """Clone task instances; one outcome per UUID, exit 1 if any failed."""
        ids = _read_ids(uuids or [], from_file)
        run(
            "clone", url, token, ids, executable, concurrency, as_json, keep_going,
            as_completed=as_completed, reconcile=reconcile,
        )  # fmt: skip

    @sub.command("terminate-many")
    def terminate_many(
        url: Url,
        token: Token,
        uuids: Ids = None,
        from_file: FromFile = None,
        concurrency: Concurrency = 32,
        executable: Executable = False,
        as_json: Json = False,
        keep_going: KeepGoing = False,
        as_completed: AsCompleted = False,
    ) -> None:
        """Terminate task instances; one outcome per UUID, exit 1 if any failed."""
        ids = _read_ids(uuids or [], from_file)
        run(
            "terminate", url, token, ids, executable, concurrency, as_json, keep_going,
            as_completed=as_completed,
        )  # fmt: skip

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
        keep_going: KeepGoing = False,
        as_completed: AsCompleted = False,
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
            keep_going,
            as_completed=as_completed,
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
    keep_going: bool = False,
    as_completed: bool = False,
) -> int:
    from .saltant import SaltantClient

    assert typer is not None
    try:
        client = SaltantClient(url, token)
    except (ValueError, TypeError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--url/--token") from None

    def record(index: int, item: Any, outcome: Any) -> dict[str, Any]:
        found = _outcome_record(ids[index], outcome)
        if action == "wait" and found["ok"] and found["state"] != "successful":
            found.update(ok=False, error="Unsuccessful", message=f"finished {found['state']}")
        return found

    batch = _BatchRun(action, len(ids), as_json, keep_going, record, as_completed=as_completed)
    async with client:
        manager = client.executable_task_instances if executable else client.container_task_instances
        method = {"wait": manager.wait_many, "clone": manager.clone_many}.get(action, manager.terminate_many)
        return await batch.run(
            lambda: method(
                ids, concurrency=concurrency, on_outcome=batch.on_outcome, breaker=batch.breaker, **extra
            )
        )


def _as_completed_option() -> Any:
    assert typer is not None
    return typer.Option(
        "--as-completed",
        help="With --json: print each line the moment its outcome is final (completion order, "
        "with an 'index' field) instead of in input order.",
    )


def _keep_going_option() -> Any:
    assert typer is not None
    return typer.Option(
        "--keep-going",
        help="Try every item even when the first 20 in a row failed in a way every item will "
        "(credentials rejected, the server refusing connections); without it the batch stops "
        "there and the rest are reported not attempted.",
    )


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
            parts = [p.strip() for v in values or [] for p in v.split(",") if p.strip()]
            for part in parts:
                if not (part.isascii() and part.isdigit()):
                    raise typer.BadParameter(
                        f"serials are integers; {part!r} is not one", param_hint=f"--{name}"
                    )
            return [int(p) for p in parts]

        acc, rej = serials(accept, "accept"), serials(reject, "reject")
        if not acc and not rej:
            raise typer.BadParameter("give at least one serial", param_hint="--accept/--reject")
        # One request per chunk of serials: no breaker (--keep-going) to speak of.
        code = _loop.run(_astakos_resolve(auth_url, token, acc, rej, chunk_size, as_json))
        raise typer.Exit(code)

    return sub


async def _astakos_resolve(
    auth_url: str,
    token: str,
    accept: list[int],
    reject: list[int],
    chunk_size: int | None,
    as_json: bool,
) -> int:
    from . import APIError, TransportError
    from .astakos import AstakosClient, Fault, ResolveResult

    assert typer is not None
    try:
        client = AstakosClient(token, auth_url)
    except (ValueError, TypeError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--auth-url/--token") from None
    # One line per serial given, in input order (accepts, then rejects).
    inputs = [("accept", s) for s in accept] + [("reject", s) for s in reject]

    def record(index: int, item: Any, outcome: Any) -> dict[str, Any]:
        action, serial = inputs[index]
        found: dict[str, Any] = {"serial": serial, "action": action, "ok": outcome is None}
        if outcome is not None:
            found.update(
                error=outcome.name if outcome else "Unresolved",
                status=outcome.code if outcome else None,
                message=outcome.message if outcome else "not in the server's answer",
            )
        return found

    def line(found: dict[str, Any]) -> str:
        return f"failed {found['action']} {found['serial']}: {found['error']}: {found['message']}"

    def summary(records: list[dict[str, Any]]) -> str:
        done = [r for r in records if r["ok"]]
        accepted = sum(r["action"] == "accept" for r in done)
        return (
            f"resolve: {accepted} accepted, {len(done) - accepted} rejected, "
            f"{len(records) - len(done)} failed"
        )

    batch = _BatchRun("resolve", len(inputs), as_json, True, record, line=line, summary=summary)

    async def start() -> None:
        # One request per chunk of serials: the outcomes arrive with the server's answer.
        try:
            result = await client.resolve_commissions(accept, reject, chunk_size=chunk_size)
        except (APIError, TransportError) as exc:  # the one request failed (e.g. a rejected token)
            whole = Fault.from_exception(exc)
            result = ResolveResult(failed=[(s, whole) for s in dict.fromkeys([*accept, *reject])])
        done = {"accept": set(result.accepted), "reject": set(result.rejected)}
        faults = dict(result.failed)
        for index, (action, serial) in enumerate(inputs):
            # None: resolved; a Fault: the server's reason; False: not in the answer.
            batch.on_outcome(index, serial, None if serial in done[action] else faults.get(serial, False))

    async with client:
        return await batch.run(start)


def _flowserv_app() -> Any:
    assert typer is not None
    sub = typer.Typer(help="Batch operations on a flowserv (ROB) deployment.", no_args_is_help=True)

    @sub.command("upload-many")
    def upload_many(
        group_id: Annotated[str, typer.Argument(help="The group (submission) to upload into.")],
        paths: Annotated[list[Path], typer.Argument(help="Local files.", show_default=False)],
        url: Annotated[
            str | None,
            typer.Option(
                "--url",
                help="API root, e.g. http://host:5000/flowserv/api/v1 (default: built from "
                "FLOWSERV_API_PROTOCOL/HOST/PORT/PATH, as flowserv does).",
                show_default=False,
            ),
        ] = None,
        token: Annotated[
            str | None,
            typer.Option(
                "--token", envvar="FLOWSERV_ACCESS_TOKEN", help="API key (from a login).", show_default=False
            ),
        ] = None,
        concurrency: Annotated[int, typer.Option(min=1, help="Uploads in flight at once.")] = 8,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON line per file on stdout.")] = False,
        keep_going: Annotated[bool, _keep_going_option()] = False,
        as_completed: Annotated[bool, _as_completed_option()] = False,
    ) -> None:
        """Upload local files to a group (streamed); one outcome per path, exit 1 if any failed."""
        for path in paths:
            if not path.is_file():
                raise typer.BadParameter(f"not a file: {path}", param_hint="PATHS")
        if not token:
            raise typer.BadParameter(
                "give --token or set FLOWSERV_ACCESS_TOKEN (uploads need a login)", param_hint="--token"
            )
        from .flowserv import FlowservClient

        try:
            client = FlowservClient(url, token=token) if url else FlowservClient.from_env()
            client.token = token
        except (ValueError, TypeError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--url/--token") from None
        code = _loop.run(
            _flowserv_upload(client, group_id, paths, concurrency, as_json, keep_going, as_completed)
        )
        raise typer.Exit(code)

    return sub


async def _flowserv_upload(
    client: Any,
    group_id: str,
    paths: list[Path],
    concurrency: int,
    as_json: bool,
    keep_going: bool,
    as_completed: bool = False,
) -> int:
    def record(index: int, item: Any, outcome: Any) -> dict[str, Any]:
        done = None if isinstance(outcome, BaseException) else outcome
        return _agave_record(
            str(paths[index]), outcome, id=getattr(done, "id", None), name=getattr(done, "name", None)
        )

    batch = _BatchRun("upload", len(paths), as_json, keep_going, record, as_completed=as_completed)
    async with client:
        return await batch.run(
            lambda: client.groups.upload_many(
                group_id, paths, concurrency=concurrency, on_outcome=batch.on_outcome, breaker=batch.breaker
            )
        )


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


def _read_json_objects(path: Path, what: str) -> list[dict[str, Any]]:
    """One JSON object per non-empty line (``-`` = stdin); a bad line is a usage error, and
    so is a file without any, named as the command calls its lines (``what``)."""
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
        raise typer.BadParameter(f"no {what} in the file (one JSON object per line)", param_hint="FILE")
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

    KeepGoing = Annotated[bool, _keep_going_option()]
    AsCompleted = Annotated[bool, _as_completed_option()]

    def run(
        action: str, base_url: str | None, token: str | None, as_json: bool, keep_going: bool, **args: Any
    ) -> None:
        client = _agave_client(base_url, token)
        as_completed = args.pop("as_completed", False)
        raise typer.Exit(_loop.run(_agave_batch(action, client, as_json, args, keep_going, as_completed)))

    @jobs.command("submit-many")
    def submit_many(
        file: Annotated[Path, typer.Argument(help="Job requests, one JSON object per line ('-' = stdin).")],
        base_url: BaseUrl = None,
        token: Token = None,
        concurrency: Concurrency = 32,
        as_json: Json = False,
        keep_going: KeepGoing = False,
        as_completed: AsCompleted = False,
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
        requests = _read_json_objects(file, "job requests")
        run(
            "submit", base_url, token, as_json, keep_going, as_completed=as_completed,
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
        keep_going: KeepGoing = False,
        as_completed: AsCompleted = False,
        poll_interval: Annotated[float, typer.Option(min=0.01, help="First pause between polls, s.")] = 1.0,
        max_interval: Annotated[float, typer.Option(min=0.01, help="Longest pause between polls, s.")] = 15.0,
        timeout: Annotated[float | None, typer.Option(min=0, help="Give up after this many seconds.")] = None,
    ) -> None:
        """Wait until jobs end; exit 1 if any did not finish (FAILED, STOPPED, KILLED) or timed out."""
        job_ids = _read_ids(ids or [], from_file)
        run(
            "wait", base_url, token, as_json, keep_going, as_completed=as_completed,
            ids=job_ids, concurrency=concurrency,
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
        keep_going: KeepGoing = False,
        as_completed: AsCompleted = False,
    ) -> None:
        """Stop jobs; one outcome per id, exit 1 if any failed."""
        job_ids = _read_ids(ids or [], from_file)
        run(
            "stop", base_url, token, as_json, keep_going, as_completed=as_completed,
            ids=job_ids, concurrency=concurrency,
        )  # fmt: skip

    @files.command("upload-many")
    def upload_many(
        remote_dir: Annotated[str, typer.Argument(help="Remote directory to upload into.")],
        paths: Annotated[list[Path], typer.Argument(help="Local files.", show_default=False)],
        system_id: SystemId = None,
        base_url: BaseUrl = None,
        token: Token = None,
        concurrency: Concurrency = 8,
        as_json: Json = False,
        keep_going: KeepGoing = False,
        as_completed: AsCompleted = False,
    ) -> None:
        """Upload local files into a remote directory (streamed); exit 1 if any failed."""
        for path in paths:
            if not path.is_file():
                raise typer.BadParameter(f"not a file: {path}", param_hint="PATHS")
        run(
            "upload", base_url, token, as_json, keep_going, as_completed=as_completed,
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
        keep_going: KeepGoing = False,
        as_completed: AsCompleted = False,
    ) -> None:
        """Download a remote tree (streamed, each file written atomically); exit 1 if any failed."""
        run(
            "download", base_url, token, as_json, keep_going, as_completed=as_completed,
            system_id=system_id, remote_path=remote_path, dest=dest,
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
        keep_going: KeepGoing = False,
        as_completed: AsCompleted = False,
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
        records = _read_json_objects(file, "records")
        for number, record in enumerate(records, 1):
            if not isinstance(record.get("name"), str) or not record["name"] or record.get("value") is None:
                raise typer.BadParameter(
                    f"record {number} needs a 'name' and a non-null 'value'", param_hint="FILE"
                )
        run(
            "create", base_url, token, as_json, keep_going, as_completed=as_completed,
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
        keep_going: KeepGoing = False,
        as_completed: AsCompleted = False,
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
            "send", base_url, token, as_json, keep_going, as_completed=as_completed,
            actor_id=actor_id, requests=messages, environment=environment,
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


async def _send_messages(client: Any, args: dict[str, Any], batch: _BatchRun, exec_of: dict[int, str]) -> Any:
    """``actors send-many``: one record per message (input = line number). With ``--wait``
    a sent message's record comes once its execution ended (``exec_of``: index -> id)."""
    actor_id = args["actor_id"]
    wait = args["wait"]

    def sent(index: int, item: Any, outcome: Any) -> None:
        if wait and isinstance(outcome, str):
            exec_of[index] = outcome  # reported when its execution ends
        else:
            batch.on_outcome(index, item, outcome)

    result = await client.actors.send_many(
        actor_id, args["requests"], environment=args["environment"], concurrency=args["concurrency"],
        on_outcome=sent, breaker=batch.breaker,
    )  # fmt: skip
    if not wait or not exec_of:
        return result
    index_of = {execution_id: index for index, execution_id in exec_of.items()}
    waited = await client.actors.wait_executions(
        actor_id, list(index_of), deadline=args["deadline"], concurrency=args["concurrency"],
        on_outcome=lambda i, execution_id, outcome: batch.on_outcome(index_of[execution_id], None, outcome),
        breaker=batch.breaker,
    )  # fmt: skip
    return result if result.stopped else waited


def _agave_outcome_record(action: str, args: dict[str, Any], exec_of: dict[int, str]) -> Any:
    """The record of one input of an Agave batch command."""

    def record(index: int, item: Any, outcome: Any) -> dict[str, Any]:
        number = index + 1  # files of requests: the input is the line number
        done = None if isinstance(outcome, BaseException) else outcome
        if action == "submit":
            return _agave_record(
                number, outcome, id=getattr(done, "id", None), status=getattr(done, "status", None),
                name=getattr(done, "name", None),
            )  # fmt: skip
        if action in ("wait", "stop"):
            found = _agave_record(args["ids"][index], outcome, status=getattr(outcome, "status", None))
            if action == "wait" and found["ok"] and found["status"] != "FINISHED":
                found.update(ok=False, error="Unsuccessful", message=f"ended {found['status']}")
            return found
        if action == "create":
            uuid, name = getattr(done, "uuid", None), getattr(done, "name", None)
            return _agave_record(number, outcome, uuid=uuid, name=name)
        if action == "upload":
            return _agave_record(
                str(args["paths"][index]), outcome, path=getattr(done, "path", None),
                status=getattr(done, "status", None),
            )  # fmt: skip
        if action == "download":
            return _agave_record(item[0], outcome, path=None if done is None else str(done))
        # send
        if index in exec_of:  # waited for: the outcome is the ended execution (or why not)
            found = _agave_record(number, outcome, execution_id=exec_of[index])
            found["execution_id"] = exec_of[index]
            if found["ok"]:
                found["status"] = outcome.status
                if outcome.status != "COMPLETE":
                    found.update(ok=False, error="Unsuccessful", message=f"ended {outcome.status}")
            return found
        found = _agave_record(number, outcome, execution_id=done)
        if isinstance(outcome, BaseException):
            orphans = getattr(outcome, "orphans", None)
            if orphans is not None:  # executions no outcome holds: what a lost answer may have run
                found["orphans"] = list(orphans)
        return found

    return record


async def _agave_batch(
    action: str,
    client: Any,
    as_json: bool,
    args: dict[str, Any],
    keep_going: bool = False,
    as_completed: bool = False,
) -> int:
    exec_of: dict[int, str] = {}
    given = args.get("requests") or args.get("ids") or args.get("paths")
    total = None if action == "download" else len(given or [])
    record = _agave_outcome_record(action, args, exec_of)
    batch = _BatchRun(action, total, as_json, keep_going, record, as_completed=as_completed)
    options = {"concurrency": args["concurrency"], "on_outcome": batch.on_outcome, "breaker": batch.breaker}

    async def start() -> Any:
        if action == "submit":
            return await client.jobs.submit_many(args["requests"], reconcile=args["reconcile"], **options)
        if action == "wait":
            return await client.jobs.wait_many(
                args["ids"], poll_interval=args["poll_interval"], max_interval=args["max_interval"],
                deadline=args["deadline"], **options,
            )  # fmt: skip
        if action == "stop":
            return await client.jobs.stop_many(args["ids"], **options)
        if action == "create":
            return await client.meta.create_many(args["requests"], reconcile=args["reconcile"], **options)
        if action == "send":
            return await _send_messages(client, args, batch, exec_of)
        if action == "upload":
            paths = args["paths"]
            return await client.files.upload_many(args["system_id"], args["remote_dir"], paths, **options)

        def advance(done: int, total: int | None, outcome: object) -> None:  # known once walked
            batch.reporter.progress.update(batch.reporter.task, total=total)

        return await client.files.download_many(
            args["system_id"], args["remote_path"], args["dest"], include=args["include"],
            exclude=args["exclude"], on_progress=advance, **options,
        )  # fmt: skip

    async with client:
        return await batch.run(start)


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


class _ServeUsageError(Exception):
    """A ``serve`` option the platform could not start with (busy port, bad host, ...)."""


def _serve_usage_error(message: str) -> None:
    """A ``serve`` usage error: one line on stderr, exit 2 (no traceback, no box)."""
    assert typer is not None
    print(f"aioplatform serve: error: {message}", file=sys.stderr, flush=True)
    raise typer.Exit(2)


def _start_failure(exc: OSError, host: str, port: int) -> _ServeUsageError | None:
    """The usage error an OSError from starting the platform stands for, if it is one."""
    import errno
    import socket

    if isinstance(exc, socket.gaierror):
        return _ServeUsageError(f"--host {host!r} is not an address of this machine ({exc.strerror})")
    if exc.errno == errno.EADDRINUSE:
        return _ServeUsageError(
            f"port {port} on {host} is already in use; choose another --port (0 = a free one)"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return _ServeUsageError(f"--host {host!r} is not an address of this machine")
    if exc.errno == errno.EACCES:
        return _ServeUsageError(f"not allowed to listen on port {port} (ports below 1024 need root)")
    return None


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
    warning: str | None = None,
) -> None:
    import contextlib
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
    fd = None
    if credentials_file is not None:  # opened before the platform starts: a bad path is a usage error
        try:
            fd = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            problem = f"cannot write --credentials-file {credentials_file}: {exc.strerror}"
            raise _ServeUsageError(problem) from None
    async with contextlib.AsyncExitStack() as stack:
        if fd is not None:
            stack.callback(lambda: os.close(fd) if fd is not None else None)
        try:
            await stack.enter_async_context(platform)
        except OSError as exc:
            usage = _start_failure(exc, host, port)
            if usage is None:
                raise
            raise usage from None
        if warning is not None:
            print(warning, file=sys.stderr, flush=True)
        if fd is not None:
            # Tokens go to a private file, never to the terminal or a log.
            with os.fdopen(fd, "w") as out:
                fd = None  # closed by the with block
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
