"""Columns have roles (issue 23): ids, timestamps, groups and weights are never features, free text
is TF-IDF, and a column of thousands of levels is never one-hot encoded in silence.

The data is written here (``datasets.listings``): a marketplace's listings with an id, a time, a
free-text description that holds the signal, and two numbers. None of it is the built-in sample.
"""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest

from {{ cookiecutter.package_name }} import column_roles, metrics
from {{ cookiecutter.package_name }} import predictor as predictor_module
from {{ cookiecutter.package_name }} import settings as project
from {{ cookiecutter.package_name }}.column_roles import RoleError
from {{ cookiecutter.package_name }}.data import DataError, Table
from {{ cookiecutter.package_name }}.predictor import Predictions, Predictor, read_metadata
from {{ cookiecutter.package_name }}.settings import LABEL_COLUMN

# A ranking bake runs these checks of ids, timestamps, text and weights as regression (its grades are
# numbers, the listings have no queries): the roles work the same; ranking's group is test_ranking.py's.
AS_REGRESSION = project.PROBLEM_TYPE == "ranking"
PROBLEM_TYPE = "regression" if AS_REGRESSION else project.PROBLEM_TYPE
GATE_METRIC = "r2" if AS_REGRESSION else project.GATE_METRIC
HIGHER = metrics.higher_is_better(GATE_METRIC)


@pytest.fixture(autouse=True)
def _problem_type(monkeypatch: pytest.MonkeyPatch) -> None:
    if AS_REGRESSION:
        monkeypatch.setattr(project, "PROBLEM_TYPE", "regression")
        monkeypatch.setattr(project, "COLUMN_ROLES", {})


def table(**columns: object) -> Table:
    data = {
        name: np.asarray(values, dtype=object if isinstance(values[0], str) else np.float64)
        for name, values in columns.items()
    }  # type: ignore[index]
    return Table(list(data), data)


# ---- detection: each rule, and what it does not catch --------------------------------------------


@pytest.mark.parametrize(
    ("values", "role", "rule"),
    [
        ([f"2026-03-{1 + i % 28:02d}" for i in range(30)], "timestamp", "ISO dates"),
        ([f"2026-03-01T{i % 24:02d}:00:00Z" for i in range(30)], "timestamp", "ISO dates or datetimes"),
        ([f"2026-03-01 10:{i:02d}:00+02:00" for i in range(30)], "timestamp", "ISO"),
        ([float(7 * i + 3) for i in range(30)], "id", "distinct whole number"),
        ([f"SKU-{i:05d}" for i in range(30)], "id", "distinct string"),
        ([f"a listing with {i} rooms and a view" for i in range(30)], "text", "distinct values"),
        ([["red", "green", "blue"][i % 3] for i in range(30)], "categorical", ""),
        ([i / 3 for i in range(30)], "numeric", ""),
    ],
    ids=["date", "datetime-z", "datetime-offset", "int-id", "str-id", "text", "categorical", "numeric"],
)
def test_each_detection_rule(values, role, rule):
    found, why = column_roles.detect(table(c=values).data["c"])
    assert found == role
    assert rule in why


def test_what_the_rules_do_not_catch():
    # Too few rows to say a column of distinct values is an id; repeated whole numbers are numbers;
    # distinct one-word strings with spaces nowhere are ids, but short repeated phrases are categories.
    assert column_roles.detect(table(c=[float(i) for i in range(10)]).data["c"])[0] == "numeric"
    assert column_roles.detect(table(c=[float(i % 5) for i in range(40)]).data["c"])[0] == "numeric"
    phrases = [["big old house", "small flat", "city studio"][i % 3] for i in range(40)]
    assert column_roles.detect(table(c=phrases).data["c"])[0] == "categorical"
    # A date column with a few free-form cells is still a timestamp (95%), one with many is not.
    mostly = [f"2026-01-{1 + i % 28:02d}" for i in range(39)] + ["soon"]
    assert column_roles.detect(table(c=mostly).data["c"])[0] == "timestamp"


def test_detections_are_printed_once_each_naming_column_and_rule(capsys):
    data = datasets.listings(200, seed=1)
    Predictor.fit(data, {})
    lines = capsys.readouterr().out.splitlines()
    for column, role in (("listing_id", "id"), ("listed_at", "timestamp"), ("description", "text")):
        mine = [line for line in lines if line.startswith(f"column {column!r}: {role} (")]
        assert len(mine) == 1, lines
    assert not any("'price'" in line or "'rooms'" in line for line in lines)


