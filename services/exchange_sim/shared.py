"""Memory every simulator process sees: an anonymous shared mapping made before the fork, and its lock."""

from __future__ import annotations

import json
import mmap
import multiprocessing
import struct

__all__ = ["SharedMemory", "RequestLog"]


class SharedMemory:
    """`size` bytes shared with every process forked after it was made, guarded by one lock.

    The mapping is anonymous and MAP_SHARED (mmap's default), so a server's worker processes
    read and write the same pages; pages are only committed when first touched, so a generous
    size costs nothing until used. The lock is a POSIX semaphore: it excludes threads and
    processes alike.
    """

    def __init__(self, size: int):
        self.buffer = mmap.mmap(-1, size)
        # The fork context's lock: servers fork their workers (gunicorn calls os.fork), and this
        # kind needs no resource-tracker process whatever the interpreter's default start method.
        self.lock = multiprocessing.get_context("fork").Lock()

    def unpack(self, fmt: str, offset: int = 0) -> tuple:
        return struct.unpack_from(fmt, self.buffer, offset)

    def pack(self, fmt: str, offset: int, *values) -> None:
        struct.pack_into(fmt, self.buffer, offset, *values)

    def read_json(self, offset: int) -> object:
        """The JSON value stored by write_json at `offset` (None if nothing was stored)."""
        (length,) = self.unpack("q", offset)
        return json.loads(self.buffer[offset + 8: offset + 8 + length]) if length else None

    def write_json(self, offset: int, capacity: int, value: object) -> None:
        data = json.dumps(value, separators=(",", ":")).encode()
        if len(data) > capacity - 8:
            raise ValueError(f"simulator state too large for its shared memory ({len(data)} bytes)")
        self.buffer[offset + 8: offset + 8 + len(data)] = data
        self.pack("q", offset, len(data))


# Request log layout: header, then the path counts as JSON, then a ring of fixed-size entries.
_HEADER = struct.Struct("qq")  # next sequence number, first sequence number since the last reset
_COUNTS_AT, _COUNTS_CAPACITY = 64, 1 << 20
_RING_AT = _COUNTS_AT + _COUNTS_CAPACITY
_ENTRY = struct.Struct("qqiHH")  # sequence, sim now ms, status (-1: none yet), path bytes, query bytes
_SLOT = 2048
_PATH_MAX = 512  # longer paths and queries are cut to fit a slot; ccxt's are under 200 bytes
_NO_STATUS = -1


class RequestLog:
    """Counts per path and the last `keep` requests with their status, shared by all processes."""

    def __init__(self, keep: int = 1000):
        self.keep = keep
        self._memory = SharedMemory(_RING_AT + keep * _SLOT)

    def record(self, path: str, query: str, sim_now_ms: int) -> int:
        """Count a request and log it; returns its sequence number for set_status()."""
        raw_path, raw_query = path.encode()[:_PATH_MAX], query.encode()
        raw_query = raw_query[: _SLOT - _ENTRY.size - len(raw_path)]
        memory = self._memory
        with memory.lock:
            counts = memory.read_json(_COUNTS_AT) or {}
            counts[path] = counts.get(path, 0) + 1
            memory.write_json(_COUNTS_AT, _COUNTS_CAPACITY, counts)
            sequence, base = _HEADER.unpack_from(memory.buffer, 0)
            slot = _RING_AT + (sequence % self.keep) * _SLOT
            _ENTRY.pack_into(memory.buffer, slot, sequence, sim_now_ms, _NO_STATUS, len(raw_path), len(raw_query))
            body = slot + _ENTRY.size
            memory.buffer[body: body + len(raw_path) + len(raw_query)] = raw_path + raw_query
            _HEADER.pack_into(memory.buffer, 0, sequence + 1, base)
        return sequence

    def set_status(self, sequence: int, status: int) -> None:
        """The HTTP status of a logged request, unless the ring has moved on past it."""
        memory = self._memory
        slot = _RING_AT + (sequence % self.keep) * _SLOT
        with memory.lock:
            if memory.unpack("q", slot)[0] == sequence:
                memory.pack("i", slot + 16, status)

    def counts(self) -> dict[str, int]:
        with self._memory.lock:
            return self._memory.read_json(_COUNTS_AT) or {}

    def recent(self) -> list[dict]:
        """The logged requests since the last reset, oldest first, at most `keep`."""
        memory = self._memory
        with memory.lock:
            sequence, base = _HEADER.unpack_from(memory.buffer, 0)
            entries = []
            for seq in range(max(base, sequence - self.keep), sequence):
                slot = _RING_AT + (seq % self.keep) * _SLOT
                _seq, now, status, path_len, query_len = _ENTRY.unpack_from(memory.buffer, slot)
                body = slot + _ENTRY.size
                path = memory.buffer[body: body + path_len].decode(errors="ignore")
                query = memory.buffer[body + path_len: body + path_len + query_len].decode(errors="ignore")
                entries.append({"path": path, "query": query, "sim_now_ms": now,
                                "status": None if status == _NO_STATUS else status})
            return entries

    def reset(self) -> None:
        memory = self._memory
        with memory.lock:
            memory.write_json(_COUNTS_AT, _COUNTS_CAPACITY, {})
            sequence, _base = _HEADER.unpack_from(memory.buffer, 0)
            _HEADER.pack_into(memory.buffer, 0, sequence, sequence)
