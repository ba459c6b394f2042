"""Self-contained HTML reports of the validate and evaluate steps (charts inlined as SVG).

Read top-down in ten seconds: the decision banner, the reasons, then the table (drifted features
first) and the charts (``charts``: hover a bar for its exact value). All text goes through
``html.escape``, and the charts' through ElementTree's serializer.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from .. import metrics
from ..drift.data_drift import DriftResult, FeatureDrift
from . import charts

MAX_PLOTS = 6
MAX_BARS = 25
CANDIDATE, REFERENCE = "#d9534f", "#7a9cc6"  # current data or the candidate; reference or production

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
.banner { padding: 1rem 1.5rem; border-radius: 6px; color: white; }
.banner h1 { margin: 0 0 .3rem 0; font-size: 1.6rem; }
.ok { background: #1b7f3b; } .warn { background: #b26a00; } .stop { background: #b00020; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.drifted td { background: #fde8e8; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
svg { max-width: 100%; height: auto; }
.note { color: #555; font-size: .9rem; }
"""


def _page(title: str, tone: str, headline: str, summary: str, body: list[str]) -> str:
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
            f'<div class="banner {tone}" id="decision"><h1>{escape(headline)}</h1><p>{escape(summary)}</p></div>',
            *body,
            "</body></html>",
        ]
    )


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>"


def _number(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if value != 0 and abs(value) < 10**-digits:
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2g}"


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts) or 1
    return [c / total for c in counts]


def _charts(svgs: list[str]) -> str:
    return '<div class="charts">' + "".join(svgs) + "</div>"


def drift_plots(features: list[FeatureDrift]) -> str:
    """Reference vs current shares per PSI bin, one chart per feature."""
    if not features:
        return ""
    panels = []
    for feature in features:
        ref_shares, cur_shares = _shares(feature.reference_counts), _shares(feature.current_counts)
        # Drop the missing bin when both sides have none: it only adds an empty bar.
        keep = [
            i
            for i, label in enumerate(feature.bins)
            if label != "missing" or feature.reference_counts[i] or feature.current_counts[i]
        ]
        if len(keep) > MAX_BARS:  # many categories: show those that moved most, in their order
            moved = sorted(keep, key=lambda i: -abs(cur_shares[i] - ref_shares[i]))[:MAX_BARS]
            keep = sorted(moved)
        panels.append(
            charts.bars(
                f"{feature.name}  (PSI {feature.psi:.3f}, {feature.test} p {feature.p_value:.2g})",
                [feature.bins[i] for i in keep],
                [
                    charts.Series("reference", [ref_shares[i] for i in keep], REFERENCE),
                    charts.Series("current", [cur_shares[i] for i in keep], CANDIDATE),
                ],
                y_label="share of rows",
            )
        )
    return _charts(panels)


