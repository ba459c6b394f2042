"""The reports' pictures as inline SVG: bars, bars against a bound, a heatmap, a scatter.

Why not matplotlib (docs/decisions.md, issue 13): the reports draw four simple kinds of chart, and
matplotlib with fontTools, Pillow and kiwisolver is ~80 MB of the one image that also serves, and
about a second of import in every processing job. SVG is text: crisp at any zoom, a few KB, its
labels searchable, and every mark carries a ``<title>`` (the exact value, shown on hover).

Each chart is one ``<svg>`` element built with ElementTree, whose serializer escapes every label,
so a hostile column name stays text. Marks carry a ``class`` (bar, bound, cell, point, diagonal)
so tests, and readers of the source, can find them.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

FONT = "system-ui, sans-serif"
FONT_SIZE = 11
CHAR = 6.2  # the width of an average character at FONT_SIZE, in pixels, to leave room for labels
LABEL_CHARS = 18  # axis labels longer than this are cut; the full text is in the mark's <title>
MAX_POINTS = 2000  # a scatter draws at most this many rows (evenly spaced), and says so
# XML 1.0 cannot hold these code points, so a feature name with one would break the whole page.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


@dataclass(frozen=True)
class Series:
    """Bars of one name: a value per category, None where there is none (drawn as "n/a").

    ``color`` is one colour, or one per category."""

    name: str
    values: Sequence[float | None]
    color: str | Sequence[str]

    def color_of(self, index: int) -> str:
        return self.color if isinstance(self.color, str) else self.color[index]


@dataclass(frozen=True)
class Scale:
    """A linear map from data values to pixels."""

    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        return self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start)


def clean(text: object) -> str:
    return _NOT_XML.sub("\ufffd", str(text))


def short(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def number(value: float) -> str:
    return f"{value:.4g}"


def title_width(title: str) -> float:
    """Pixels a chart needs for its bold title on one line."""
    return 1.15 * CHAR * len(clean(title)) + 16


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (to a billionth of a step): steps of 1, 2, 2.5 or 5 x 10^n."""
    # One value, or values a billionth apart (no label could tell them apart): a range around them.
    if not (high - low) / count > 1e-9 * max(abs(low), abs(high)):
        spread = abs(low) if abs(low) > 1e-300 else 1.0  # a unit range around ~0
        low, high = low - spread / 2, high + spread / 2
    raw = (high - low) / count
    if not math.isfinite(raw):  # the values span more than the largest float
        return [low, high]
    exponent = math.floor(math.log10(raw))
    step = next(m * 10.0**exponent for m in (1, 2, 2.5, 5, 10) if m * 10.0**exponent >= raw)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    # A multiple of 2.5 x 10^e has at most 1 - e decimals: rounding to them drops only the float
    # noise of i * step (0.30000000000000004 -> 0.3).
    decimals = max(0, 1 - exponent)
    values = [round(i * step, decimals) for i in range(first, last + 1)]
    if not all(math.isfinite(v) for v in values):  # within a step of the largest float
        return [low, high]
    return values


def _svg(width: float, height: float, title: str) -> ET.Element:
    width, height = math.ceil(width), math.ceil(height)
    root = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "width": f"{width}",
            "height": f"{height}",
            "viewBox": f"0 0 {width} {height}",
            "role": "img",
            "font-family": FONT,
            "font-size": str(FONT_SIZE),
        },
    )
    _add(root, "title", clean(title))
    _add(root, "text", clean(title), x=width / 2, y=16, text_anchor="middle", font_weight="600")
    return root


def _add(parent: ET.Element, tag: str, text: str | None = None, **attributes: object) -> ET.Element:
    """A child element; ``text_anchor`` becomes ``text-anchor``, ``class_`` becomes ``class``."""
    names = {key: key.rstrip("_").replace("_", "-") for key in attributes}
    element = ET.SubElement(
        parent,
        tag,
        {
            names[key]: f"{value:.1f}" if isinstance(value, float) else str(value)
            for key, value in attributes.items()
        },
    )
    if text is not None:
        element.text = text
    return element


