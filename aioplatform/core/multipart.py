"""Streamed ``multipart/form-data`` file uploads: a body factory for ``Session.request(data=...)``.

``multipart_file(field, filename, source)`` returns a :class:`MultipartFile`: calling it
builds a fresh multipart body for one attempt, so a retried upload re-reads its
source from the start. Sources are read in chunks while the request is being sent,
never whole into memory:

* a path, as an ``os.PathLike`` such as :class:`pathlib.Path` — re-opened for every
  attempt. A plain ``str`` is refused (``TypeError``): it could be a path or the
  content itself, and guessing wrong uploads the wrong thing or fails with
  ``FileNotFoundError``; pass ``Path(name)`` for a file, ``text.encode()`` for text;
* ``bytes`` / ``bytearray`` / ``memoryview``,
* a binary file object — rewound to where it stood for every attempt when it is
  seekable; otherwise it can be sent once only,
* an async iterable of ``bytes`` — a one-shot stream, sent once only.

A one-shot source has ``rewindable == False``: send it with ``RetryPolicy.none()``
(a second call of the factory raises ``RuntimeError`` instead of sending a
truncated body).

An exception raised by the source itself (the caller's stream or file) is the
caller's: the session raises it as it is, never as a ``TransportError``
(:func:`source_error` finds it behind the aiohttp error that carries it).

>>> body = multipart_file("file", "data.csv", Path("data.csv"))
>>> await session.request("POST", url, data=body, retry=None if body.rewindable else RetryPolicy.none())
"""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterable, AsyncIterator
from typing import IO, Any

import aiohttp
from aiohttp import hdrs, payload

__all__ = ["MultipartFile", "multipart_file", "FileSource", "source_error"]

FileSource = os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes] | AsyncIterable[bytes]

CHUNK_SIZE = 64 * 1024


