"""Files uploaded to a group: upload (streamed), list, download (streamed), delete, upload_many.

Uploads are ``multipart/form-data`` with the file in the part named ``file``; the
source is read in chunks while it is sent (a :class:`pathlib.Path`, bytes, a binary
file object or an async iterable of bytes; a plain ``str`` is refused with
``TypeError``, since it could be a path or the content). A path, bytes or a seekable file is re-read from its
start if the upload is retried; a one-shot stream (a pipe, an async iterable) is
sent with ``RetryPolicy.none()``, since it cannot be sent twice.

Downloads need no login on rob-flask (intentionally, for browser links) and are
streamed to ``dest`` chunk by chunk when a path or file object is given.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, overload

from ..core.batch import (
    BatchResult,
    Breaker,
    OutcomeCallback,
    ProgressCallback,
    ReportedOutcomes,
    answer_lost,
    check_batch_options,
    gather,
)
from ..core.calls import CallTimeout
from ..core.errors import PlatformError
from ..core.multipart import FileSource, multipart_file
from ..core.paging import AsyncPager
from ..core.retry import RetryPolicy
from ..core.serde import structure
from .errors import NotLoggedIn
from .models import FileHandle, converter
from .users import id_segment

if TYPE_CHECKING:
    from .client import FlowservClient

__all__ = ["GroupFiles", "UploadItem"]

UPLOAD_FIELD = "file"  # rob-flask reads request.files["file"] (flowserv's own client sends "files")
CHUNK_SIZE = 64 * 1024

# An item of upload_many: a path (uploaded under its base name; a str item is a path here,
# as there is no name to go with content) or a (source, name) pair.
UploadItem = str | os.PathLike[str] | tuple[FileSource, str]


def _check_name(name: Any) -> str | None:
    """A given upload name (None: the path's base name, see ``multipart_file``)."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    if not name.strip():
        raise ValueError("name must not be empty")
    return name


class GroupFiles:
    """The uploaded-file operations of ``client.groups``."""

    _client: FlowservClient

    async def upload_file(
        self,
        group_id: str,
        file: FileSource,
        name: str | None = None,
        *,
        content_type: str | None = None,
        timeout: CallTimeout = None,
    ) -> FileHandle:
        """Upload ``file`` (a ``pathlib.Path``, bytes, a binary file object or an async iterable
        of bytes) to a group. A ``str`` is a ``TypeError``: pass ``Path("a.csv")`` to upload
        that file, or ``text.encode()`` to upload text.

        ``name`` defaults to a path's base name; the server sanitizes it (Werkzeug's
        ``secure_filename``: ``"../a b.txt"`` is stored as ``"a_b.txt"``). Member-only.
        The returned ``size`` is what the server reports: rob-flask reports 0 for a
        stream of unknown length (the stored file is complete). Without a login it raises
        :class:`NotLoggedIn` before sending anything.
        """
        gid = id_segment("group_id", group_id)
        filename = _check_name(name)
        body = multipart_file(UPLOAD_FIELD, filename, file, content_type=content_type, argument="file")
        url = self._client._url(f"uploads/{gid}/files")
        if self._client.token is None:
            # rob-flask answers 403 before reading the body and closes the connection, so the
            # answer would be lost mid-upload (a transport error): refuse here, as it would.
            raise NotLoggedIn(
                "not logged in (uploading needs a login: the server answers 403 without one)",
                status=403, method="POST", url=url,
            )  # fmt: skip
        response = await self._client._request(
            "POST",
            url,
            data=body,
            # A one-shot stream cannot be re-read: a second attempt would send nothing.
            retry=None if body.rewindable else RetryPolicy.none(),
        )
        return structure(response, converter, FileHandle)

    def list_files(self, group_id: str) -> AsyncPager[FileHandle]:
        """The files uploaded to a group (member-only)."""
        gid = id_segment("group_id", group_id)

        async def fetch() -> list[FileHandle]:
            response = await self._client._request("GET", f"uploads/{gid}/files")
            return structure(response, converter, list[FileHandle], key="files")

        return AsyncPager.single(fetch)

    @overload
    async def download_file(
        self, group_id: str, file_id: str, dest: None = None, *, timeout: CallTimeout = None
    ) -> bytes: ...

    @overload
    async def download_file(
        self,
        group_id: str,
        file_id: str,
        dest: str | os.PathLike[str] | IO[bytes],
        *,
        timeout: CallTimeout = None,
    ) -> int: ...

    async def download_file(
        self,
        group_id: str,
        file_id: str,
        dest: str | os.PathLike[str] | IO[bytes] | None = None,
        *,
        timeout: CallTimeout = None,
    ) -> bytes | int:
        """Download a file: its bytes when ``dest`` is None, else stream it into ``dest``.

        ``dest`` is a path (written to ``<dest>.part`` then renamed, so a failed download
        leaves no truncated file) or a writable binary file object; the number of
        bytes written is returned. Memory stays bounded by one chunk.
        """
        gid = id_segment("group_id", group_id)
        fid = id_segment("file_id", file_id)
        path = f"uploads/{gid}/files/{fid}"
        if dest is None:
            return (await self._client._request("GET", path)).body
        if isinstance(dest, (str, os.PathLike)):
            target = Path(dest)
            partial = target.with_name(target.name + ".part")
            out = await asyncio.to_thread(partial.open, "wb")
            try:
                written = await self._stream_into(path, out)
            except BaseException:
                await asyncio.to_thread(out.close)
                partial.unlink(missing_ok=True)
                raise
            await asyncio.to_thread(out.close)
            await asyncio.to_thread(partial.replace, target)
            return written
        if not hasattr(dest, "write"):
            raise TypeError(f"dest must be a path, a writable binary file or None, got {type(dest).__name__}")
        return await self._stream_into(path, dest)

    async def _stream_into(self, path: str, out: IO[bytes]) -> int:
        written = 0
        async with self._client._stream("GET", path) as response:
            async for chunk in response.iter_chunks(CHUNK_SIZE):
                await asyncio.to_thread(out.write, chunk)
                written += len(chunk)
        return written

    async def delete_file(self, group_id: str, file_id: str, *, timeout: CallTimeout = None) -> None:
        """Delete an uploaded file (member-only; ``NotFound`` if unknown)."""
        gid = id_segment("group_id", group_id)
        fid = id_segment("file_id", file_id)
        await self._client._request("DELETE", f"uploads/{gid}/files/{fid}")

    async def upload_many(
        self,
        group_id: str,
        items: Iterable[UploadItem] | AsyncIterable[UploadItem] | None = None,
        *,
        files: Iterable[UploadItem] | AsyncIterable[UploadItem] | None = None,
        concurrency: int = 8,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
        reconcile: bool = False,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[FileHandle]:
        """Upload many files concurrently: exactly one outcome per item, in input order.
        (``files=`` is the old name of ``items``, still accepted.)

        ``on_outcome`` and ``breaker`` are :func:`~aioplatform.gather`'s (with ``reconcile``,
        a lost answer is reported to ``on_outcome`` once looked up).

        Each item is a path (``str`` or ``Path``, uploaded under its base name) or a
        ``(source, name)`` pair whose source is what :meth:`upload_file` takes.
        An upload whose connection dropped after the server received it is not re-sent
        (it may have been stored): its outcome is the error, never a duplicate.

        With ``reconcile=True`` such lost answers are looked up instead: the group's
        files are listed before and after the batch, and each new file no outcome holds
        is matched to a lost item with the same name and size (oldest file to first
        item), becoming its outcome — so the group gains exactly one file per success.
        The listings are GETs retried until their deadline. Still ambiguous: a name the
        server rewrites (``secure_filename``) or a size not known in advance (a stream)
        is not matched, and a file with the same name and size that someone else uploads
        to the group during the batch can be taken for a lost one.
        """
        id_segment("group_id", group_id)  # refused before any upload
        if files is not None:  # the old spelling of items
            if items is not None:
                raise TypeError("give items (or its old name files), not both")
            items = files
        if items is None:
            raise TypeError("upload_many() needs items: the files to upload")
        if isinstance(items, (str, bytes, os.PathLike)) or not isinstance(items, (Iterable, AsyncIterable)):
            raise TypeError(
                f"items must be an iterable of paths or (source, name) pairs, not {type(items).__name__}"
            )

        async def upload(item: UploadItem) -> FileHandle:
            if isinstance(item, tuple):
                if len(item) != 2:
                    raise ValueError("an upload item must be a path or a (source, name) pair")
                return await self.upload_file(group_id, item[0], item[1])
            return await self.upload_file(group_id, Path(item) if isinstance(item, str) else item)

        check_batch_options(concurrency, on_progress, on_outcome, breaker, fail_fast, reconcile)
        given = items

        async def run(report: OutcomeCallback | None) -> BatchResult[FileHandle]:
            return await gather(
                upload, given, concurrency=concurrency, fail_fast=fail_fast, on_progress=on_progress,
                on_outcome=report, breaker=breaker,
            )  # fmt: skip

        if not reconcile:
            return await run(on_outcome)
        lookups = self._client._for_lookups().groups
        before = {f.id for f in await lookups.list_files(group_id).to_list()}
        reported = ReportedOutcomes(on_outcome, hold=answer_lost)
        result = await run(reported)
        lost = [e for e in result.errors if answer_lost(e.exception)]
        if not lost:
            return await reported.release(result)
        try:
            after = await lookups.list_files(group_id).to_list()
        except PlatformError as exc:
            for e in lost:
                e.exception.add_note(f"looking up the lost upload failed: {exc}")
            return await reported.release(result)
        held = before | {v.id for v in result.values}
        found: dict[tuple[str, int], list[FileHandle]] = {}
        for f in after:  # in upload order: the oldest match is taken first
            if f.id not in held:
                found.setdefault((f.name, f.size), []).append(f)
        outcomes, failed = list(result.outcomes), {e.index for e in result.errors}
        for e in lost:
            key = await asyncio.to_thread(_name_and_size, e.item)
            if key is not None and found.get(key):
                outcomes[e.index] = found[key].pop(0)
                failed.discard(e.index)
        return await reported.release(BatchResult(result.items, outcomes, failed, stopped=result.stopped))


def _name_and_size(item: Any) -> tuple[str, int] | None:
    """The name and size an upload item is stored under, when known before sending."""
    source, name = item if isinstance(item, tuple) and len(item) == 2 else (item, None)
    if isinstance(source, str):
        source = Path(source)
    if isinstance(source, (bytes, bytearray)):
        size = len(source)
    elif isinstance(source, memoryview):
        size = source.nbytes
    elif isinstance(source, os.PathLike):
        try:
            size = os.stat(source).st_size
        except OSError:
            return None
        name = name if name is not None else Path(source).name
    else:
        return None  # a file object or a stream: its size is not known in advance
    return (name, size) if isinstance(name, str) else None