def test_a_declaration_overrules_detection():
    data = datasets.listings(100, seed=2)
    roles = column_roles.resolve(data, LABEL_COLUMN, {"listing_id": "numeric", "rooms": "categorical"})
    assert roles.features["listing_id"] == "numeric" and roles.features["rooms"] == "categorical"
    assert roles.ids == () and not any("listing_id" in line for line in roles.detected)


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"nowhere": "id"}, "'nowhere' is declared in settings.COLUMN_ROLES but not in the data"),
        ({"price": "owner"}, "unknown role 'owner'"),
        ({LABEL_COLUMN: "id"}, "is the label"),
        ({"price": "weight", "rooms": "weight"}, "at most one weight column"),
        ({"description": "weight"}, "declared weight: it needs a finite number >= 0"),
        ({"description": "numeric"}, "declared numeric but holds"),
        ({"description": "timestamp"}, "declared timestamp but holds"),
    ],
    ids=["absent", "unknown-role", "label", "two-weights", "text-weight", "text-numeric", "text-timestamp"],
)
def test_each_refused_declaration_says_why_in_one_line(declared, message):
    with pytest.raises(RoleError) as error:
        column_roles.resolve(datasets.listings(60, seed=3), LABEL_COLUMN, declared)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_negative_weight_is_refused():
    data = datasets.listings(60, seed=3)
    data.data["rooms"] = data.data["rooms"] - 3
    with pytest.raises(RoleError, match="'rooms' is declared weight"):
        column_roles.resolve(data, LABEL_COLUMN, {"rooms": "weight"})


def test_timestamps_order_as_instants_across_offsets():
    stamps = np.asarray(["2026-01-01T01:30:00+02:00", "2026-01-01T00:00:00Z", "2026-01-01", ""], dtype=object)
    key = column_roles.order_key(stamps)
    assert key[0] < key[1] and key[2] == key[1] and np.isnan(key[3])


# ---- the model: roles in training, metadata and prediction ---------------------------------------


def _fit(train: Table, monkeypatch: pytest.MonkeyPatch, roles: dict[str, str] | None = None) -> Predictor:
    from {{ cookiecutter.package_name }} import settings

    monkeypatch.setattr(settings, "COLUMN_ROLES", roles or {})
    return Predictor.fit(train, {})


def _score(predictions: Predictions, holdout: Table, classes: list) -> float:
    positive = classes[1] if PROBLEM_TYPE == "binary" else None
    return metrics.compute(PROBLEM_TYPE, holdout.data[LABEL_COLUMN], predictions, classes, positive)[
        GATE_METRIC
    ]