class _SourceOSError(Exception):
    """An OSError raised by reading the caller's source, carried through aiohttp (which
    would otherwise take it for a socket error and report a broken connection)."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


def source_error(exc: BaseException) -> BaseException | None:
    """The exception a request body's source raised, if that is what ``exc`` (an aiohttp
    error while sending) comes from; None for a genuine transport failure.

    aiohttp reports a failure of the body it is writing as a ``ClientConnectionError``
    caused by it; anything in that chain that is neither aiohttp's own (its parser's
    errors included), nor an ``OSError`` nor a timeout was raised by the caller's code
    (an upload stream). A timeout's own cause, the ``CancelledError`` of the timer that
    fired (the deadline), is asyncio's, not the caller's.
    """
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, _SourceOSError):
            return cause.error
        ours = type(cause).__module__.partition(".")[0] == "aiohttp"
        if not (ours or isinstance(cause, (OSError, asyncio.TimeoutError, asyncio.CancelledError))):
            return cause
        cause = cause.__cause__
    return None


class _ChunkPayload(payload.AsyncIterablePayload):
    """An async-iterable payload whose size is known in advance (so no chunked encoding)."""

    def __init__(self, chunks: AsyncIterator[bytes], size: int | None, **kwargs: Any):
        super().__init__(chunks, **kwargs)
        self._size = size


class MultipartFile:
    """A zero-argument body factory: one file part named ``field``, built fresh per attempt."""

    def __init__(
        self,
        field: str,
        filename: str | None,
        source: FileSource,
        *,
        content_type: str | None = None,
        chunk_size: int = CHUNK_SIZE,
        argument: str = "source",
    ):
        if not isinstance(field, str) or not field:
            raise ValueError("field must be a non-empty string")
        if filename is not None and not isinstance(filename, str):
            raise TypeError(f"filename must be a string, got {type(filename).__name__}")
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
        self.field = field
        self.filename = filename or ""
        self.content_type = content_type or "application/octet-stream"
        self._chunk_size = chunk_size
        self._source = source
        self._sent = False
        self._start = 0
        self.size: int | None
        self.rewindable: bool
        if isinstance(source, str):
            raise TypeError(
                f"{argument} is a str, which could be a path or the content: pass pathlib.Path(...) "
                "to upload a file, or bytes (text.encode()) to upload text"
            )
        if isinstance(source, os.PathLike):
            self.size = os.stat(source).st_size  # fails early (FileNotFoundError) for a bad path
            self.rewindable = True
            if filename is None:
                self.filename = os.path.basename(os.fspath(source))
        elif isinstance(source, (bytes, bytearray, memoryview)):
            self.size = memoryview(source).nbytes
            self.rewindable = True
        elif isinstance(source, AsyncIterable):
            self.size = None
            self.rewindable = False
        elif hasattr(source, "read"):
            if _seekable(source):
                self._start = source.tell()
                self.size = source.seek(0, io.SEEK_END) - self._start
                source.seek(self._start)
                self.rewindable = True
            else:
                self.size = None
                self.rewindable = False
        else:
            raise TypeError(
                f"{argument} must be an upload source: a path, bytes, a binary file object or an async "
                "iterable of bytes, "
                f"got {type(source).__name__}"
            )
        if filename is None and not isinstance(source, os.PathLike):
            raise ValueError(f"a filename is required unless {argument} is a path")

    def __call__(self) -> aiohttp.MultipartWriter:
        """A fresh multipart body reading the source from its start."""
        if not self.rewindable:
            if self._sent:
                raise RuntimeError("a one-shot stream cannot be sent twice (send it with RetryPolicy.none())")
            self._sent = True
        writer = aiohttp.MultipartWriter("form-data")
        part = _ChunkPayload(self._chunks(), self.size, content_type=self.content_type)
        # Unquoted (backslash-escaped) names: Werkzeug does not percent-decode a quoted filename.
        part.set_content_disposition(
            "form-data", quote_fields=False, name=self.field, filename=self.filename
        )
        writer.append_payload(part)
        if self.size is not None:
            # RFC 7578 makes a part's Content-Length optional and aiohttp leaves it out; Werkzeug
            # (hence rob-flask) reports a file's size from it, so it is added after the append.
            part.headers[hdrs.CONTENT_LENGTH] = str(self.size)
        return writer

    async def _chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._read():
                yield chunk
        except OSError as exc:
            raise _SourceOSError(exc) from exc

    async def _read(self) -> AsyncIterator[bytes]:
        source, size = self._source, self._chunk_size
        if isinstance(source, os.PathLike):
            f = await asyncio.to_thread(open, source, "rb")
            try:
                while chunk := await asyncio.to_thread(f.read, size):
                    yield chunk
            finally:
                await asyncio.to_thread(f.close)
        elif isinstance(source, (bytes, bytearray, memoryview)):
            view = memoryview(source).cast("B")
            for start in range(0, view.nbytes, size):
                yield bytes(view[start : start + size])
        elif isinstance(source, AsyncIterable):
            async for chunk in source:
                if not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise TypeError(f"an upload stream must yield bytes, got {type(chunk).__name__}")
                yield bytes(chunk)
        else:
            stream: Any = source
            in_memory = isinstance(stream, io.BytesIO)
            if self.rewindable:
                stream.seek(self._start)
            while True:
                chunk = stream.read(size) if in_memory else await asyncio.to_thread(stream.read, size)
                if not chunk:
                    break
                yield chunk

    def __repr__(self) -> str:
        return f"<MultipartFile {self.field}={self.filename!r} size={self.size}>"


def _seekable(stream: Any) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, ValueError, OSError):
        return False


def multipart_file(
    field: str,
    filename: str | None,
    source: FileSource,
    *,
    content_type: str | None = None,
    chunk_size: int = CHUNK_SIZE,
    argument: str = "source",
) -> MultipartFile:
    """A streamed one-file multipart body factory (see the module docstring).

    ``filename`` None means a path source's base name (a ``ValueError`` for other
    sources); ``argument`` is the caller's name for ``source`` in error messages."""
    return MultipartFile(
        field, filename, source, content_type=content_type, chunk_size=chunk_size, argument=argument
    )
