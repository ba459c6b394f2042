"""The HTML reports: parsed, not grepped, so structure and escaping are checked."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np

from {{ cookiecutter.package_name }}.data import Table
from {{ cookiecutter.package_name }}.drift import data_drift
from {{ cookiecutter.package_name }}.drift.profile import build_profile
from {{ cookiecutter.package_name }}.reports import pages


class Page(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.charts = 0  # <svg> elements: one per chart
        self.rows: list[list[str]] = []
        self.banner = ""
        self._in_banner = False
        self._in_cell = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append(tag)
        if tag == "svg":
            self.charts += 1
        if tag == "tr":
            self.rows.append([])
        self._in_cell = tag == "td"
        if attributes.get("id") == "decision":
            self._in_banner = True

    def handle_endtag(self, tag):
        if tag == "div":
            self._in_banner = False
        if tag == "td":
            self._in_cell = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_banner:
            self.banner += data
        if self._in_cell:
            self.rows[-1].append(data)


def _validation(policy: str = "block") -> tuple[dict, data_drift.DriftResult]:
    rng = np.random.default_rng(0)
    names = ["stable", "shifted", "<script>alert(1)</script>"]
    reference = Table(names, {n: rng.normal(size=500) for n in names})
    current = Table(names, {n: rng.normal(size=500) for n in names})
    current.data["shifted"] = current.data["shifted"] + 1.0
    current.data[names[2]] = current.data[names[2]] * 3
    result = data_drift.compare(build_profile(reference, names), current, 0.2, 0.01)
    decision = {
        "step": "validate",
        "decision": policy if policy == "block" else "proceed",
        "drift_detected": result.drift_detected,
        "policy": policy,
        "share_drifted": result.share_drifted,
        "drifted_features": result.drifted_features,
        "features": {n: f.as_json() for n, f in result.features.items()},
        "reasons": ["2 of 3 features drifted"],
        "reference": "s3://bucket/model.tar.gz",
        "thresholds": {"psi": 0.2, "p_value": 0.01},
    }
    return decision, result


def test_validation_report_shows_the_decision_and_the_drifted_features_first():
    decision, result = _validation()
    assert set(decision["drifted_features"]) == {"shifted", "<script>alert(1)</script>"}
    html = pages.validation_page(decision, result)
    page = Page(html)
    assert page.banner.startswith("BLOCKED: data drift")
    assert html.index('id="decision"') < html.index("<table")  # the banner comes first
    assert "script" not in page.tags  # the hostile feature name was escaped
    first_cells = [row[0] for row in page.rows if row]
    assert first_cells[-1] == "stable"  # drifted features first
    assert set(first_cells[:2]) == {"shifted", "<script>alert(1)</script>"}
    assert "2 of 3 features drifted" in page.text
    assert page.charts == 2  # one per drifted feature
    assert "img" not in page.tags  # nothing to fetch: the charts are inline


def test_validation_report_without_drift_has_no_plot():
    decision, _ = _validation(policy="retrain")
    decision.update(decision="proceed", drift_detected=False, drifted_features=[])
    page = Page(pages.validation_page(decision, None))
    assert page.banner.startswith("PROCEED: no drift")
    assert page.charts == 0


def test_failed_validation_report_shows_the_reason():
    decision = {
        "step": "validate",
        "decision": "fail",
        "reasons": ["schema violation: column 'x': missing"],
        "features": {},
    }
    page = Page(pages.validation_page(decision))
    assert page.banner.startswith("FAILED")
    assert "schema violation: column 'x': missing" in page.text


def test_evaluation_report_compares_candidate_and_production():
    decision = {
        "step": "evaluate",
        "promote": False,
        "metric": "roc_auc",
        "minimum": 0.8,
        "tolerance": 0.01,
        "candidate": {"roc_auc": 0.85, "accuracy": 0.8, "f1": None},
        "production": {"roc_auc": 0.95, "accuracy": 0.9, "f1": 0.9},
        "reasons": ["candidate roc_auc 0.8500 is worse than production 0.9500 by 0.1000 (tolerance 0.0100)"],
        "prediction_drift": {"psi": 0.05, "p_value": 0.3},
    }
    page = Page(pages.evaluation_page(decision))
    assert page.banner.startswith("BLOCKED: candidate fails the gate")
    assert ["roc_auc", "higher", "0.8500", "0.9500", "-0.1000"] in page.rows
    assert ["f1", "higher", "n/a", "0.9000", "n/a"] in page.rows
    assert page.charts == 3  # one per metric
    assert Page(pages.evaluation_page({**decision, "promote": True})).banner.startswith("PROMOTE")


def test_evaluation_report_draws_a_confusion_matrix_for_classes():
    decision = {
        "step": "evaluate",
        "promote": True,
        "metric": "macro_f1",
        "higher_is_better": True,
        "minimum": 0.8,
        "tolerance": 0.01,
        "candidate": {"accuracy": 0.9, "macro_f1": 0.88, "weighted_f1": 0.9, "log_loss": 0.3},
        "production": None,
        "reasons": ["first run"],
        "prediction_drift": None,
    }
    plot = {
        "classes": ["setosa", "<b>x</b>", "virginica"],
        "confusion_matrix": [[9, 1, 0], [0, 8, 2], [0, 0, 10]],
    }
    page = Page(pages.evaluation_page(decision, plot))
    assert "Confusion matrix" in page.text
    assert ["log_loss", "lower", "0.3000", "n/a", "n/a"] in page.rows
    assert page.charts == 4 + 1  # one per metric, the confusion matrix
    assert "script" not in page.tags and "b" not in page.tags  # the class "<b>x</b>" stays text


def test_evaluation_report_for_a_lower_is_better_gate_names_a_maximum():
    decision = {
        "step": "evaluate",
        "promote": False,
        "metric": "rmse",
        "higher_is_better": False,
        "minimum": 60.0,
        "tolerance": 2.0,
        "candidate": {"rmse": 65.0, "mae": 50.0, "r2": 0.3, "mape": 0.4},
        "production": {"rmse": 55.0, "mae": 45.0, "r2": 0.45, "mape": 0.35},
        "reasons": ["candidate rmse 65.0000 is above the maximum 60.0000"],
        "prediction_drift": None,
    }
    plot = {"actual": [100.0, 150.0, 200.0], "predicted": [110.0, 140.0, 230.0]}
    page = Page(pages.evaluation_page(decision, plot))
    assert page.banner.startswith("BLOCKED")
    assert "gate on rmse (lower is better): maximum 60.0," in " ".join(page.text)
    assert ["rmse", "lower", "65.0000", "55.0000", "+10.0000"] in page.rows
    assert "Predicted vs actual" in page.text
    assert page.charts == 4 + 1  # one per metric, predicted vs actual


def test_plots_survive_dollar_signs_and_many_categories():
    rng = np.random.default_rng(1)
    categories = np.asarray([f"c{i}" for i in range(60)], dtype=object)
    reference = Table(
        ["cost_$_usd_$", "kind"], {"cost_$_usd_$": rng.normal(size=400), "kind": rng.choice(categories, 400)}
    )
    current = Table(
        ["cost_$_usd_$", "kind"],
        {"cost_$_usd_$": rng.normal(2.0, 1.0, 400), "kind": rng.choice(categories[:5], 400)},
    )
    result = data_drift.compare(build_profile(reference, ["cost_$_usd_$", "kind"]), current, 0.2, 0.01)
    assert result.drifted_features == ["cost_$_usd_$", "kind"]
    html = pages.drift_plots(list(result.features.values()))
    assert Page(html).charts == 2
    assert "cost_$_usd_$  (PSI" in html  # drawn as written
    kind = next(chart for chart in html.split("<svg")[1:] if "kind  (PSI" in chart)
    assert kind.count('class="bar"') <= 2 * pages.MAX_BARS  # the categories that moved most
