"""Bar charts as inline SVG geometry, computed on the server: no charting script, nothing fetched."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 600
HEIGHT = 160
LABEL_ROOM = 20


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int
    caption: str


@dataclass(frozen=True, slots=True)
class BarChart:
    title: str
    bars: tuple[Bar, ...]
    width: int = WIDTH
    height: int = HEIGHT
    # Every n-th label is written under its bar, so that labels never overlap.
    label_every: int = 1

    @property
    def total(self) -> int:
        return sum(bar.value for bar in self.bars)


def bar_chart(title: str, labels: Sequence[str], values: Sequence[int], *, captions: Sequence[str] = ()) -> BarChart:
    """Bars for ``values``, scaled to the largest, each with its label and a caption (its value by default)."""
    count = max(1, len(values))
    slot = WIDTH / count
    top = max([*values, 1])
    room = HEIGHT - LABEL_ROOM
    bars = []
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = room * value / top
        caption = captions[index] if index < len(captions) else str(value)
        bars.append(Bar(index * slot + slot * 0.1, room - height, slot * 0.8, height, label, value, caption))
    return BarChart(title, tuple(bars), label_every=max(1, count // 8))
