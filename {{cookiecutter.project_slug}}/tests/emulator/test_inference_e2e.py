"""End to end with a service layer of its own: a copy of this project whose inference.py is the
README's example (ids echoed, one bare record, a decision from settings, the top classes) runs
``make local-pipeline``'s two executions in the process runtime; both succeed, both endpoint
checks pass, and the endpoint answers exactly what the example's functions answer in process.

The copy runs in a subprocess with its own src/ first on the path: the endpoints the emulator
starts and the check's in-process service both import the copy's inference.py, as they import a
user's. About a minute and a half; marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from inference_modules import readme_example, replace_fenced

from {{ cookiecutter.package_name }} import settings

pytestmark = pytest.mark.slow
PACKAGE = "{{ cookiecutter.package_name }}"
IGNORED = (".venv", ".venv-security", ".local-pipeline", "wheelhouse", ".git", "__pycache__", "*.egg-info")

DRIVER = """
import io, json, sys
from pathlib import Path

from rich.console import Console

from {{ cookiecutter.package_name }} import data
from {{ cookiecutter.package_name }}_emulator import endpoint_check, observe
from {{ cookiecutter.package_name }}_emulator.run import Emulator, run_pipeline

run_dir = Path(sys.argv[1])
emulator = Emulator("process", run_dir, Console(file=io.StringIO(), width=160))
try:
    result = run_pipeline(emulator, stamp="custom")
    # Records with an id, as JSON Lines through sagemaker-runtime, and through the functions in process.
    [_, lines] = endpoint_check.requests_for(data.read_csv(emulator.dataset.holdout), rows=5)
    records = [json.loads(line) for line in lines.body.splitlines()]
    ids = [dict(listing_id="L-%d" % i, **record) for i, record in enumerate(records)]
    body = b"".join(json.dumps(record).encode() + b"\\n" for record in ids)
    request = endpoint_check.Request("ids", body, "application/jsonlines", "application/jsonlines", 5)
    got = observe.invoke(emulator.runtime_client(), request)
    model_url = emulator.endpoint_state()[1]
    service = endpoint_check.local_service(observe.model_dir(emulator.cp, model_url, run_dir))
    want = endpoint_check.local_answer(service, request)
    print(json.dumps(dict(
        problems=result.problems,
        statuses=[e.status for e in result.executions],
        checks=[[c.after, c.matches, c.rows, c.error, c.difference] for c in result.invocations],
        defined=list(service.handlers.defined),
        ids=[got.status, got.content_type, got.body.decode(), endpoint_check.difference(got, want)],
    )))
finally:
    emulator.close()
"""


@pytest.fixture(scope="module")
def custom_run(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    copy = tmp_path_factory.mktemp("custom-service") / project_root.name
    shutil.copytree(project_root, copy, ignore=shutil.ignore_patterns(*IGNORED))
    inference = copy / "src" / PACKAGE / "inference.py"
    inference.write_text(replace_fenced(inference.read_text(), readme_example()))
    run_dir = copy / ".local-pipeline" / "custom"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(copy / "src"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, str(run_dir)],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), run_dir


def test_both_executions_succeed_and_both_endpoint_checks_pass(
    custom_run: tuple[dict[str, Any], Path],
) -> None:
    outcome, _ = custom_run
    assert outcome["defined"] == ["input_fn", "predict_fn", "output_fn"]  # the copy's inference.py served
    assert outcome["problems"] == []
    assert outcome["statuses"] == ["SUCCEEDED", "SUCCEEDED"]
    assert [check[1:] for check in outcome["checks"]] == [[True, 20, "", ""], [True, 20, "", ""]]


def test_the_endpoint_answered_the_example_s_fields_as_the_functions_do(
    custom_run: tuple[dict[str, Any], Path],
) -> None:
    outcome, run_dir = custom_run
    for after, *_ in outcome["checks"]:
        recorded = json.loads((run_dir / f"endpoint-check-{after}.json").read_text())
        assert [r["difference"] for r in recorded] == ["", ""]
        as_json = json.loads(recorded[0]["endpoint"]["body"])["predictions"]
        assert len(as_json) == 20
        for answer in as_json:
            if settings.PROBLEM_TYPE == "multiclass":
                probabilities = [c["probability"] for c in answer["top"]]
                assert 2 <= len(probabilities) <= 3 and probabilities == sorted(probabilities, reverse=True)
                number = probabilities[0]
            else:
                number = answer["score" if settings.PROBLEM_TYPE == "binary" else "value"]
            assert answer["decision"] == ("approve" if number >= settings.DECISION_THRESHOLD else "review")
        lines = recorded[1]["endpoint"]["body"].splitlines()
        assert [json.loads(line) for line in lines] == as_json  # JSON Lines: the same records


def test_ids_sent_through_sagemaker_runtime_come_back_in_order(
    custom_run: tuple[dict[str, Any], Path],
) -> None:
    outcome, _ = custom_run
    status, content_type, body, difference = outcome["ids"]
    assert (status, content_type, difference) == (200, "application/jsonlines", "")
    answers = [json.loads(line) for line in body.splitlines()]
    assert [next(iter(a.items())) for a in answers] == [("listing_id", f"L-{i}") for i in range(5)]