def _text(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode")


def _value_axis(root: ET.Element, scale: Scale, values: list[float], left: float, right: float) -> None:
    """Horizontal grid lines with their values, left of the plot area."""
    for value in values:
        y = scale(value)
        _add(root, "line", x1=left, x2=right, y1=y, y2=y, stroke="#ddd" if value else "#888")
        _add(root, "text", number(value), x=left - 4, y=y + 4, text_anchor="end")


def bars(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    y_label: str = "",
    bound: tuple[float, str] | None = None,
    show_values: bool = False,
) -> str:
    """Grouped bars, one group per category and one bar per series; an optional dashed bound."""
    categories = [clean(c) for c in categories]
    longest = max((len(short(c)) for c in categories), default=1)
    tilt = longest > 6 and len(categories) > 2  # else each label gets room to stand level
    slot = max(14.0 * len(series) + 8, 28.0 if tilt else CHAR * longest + 10)
    # A tilted label reaches left of its bar by cos(40 degrees) of its length.
    left = max(56.0, 0.77 * CHAR * len(short(categories[0])) - slot / 2 + 8) if tilt and categories else 56.0
    top = 28.0 + 14 * bool(len(series) > 1 or bound)  # a row for the legend
    bottom = 14 + CHAR * longest if tilt else 30.0
    width = max(left + slot * len(categories) + 16, 170.0, title_width(title))
    plot_height = 150.0
    root = _svg(width, top + plot_height + bottom, title)
    finite = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    marks = [*finite, 0.0, *([bound[0]] if bound and math.isfinite(bound[0]) else [])]
    grid = ticks(min(marks), max(marks) * (1.12 if show_values and max(marks) > 0 else 1))
    scale = Scale(grid[0], grid[-1], top + plot_height, top)
    _value_axis(root, scale, grid, left, width - 8)
    if y_label:
        _add(root, "text", clean(y_label), x=12, y=top + plot_height / 2, text_anchor="middle",
             transform=f"rotate(-90 12 {top + plot_height / 2:.1f})")  # fmt: skip
    width_of = (slot - 8) / len(series)
    for index, category in enumerate(categories):
        x0 = left + slot * index + 4
        for number_of, one in enumerate(series):
            _bar(root, scale, x0 + width_of * number_of, width_of, one, index, category, show_values)
        x = x0 + (slot - 8) / 2
        y = top + plot_height + 12
        label = _add(root, "text", short(category), x=x, y=y, text_anchor="end" if tilt else "middle")
        if tilt:
            label.set("transform", f"rotate(-40 {x:.1f} {y:.1f})")
    bound_text = clean(f"{bound[1]} {number(bound[0])}") if bound is not None else ""
    if bound is not None:
        y = scale(bound[0])
        line = _add(root, "line", x1=left, x2=width - 8, y1=y, y2=y, stroke="black", stroke_dasharray="5 3",
                    class_="bound")  # fmt: skip
        _add(line, "title", bound_text)
    if len(series) > 1:
        _legend(root, series, left, 32.0)
    elif bound is not None:  # the dashed line's meaning, where a legend would be
        _add(root, "line", x1=left, x2=left + 14, y1=28.0, y2=28.0, stroke="black", stroke_dasharray="5 3")
        _add(root, "text", bound_text, x=left + 18, y=32.0)
    return _text(root)


def _bar(
    root: ET.Element,
    scale: Scale,
    x: float,
    width: float,
    series: Series,
    index: int,
    category: str,
    show: bool,
) -> None:
    value = series.values[index]
    tip = clean(f"{series.name}, {category}: " + ("n/a" if value is None else number(value)))
    if value is None or not math.isfinite(value):
        label = _add(
            root, "text", "n/a", x=x + width / 2, y=scale(0.0) - 3, text_anchor="middle", fill="#888"
        )
        _add(label, "title", tip)
        return
    y0, y1 = sorted((scale(0.0), scale(value)))
    bar = _add(
        root,
        "rect",
        x=x,
        y=y0,
        width=max(width - 1, 1.0),
        height=y1 - y0,
        fill=series.color_of(index),
        class_="bar",
    )
    _add(bar, "title", tip)
    if show:  # above a bar that rises, below one that hangs
        y = y0 - 3 if value >= 0 else y1 + 10
        _add(root, "text", f"{value:.3f}", x=x + width / 2, y=y, text_anchor="middle", font_size="9")


def _legend(root: ET.Element, series: Sequence[Series], x: float, y: float) -> None:
    for one in series:
        _add(root, "rect", x=x, y=y - 8, width=10.0, height=10.0, fill=one.color_of(0))
        _add(root, "text", clean(one.name), x=x + 14, y=y + 1)
        x += 24 + CHAR * len(clean(one.name))


def heatmap(title: str, rows: Sequence[str], columns: Sequence[str], counts: Sequence[Sequence[int]]) -> str:
    """A count per cell, shaded by its share of the largest count; rows: actual, columns: predicted."""
    rows, columns = [clean(r) for r in rows], [clean(c) for c in columns]
    cell = 38.0
    label_width = 12 + CHAR * max((len(short(r)) for r in rows + columns), default=1)
    left, top = label_width + 18, 30.0
    width, height = left + cell * len(columns) + 12, top + cell * len(rows) + label_width + 16
    root = _svg(max(width, 200.0, title_width(title)), height, title)
    peak = max((max(row, default=0) for row in counts), default=0) or 1
    for i, (actual, row) in enumerate(zip(rows, counts, strict=True)):
        y = top + cell * i
        _add(root, "text", short(actual), x=left - 4, y=y + cell / 2 + 4, text_anchor="end")
        for j, (predicted, count) in enumerate(zip(columns, row, strict=True)):
            x = left + cell * j
            shade = count / peak
            rect = _add(root, "rect", x=x, y=y, width=cell, height=cell, fill=_blue(shade), stroke="white",
                        class_="cell")  # fmt: skip
            _add(rect, "title", f"actual {actual}, predicted {predicted}: {count}")
            _add(root, "text", str(count), x=x + cell / 2, y=y + cell / 2 + 4, text_anchor="middle",
                 fill="white" if shade > 0.5 else "black")  # fmt: skip
    y = top + cell * len(rows) + 10
    for j, predicted in enumerate(columns):
        x = left + cell * j + cell / 2
        _add(
            root,
            "text",
            short(predicted),
            x=x,
            y=y,
            text_anchor="end",
            transform=f"rotate(-40 {x:.1f} {y:.1f})",
        )
    _add(root, "text", "predicted", x=left + cell * len(columns) / 2, y=height - 4, text_anchor="middle")
    _add(root, "text", "actual", x=10, y=top + cell * len(rows) / 2, text_anchor="middle",
         transform=f"rotate(-90 10 {top + cell * len(rows) / 2:.1f})")  # fmt: skip
    return _text(root)


def _blue(share: float) -> str:
    """White (0) to dark blue (1), as matplotlib's "Blues" runs."""
    low, high = (247, 251, 255), (8, 48, 107)
    red, green, blue = (round(a + (b - a) * share) for a, b in zip(low, high, strict=True))
    return f"#{red:02x}{green:02x}{blue:02x}"


def scatter(title: str, xs: Sequence[float], ys: Sequence[float], *, x_label: str, y_label: str) -> str:
    """One point per finite pair, and the dashed diagonal y = x (a perfect prediction)."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(x) and math.isfinite(y)]
    step = max(1, math.ceil(len(pairs) / MAX_POINTS))
    shown = pairs[::step]
    if step > 1:
        title = f"{title} ({len(shown):,} of {len(pairs):,} rows shown)"
    left, top, size = 56.0, 28.0, 260.0
    root = _svg(max(left + size + 16, title_width(title)), top + size + 40, title)
    values = [v for pair in pairs for v in pair] or [0.0, 1.0]
    grid = ticks(min(values), max(values))
    across, up = Scale(grid[0], grid[-1], left, left + size), Scale(grid[0], grid[-1], top + size, top)
    _value_axis(root, up, grid, left, left + size)
    for value in grid:
        _add(root, "text", number(value), x=across(value), y=top + size + 14, text_anchor="middle")
    low, high = grid[0], grid[-1]
    _add(root, "line", x1=across(low), y1=up(low), x2=across(high), y2=up(high), stroke="black",
         stroke_dasharray="5 3", class_="diagonal")  # fmt: skip
    x_label, y_label = clean(x_label), clean(y_label)
    for x, y in shown:
        point = _add(root, "circle", cx=across(x), cy=up(y), r="2.5", fill="#d9534f", fill_opacity="0.6",
                     class_="point")  # fmt: skip
        _add(point, "title", f"{x_label} {number(x)}, {y_label} {number(y)}")
    _add(root, "text", x_label, x=left + size / 2, y=top + size + 32, text_anchor="middle")
    _add(root, "text", y_label, x=12, y=top + size / 2, text_anchor="middle",
         transform=f"rotate(-90 12 {top + size / 2:.1f})")  # fmt: skip
    return _text(root)
