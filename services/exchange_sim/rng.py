"""Counter-based random numbers: the n-th draw of a stream is a pure function of (stream, n)."""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["stream_key", "uniforms", "normals", "value_noise"]

# splitmix64 constants; uint64 arithmetic in numpy wraps modulo 2**64, which is what we want.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_SECOND = 0x5851F42D4C957F2D  # derives Box-Muller's second uniform stream from the first


def stream_key(*parts: object) -> int:
    """A 64-bit key naming one random stream, e.g. stream_key(seed, "BTC/USD", "1h", "returns")."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _mix(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def uniforms(key: int, counters: np.ndarray) -> np.ndarray:
    """Uniform draws in the open interval (0, 1), one per counter (any int64, negatives included)."""
    c = np.asarray(counters, dtype=np.int64).view(np.uint64)
    # Multiplying by an odd constant is a bijection, so distinct counters never collide
    # before mixing; the key is mixed in twice so nearby keys give unrelated streams.
    h = _mix(c * _GOLDEN + np.uint64(key & 0xFFFFFFFFFFFFFFFF))
    h = _mix(h ^ np.uint64(key & 0xFFFFFFFFFFFFFFFF))
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def normals(key: int, counters: np.ndarray) -> np.ndarray:
    """Standard normal draws, one per counter (Box-Muller on two independent uniform streams)."""
    u1 = uniforms(key, counters)
    u2 = uniforms(key ^ _SECOND, counters)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def value_noise(key: int, positions: np.ndarray, period: float) -> np.ndarray:
    """Smooth N(0,1)-ish noise over bar positions: normal knots every `period`, smoothstep between."""
    t = np.asarray(positions, dtype=np.float64) / period
    knot = np.floor(t)
    w = t - knot
    w = w * w * (3.0 - 2.0 * w)
    knot = knot.astype(np.int64)
    left, right = normals(key, knot), normals(key, knot + 1)
    # Interpolating two independent normals shrinks the variance; rescale so the
    # noise keeps roughly unit variance everywhere (exactly 1 at the knots).
    return (left * (1.0 - w) + right * w) / np.sqrt((1.0 - w) ** 2 + w**2)
