"""Counter-based random numbers: the n-th draw of a stream is a pure function of (stream, n)."""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["stream_key", "uniforms", "normals", "value_noise", "knot_range", "smooth_noise", "draw"]

# splitmix64 constants; uint64 arithmetic in numpy wraps modulo 2**64, which is what we want.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_SHIFTS = (np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11))
_MASK = 0xFFFFFFFFFFFFFFFF
_SECOND = 0x5851F42D4C957F2D  # derives Box-Muller's second uniform stream from the first
_TWO_PI = 2.0 * np.pi
_DRAW_TOGETHER = 4096  # counters up to which draw() hashes all streams in one pass


def stream_key(*parts: object) -> int:
    """A 64-bit key naming one random stream, e.g. stream_key(seed, "BTC/USD", "1h", "returns")."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place (x is a fresh uint64 array): no temporaries beyond one."""
    t = x >> _SHIFTS[0]
    x ^= t
    x *= _MIX1
    np.right_shift(x, _SHIFTS[1], out=t)
    x ^= t
    x *= _MIX2
    np.right_shift(x, _SHIFTS[2], out=t)
    x ^= t
    return x


def _uniforms(keys: np.ndarray, counters: np.ndarray) -> np.ndarray:
    """uniforms() for uint64 keys broadcast against int64 counters."""
    c = np.asarray(counters, dtype=np.int64).view(np.uint64)
    # Multiplying by an odd constant is a bijection, so distinct counters never collide
    # before mixing; the key is mixed in twice so nearby keys give unrelated streams.
    h = c * _GOLDEN + keys  # broadcasting against several keys makes one row per key
    _mix(h)
    h ^= keys
    _mix(h)
    h >>= _SHIFTS[3]
    out = h.astype(np.float64)
    out += 0.5
    out *= 1.0 / 9007199254740992.0
    return out


def uniforms(key: int, counters: np.ndarray) -> np.ndarray:
    """Uniform draws in the open interval (0, 1), one per counter (any int64, negatives included)."""
    return _uniforms(np.uint64(key & _MASK), counters)


def _box_muller(u: np.ndarray) -> np.ndarray:
    """Normals from uniforms stacked on the first axis: u[0] the first stream, u[1] the second."""
    return np.sqrt(-2.0 * np.log(u[0])) * np.cos(_TWO_PI * u[1])


def normals(key: int, counters: np.ndarray) -> np.ndarray:
    """Standard normal draws, one per counter (Box-Muller on two independent uniform streams)."""
    keys = np.array([key & _MASK, (key ^ _SECOND) & _MASK], dtype=np.uint64)
    c = np.asarray(counters, dtype=np.int64)
    # Both streams in one pass: half the numpy calls, which is what small pages are made of.
    return _box_muller(_uniforms(keys.reshape((2,) + (1,) * c.ndim), c))


def knot_range(first_position: int, last_position: int, period: float) -> tuple[int, int]:
    """(first, last) knot counters value noise over positions first..last needs: their left
    knots and the one after the last (the same floor of the same float division as below)."""
    return int(np.floor(np.float64(first_position) / period)), int(np.floor(np.float64(last_position) / period)) + 1


def smooth_noise(table: np.ndarray, first_knot: int, positions: np.ndarray, period: float) -> np.ndarray:
    """value_noise() with the knots' normals given: table[i] is the normal of knot first_knot + i."""
    t = np.asarray(positions, dtype=np.float64) / period
    knot = np.floor(t)
    w = t - knot
    index = knot.astype(np.int64) - first_knot
    w = w * w * (3.0 - 2.0 * w)
    # A knot's normal depends on the knot alone, so a table of the knots in range gives the
    # same numbers as drawing at every position, for a `period`-th of the work.
    left, right = table[index], table[index + 1]
    # Interpolating two independent normals shrinks the variance; rescale so the
    # noise keeps roughly unit variance everywhere (exactly 1 at the knots).
    return (left * (1.0 - w) + right * w) / np.sqrt((1.0 - w) ** 2 + w**2)


def value_noise(key: int, positions: np.ndarray, period: float) -> np.ndarray:
    """Smooth N(0,1)-ish noise over bar positions: normal knots every `period`, smoothstep between."""
    positions = np.asarray(positions)
    if not positions.size:
        return np.zeros(0)
    first, last = knot_range(int(positions.min()), int(positions.max()), period)
    return smooth_noise(normals(key, np.arange(first, last + 1, dtype=np.int64)), first, positions, period)


def draw(normal: list[tuple[int, np.ndarray]], uniform: list[tuple[int, np.ndarray]] = ()) -> list[np.ndarray]:
    """normals(key, counters) for each of `normal`, then uniforms(key, counters) for each of
    `uniform`, all hashed in one pass: the same numbers as one call each (every step is
    elementwise), for the fixed cost of one call, which is most of a small page's cost."""
    counters = [np.asarray(c, dtype=np.int64).ravel() for _, c in (*normal, *uniform)]
    sizes = [len(c) for c in counters]
    if sum(sizes) > _DRAW_TOGETHER:
        # Large pages: one call per stream, where the cost is the arithmetic, not the calls.
        return [normals(k, c) for k, c in normal] + [uniforms(k, c) for k, c in uniform]
    cut = len(normal)
    keys = [k & _MASK for k, _ in normal] + [(k ^ _SECOND) & _MASK for k, _ in normal] + \
           [k & _MASK for k, _ in uniform]
    lengths = sizes[:cut] * 2 + sizes[cut:]
    u = _uniforms(np.repeat(np.array(keys, dtype=np.uint64), lengths),
                  np.concatenate(counters[:cut] * 2 + counters[cut:]))
    half = sum(sizes[:cut])
    gaussian = _box_muller(u[: 2 * half].reshape(2, half))
    out = np.split(gaussian, np.cumsum(sizes[:cut])[:-1]) if cut else []
    out += np.split(u[2 * half:], np.cumsum(sizes[cut:])[:-1]) if uniform else []
    return [o.reshape(np.shape(c)) for o, (_, c) in zip(out, (*normal, *uniform), strict=True)]
