"""The reports' SVG charts: parsed as XML, so geometry, labels and escaping are checked."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.reports import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def marks(root: ET.Element, kind: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == kind]


def tip(element: ET.Element) -> str:
    return element.find(f"{SVG}title").text


def texts(root: ET.Element) -> list[str]:
    return [e.text for e in root.iter(f"{SVG}text")]


def top(bar: ET.Element) -> float:
    return float(bar.get("y"))


def bottom(bar: ET.Element) -> float:
    return float(bar.get("y")) + float(bar.get("height"))


def test_ticks_are_round_and_cover_the_range():
    assert charts.ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert charts.ticks(-0.3, 0.45) == [-0.4, -0.2, 0.0, 0.2, 0.4, 0.6]
    assert charts.ticks(3.0, 3.0)[0] < 3.0 < charts.ticks(3.0, 3.0)[-1]  # one value still gets an axis


@given(st.floats(-1e9, 1e9), st.floats(0, 1e9))
def test_ticks_always_cover_their_values(low, spread):
    values = charts.ticks(low, low + spread)
    slack = 1e-8 * (values[1] - values[0])  # float noise of value / step is not worth a tick
    assert values[0] <= low + slack and values[-1] >= low + spread - slack
    assert len(values) <= 12 and values == sorted(values)


def test_bar_heights_are_proportional_to_the_values_and_start_at_zero():
    root = parse(
        charts.bars(
            "shares",
            ["a", "b", "c"],
            [
                charts.Series("reference", [0.2, 0.3, 0.5], "#00f"),
                charts.Series("current", [0.6, 0.1, 0.3], "#f00"),
            ],
        )
    )
    bars = marks(root, "bar")
    assert [tip(b) for b in bars] == [
        "reference, a: 0.2", "current, a: 0.6", "reference, b: 0.3",
        "current, b: 0.1", "reference, c: 0.5", "current, c: 0.3",
    ]  # fmt: skip
    heights = [float(b.get("height")) for b in bars]
    values = [0.2, 0.6, 0.3, 0.1, 0.5, 0.3]
    assert all(
        math.isclose(h / heights[0], v / values[0], rel_tol=0.02)
        for h, v in zip(heights, values, strict=True)
    )
    assert len({round(bottom(b), 1) for b in bars}) == 1  # one baseline
    assert [b.get("fill") for b in bars[:2]] == ["#00f", "#f00"]
    assert {"reference", "current"} <= set(texts(root))  # the legend


def test_a_negative_value_hangs_below_the_zero_line_and_a_missing_one_says_n_a():
    root = parse(
        charts.bars("r2", ["candidate", "production"], [charts.Series("r2", [-0.3, None], ["#f00", "#00f"])])
    )
    (bar,) = marks(root, "bar")
    zero = next(float(line.get("y1")) for line in root.iter(f"{SVG}line") if line.get("stroke") == "#888")
    assert math.isclose(top(bar), zero, abs_tol=0.11)  # a negative bar starts at zero and goes down
    assert "n/a" in texts(root)
    assert tip(bar) == "r2, candidate: -0.3"


def test_the_bound_is_drawn_at_its_value():
    root = parse(
        charts.bars("auc", ["candidate"], [charts.Series("auc", [0.8], "#f00")], bound=(0.8, "gate minimum"))
    )
    (bar,), (bound,) = marks(root, "bar"), marks(root, "bound")
    assert math.isclose(float(bound.get("y1")), top(bar), abs_tol=0.11)
    assert tip(bound) == "gate minimum 0.8"
    assert "gate minimum 0.8" in texts(root)  # said beside the chart too, not only on hover
    higher = parse(
        charts.bars("auc", ["c"], [charts.Series("auc", [0.8], "#f00")], bound=(0.9, "gate minimum"))
    )
    assert float(marks(higher, "bound")[0].get("y1")) < top(marks(higher, "bar")[0])  # 0.9 is above 0.8


def test_labels_are_escaped_and_long_ones_are_cut_with_the_full_text_on_hover():
    hostile = "<script>alert(1)</script>"
    svg = charts.bars(hostile, [hostile, "x" * 40], [charts.Series("s", [0.5, 0.5], "#f00")])
    assert "<script" not in svg
    root = parse(svg)
    assert not list(root.iter(f"{SVG}script")) and not list(root.iter("script"))
    assert hostile in texts(root)  # the title, as text
    assert "x" * (charts.LABEL_CHARS - 1) + "…" in texts(root)
    assert tip(marks(root, "bar")[1]) == "s, " + "x" * 40 + ": 0.5"


@given(st.text(), st.lists(st.one_of(st.none(), st.floats(allow_nan=True)), min_size=1, max_size=4))
def test_any_label_and_any_value_give_well_formed_svg(label, values):
    svg = charts.bars(
        label, [label] * len(values), [charts.Series(label, values, "#f00")], bound=(0.5, label)
    )
    root = parse(svg)
    finite = [v for v in values if v is not None and math.isfinite(v)]
    assert len(marks(root, "bar")) == len(finite)


def test_a_chart_is_wide_enough_for_its_title():
    title = "candidate on the holdout: confusion matrix"
    for svg in (charts.heatmap(title, ["0", "1"], ["0", "1"], [[1, 2], [3, 4]]),
                charts.bars(title, ["a"], [charts.Series("s", [1.0], "#f00")]),
                charts.scatter(title + " " * 40, [1.0], [1.0], x_label="x", y_label="y")):  # fmt: skip
        root = parse(svg)
        assert float(root.get("width")) >= charts.title_width(root.find(f"{SVG}title").text)


def test_heatmap_writes_each_count_and_shades_by_it():
    counts = [[9, 1, 0], [0, 8, 2], [0, 0, 10]]
    root = parse(charts.heatmap("confusion", ["a", "<b>", "c"], ["a", "<b>", "c"], counts))
    cells = marks(root, "cell")
    assert [tip(c) for c in cells][:2] == ["actual a, predicted a: 9", "actual a, predicted <b>: 1"]
    assert sorted(int(t) for t in texts(root) if t.isdigit()) == sorted(c for row in counts for c in row)
    darkness = {tip(c).rsplit(": ", 1)[1]: int(c.get("fill")[1:3], 16) for c in cells}
    assert darkness["10"] < darkness["8"] < darkness["2"] < darkness["0"]  # more rows, darker (less red)
    white = [t.text for t in root.iter(f"{SVG}text") if t.get("fill") == "white"]
    assert sorted(white) == ["10", "8", "9"]  # readable on the dark cells


def test_scatter_draws_each_finite_row_and_the_diagonal_through_perfect_predictions():
    actual, predicted = [100.0, 150.0, 200.0, math.nan], [100.0, 140.0, 230.0, 5.0]
    root = parse(charts.scatter("pva", actual, predicted, x_label="actual", y_label="predicted"))
    points = marks(root, "point")
    assert [tip(p) for p in points] == [
        "actual 100, predicted 100",
        "actual 150, predicted 140",
        "actual 200, predicted 230",
    ]
    (line,) = marks(root, "diagonal")
    x1, y1, x2, y2 = (float(line.get(k)) for k in ("x1", "y1", "x2", "y2"))
    cx, cy = float(points[0].get("cx")), float(points[0].get("cy"))
    assert abs((x2 - x1) * (cy - y1) - (y2 - y1) * (cx - x1)) < 1.0 * math.hypot(x2 - x1, y2 - y1)  # on it
    assert float(points[2].get("cy")) < float(points[1].get("cy"))  # 230 is drawn above 140


def test_a_large_scatter_is_thinned_and_says_so():
    values = [float(i) for i in range(10_000)]
    root = parse(charts.scatter("pva", values, values, x_label="actual", y_label="predicted"))
    assert len(marks(root, "point")) == charts.MAX_POINTS
    assert f"pva ({charts.MAX_POINTS:,} of 10,000 rows shown)" in texts(root)


@pytest.mark.parametrize("text", ["a\x00b", "tab\tok", "\ud800"])
def test_text_xml_cannot_hold_is_replaced(text):
    root = parse(charts.bars(text, [text], [charts.Series(text, [1.0], "#f00")]))
    assert all("\x00" not in t and "\ud800" not in t for t in texts(root))
