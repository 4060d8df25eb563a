"""A small Prometheus text-format registry: counters and histograms with labels.

Kept in-process and dependency-free; label values come from our own vocabulary (channel names,
intent names), never from customer text, so cardinality stays bounded.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]


def _fmt_labels(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = labels + extra
    if not items:
        return ""
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in items
    )
    return "{" + inner + "}"


@dataclass
class _Counter:
    help: str
    values: dict[Labels, float] = field(default_factory=lambda: defaultdict(float))


@dataclass
class _Histogram:
    help: str
    buckets: tuple[float, ...]
    counts: dict[Labels, list[int]] = field(default_factory=dict)
    sums: dict[Labels, float] = field(default_factory=lambda: defaultdict(float))


class Metrics:
    def __init__(self, namespace: str = "isp_bot") -> None:
        self._ns = namespace
        self._counters: dict[str, _Counter] = {}
        self._histograms: dict[str, _Histogram] = {}
        self._gauges: dict[str, _Counter] = {}

    def counter(self, name: str, help_text: str) -> None:
        self._counters.setdefault(name, _Counter(help_text))

    def histogram(self, name: str, help_text: str, buckets: tuple[float, ...]) -> None:
        self._histograms.setdefault(name, _Histogram(help_text, buckets))

    def gauge(self, name: str, help_text: str) -> None:
        self._gauges.setdefault(name, _Counter(help_text))

    def set(self, name: str, value: float, **labels: str) -> None:
        self._gauges[name].values[tuple(sorted(labels.items()))] = value

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._counters[name].values[tuple(sorted(labels.items()))] += amount

    def observe(self, name: str, value: float, **labels: str) -> None:
        hist = self._histograms[name]
        key = tuple(sorted(labels.items()))
        counts = hist.counts.setdefault(key, [0] * (len(hist.buckets) + 1))
        counts[bisect.bisect_left(hist.buckets, value)] += 1
        hist.sums[key] += value

    def value(self, name: str, **labels: str) -> float:
        return self._counters[name].values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        lines: list[str] = []
        for name, counter in sorted(self._counters.items()):
            full = f"{self._ns}_{name}"
            lines += [f"# HELP {full} {counter.help}", f"# TYPE {full} counter"]
            for labels, value in sorted(counter.values.items()):
                lines.append(f"{full}{_fmt_labels(labels)} {value:g}")
        for name, gauge in sorted(self._gauges.items()):
            full = f"{self._ns}_{name}"
            lines += [f"# HELP {full} {gauge.help}", f"# TYPE {full} gauge"]
            for labels, value in sorted(gauge.values.items()):
                lines.append(f"{full}{_fmt_labels(labels)} {value:g}")
        for name, hist in sorted(self._histograms.items()):
            full = f"{self._ns}_{name}"
            lines += [f"# HELP {full} {hist.help}", f"# TYPE {full} histogram"]
            for labels, counts in sorted(hist.counts.items()):
                running = 0
                for bound, count in zip(hist.buckets, counts, strict=False):
                    running += count
                    lines.append(
                        f"{full}_bucket{_fmt_labels(labels, (('le', f'{bound:g}'),))} {running}"
                    )
                running += counts[-1]
                lines.append(f"{full}_bucket{_fmt_labels(labels, (('le', '+Inf'),))} {running}")
                lines.append(f"{full}_sum{_fmt_labels(labels)} {hist.sums[labels]:g}")
                lines.append(f"{full}_count{_fmt_labels(labels)} {running}")
        return "\n".join(lines) + "\n"
