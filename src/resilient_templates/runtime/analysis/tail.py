"""Read only the tail of a log, in bounded memory, whatever its size or encoding.

A regular file is read from ``size - limit`` (one seek); a pipe or stdin is read in chunks
into a buffer that is trimmed to the limit as it goes, so a 1 GB stream costs about twice
the limit in memory. The cut is moved to the next line start so that the first line is whole.
Bytes are returned as they are: the engine matches bytes and decoding with replacement
happens only for the lines that are shown.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["DEFAULT_TAIL_BYTES", "Tail", "read_tail", "tail_of"]

#: Default amount of log analysed: the cause of a failure is nearly always near the end.
DEFAULT_TAIL_BYTES = 1 << 20
_CHUNK = 1 << 16
_ALIGN_WINDOW = 4096  # look this far for a newline to start the tail on a whole line


@dataclass(frozen=True, slots=True)
class Tail:
    data: bytes
    truncated: bool  # bytes before the tail were skipped
    total_bytes: int  # bytes seen (file size, or bytes read from a stream)


def read_tail(path: str, limit: int = DEFAULT_TAIL_BYTES) -> Tail:
    """The last ``limit`` bytes of ``path`` (``-`` is stdin). Raises OSError when unreadable."""
    if path == "-":
        return _stream_tail(sys.stdin.buffer, limit)
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        if stat.S_ISREG(info.st_mode):
            size = info.st_size
            if size > limit:
                handle.seek(size - limit)
                return Tail(_align(handle.read(limit)), True, size)
            return Tail(handle.read(), False, size)
        return _stream_tail(handle, limit)


def tail_of(data: bytes, limit: int = DEFAULT_TAIL_BYTES) -> Tail:
    if len(data) <= limit:
        return Tail(data, False, len(data))
    return Tail(_align(data[-limit:]), True, len(data))


def _stream_tail(stream: BinaryIO, limit: int) -> Tail:
    buffer = bytearray()
    total = 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        total += len(chunk)
        buffer += chunk
        if len(buffer) > 2 * limit:
            del buffer[: len(buffer) - limit]
    if len(buffer) > limit:
        del buffer[: len(buffer) - limit]
    truncated = total > len(buffer)
    data = bytes(buffer)
    return Tail(_align(data) if truncated else data, truncated, total)


def _align(data: bytes) -> bytes:
    """Drop the partial first line of a cut tail (when a newline is near)."""
    cut = data.find(b"\n", 0, _ALIGN_WINDOW)
    return data[cut + 1 :] if cut >= 0 else data