def _reference(train: Table, holdout: Table, classes: list) -> float:
    """What scikit-learn reaches outside the template: TfidfVectorizer + the numbers, linear model."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.preprocessing import StandardScaler

    words = TfidfVectorizer(sublinear_tf=True, max_features=1000).fit(train.data["description"])
    scale = StandardScaler().fit(train.matrix(["price", "rooms"]))

    def X(t: Table):
        return sparse.hstack(
            [words.transform(t.data["description"]), scale.transform(t.matrix(["price", "rooms"]))]
        )

    y = train.data[LABEL_COLUMN]
    if PROBLEM_TYPE == "regression":
        return _score(Predictions(values=Ridge().fit(X(train), y).predict(X(holdout))), holdout, classes)
    model = LogisticRegression(max_iter=1000).fit(X(train), y.astype(str))
    probabilities = model.predict_proba(X(holdout))
    assert [str(c) for c in model.classes_] == [str(c) for c in classes]
    labels = np.asarray(classes, dtype=object)[probabilities.argmax(axis=1)]
    scores = probabilities[:, 1] if PROBLEM_TYPE == "binary" else None
    return _score(Predictions(labels=labels, scores=scores, probabilities=probabilities), holdout, classes)


def test_free_text_ids_and_time_train_a_model_close_to_tfidf_outside_the_template(tmp_path, monkeypatch):
    data = datasets.listings(1500, seed=4)
    train, holdout = data.take(np.arange(1200)), data.take(np.arange(1200, 1500))
    predictor = _fit(train, monkeypatch)
    assert predictor.feature_names == ["description", "price", "rooms"]
    assert predictor.feature_kinds == ["text", "numeric", "numeric"]
    assert predictor.categories == {}  # the description is not 1,200 one-hot levels
    predictor.save(tmp_path)
    loaded = Predictor.load(tmp_path)
    ours = _score(loaded.predict(loaded.features(holdout)), holdout, loaded.classes)
    reference = _reference(train, holdout, loaded.classes)
    margin = 0.05 if HIGHER else 0.15 * abs(reference)
    assert (ours >= reference - margin) if HIGHER else (ours <= reference + margin), (ours, reference)
    metadata = read_metadata(tmp_path)
    assert metadata["columns"] == {
        "id": ["listing_id"],
        "timestamp": "listed_at",
        "group": None,
        "weight": None,
    }
    assert len(metadata["text"]["description"]["terms"]) <= 1000
    # The metadata keeps words, never a training text: no description is in it.
    stored = (tmp_path / "metadata.json").read_text()
    assert not any(text in stored for text in train.data["description"])
    example = metadata["example"][metadata["feature_names"].index("description")]
    assert example.split() == metadata["text"]["description"]["terms"][:10]  # the warm-up row's text


def test_an_id_is_not_a_feature_even_when_it_predicts_the_label(monkeypatch):
    data = datasets.listings(300, seed=5)
    data.data["listing_id"] = np.argsort(np.argsort(data.data["price"])).astype(np.float64)  # a leak
    predictor = _fit(data, monkeypatch)
    assert "listing_id" not in predictor.feature_names
    # Requests need not carry the non-feature columns.
    request = data.take(np.arange(5))
    for column in ("listing_id", "listed_at"):
        del request.data[column]
        request.columns.remove(column)
    assert (
        len(
            predictor.predict(predictor.features(request)).labels
            if PROBLEM_TYPE != "regression"
            else predictor.predict(predictor.features(request)).values
        )
        == 5
    )


def test_a_weight_column_weighs_rows(monkeypatch):
    # 200 copies of rows with their labels reversed: at weight 0 they move the model little (the text
    # vocabulary, the scaler and LightGBM's bins and min_child_samples still count them), at
    # weight 1 they pull it far from the clean one.
    data = datasets.listings(400, seed=6)
    data.data["w"] = np.ones(400)
    data.columns.append("w")
    flipped = data.take(np.arange(200))
    flipped.data[LABEL_COLUMN] = flipped.data[LABEL_COLUMN][::-1].copy()
    roles = {"w": "weight", "listing_id": "id"}

    def answers(train: Table, weight: float) -> np.ndarray:
        flipped.data["w"] = np.full(200, weight)
        rows = Table(
            train.columns, {c: np.concatenate([train.data[c], flipped.data[c]]) for c in train.columns}
        )
        model = _fit(rows, monkeypatch, roles) if weight >= 0 else _fit(train, monkeypatch, roles)
        assert "w" not in model.feature_names
        out = model.predict(model.features(data.take(np.arange(100))))
        return out.values if PROBLEM_TYPE == "regression" else out.probabilities

    clean, ignored, counted = answers(data, -1), answers(data, 0.0), answers(data, 1.0)
    assert np.abs(ignored - clean).mean() < 0.6 * np.abs(counted - clean).mean()


def test_a_column_of_thousands_of_levels_keeps_the_most_frequent_and_says_so(monkeypatch, capsys):
    data = datasets.listings(3000, seed=7)
    rng = np.random.default_rng(0)
    data.data["street"] = np.asarray([f"street{int(v)}" for v in rng.zipf(1.3, 3000) % 2500], dtype=object)
    data.columns.append("street")
    predictor = _fit(data, monkeypatch, {"street": "categorical"})
    assert len(predictor.categories["street"]) == predictor_module.MAX_CATEGORY_LEVELS
    assert "column 'street': " in capsys.readouterr().out
    counts: dict[str, int] = {}
    for value in data.data["street"]:
        counts[value] = counts.get(value, 0) + 1
    assert max(counts, key=counts.__getitem__) in predictor.categories["street"]


def test_metadata_too_large_to_load_is_refused_when_saving(tmp_path, monkeypatch):
    predictor = _fit(datasets.listings(200, seed=8), monkeypatch)
    monkeypatch.setattr(predictor_module, "MAX_METADATA_BYTES", 2_000)
    with pytest.raises(DataError, match="above the 2000-byte limit that loading enforces"):
        predictor.save(tmp_path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["text"]["description"]["idf"].append(1.0), "text feature 'description'"),
        (lambda m: m["text"].clear(), "one vocabulary per text feature"),
        (lambda m: m["columns"]["id"].append("price"), "names a feature"),
        (lambda m: m["text"]["description"]["idf"].__setitem__(0, -1.0), "IDF > 0"),
    ],
    ids=["idf-length", "no-vocabulary", "id-is-feature", "negative-idf"],
)
def test_metadata_with_inconsistent_roles_or_vocabulary_is_refused(tmp_path, monkeypatch, edit, message):
    _fit(datasets.listings(200, seed=9), monkeypatch).save(tmp_path)
    path = tmp_path / "metadata.json"
    metadata = json.loads(path.read_text())
    edit(metadata)
    path.write_text(json.dumps(metadata))
    with pytest.raises(predictor_module.ModelFolderError, match=message):
        read_metadata(tmp_path)


def test_the_endpoint_answers_text_requests_carrying_their_ids_as_the_model_does(tmp_path, monkeypatch):
    # Exported (compiled when it answers as the library), served through the app with the default
    # service functions: JSON records with the id and time columns beside the features.
    pytest.importorskip("onnxruntime", reason="the compiled predictor needs onnxruntime")
    from serving_bodies import DEFAULTS

    from {{ cookiecutter.package_name }}.serving import compiled
    from {{ cookiecutter.package_name }}.serving.app import create_app

    data = datasets.listings(600, seed=10)
    train, holdout = data.take(np.arange(500)), data.take(np.arange(500, 520))
    predictor = _fit(train, monkeypatch)
    predictor.save(tmp_path)
    assert compiled.export(predictor, holdout, tmp_path)  # text keeps the compiled serving path
    want = predictor.predict(predictor.features(holdout))
    client = create_app(tmp_path, inference=DEFAULTS).test_client()
    records = [
        {
            c: (v if isinstance(v, str) else float(v))
            for c, v in zip(holdout.columns, row, strict=True)
            if c != LABEL_COLUMN
        }
        for row in zip(*(holdout.data[c].tolist() for c in holdout.columns), strict=True)
    ]
    reply = client.post("/invocations", json={"instances": records}, headers={"Accept": "application/json"})
    assert reply.status_code == 200, reply.get_data(as_text=True)
    answers = reply.get_json()["predictions"]
    if PROBLEM_TYPE == "regression":
        got = np.asarray([a if isinstance(a, float) else a["value"] for a in answers], dtype=float)
        np.testing.assert_allclose(
            got, want.values, atol=compiled.TOLERANCE * max(1.0, np.abs(want.values).max())
        )
    else:
        assert [a["label"] for a in answers] == want.labels.tolist()
    # A column the model does not know is still refused, naming it.
    records[0]["colour"] = "red"
    reply = client.post("/invocations", json={"instances": records[:1]})
    assert reply.status_code == 400 and "unknown feature(s) 'colour'" in reply.get_data(as_text=True)


def test_metadata_does_not_grow_with_the_number_of_distinct_texts(tmp_path, monkeypatch):
    # 70,000 distinct texts made metadata.json (every text a category) too large to load back. Now a
    # text column stores at most 1,000 words and their IDF, whatever the rows (the 70,000-row model
    # itself: benchmarks/text_columns.py --rows 87500, figures in benchmarks/RESULTS.md).
    from {{ cookiecutter.package_name }}.text_features import MAX_TERMS, Vocabulary

    sizes = []
    for rows in (500, 2000):
        folder = tmp_path / str(rows)
        _fit(datasets.listings(rows, seed=11), monkeypatch).save(folder)
        sizes.append(len((folder / "metadata.json").read_bytes()))
    assert sizes[1] < 1.5 * sizes[0], sizes
    words = np.random.default_rng(12).integers(0, 5000, (70_000, 12))
    texts = [f"listing {i} " + " ".join(f"w{w}" for w in row) for i, row in enumerate(words.tolist())]
    vocabulary = Vocabulary.fit(texts)
    stored = json.dumps(vocabulary.to_json())
    assert len(vocabulary.terms) == MAX_TERMS and len(stored) < 64 * 1024
    again = Vocabulary.from_json(json.loads(stored))
    np.testing.assert_array_equal(again.transform(texts[:50]), vocabulary.transform(texts[:50]))
