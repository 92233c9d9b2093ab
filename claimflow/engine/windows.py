"""Counts per key in tumbling event-time windows, with expiry of closed windows."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from itertools import repeat

from mypy_extensions import mypyc_attr

# What a bucket holds: a count of events (an int) or a sum of seconds (a float), kept as it
# was added. Annotated as the union, not `float`, because compiled by mypyc a `float` is a C
# double: counts would come back as 448.0 where plain Python gives 448, and that shows in
# alert details. `int | float` is an object to mypyc, so both builds see the same values.
Amount = int | float


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
class BucketCounts:
    """`width`-second tumbling windows per key, kept for `retention` seconds of event time.

    Windows are addressed by bucket index `int(t // width)`. The engine adds in event-time
    order (late events never reach a window), so no key gets a bucket older than its first
    or than the last expiry; expiry relies on that to look only at the buckets it drops.
    Sums are over whole buckets: `window_sum(key, start, end)` covers the buckets that start
    in [start, end) once both are rounded down to a bucket edge, so a sum asked for at any
    moment inside a bucket is stable.
    """

    __slots__ = ("_data", "_oldest", "retention", "width")

    def __init__(self, width: float, retention: float) -> None:
        self.width = width
        self.retention = retention
        self._data: dict[Hashable, dict[int, Amount]] = {}
        self._oldest: dict[Hashable, int] = {}  # no bucket of the key is older than this

    def add(self, key: Hashable, t: float, amount: Amount = 1) -> None:
        index = int(t // self.width)
        buckets = self._data.get(key)
        if buckets is None:
            buckets = self._data[key] = {}
            self._oldest[key] = index
        buckets[index] = buckets.get(index, 0) + amount

    def add_each(self, amounts: Iterable[tuple[Hashable, Amount]], t: float) -> None:
        """Several keys, each with its own amount, at one time (one event counted under
        several keys): one call, one index."""
        index = int(t // self.width)
        data = self._data
        for key, amount in amounts:
            buckets = data.get(key)
            if buckets is None:
                buckets = data[key] = {}
                self._oldest[key] = index
            buckets[index] = buckets.get(index, 0) + amount

    def window_sum(self, key: Hashable, start: float, end: float) -> Amount:
        buckets = self._data.get(key)
        if not buckets:
            return 0
        first, last = int(start // self.width), int(end // self.width)
        if last - first > len(buckets):
            return sum(v for i, v in buckets.items() if first <= i < last)
        return sum(map(buckets.get, range(first, last), repeat(0, last - first)))

    def get(self, key: Hashable, t: float) -> Amount:
        buckets = self._data.get(key)
        return buckets.get(int(t // self.width), 0) if buckets else 0

    def expire(self, now: float) -> int:
        """Drop windows that ended more than `retention` before `now`; returns how many."""
        oldest = int((now - self.retention) // self.width)
        dropped = 0
        for key in list(self._data):
            buckets = self._data[key]
            first = self._oldest[key]
            if first >= oldest:
                continue
            if oldest - first > len(buckets):  # sparse: cheaper to scan what is there
                stale = [i for i in buckets if i < oldest]
            else:
                stale = [i for i in range(first, oldest) if i in buckets]
            for i in stale:
                del buckets[i]
            dropped += len(stale)
            self._oldest[key] = oldest
            if not buckets:
                del self._data[key]
                del self._oldest[key]
        return dropped

    def keys(self) -> Iterator[Hashable]:
        return iter(self._data)

    def bucket_count(self) -> int:
        return sum(len(b) for b in self._data.values())
