"""Write-behind: ask the kernel to start writing a file range to disk now, without waiting for it.

A pushed blob is fsynced before it is acknowledged. Left alone, the kernel writes the dirty pages only then,
so the disk sits idle while the body arrives and the push ends with one long fsync. Starting writeback every
few MiB (``sync_file_range(SYNC_FILE_RANGE_WRITE)``, Linux) overlaps the disk with the network, and the final
fsync finds little left to do. Elsewhere, or where the call is refused, this does nothing: it is only ever
a head start for the fsync that follows.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable

_SYNC_FILE_RANGE_WRITE = 2

# Every this many bytes written, the range is handed to the kernel.
WRITEBACK_BYTES = 8 * 1024 * 1024


def _load() -> Callable[[int, int, int], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    function.restype = ctypes.c_int

    def start(fd: int, offset: int, length: int) -> None:
        function(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # a failure only loses the head start

    return start


_start = _load()


def start_writeback(fd: int, offset: int, length: int) -> None:
    if _start is not None and length > 0:
        _start(fd, offset, length)
