"""Memory for big indicator blocks, handed out again once no frame refers to it instead of faulted in afresh."""

from __future__ import annotations

import contextlib
import math
import mmap
import threading
import weakref

import numpy as np

__all__ = ["MAX_SPARE_BYTES", "MIN_SPARE_BYTES", "SHARED", "SpareMemory", "empty_block"]

# glibc maps every block above its mmap threshold (32 MB at most on 64-bit) afresh, and the
# kernel zeroes each of its pages on first touch: 29 ms for the 144 MB block of 1,000,000 bars,
# half of TA-Lib's time for the whole set. Smaller blocks glibc already recycles from its heap.
MIN_SPARE_BYTES = 32 << 20
# What one idle process may keep mapped for the next block (about 1.8M bars of one instrument);
# bigger blocks are rare enough to pay for their fresh pages.
MAX_SPARE_BYTES = 256 << 20


class SpareMemory:
    """At most one mapping no array uses any more, reused for the next float64 block of its size.

    A block is a view of a root array over the mapping; numpy gives every view of it (a
    frame's columns, slices, transposes) the root as its base, so the root dies, and its
    finalizer returns the mapping, only when the last of them has gone.
    """

    def __init__(self, min_bytes: int = MIN_SPARE_BYTES, max_bytes: int = MAX_SPARE_BYTES) -> None:
        self.min_bytes, self.max_bytes = min_bytes, max_bytes
        # Reentrant: a finalizer may run (and return a mapping) inside empty() on this thread.
        self._lock = threading.RLock()
        self._spare: mmap.mmap | None = None

    def empty(self, shape: tuple[int, ...]) -> np.ndarray:
        """An uninitialised float64 array of `shape`, as np.empty gives; a big one in reused memory."""
        nbytes = 8 * math.prod(shape)
        if nbytes == 0 or not self.min_bytes <= nbytes <= self.max_bytes:  # mmap cannot map 0 bytes
            return np.empty(shape)
        with self._lock:
            memory, self._spare = self._spare, None
        if memory is None or len(memory) != nbytes:
            memory = _anonymous_mapping(nbytes)  # a spare of another size is unmapped here
        root = np.frombuffer(memory, dtype=np.float64)
        weakref.finalize(root, self._keep, memory).atexit = False
        return root.reshape(shape)

    def spare_bytes(self) -> int:
        """Size of the mapping kept for the next block (0 if none)."""
        with self._lock:
            return 0 if self._spare is None else len(self._spare)

    def _keep(self, memory: mmap.mmap) -> None:
        with self._lock:
            self._spare = memory  # the one kept before (if any) is unmapped


def _anonymous_mapping(nbytes: int) -> mmap.mmap:
    """Fresh private memory, in transparent huge pages where the kernel offers them (as numpy asks)."""
    # Private, not mmap's default MAP_SHARED: shared anonymous memory gets no huge pages, and a
    # forked worker would write into its parent's block.
    memory = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or a kernel without huge pages
        memory.madvise(mmap.MADV_HUGEPAGE)
    return memory


# The process's one spare, which every block of the engine goes through (tests and the bench
# swap it for one with other bounds).
SHARED = SpareMemory()


def empty_block(shape: tuple[int, ...]) -> np.ndarray:
    """SHARED.empty(shape): an uninitialised float64 block for the engine."""
    return SHARED.empty(shape)
