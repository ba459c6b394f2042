"""Ranking: the metrics on hand-computed queries (every bake: they are plain functions), and, in a
ranking bake, the split by query, the ranker against random order and a pointwise baseline, the
gate's metric, ranks within groups in serving and the group column a ranking fit requires."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from datasets import ranking
from serving_bodies import DEFAULTS

from {{ cookiecutter.package_name }} import data, metrics, model, settings
from {{ cookiecutter.package_name }}.predictor import Predictions, Predictor
from {{ cookiecutter.package_name }}.serving import codecs
from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.settings import LABEL_COLUMN, PROBLEM_TYPE

RANKING = pytest.mark.skipif(PROBLEM_TYPE != "ranking", reason="a ranking bake's behaviour")
QUERY = "query_id"


def _compute(relevance, scores, groups) -> dict[str, float]:
    values = Predictions(values=np.asarray(scores, dtype=np.float64))
    return metrics.compute("ranking", np.asarray(relevance, dtype=np.float64), values, [], groups=groups)


# ---- the metrics, by hand -------------------------------------------------------------------------


def test_ndcg_of_one_query_by_hand():
    # Ranked by score: grades 0, 1, 2. DCG = (2^0-1)/log2(2) + (2^1-1)/log2(3) + (2^2-1)/log2(4)
    # = 0 + 0.63093 + 1.5; ideal order 2, 1, 0: 3/1 + 1/log2(3) + 0 = 3.63093.
    dcg, ideal = 1 / math.log2(3) + 3 / 2, 3 + 1 / math.log2(3)
    assert metrics.ndcg_at_k([0, 1, 2], [3.0, 2.0, 1.0]) == pytest.approx(dcg / ideal, abs=1e-12)
    assert metrics.ndcg_at_k([0, 1, 2], [1.0, 2.0, 3.0]) == pytest.approx(1.0)


def test_ndcg_cuts_at_k():
    # The only relevant row is ranked 3rd: inside the top 3, outside the top 2.
    assert metrics.ndcg_at_k([0, 0, 1], [3.0, 2.0, 1.0], k=2) == 0.0
    assert metrics.ndcg_at_k([0, 0, 1], [3.0, 2.0, 1.0], k=3) == pytest.approx(1 / math.log2(4))


def test_ndcg_matches_scikit_learn_given_the_same_exponential_gains():
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(3)
    grades = rng.integers(0, 4, size=(6, 12)).astype(np.float64)
    grades[:, 0] = 3  # every query has a relevant row (scikit-learn scores the others 0, we skip them)
    scores = rng.normal(size=(6, 12))  # no ties: scikit-learn averages tied rows, we keep row order
    ours = [metrics.ndcg_at_k(g, s, k=10) for g, s in zip(grades, scores, strict=True)]
    theirs = [ndcg_score([2**g - 1], [s], k=10) for g, s in zip(grades, scores, strict=True)]
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_average_precision_and_reciprocal_rank_by_hand():
    # Ranked by score, relevant (grade > 0) at ranks 2 and 4 of 5: AP = (1/2 + 2/4) / 2; RR = 1/2.
    grades, scores = [0, 2, 0, 1, 0], [5.0, 4.0, 3.0, 2.0, 1.0]
    assert metrics.average_precision_at_k(grades, scores) == pytest.approx(0.5)
    assert metrics.reciprocal_rank(grades, scores) == 0.5
    assert metrics.average_precision_at_k(grades, scores, k=3) == pytest.approx((1 / 2) / 2)


def test_metrics_are_averaged_over_queries_and_a_query_without_relevant_rows_is_skipped():
    groups = ["a", "a", "b", "b", "c", "c"]
    relevance = [1, 0, 0, 1, 0, 0]  # query c: nothing relevant, every metric undefined there
    scores = [2.0, 1.0, 2.0, 1.0, 2.0, 1.0]  # a: relevant first; b: relevant second
    per_query = metrics.per_query(relevance, scores, np.asarray(groups, dtype=object))
    assert list(per_query) == ["a", "b", "c"] and all(math.isnan(v) for v in per_query["c"].values())
    values = _compute(relevance, scores, np.asarray(groups, dtype=object))
    assert values["mrr"] == pytest.approx((1 + 1 / 2) / 2)
    assert values["map_at_10"] == pytest.approx((1 + 1 / 2) / 2)
    assert values["ndcg_at_10"] == pytest.approx((1 + 1 / math.log2(3)) / 2)


def test_ranking_metrics_need_the_groups():
    with pytest.raises(ValueError, match="group"):
        _compute([1, 0], [1.0, 0.0], None)


def test_every_ranking_metric_is_higher_is_better():
    assert all(metrics.higher_is_better(name) for name in metrics.METRICS["ranking"])


# ---- a ranking bake ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tables() -> tuple[data.Table, data.Table]:
    return ranking(categorical=False)


@pytest.fixture(scope="module")
def fitted(tables) -> Predictor:
    return Predictor.fit(tables[0], {})


@RANKING
def test_the_split_of_300_queries_puts_each_query_on_one_side(tmp_path):
    from {{ cookiecutter.package_name }}_emulator import run_data, sample_data

    table = sample_data.ranking_table(n_queries=300, per_query=10, seed=5)
    path = tmp_path / "ranking.csv"
    data.write_csv(path, table)
    read = data.read_csv(path)
    roles = run_data.column_roles.resolve(read, LABEL_COLUMN)
    train, holdout, line = run_data.split_following(read, LABEL_COLUMN, "ranking", roles)
    assert set(train.data[QUERY].tolist()).isdisjoint(holdout.data[QUERY].tolist())
    assert len(set(train.data[QUERY].tolist())) + len(set(holdout.data[QUERY].tolist())) == 300
    assert 0.15 < holdout.n_rows / read.n_rows < 0.25 and "by group on 'query_id'" in line


@RANKING
def test_the_sample_splits_by_query(tmp_path):
    from {{ cookiecutter.package_name }}_emulator import sample_data

    paths = sample_data.write(tmp_path)
    train, holdout = data.read_csv(paths["train"]), data.read_csv(paths["holdout"])
    assert set(train.data[QUERY].tolist()).isdisjoint(holdout.data[QUERY].tolist())
    assert (train.n_rows, holdout.n_rows) == (2400, 600)


@RANKING
def test_the_offline_run_splits_the_sample_by_query_and_never_drifts_the_query_column(tmp_path):
    from {{ cookiecutter.package_name }}_emulator import run_data

    prepared = run_data.prepare(None, tmp_path)
    train, holdout = data.read_csv(prepared.train), data.read_csv(prepared.holdout)
    drifted = data.read_csv(prepared.drifted)
    assert set(train.data[QUERY].tolist()).isdisjoint(holdout.data[QUERY].tolist())
    assert "by group on 'query_id'" in prepared.split and prepared.split.endswith("of the built-in sample")
    assert drifted.data[QUERY].tolist() == train.data[QUERY].tolist()


@RANKING
def test_the_ranker_orders_far_better_than_random_and_no_worse_than_pointwise(tables, fitted):
    from sklearn.linear_model import Ridge

    train, holdout = tables
    groups = holdout.data[QUERY]
    y = holdout.data[LABEL_COLUMN]
    ours = _compute(y, fitted.predict(fitted.features(holdout)).values, groups)["ndcg_at_10"]
    rng = np.random.default_rng(0)
    random = np.mean([_compute(y, rng.random(holdout.n_rows), groups)["ndcg_at_10"] for _ in range(5)])
    assert ours > random + 0.15, (ours, random)
    features = fitted.feature_names
    pointwise = Ridge().fit(np.nan_to_num(train.matrix(features)), train.data[LABEL_COLUMN])
    baseline = _compute(y, pointwise.predict(np.nan_to_num(holdout.matrix(features))), groups)["ndcg_at_10"]
    if model.FIT_GROUP is None:  # scikit-learn: the pointwise model itself
        assert ours == pytest.approx(baseline, abs=0.02)
    else:
        assert ours > baseline, (ours, baseline)


@RANKING
def test_a_pointwise_model_says_so_in_one_training_log_line(tables, capsys):
    Predictor.fit(tables[0], {})
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ranking: pointwise")]
    assert len(said) == (1 if model.FIT_GROUP is None else 0)


@RANKING
def test_fit_sorts_rows_by_group_and_passes_the_groups_as_model_py_says(tables, monkeypatch):
    seen = {}

    class Spy:
        def fit(self, X, y, **kwargs):
            seen.update(kwargs, n=len(y))
            return self

    monkeypatch.setattr(model, "build_estimator", lambda *args, **kwargs: Spy())
    train = tables[0]
    shuffled = train.take(np.random.default_rng(1).permutation(train.n_rows))
    Predictor.fit(shuffled, {})
    if model.FIT_GROUP == "group":
        assert seen["group"].tolist() == [10] * 240 and seen["n"] == 2400
    elif model.FIT_GROUP == "qid":
        qid = seen["qid"]
        assert len(qid) == 2400 and np.all(np.diff(qid) >= 0) and len(np.unique(qid)) == 240
    else:
        assert "group" not in seen and "qid" not in seen


@RANKING
def test_the_gate_uses_ndcg_at_10():
    from {{ cookiecutter.package_name }}.steps import evaluate

    assert settings.GATE_METRIC == "ndcg_at_10" and settings.GATE_HIGHER_IS_BETTER
    args = evaluate.parse_args(["--model", "m", "--holdout", "h", "--output", "o"])
    assert args.metric == "ndcg_at_10"


@RANKING
def test_serving_answers_a_rank_within_each_group_when_the_group_is_sent(tables, fitted):
    holdout = tables[1]
    client = create_app(predictor=fitted, inference=DEFAULTS).test_client()
    rows = holdout.take(np.arange(20))  # two queries of 10 documents
    names = [QUERY, *fitted.feature_names]
    records = [
        {n: (None if isinstance(v, float) and math.isnan(v) else v) for n, v in zip(names, r, strict=True)}
        for r in zip(*(rows.data[n].tolist() for n in names), strict=True)
    ]
    scores = fitted.predict(fitted.features(rows)).values
    for content_type, body in (
        ("application/json", orjson.dumps({"instances": records})),
        ("application/jsonlines", b"\n".join(orjson.dumps(r) for r in records)),
    ):
        reply = client.post(
            "/invocations", data=body, content_type=content_type, headers={"Accept": "application/json"}
        )
        answer = reply.get_json()["predictions"]
        assert [a["score"] for a in answer] == scores.tolist()
        for query in set(rows.data[QUERY].tolist()):
            mine = [i for i, q in enumerate(rows.data[QUERY].tolist()) if q == query]
            by_score = sorted(mine, key=lambda i: -scores[i])
            assert [answer[i]["rank"] for i in by_score] == list(range(1, len(mine) + 1))
    # Without the group: scores only, in JSON as in CSV.
    plain = [{n: r[n] for n in fitted.feature_names} for r in records]
    answer = client.post("/invocations", json=plain, headers={"Accept": "application/json"}).get_json()
    assert answer["predictions"] == [{"score": s} for s in scores.tolist()]
    body = "\n".join(",".join("" if v is None else repr(v) for v in r.values()) for r in plain)
    reply = client.post("/invocations", data=body, content_type="text/csv", headers={"Accept": "text/csv"})
    assert [float(v) for v in reply.get_data(as_text=True).split()] == scores.tolist()


def test_ranks_within_groups_break_ties_by_request_order():
    assert codecs.ranks_within([0.5, 0.9, 0.5, 0.1, 0.7], ["a", "a", "a", "b", "b"]) == [2, 1, 3, 2, 1]


@RANKING
def test_a_ranking_fit_without_its_group_column_is_refused_in_one_line(tables, monkeypatch):
    train = tables[0]
    without = data.Table(
        [c for c in train.columns if c != QUERY], {c: v for c, v in train.data.items() if c != QUERY}
    )
    with pytest.raises(data.DataError) as declared_but_absent:
        Predictor.fit(without, {})
    monkeypatch.setattr(settings, "COLUMN_ROLES", {})
    with pytest.raises(data.DataError) as undeclared:
        Predictor.fit(without, {})
    for error in (declared_but_absent.value, undeclared.value):
        assert "\n" not in str(error) and "query_id" in str(declared_but_absent.value)
    assert "ranking problem needs a group column" in str(undeclared.value)


@RANKING
def test_relevance_grades_must_be_numbers_of_at_least_zero(tables):
    train = tables[0].take(slice(None))
    train.data[LABEL_COLUMN] = train.data[LABEL_COLUMN] - 1.0
    with pytest.raises(data.DataError, match="relevance grades"):
        Predictor.fit(train, {})


@RANKING
def test_a_native_ranker_refuses_grades_its_library_cannot_gain_in_one_line(tables):
    from {{ cookiecutter.package_name }} import model

    if getattr(model, "FIT_GROUP", None) is None:
        pytest.skip("a pointwise model regresses any grade")
    for bad, shown in ((1.5, "1.5"), (31.0, "31")):
        train = tables[0].take(slice(None))
        train.data[LABEL_COLUMN] = train.data[LABEL_COLUMN].copy()
        train.data[LABEL_COLUMN][3] = bad
        with pytest.raises(data.DataError) as error:
            Predictor.fit(train, {})
        assert f"relevance grade {shown}: " in str(error.value) and "whole-number grades from 0 to 30" in str(
            error.value
        )
