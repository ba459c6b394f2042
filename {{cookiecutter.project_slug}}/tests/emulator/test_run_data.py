"""Your data for the offline emulator: validation before moto starts, the split, drift from any data."""

from __future__ import annotations

import io
from pathlib import Path

import datasets
import numpy as np
import pytest
from growth import LINEAR_LIMIT, growth
from rich.console import Console

from {{ cookiecutter.package_name }} import column_roles, data, settings
from {{ cookiecutter.package_name }}.data import Table
from {{ cookiecutter.package_name }}_emulator import (
    control_plane,
    drift_injection,
    observe,
    run,
    run_data,
    scenarios,
)

PROBLEM = getattr(settings, "PROBLEM_TYPE", "binary")
# Ranking's numbers are relevance grades: its data checks are regression's (a number per row).
NUMERIC_LABEL = PROBLEM in ("regression", "ranking")


@pytest.fixture(autouse=True)
def _no_declared_roles(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ranking bake declares its query column; these tables have none, so they are checked as
    undeclared data (ranking's split by query: tests/runtime/test_ranking.py)."""
    if PROBLEM == "ranking":
        monkeypatch.setattr(settings, "COLUMN_ROLES", {})


def table(rows: int, classes: tuple[str, ...] = ("yes", "no"), label: str = settings.LABEL_COLUMN) -> Table:
    rng = np.random.default_rng(0)
    values = [classes[i % len(classes)] for i in range(rows)]
    return Table(
        ["dose", "ward", label],
        {
            "dose": rng.normal(size=rows),
            "ward": np.array([("east", "west", "north")[i % 3] for i in range(rows)], dtype=object),
            label: np.array(values, dtype=object),
        },
    )


@pytest.fixture
def no_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refusals must come before the control plane starts."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("moto was started for data that should have been refused")

    monkeypatch.setattr(control_plane.ControlPlane, "start", refuse)


def refusal(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = run.main(argv)
    out = capsys.readouterr().out
    assert code == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Refused: "), out  # one line, no traceback
    return lines[0]


def test_no_label_column_is_refused(
    no_moto: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data.write_csv(tmp_path / "all.csv", table(60))
    line = refusal(
        ["--data", str(tmp_path / "all.csv"), "--label-column", "outcome", "--out", str(tmp_path)], capsys
    )
    assert "no label column 'outcome'" in line and "--label-column" in line


@pytest.mark.skipif(NUMERIC_LABEL, reason="one class is a classification refusal")
def test_one_class_is_refused(no_moto: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data.write_csv(tmp_path / "all.csv", table(60, classes=("yes",)))
    line = refusal(["--data", str(tmp_path / "all.csv"), "--out", str(tmp_path)], capsys)
    assert "has one class ('yes')" in line


@pytest.mark.skipif(PROBLEM != "regression", reason="a constant target is a regression refusal")
def test_constant_target_is_refused(
    no_moto: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    constant = table(60)
    constant.data[settings.LABEL_COLUMN] = np.full(60, 4.5)
    data.write_csv(tmp_path / "all.csv", constant)
    line = refusal(["--data", str(tmp_path / "all.csv"), "--out", str(tmp_path)], capsys)
    assert "has one value (4.5)" in line


def test_too_few_rows_for_the_split_are_refused(
    no_moto: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data.write_csv(tmp_path / "all.csv", table(12))
    line = refusal(["--data", str(tmp_path / "all.csv"), "--out", str(tmp_path)], capsys)
    assert "12 rows, too few for the train/holdout split" in line


def test_an_unreadable_csv_is_refused(
    no_moto: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.csv").write_bytes(b"dose,target\n1.0,yes\n2.0\n")
    line = refusal(["--data", str(tmp_path / "bad.csv"), "--out", str(tmp_path)], capsys)
    assert "unreadable CSV" in line and "bad.csv:3: expected 2 fields, got 1" in line


def test_a_folder_without_holdout_is_refused(
    no_moto: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data.write_csv(tmp_path / "train" / "train.csv", table(60))
    line = refusal(["--data", str(tmp_path), "--out", str(tmp_path / "out")], capsys)
    assert "needs train/ and holdout/" in line and "missing: holdout" in line


def test_one_csv_splits_deterministically_and_stratified(tmp_path: Path) -> None:
    source = table(100, classes=("a", "b", "b", "b"))  # 25 a, 75 b
    train, holdout = run_data.split(source, settings.LABEL_COLUMN, "binary")
    again = run_data.split(source, settings.LABEL_COLUMN, "binary")
    assert [list(t.data["dose"]) for t in (train, holdout)] == [list(t.data["dose"]) for t in again]
    assert (train.n_rows, holdout.n_rows) == (80, 20)
    counts = {v: int((holdout.data[settings.LABEL_COLUMN] == v).sum()) for v in ("a", "b")}
    assert counts == {"a": 5, "b": 15}  # the class shares of the whole set


def many_classes(classes: int) -> Table:
    """Two rows per class, the classes shuffled over the rows."""
    labels = np.random.default_rng(1).permutation(np.repeat(np.arange(classes), 2)).astype(str)
    return Table(
        ["dose", settings.LABEL_COLUMN],
        {"dose": np.arange(len(labels), dtype=float), settings.LABEL_COLUMN: labels},
    )


def test_rows_by_class_are_the_per_class_masks_in_order() -> None:
    labels = many_classes(300).data[settings.LABEL_COLUMN]
    expected = [np.flatnonzero(labels == value) for value in np.unique(labels)]  # the former masks
    found = run_data._rows_by_class(labels)
    assert len(found) == len(expected) == 300
    assert all(np.array_equal(a, b) for a, b in zip(found, expected, strict=True))


def test_the_stratified_split_grows_linearly_with_the_classes() -> None:
    def split_at(classes: int):
        source = many_classes(classes)
        return lambda: run_data.split(source, settings.LABEL_COLUMN, "multiclass")

    assert growth(split_at, 2_000) < LINEAR_LIMIT


def test_a_class_with_one_row_cannot_be_split(tmp_path: Path) -> None:
    source = table(40)
    source.data[settings.LABEL_COLUMN][0] = "rare"
    with pytest.raises(run_data.DataRefused, match="class 'rare' of 'target' has 1 row"):
        run_data.split(source, settings.LABEL_COLUMN, "binary")


def test_the_label_column_is_renamed_to_the_projects_in_the_run_copy(tmp_path: Path) -> None:
    source = table(60, label="diagnosis")
    data.write_csv(tmp_path / "mine.csv", source)
    prepared = run_data.prepare(tmp_path / "mine.csv", tmp_path / "run", "diagnosis", "binary")
    written = data.read_csv(prepared.train)
    assert written.columns == ["dose", "ward", settings.LABEL_COLUMN]
    assert prepared.rows == (48, 12) and prepared.source == str(tmp_path / "mine.csv")
    assert prepared.split == "split: random 80/20, stratified by 'diagnosis'"  # no time, no group
    assert set(written.data[settings.LABEL_COLUMN]) == {"yes", "no"}


@pytest.mark.parametrize("problem_type", ["binary", "multiclass", "regression"])
def test_drift_injection_works_on_any_names_labels_and_categories(problem_type: str) -> None:
    train, _ = datasets.for_problem(problem_type)
    drifted = drift_injection.inject(train, settings.LABEL_COLUMN, problem_type)
    label = settings.LABEL_COLUMN
    numeric = [c for c in train.columns if c != label and train.is_numeric(c)]
    categorical = [c for c in train.columns if c != label and not train.is_numeric(c)]
    assert categorical, "the data set must hold a text column for this test"
    first = numeric[0]
    assert np.nanmean(drifted.data[first]) > np.nanmean(train.data[first]) + np.nanstd(train.data[first])
    assert np.isnan(drifted.data[first]).sum() == np.isnan(train.data[first]).sum()  # missing stays missing
    for name in categorical:
        before = {v: int((train.data[name] == v).sum()) for v in set(train.data[name])}
        after = {v: int((drifted.data[name] == v).sum()) for v in set(drifted.data[name])}
        assert set(after) <= set(before) and after != before  # re-weighted, no new category
    changed = drifted.data[label] != train.data[label]
    assert 0.1 < changed.mean() < 0.6  # concept drift in a region, not everywhere
    if problem_type != "regression":
        assert set(drifted.data[label]) <= set(train.data[label])  # labels stay the data's own values


def test_emulator_refuses_before_starting_anything(no_moto: None, tmp_path: Path) -> None:
    data.write_csv(tmp_path / "few.csv", table(8))
    emulator = run.Emulator(
        "process", tmp_path / "run", Console(file=io.StringIO()), data_source=tmp_path / "few.csv"
    )
    with pytest.raises(run_data.DataRefused, match="8 rows, too few"):
        emulator.start()


def test_ctrl_c_ends_a_keep_session_with_exit_0_after_cleanup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    closed: list[bool] = []

    def fake_pipeline(emulator: run.Emulator, **_kwargs: object) -> observe.PipelineResult:
        emulator.stack = type("Stack", (), {"state_machine_arn": "arn:aws:states:::stateMachine:x"})()
        emulator.cp.port = 1  # as if started: keep_serving prints the moto address
        return emulator.result

    def ctrl_c(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "run_pipeline", fake_pipeline)
    monkeypatch.setattr(run.terminal, "render_summary", lambda *_a: None)
    monkeypatch.setattr(run.time, "sleep", ctrl_c)
    monkeypatch.setattr(run.Emulator, "close", lambda self: closed.append(True))
    assert run.main(["--runtime", "process", "--keep", "--out", str(tmp_path)]) == 0
    assert closed == [True]
    assert "Press Ctrl-C to stop and clean up." in capsys.readouterr().out


# -- the split follows the data's columns (issue 23) ----------------------------------------------
def listings(rows: int, seed: int = 3) -> Table:
    """Listings over time, three per hour (ties), with a query id; written shuffled."""
    base = np.datetime64("2026-03-01T00:00:00")
    order = np.random.default_rng(seed).permutation(rows)
    source = table(rows)
    stamps = [f"{base + np.timedelta64(int(i) // 3, 'h')}Z" for i in order]
    queries = [f"q{int(i) % 7}" for i in order]
    return Table(
        ["listed_at", "query_id", *source.columns],
        {
            "listed_at": np.array(stamps, dtype=object),
            "query_id": np.array(queries, dtype=object),
            **{c: v[order] for c, v in source.data.items()},
        },
    )


def test_a_time_column_puts_the_latest_rows_in_the_holdout_with_ties_on_its_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data.write_csv(tmp_path / "listings.csv", listings(100))
    prepared = run_data.prepare(tmp_path / "listings.csv", tmp_path / "run", problem_type="binary")
    train, holdout = data.read_csv(prepared.train), data.read_csv(prepared.holdout)
    train_times = column_roles.order_key(train.data["listed_at"])
    holdout_times = column_roles.order_key(holdout.data["listed_at"])
    assert holdout_times.min() > train_times.max()  # the cut's hour (3 rows) is not on both sides
    assert prepared.rows == (78, 22)  # 20 rows asked for, the 2 others at the cut's time follow
    assert (
        prepared.split
        == "split: by time on 'listed_at' (holdout = the latest 22%, from 2026-03-02T02:00:00Z)"
    )
    shown = capsys.readouterr().out.splitlines()
    detection = "column 'listed_at': timestamp (ISO dates or datetimes)"
    assert [line for line in shown if line.startswith(detection)] and shown[-1] == prepared.split
    assert sum(line.startswith("column 'listed_at'") for line in shown) == 1  # printed once


def test_a_declared_group_column_keeps_each_group_on_one_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = listings(100)
    del source.data["listed_at"]
    source.columns.remove("listed_at")
    data.write_csv(tmp_path / "queries.csv", source)
    runs = [
        run_data.prepare(
            tmp_path / "queries.csv", tmp_path / f"run{i}", problem_type="binary", roles={"query_id": "group"}
        )
        for i in (1, 2)
    ]
    train, holdout = data.read_csv(runs[0].train), data.read_csv(runs[0].holdout)
    assert not set(train.data["query_id"]) & set(holdout.data["query_id"])
    assert 0.1 <= holdout.n_rows / 100 <= 0.3
    assert runs[0].split.startswith("split: by group on 'query_id' (7 groups, ")
    assert runs[0].split.endswith("none on both sides)") and runs[1].split == runs[0].split  # seeded
    assert capsys.readouterr().out.count("split: by group") == 2


def test_one_group_is_refused(
    no_moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = listings(60)
    source.data["query_id"][:] = "q0"
    del source.data["listed_at"]
    source.columns.remove("listed_at")
    data.write_csv(tmp_path / "queries.csv", source)
    monkeypatch.setattr(settings, "COLUMN_ROLES", {"query_id": "group"})
    line = refusal(["--data", str(tmp_path / "queries.csv"), "--out", str(tmp_path)], capsys)
    assert "group column 'query_id' has 1 group, too few for a split by group" in line


def test_a_row_without_a_time_is_refused_naming_the_column_and_row(
    no_moto: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = listings(60)
    source.data["listed_at"][6] = ""
    data.write_csv(tmp_path / "listings.csv", source)
    line = refusal(["--data", str(tmp_path / "listings.csv"), "--out", str(tmp_path)], capsys)
    assert "timestamp column 'listed_at' has no usable time in data row 7" in line


def test_a_declared_role_column_absent_from_the_data_is_refused(
    no_moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data.write_csv(tmp_path / "all.csv", table(60))
    monkeypatch.setattr(settings, "COLUMN_ROLES", {"session": "group"})
    line = refusal(["--data", str(tmp_path / "all.csv"), "--out", str(tmp_path)], capsys)
    assert "column 'session' is declared in settings.COLUMN_ROLES but not in the data" in line


def test_drift_injection_leaves_ids_times_and_groups_as_they_are_and_takes_text() -> None:
    source = listings(100)
    source.columns.insert(0, "listing_id")
    source.data["listing_id"] = np.arange(1000.0, 1100.0)
    source.columns.insert(1, "blurb")
    source.data["blurb"] = np.array(
        [f"bright room number {i} near the park" for i in range(100)], dtype=object
    )
    roles = column_roles.resolve(source, settings.LABEL_COLUMN, {"query_id": "group"})
    assert (
        roles.ids == ("listing_id",) and roles.timestamp == "listed_at" and roles.features["blurb"] == "text"
    )
    drifted = drift_injection.inject(source, settings.LABEL_COLUMN, "binary", keep=roles.not_features())
    for kept in ("listing_id", "listed_at", "query_id"):
        assert np.array_equal(drifted.data[kept], source.data[kept])
    assert np.nanmean(drifted.data["dose"]) > np.nanmean(source.data["dose"])  # the feature, not the id
    assert set(drifted.data[settings.LABEL_COLUMN]) <= set(source.data[settings.LABEL_COLUMN])
    drift_injection.inject(source, settings.LABEL_COLUMN, "binary")  # without roles: no crash either


# -- a refusal by the gate on your data is an outcome --------------------------------------------
REASONS = ["candidate roc_auc 0.5100 is below the minimum 0.7000", "no production model: first run"]


def refused(**changes: object) -> scenarios.Observation:
    """A create execution the gate refused: blocked branch, no endpoint, the refusal notified."""
    observed = scenarios.Observation(
        name="create-1",
        status="SUCCEEDED",
        evaluation={"promote": False, "reasons": REASONS},
        states=["Validate", "Train", "Evaluate", "ModelGate", "NotifyBlocked", "Blocked"],
        notifications=[{"Subject": "ML pipeline: run blocked, production unchanged"}],
    )
    for key, value in changes.items():
        setattr(observed, key, value)
    return observed


def verdict_of(problems: list[str], kept: str | None) -> tuple[int, str]:
    result = observe.PipelineResult("process", Path("run"), problems=problems, kept_production=kept or "")
    return scenarios.verdict(result)


def test_a_gate_refusal_on_your_data_ends_the_run_with_exit_3_and_the_reason() -> None:
    problems, kept = scenarios.judge(scenarios.CREATE, refused(), own_data=True)
    assert verdict_of(problems, kept) == (
        3,
        "the gate kept production: candidate roc_auc 0.5100 is below the minimum 0.7000; "
        "no production model: first run",
    )


def test_a_gate_refusal_on_the_sample_is_still_a_broken_run() -> None:
    problems, kept = scenarios.judge(scenarios.CREATE, refused(), own_data=False)
    assert kept is None and any("was not created or updated" in p for p in problems)
    assert verdict_of(problems, kept)[0] == 1


def test_a_refusal_that_broke_something_else_is_a_broken_run() -> None:
    production = ("config-1", "s3://bucket/models/a/model.tar.gz")
    observed = refused(notifications=[], before=production, after=production, answers_match=False)
    problems, kept = scenarios.judge(scenarios.CREATE, observed, own_data=True)
    assert kept is not None and len(problems) == 2  # no 'blocked' notification; production stopped answering
    assert verdict_of(problems, kept)[0] == 1


def test_a_failed_execution_or_an_expected_block_is_judged_by_its_own_checks() -> None:
    failed = refused(status="FAILED", states=["Validate", "Train", "NotifyFailure", "Failed"])
    assert scenarios.judge(scenarios.CREATE, failed, own_data=True)[1] is None
    drift_step = scenarios.SCENARIOS["inject-drift"].steps[1]
    assert scenarios.judge(drift_step, refused(), own_data=True)[1] is None


def test_the_gate_line_is_the_runs_last_and_its_exit_code_is_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fake_pipeline(emulator: run.Emulator, **_kwargs: object) -> observe.PipelineResult:
        emulator.result.kept_production = REASONS[0]
        return emulator.result

    source = table(60)
    if NUMERIC_LABEL:
        source.data[settings.LABEL_COLUMN] = np.arange(60.0)
    data.write_csv(tmp_path / "all.csv", source)
    monkeypatch.setattr(run, "run_pipeline", fake_pipeline)
    monkeypatch.setattr(run.Emulator, "close", lambda self: None)
    code = run.main(["--runtime", "process", "--data", str(tmp_path / "all.csv"), "--out", str(tmp_path)])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert code == 3 and lines[-1] == f"the gate kept production: {REASONS[0]}"
    assert "split: random 80/20" in "\n".join(lines)
