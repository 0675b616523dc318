"""Latency histogram buckets shared by the router-wide histograms and the per-route packed ones.

Powers of two of 100 us, so a duration's bucket is one multiplication and a bit_length (`bucket_index`), no
search. Bucket i holds durations below BOUNDS[i] (0.1 ms, 0.2 ms, 0.4 ms, ..., 104.9 s); one more bucket past the
last bound counts everything slower (+Inf).
"""

from __future__ import annotations

BOUNDS: tuple[float, ...] = tuple(0.0001 * 2 ** i for i in range(21))
LAST_BUCKET = len(BOUNDS)
BUCKETS = len(BOUNDS) + 1


def bucket_index(seconds: float) -> int:
    """The histogram bucket of a duration (the hot path inlines this expression)."""
    i = int(seconds * 10000.0).bit_length()
    return i if i < LAST_BUCKET else LAST_BUCKET
