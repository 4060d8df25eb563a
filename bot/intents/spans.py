"""Spans of a message already taken by an entity, asked "does this overlap any?" per hit.

A message of 7 000 characters can hold a couple of thousand dates, times or numbers, and
comparing each new hit with every earlier one (``any(... for e in found)``) made extraction
quadratic: half a second for "с 10-12 " repeated. Kept as sorted, merged intervals, each question
is a binary search.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable


class SpanSet:
    """Half-open character ranges ``[start, end)``; touching or overlapping ones are merged,
    which changes no answer: a range overlaps the union exactly when it overlaps a member."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, spans: Iterable[tuple[int, int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in spans:
            self.add(start, end)

    def overlaps(self, start: int, end: int) -> bool:
        """Does ``[start, end)`` share a character with any span?"""
        i = bisect_right(self._ends, start)  # the first span ending after ``start``
        return i < len(self._starts) and self._starts[i] < end

    def add(self, start: int, end: int) -> None:
        if start >= end:
            return  # an empty range covers nothing
        first = bisect_left(self._ends, start)  # spans ending at or after ``start`` ...
        last = bisect_right(self._starts, end)  # ... and starting at or before ``end``
        if first < last:
            start = min(start, self._starts[first])
            end = max(end, self._ends[last - 1])
        self._starts[first:last] = [start]
        self._ends[first:last] = [end]

    def __len__(self) -> int:
        return len(self._starts)
