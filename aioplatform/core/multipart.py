"""Streamed ``multipart/form-data`` file uploads: a body factory for ``Session.request(data=...)``.

``multipart_file(field, filename, source)`` returns a :class:`MultipartFile`: calling it
builds a fresh multipart body for one attempt, so a retried upload re-reads its
source from the start. Sources are read in chunks while the request is being sent,
never whole into memory:

* a path (``str`` or ``os.PathLike``) — re-opened for every attempt,
* ``bytes`` / ``bytearray`` / ``memoryview``,
* a binary file object — rewound to where it stood for every attempt when it is
  seekable; otherwise it can be sent once only,
* an async iterable of ``bytes`` — a one-shot stream, sent once only.

A one-shot source has ``rewindable == False``: send it with ``RetryPolicy.none()``
(a second call of the factory raises ``RuntimeError`` instead of sending a
truncated body).

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

__all__ = ["MultipartFile", "multipart_file", "FileSource"]

FileSource = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes] | AsyncIterable[bytes]

CHUNK_SIZE = 64 * 1024


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
        filename: str,
        source: FileSource,
        *,
        content_type: str | None = None,
        chunk_size: int = CHUNK_SIZE,
    ):
        if not isinstance(field, str) or not field:
            raise ValueError("field must be a non-empty string")
        if not isinstance(filename, str):
            raise TypeError(f"filename must be a string, got {type(filename).__name__}")
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
        self.field = field
        self.filename = filename
        self.content_type = content_type or "application/octet-stream"
        self._chunk_size = chunk_size
        self._source = source
        self._sent = False
        self._start = 0
        self.size: int | None
        self.rewindable: bool
        if isinstance(source, (str, os.PathLike)):
            self.size = os.stat(source).st_size  # fails early (FileNotFoundError) for a bad path
            self.rewindable = True
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
                "source must be a path, bytes, a binary file object or an async iterable of bytes, "
                f"got {type(source).__name__}"
            )

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
        source, size = self._source, self._chunk_size
        if isinstance(source, (str, os.PathLike)):
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
    filename: str,
    source: FileSource,
    *,
    content_type: str | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> MultipartFile:
    """A streamed one-file multipart body factory (see the module docstring)."""
    return MultipartFile(field, filename, source, content_type=content_type, chunk_size=chunk_size)