def _feature_rows(decision: dict[str, Any]) -> list[str]:
    features = decision.get("features", {})
    # Drifted first, then by PSI, so the cause of a block is at the top.
    order = sorted(features, key=lambda name: (not features[name]["drifted"], -features[name]["psi"]))
    rows = []
    for name in order:
        f = features[name]
        cells = [
            escape(name),
            "yes" if f["drifted"] else "no",
            _number(f["psi"]),
            escape(f["test"]),
            _p(f["p_value"]),
            _p(f.get("p_adjusted")),
            f"{f.get('missing_rate', 0):.1%}",
            escape(", ".join(f.get("new_categories", []))),
        ]
        css = ' class="drifted"' if f["drifted"] else ""
        rows.append(f"<tr{css}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return rows


def validation_page(decision: dict[str, Any], result: DriftResult | None = None) -> str:
    verdict = decision["decision"]
    # A reference model whose profile is unusable: drift was not checked (steps/validate.py).
    unchecked = decision.get("reference_usable") is False and decision.get("reference") != "none"
    warn = decision.get("drift_detected") or unchecked
    tone = {"proceed": "warn" if warn else "ok", "block": "stop"}.get(verdict, "stop")
    headline = {
        "proceed": "PROCEED: drift detected, retraining"
        if decision.get("drift_detected")
        else "PROCEED: drift NOT checked (reference profile unusable)"
        if unchecked
        else "PROCEED: no drift",
        "block": "BLOCKED: reference profile unusable" if unchecked else "BLOCKED: data drift",
        "fail": "FAILED: data rejected",
    }.get(verdict, verdict.upper())
    drifted = decision.get("drifted_features", [])
    summary = (
        f"{len(drifted)} of {len(decision.get('features', {}))} features drifted "
        f"({decision.get('share_drifted', 0):.0%}); policy {decision.get('policy')}; "
        f"reference {decision.get('reference')}"
    )
    body = ["<h2>Reasons</h2>", _list(decision.get("reasons", []))]
    if decision.get("features"):
        thresholds = decision.get("thresholds", {})
        body += [
            "<h2>Features</h2>",
            f'<p class="note">Drifted when PSI &gt; {escape(str(thresholds.get("psi")))} or the '
            f"Holm-adjusted p-value &lt; {escape(str(thresholds.get('p_value')))} "
            "(on small samples PSI must also clear its noise level).</p>",
            "<table><tr><th>feature</th><th>drifted</th><th>PSI</th><th>test</th><th>p-value</th>"
            "<th>adjusted p</th><th>missing</th><th>new categories</th></tr>",
            *_feature_rows(decision),
            "</table>",
        ]
    if decision.get("label"):
        label = decision["label"]
        body.append(
            f"<p>Label {escape(str(label.get('column')))}: PSI {_number(label['psi'])}, "
            f"{escape(str(label.get('test', 'chi2')))} p {_p(label['p_value'])}, "
            f"{'drifted' if label['drifted'] else 'stable'}.</p>"
        )
    if result is not None:
        top = sorted((f for f in result.features.values() if f.drifted), key=lambda f: -f.psi)[:MAX_PLOTS]
        if result.label is not None and result.label.drifted:
            top.append(result.label)
        if top:
            body += ["<h2>Reference vs current (drifted features, largest PSI first)</h2>", drift_plots(top)]
    return _page("Data validation", tone, headline, summary, body)


def metric_plot(
    candidate: dict[str, float | None],
    production: dict[str, float | None] | None,
    metric: str,
    minimum: float,
    higher_is_better: bool = True,
) -> str:
    """One small chart per metric (their scales differ: rmse in target units, AUC in [0, 1])."""
    sides = [
        ("candidate", candidate, CANDIDATE),
        *([("production", production, REFERENCE)] if production else []),
    ]
    panels = []
    for name in candidate:
        arrow = "higher is better" if metrics.higher_is_better(name) else "lower is better"
        bound = (minimum, f"gate {'minimum' if higher_is_better else 'maximum'}") if name == metric else None
        panels.append(
            charts.bars(
                f"{name} ({arrow})",
                [label for label, *_ in sides],
                [
                    charts.Series(
                        name, [values[name] for _, values, _ in sides], [color for *_, color in sides]
                    )
                ],
                bound=bound,
                show_values=True,
            )
        )
    return _charts(panels)


def confusion_plot(classes: list[str], counts: list[list[int]]) -> str:
    """Rows: actual class; columns: predicted class; each cell's count written in it."""
    return _charts([charts.heatmap("candidate on the holdout: confusion matrix", classes, classes, counts)])


def predicted_vs_actual_plot(actual: list[float], predicted: list[float]) -> str:
    """Each holdout row as a point; the diagonal is a perfect prediction."""
    title = "candidate on the holdout: predicted vs actual"
    return _charts([charts.scatter(title, actual, predicted, x_label="actual", y_label="predicted")])


def _difference(candidate: float | None, production: float | None) -> str:
    if candidate is None or production is None:
        return "n/a"
    return f"{candidate - production:+.4f}"


def _direction(name: str) -> str:
    return "higher" if metrics.higher_is_better(name) else "lower"


def _queries(queries: dict[str, Any]) -> list[str]:
    """Ranking: how many queries the gate metric averaged, and the worst of them."""
    metric = queries["metric"]
    rows = "".join(
        f"<tr><td>{escape(str(q['group']))}</td><td>{_number(q[metric])}</td></tr>" for q in queries["worst"]
    )
    return [
        "<h2>Per query</h2>",
        f"<p>{metric} on {queries['scored']} of {queries['count']} queries ({escape(queries['group_column'])}); "
        f"{queries['skipped']} without a relevant row skipped. The worst:</p>",
        f"<table><tr><th>query</th><th>{escape(metric)}</th></tr>{rows}</table>",
    ]


def evaluation_page(decision: dict[str, Any], plot: dict[str, Any] | None = None) -> str:
    """The gate's page; ``plot`` carries the candidate's confusion matrix or predicted/actual values."""
    if decision.get("decision") == "fail":
        return _page(
            "Model evaluation",
            "stop",
            "FAILED: evaluation error",
            "",
            ["<h2>Reasons</h2>", _list(decision.get("reasons", []))],
        )
    metric = decision["metric"]
    higher = decision.get("higher_is_better", True)
    candidate, production = decision["candidate"], decision.get("production")
    headline = (
        "PROMOTE: candidate passes the gate" if decision["promote"] else "BLOCKED: candidate fails the gate"
    )
    bound = "minimum" if higher else "maximum"
    summary = (
        f"gate on {metric} ({'higher' if higher else 'lower'} is better): {bound} {decision['minimum']}, "
        f"tolerance {decision['tolerance']}; candidate {_number(candidate[metric])}"
        + (f", production {_number(production[metric])}" if production else ", no production model")
    )
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{_direction(name)}</td><td>{_number(candidate[name])}</td>"
        f"<td>{_number(production[name]) if production else 'n/a'}</td>"
        f"<td>{_difference(candidate[name], production[name] if production else None)}</td></tr>"
        for name in candidate
    )
    body = [
        "<h2>Reasons</h2>",
        _list(decision.get("reasons", [])),
        "<h2>Metrics on the holdout</h2>",
        "<table><tr><th>metric</th><th>better</th><th>candidate</th><th>production</th>"
        f"<th>difference</th></tr>{rows}</table>",
        metric_plot(candidate, production, metric, decision["minimum"], higher),
    ]
    if plot and "confusion_matrix" in plot:
        body += ["<h2>Confusion matrix</h2>", confusion_plot(plot["classes"], plot["confusion_matrix"])]
    elif plot and "actual" in plot:
        body += ["<h2>Predicted vs actual</h2>", predicted_vs_actual_plot(plot["actual"], plot["predicted"])]
    if plot and "queries" in plot:
        body += _queries(plot["queries"])
    drift = decision.get("prediction_drift")
    body.append("<h2>Prediction drift of the production model</h2>")
    if drift:
        body.append(
            f"<p>Scores on the holdout vs on its training data: PSI {_number(drift['psi'])}, "
            f"KS p-value {_p(drift['p_value'])}.</p>"
        )
    else:
        body.append("<p>Not available (no production model, or its profile has no score reference).</p>")
    return _page("Model evaluation", "ok" if decision["promote"] else "stop", headline, summary, body)
