"""Charts drawn on the server as SVG: the numbers become rectangles here, so a report
needs no script and loads nothing; the table under each chart holds the same figures."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

WIDTH, HEIGHT = 760, 220
LEFT, BOTTOM, TOP = 40, 24, 10  # room for the axis labels


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int  # which colour
    title: str  # shown on hover, and read by screen readers


@dataclass
class BarChart:
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[float, int]] = field(default_factory=list)  # (y, value) of grid lines
    labels: list[tuple[float, str]] = field(default_factory=list)  # (x, text) under groups
    series: list[str] = field(default_factory=list)


def grouped_bars(labels: list[str], series: dict[str, list[int]]) -> BarChart:
    """One group of bars per label, one bar per series in each group."""
    chart = BarChart(series=list(series))
    top = max((v for values in series.values() for v in values), default=0)
    scale_top = _nice_ceiling(top)
    plot_height = HEIGHT - BOTTOM - TOP
    group = (WIDTH - LEFT) / max(len(labels), 1)
    bar = max(group * 0.8 / max(len(series), 1), 1.0)
    for i, label in enumerate(labels):
        for j, (name, values) in enumerate(series.items()):
            value = values[i]
            height = plot_height * value / scale_top if scale_top else 0
            chart.bars.append(
                Bar(
                    x=round(LEFT + i * group + group * 0.1 + j * bar, 2),
                    y=round(TOP + plot_height - height, 2),
                    width=round(bar, 2),
                    height=round(height, 2),
                    series=j,
                    title=f"{label}: {value} {name}",
                )
            )
    step = max(1, math.ceil(len(labels) / 10))  # at most ten labels under the axis
    chart.labels = [
        (round(LEFT + i * group + group / 2, 2), label)
        for i, label in enumerate(labels)
        if i % step == 0
    ]
    chart.ticks = [
        (round(TOP + plot_height - plot_height * k / 4, 2), scale_top * k // 4) for k in range(5)
    ]
    return chart


def _nice_ceiling(value: int) -> int:
    """The axis' top: the value rounded up to 1, 2 or 5 times a power of ten, and a
    multiple of 4 so the grid lines fall on whole numbers."""
    if value <= 0:
        return 0
    power = 10 ** max(len(str(value)) - 1, 0)
    for step in (1, 2, 5, 10):
        if step * power >= value:
            top = step * power
            return top if top % 4 == 0 else top + (4 - top % 4)
    return value
