"""Agave files: agavepy's 15 files operations plus the permission listings, streamed.

>>> async for entry in agave.files.list("agave-storage", "data"):
...     print(entry.name, entry.length)
>>> await agave.files.upload("agave-storage", "data", Path("big.bin"))   # streamed from disk
>>> await agave.files.download("agave-storage", "data/big.bin", Path("copy.bin"))
>>> async for chunk in agave.files.download_stream("agave-storage", "data/big.bin"): ...

Every ``system_id``-taking method has a ``*_on_default_system`` twin (or takes
``system_id=None``) for the user's default storage system. File paths go into the URL
segment by segment (:func:`~aioplatform.core.paths.segments`): ``.``/``..`` are refused
and ``#``, ``?``, ``%`` are encoded, so a path can only ever name itself.

Nothing is held whole in memory: uploads read their source in chunks while sending,
downloads write chunks as they arrive (to a temporary file renamed into place), and
``walk`` yields entries as pages arrive.

Retries. An upload is a POST, but it names its target (directory + ``fileName``), so
sending the same bytes again overwrites the same file with the same content: uploads
from a path, bytes or a seekable file object are retried like idempotent calls (a lost
answer cannot leave a duplicate, only the same file). A one-shot source (an async
iterator, a pipe) cannot be re-read and is sent exactly once. ``rename``/``move``/``copy``
are never re-sent after they may have reached the server (a second rename would fail
on the first one's result); ``mkdir`` is idempotent (an existing directory is a 200).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import fnmatch
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from ..core import defaults
from ..core.batch import BatchResult, Breaker, OutcomeCallback, ProgressCallback, check_batch_options, gather
from ..core.calls import CallTimeout
from ..core.checks import check_choice
from ..core.multipart import MultipartFile, multipart_file
from ..core.paging import AsyncPager
from ..core.paths import segment, segments
from ..core.retry import RetryPolicy
from .models.common import structure
from .models.files import FileHistoryEvent, FilePermission, LogicalFile, RemoteFile

if TYPE_CHECKING:
    import aiohttp

    from .client import AgaveClient

__all__ = ["Files", "UploadSource"]

UploadSource = os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes] | AsyncIterable[bytes]

CHUNK_SIZE = 256 * 1024
MANAGE_ACTIONS = ("mkdir", "rename", "copy", "move")
PERMISSIONS = (
    "READ", "WRITE", "EXECUTE", "READ_WRITE", "READ_EXECUTE", "WRITE_EXECUTE", "ALL", "NONE",
)  # fmt: skip
WALK_CONCURRENCY = 8


def _file_path(kind: str, system_id: str | None, file_path: str, name: str = "file_path") -> str:
    """``files/v2/<kind>/system/<id>/<path>`` (or ``files/v2/<kind>/<path>`` on the default system)."""
    path = segments(name, file_path, allow_root=True)
    if system_id is None:
        return f"files/v2/{kind}/{path}"
    return f"files/v2/{kind}/system/{segment('system_id', system_id)}/{path}"


def _check_name(name: str, value: Any) -> str:
    """A file name: one path segment (no ``/``, not empty, ``.`` or ``..``)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if value in ("", ".", "..") or "/" in value or "\x00" in value:
        raise ValueError(f"{name} must be one file name (no '/', not '.' or '..'), got {value!r}")
    return value


def _check_text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


class _UploadBody:
    """A body factory: the streamed ``fileToUpload`` part plus the form fields (``fileName``
    always, which agavepy never sends: TACC/agavepy#36)."""

    def __init__(self, file_part: MultipartFile, fields: Mapping[str, str]):
        self._file_part = file_part
        self._fields = dict(fields)
        self.rewindable = file_part.rewindable

    def __call__(self) -> aiohttp.MultipartWriter:
        writer = self._file_part()
        for name, value in self._fields.items():
            writer.append(value, {"Content-Disposition": f'form-data; name="{name}"'})
        return writer


class Files:
    """``client.files``: listings, streamed transfers, manage actions, history, permissions."""

    def __init__(self, client: AgaveClient):
        self._client = client

    # -- listings --------------------------------------------------------------------------

    def list(
        self,
        system_id: str | None,
        file_path: str = "",
        *,
        limit: int = 100,
        offset: int = 0,
        search: Mapping[str, str] | None = None,
    ) -> AsyncPager[RemoteFile]:
        """The entries of ``file_path``: a directory's listing starts with the directory
        itself (named ``"."``, counted in the first page as the server counts it); a file
        lists as itself. ``search`` terms pass through (``{"type.eq": "file"}``)."""
        path = _file_path("listings", system_id, file_path)
        return self._client._list(path, RemoteFile, params=_search(search), limit=limit, offset=offset)

    def list_on_default_system(
        self,
        file_path: str = "",
        *,
        limit: int = 100,
        offset: int = 0,
        search: Mapping[str, str] | None = None,
    ) -> AsyncPager[RemoteFile]:
        return self.list(None, file_path, limit=limit, offset=offset, search=search)

    async def walk(
        self, system_id: str | None, path: str = "", *, concurrency: int = WALK_CONCURRENCY
    ) -> AsyncIterator[RemoteFile]:
        """Every file and directory below ``path``, recursively, listing up to ``concurrency``
        directories at once; entries come as pages arrive (directories in no fixed
        order), never the ``"."`` entries. Breaking out stops the listing."""
        _file_path("listings", system_id, path)  # argument checks before anything runs
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        directories: asyncio.Queue[str] = asyncio.Queue()
        results: asyncio.Queue[RemoteFile | BaseException | None] = asyncio.Queue(maxsize=4 * 100)
        outstanding = 1
        directories.put_nowait(path)

        async def worker() -> None:
            nonlocal outstanding
            while True:
                directory = await directories.get()
                try:
                    async for entry in self.list(system_id, directory):
                        if entry.is_self:
                            continue
                        if entry.is_dir:
                            outstanding += 1
                            directories.put_nowait(entry.path)
                        await results.put(entry)
                except Exception as exc:  # handed to the consumer, raised there
                    await results.put(exc)
                    return
                outstanding -= 1
                if outstanding == 0:
                    await results.put(None)

        workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
        try:
            while True:
                item = await results.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    # -- downloads -------------------------------------------------------------------------

    async def download_stream(
        self, system_id: str | None, path: str, *, chunk_size: int = CHUNK_SIZE
    ) -> AsyncIterator[bytes]:
        """A file's bytes in chunks as they arrive (``async for chunk in ...``)."""
        url = _media(system_id, path)
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
            raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
        async with self._client._stream("GET", url) as response:  # refreshes the token first
            async for chunk in response.iter_chunks(chunk_size):
                yield chunk

    def download_stream_from_default_system(
        self, path: str, *, chunk_size: int = CHUNK_SIZE
    ) -> AsyncIterator[bytes]:
        return self.download_stream(None, path, chunk_size=chunk_size)

    async def download(
        self,
        system_id: str | None,
        path: str,
        dest: str | os.PathLike[str] | None = None,
        *,
        timeout: CallTimeout = None,
    ) -> Path:
        """Save a file at ``dest`` (a file path, or an existing directory to save into;
        the current directory when None) and return where it went. Written to a
        temporary file beside ``dest`` and renamed into place, so ``dest`` never holds
        a partial file."""
        _media(system_id, path)
        if dest is not None and not isinstance(dest, (str, os.PathLike)):
            raise TypeError(f"dest must be a path or None, got {type(dest).__name__}")
        target = Path(dest) if dest is not None else Path.cwd()
        if target.is_dir():
            target = target / PurePosixPath("/" + path).name
        await _write_atomically(target, self.download_stream(system_id, path))
        return target

    async def download_from_default_system(
        self, path: str, dest: str | os.PathLike[str] | None = None, *, timeout: CallTimeout = None
    ) -> Path:
        return await self.download(None, path, dest)

    async def download_many(
        self,
        system_id: str | None,
        path: str,
        dest: str | os.PathLike[str],
        *,
        include: str | Sequence[str] | None = None,
        exclude: str | Sequence[str] | None = None,
        concurrency: int = defaults.CONCURRENCY,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[Path]:
        """Download every file below ``path`` into ``dest``, keeping the relative layout.

        ``include``/``exclude`` are glob patterns (:mod:`fnmatch`) matched against each
        file's path relative to ``path`` (``"*.csv"``, ``"logs/*"``): a file is taken
        when it matches any ``include`` (all when None) and no ``exclude``. The tree is
        walked first; then one outcome per matched file, in walk order (the saved path
        or the exception); ``result.items`` are ``(remote path, relative path)`` pairs.
        ``on_outcome`` and ``breaker`` are :func:`~aioplatform.gather`'s."""
        includes, excludes = _globs("include", include), _globs("exclude", exclude)
        check_batch_options(concurrency, on_progress, on_outcome, breaker, fail_fast)
        if not isinstance(dest, (str, os.PathLike)):
            raise TypeError(f"dest must be a path, got {type(dest).__name__}")
        root = segments("path", path, allow_root=True)
        base = Path(dest)
        prefix = "/" + "/".join(p for p in path.split("/") if p)
        wanted: list[tuple[str, str]] = []
        async for entry in self.walk(system_id, path, concurrency=min(concurrency, WALK_CONCURRENCY)):
            if entry.is_dir:
                continue
            relative = entry.path[len(prefix) :].lstrip("/") if root else entry.path.lstrip("/")
            relative = relative or entry.name
            if includes and not any(fnmatch.fnmatchcase(relative, g) for g in includes):
                continue
            if any(fnmatch.fnmatchcase(relative, g) for g in excludes):
                continue
            wanted.append((entry.path, relative))

        async def fetch(item: tuple[str, str]) -> Path:
            remote, relative = item
            target = base.joinpath(*_local_parts(relative))
            await _write_atomically(target, self.download_stream(system_id, remote))
            return target

        return await gather(
            fetch, wanted, concurrency=concurrency, fail_fast=fail_fast, on_progress=on_progress,
            on_outcome=on_outcome, breaker=breaker,
        )  # fmt: skip

    # -- uploads and imports ---------------------------------------------------------------

    async def import_data(
        self,
        system_id: str | None,
        file_path: str,
        *,
        file_to_upload: UploadSource | None = None,
        file_name: str | None = None,
        url_to_ingest: str | None = None,
        file_type: str | None = None,
        callback_url: str | None = None,
        notifications: str | None = None,
        timeout: CallTimeout = None,
    ) -> LogicalFile:
        """agavepy's ``importData``: upload ``file_to_upload`` (streamed) or have the
        server fetch ``url_to_ingest``, into the directory ``file_path``. The answer is
        the 202's LogicalFile (``status`` ``STAGING_QUEUED``); see :meth:`upload`."""
        if (file_to_upload is None) == (url_to_ingest is None):
            raise ValueError("pass exactly one of file_to_upload and url_to_ingest")
        fields: dict[str, str] = {}
        for key, name, value in (
            ("fileType", "file_type", file_type),
            ("callbackURL", "callback_url", callback_url),
            ("notifications", "notifications", notifications),
        ):
            if value is not None:
                fields[key] = _check_text(name, value)
        url = _file_path("media", system_id, file_path)
        if url_to_ingest is not None:
            if not isinstance(url_to_ingest, str):
                raise TypeError(f"url_to_ingest must be a string, got {type(url_to_ingest).__name__}")
            if "://" not in url_to_ingest:
                raise ValueError(f"url_to_ingest must be an absolute URL, got {url_to_ingest!r}")
            form = {"urlToIngest": url_to_ingest, **fields}
            if file_name is not None:
                form["fileName"] = _check_name("file_name", file_name)
            # The target is named by the caller: importing again overwrites the same file.
            return await self._client._model("POST", url, LogicalFile, data=form, idempotent=True)
        source = _check_source(file_to_upload, "file_to_upload")
        name = _check_name("file_name", file_name if file_name is not None else _source_name(source))
        part = multipart_file("fileToUpload", name, source)
        body = _UploadBody(part, {"fileName": name, **fields})
        return await self._client._model(
            "POST", url, LogicalFile, data=body,
            idempotent=True if body.rewindable else None,
            retry=None if body.rewindable else RetryPolicy.none(),
        )  # fmt: skip

    async def import_to_default_system(
        self,
        file_path: str,
        *,
        file_to_upload: UploadSource | None = None,
        file_name: str | None = None,
        url_to_ingest: str | None = None,
        file_type: str | None = None,
        callback_url: str | None = None,
        timeout: CallTimeout = None,
    ) -> LogicalFile:
        return await self.import_data(
            None, file_path, file_to_upload=file_to_upload, file_name=file_name,
            url_to_ingest=url_to_ingest, file_type=file_type, callback_url=callback_url,
        )  # fmt: skip

    async def upload(
        self,
        system_id: str | None,
        dir_path: str,
        file: UploadSource,
        *,
        file_name: str | None = None,
        file_type: str | None = None,
        timeout: CallTimeout = None,
    ) -> LogicalFile:
        """Upload ``file`` into the directory ``dir_path`` as ``file_name`` (default: the
        path's or file object's base name; required for bytes and streams).

        ``file`` is a :class:`~pathlib.Path`, bytes, a binary file object or an async
        iterable of bytes, read in chunks while sending. A plain ``str`` is refused: it
        could be a path or the content. The file is in place when the server answers
        (202, ``STAGING_QUEUED``); its history reaches ``STAGING_COMPLETED`` shortly after."""
        _file_path("media", system_id, dir_path, "dir_path")
        _check_source(file)
        return await self.import_data(
            system_id, dir_path, file_to_upload=file, file_name=file_name, file_type=file_type
        )

    async def upload_many(
        self,
        system_id: str | None,
        dir_path: str,
        items: Iterable[UploadSource | tuple[str, UploadSource]],
        *,
        concurrency: int = defaults.CONCURRENCY,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[LogicalFile]:
        """Upload many files into ``dir_path``, ``concurrency`` at a time: each item is a
        path (stored under its base name) or a ``(file_name, source)`` pair. Exactly one
        outcome per item, in input order. Safe under retries (see the module docstring):
        an upload whose answer was lost is re-sent and overwrites the same file.
        ``on_outcome`` and ``breaker`` are :func:`~aioplatform.gather`'s."""
        _file_path("media", system_id, dir_path, "dir_path")
        check_batch_options(concurrency, on_progress, on_outcome, breaker, fail_fast)

        async def one(item: UploadSource | tuple[str, UploadSource]) -> LogicalFile:
            if isinstance(item, tuple):
                if len(item) != 2:
                    raise ValueError(
                        f"an upload item must be a path or a (file_name, source) pair, got {item!r}"
                    )
                name, source = item
                return await self.upload(system_id, dir_path, source, file_name=name)
            return await self.upload(system_id, dir_path, item)

        return await gather(
            one, items, concurrency=concurrency, fail_fast=fail_fast, on_progress=on_progress,
            on_outcome=on_outcome, breaker=breaker,
        )  # fmt: skip

    # -- manage ----------------------------------------------------------------------------

    async def manage(
        self, system_id: str | None, file_path: str, *, action: str, path: str, timeout: CallTimeout = None
    ) -> LogicalFile | None:
        """agavepy's ``manage``: ``action`` (mkdir, rename, copy, move) on ``file_path``
        with the body's ``path`` (mkdir: the new directory relative to ``file_path``;
        rename: the new name; copy/move: the destination path on the same system)."""
        check_choice("action", action, MANAGE_ACTIONS)
        _check_text("path", path)
        url = _file_path("media", system_id, file_path)
        response = await self._client._request(
            "PUT", url, json={"action": action, "path": path}, idempotent=action == "mkdir"
        )
        if not response.body.strip():
            return None
        return self._client._structure(response, LogicalFile)

    async def manage_on_default_system(
        self, file_path: str, *, action: str, path: str, timeout: CallTimeout = None
    ) -> LogicalFile | None:
        return await self.manage(None, file_path, action=action, path=path)

    async def mkdir(
        self, system_id: str | None, path: str, *, timeout: CallTimeout = None
    ) -> LogicalFile | None:
        """Create the directory ``path`` (and any missing parents); an existing one is fine."""
        segments("path", path)
        parts = [p for p in path.split("/") if p]
        return await self.manage(system_id, "/".join(parts[:-1]), action="mkdir", path=parts[-1])

    async def rename(
        self, system_id: str | None, path: str, new_name: str, *, timeout: CallTimeout = None
    ) -> LogicalFile | None:
        """Rename ``path`` to ``new_name`` in the same directory (an existing target is a 400)."""
        segments("path", path)
        return await self.manage(system_id, path, action="rename", path=_check_name("new_name", new_name))

    async def copy(
        self, system_id: str | None, path: str, destination: str, *, timeout: CallTimeout = None
    ) -> LogicalFile | None:
        """Copy ``path`` to the path ``destination`` on the same system."""
        segments("path", path)
        return await self.manage(system_id, path, action="copy", path=_dest(destination))

    async def move(
        self, system_id: str | None, path: str, destination: str, *, timeout: CallTimeout = None
    ) -> LogicalFile | None:
        """Move ``path`` to the path ``destination`` on the same system (an existing one is a 400)."""
        segments("path", path)
        return await self.manage(system_id, path, action="move", path=_dest(destination))

    async def delete(self, system_id: str | None, file_path: str, *, timeout: CallTimeout = None) -> None:
        """Delete a file or a directory with everything in it."""
        segments("file_path", file_path)
        await self._client._call("DELETE", _file_path("media", system_id, file_path))

    async def delete_from_default_system(self, file_path: str, *, timeout: CallTimeout = None) -> None:
        await self.delete(None, file_path)

    # -- history and permissions -----------------------------------------------------------

    def get_history(
        self, system_id: str | None, file_path: str, *, limit: int = 100, offset: int = 0
    ) -> AsyncPager[FileHistoryEvent]:
        """The events of a path, oldest first (CREATED, STAGING_QUEUED, PERMISSION_GRANT ...)."""
        path = _file_path("history", system_id, file_path)
        return self._client._list(path, FileHistoryEvent, limit=limit, offset=offset)

    def get_history_on_default_system(
        self, file_path: str, *, limit: int = 100, offset: int = 0
    ) -> AsyncPager[FileHistoryEvent]:
        return self.get_history(None, file_path, limit=limit, offset=offset)

    def list_permissions(
        self,
        system_id: str | None,
        file_path: str,
        *,
        limit: int = 100,
        offset: int = 0,
        search: Mapping[str, str] | None = None,
    ) -> AsyncPager[FilePermission]:
        """Who may do what on a path: the owner first, then every grant."""
        path = _file_path("pems", system_id, file_path)
        return self._client._list(path, FilePermission, params=_search(search), limit=limit, offset=offset)

    def list_permissions_on_default_system(
        self, file_path: str, *, limit: int = 100, offset: int = 0
    ) -> AsyncPager[FilePermission]:
        return self.list_permissions(None, file_path, limit=limit, offset=offset)

    async def update_permissions(
        self,
        system_id: str | None,
        file_path: str,
        username: str,
        permission: str,
        *,
        recursive: bool = False,
        timeout: CallTimeout = None,
    ) -> builtins.list[FilePermission]:
        """Grant ``username`` ``permission`` (READ, WRITE, EXECUTE, READ_WRITE, READ_EXECUTE,
        WRITE_EXECUTE, ALL; NONE revokes) on the path, and below it with ``recursive``.
        Setting a permission twice has the effect of once, so it is retried freely."""
        _check_text("username", username)
        level = check_choice("permission", permission, PERMISSIONS, any_case=True)
        if not isinstance(recursive, bool):
            raise TypeError(f"recursive must be a bool, got {type(recursive).__name__}")
        url = _file_path("pems", system_id, file_path)
        body = {"username": username, "permission": level, "recursive": recursive}
        result = await self._client._call("POST", url, json=body, idempotent=True)
        if result is None:
            return []
        items = result if isinstance(result, list) else [result]
        return [structure(item, FilePermission) for item in items]

    async def update_permissions_on_default_system(
        self,
        file_path: str,
        username: str,
        permission: str,
        *,
        recursive: bool = False,
        timeout: CallTimeout = None,
    ) -> builtins.list[FilePermission]:
        return await self.update_permissions(None, file_path, username, permission, recursive=recursive)

    async def delete_permissions(
        self, system_id: str | None, file_path: str, *, timeout: CallTimeout = None
    ) -> None:
        """Remove every permission but the owner's on the path (and below it)."""
        await self._client._call("DELETE", _file_path("pems", system_id, file_path))

    async def delete_permissions_on_default_system(
        self, file_path: str, *, timeout: CallTimeout = None
    ) -> None:
        await self.delete_permissions(None, file_path)


# -- helpers ----------------------------------------------------------------------------------


def _media(system_id: str | None, path: str) -> str:
    """The media URL of a file (the root is no file)."""
    segments("path", path)
    return _file_path("media", system_id, path)


def _search(search: Mapping[str, str] | None) -> dict[str, str]:
    if search is None:
        return {}
    if not isinstance(search, Mapping):
        raise TypeError(f"search must be a mapping of terms to values, got {type(search).__name__}")
    return {str(k): str(v) for k, v in search.items()}


def _last(path: str) -> str:
    parts = [p for p in path.split("/") if p] if isinstance(path, str) else []
    if not parts:
        raise ValueError(f"path must name a directory below the root, got {path!r}")
    return parts[-1]


def _dest(destination: str) -> str:
    segments("destination", destination)  # refuses '.'/'..' and an empty destination
    return "/" + "/".join(p for p in destination.split("/") if p)


def _globs(name: str, value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, (str, Iterable)) or isinstance(value, bytes):
        raise TypeError(f"{name} must be a glob string or a sequence of them, got {type(value).__name__}")
    patterns = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(p, str) and p for p in patterns):
        raise TypeError(f"{name} must be a glob string or a sequence of them, got {value!r}")
    return patterns


def _local_parts(relative: str) -> list[str]:
    """A remote relative path as local path parts; nothing may climb out of ``dest``."""
    parts = [p for p in relative.split("/") if p]
    if not parts or any(p in (".", "..") or os.sep in p or (os.altsep and os.altsep in p) for p in parts):
        raise ValueError(f"refusing to save a remote path that leaves the destination: {relative!r}")
    return parts


def _source_name(source: Any) -> str:
    if isinstance(source, os.PathLike):
        return os.path.basename(str(os.fspath(source)))
    name = getattr(source, "name", None)
    if isinstance(name, str) and name and not isinstance(source, (bytes, bytearray, memoryview)):
        return os.path.basename(name)
    raise ValueError("file_name is required unless the file is a path or a named file object")


def _check_source(source: Any, name: str = "file") -> Any:
    if isinstance(source, str):
        raise TypeError(
            f"{name} is a str, which could be a path or the content: pass pathlib.Path(...) to upload "
            "a file, or bytes (text.encode()) to upload text"
        )
    readable = callable(getattr(source, "read", None)) or isinstance(source, AsyncIterable)
    if not isinstance(source, (bytes, bytearray, memoryview, os.PathLike)) and not readable:
        raise TypeError(
            f"{name} must be a pathlib.Path, bytes, a binary file object or an async iterable of bytes, "
            f"got {type(source).__name__}"
        )
    return source


async def _write_atomically(target: Path, chunks: AsyncIterator[bytes]) -> None:
    """Write ``chunks`` to a temporary file beside ``target``, then rename it into place."""
    await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    out = await asyncio.to_thread(open, temp, "wb")
    try:
        async for chunk in chunks:
            await asyncio.to_thread(out.write, chunk)
        await asyncio.to_thread(out.close)
        await asyncio.to_thread(os.replace, temp, target)
    except BaseException:
        out.close()
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
