"""``make local-pipeline --fail-update`` and ``--schedule``: the run's flags, and one whole run."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

import pytest
from rich.console import Console

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}_emulator import run
from {{ cookiecutter.package_name }}_emulator.blue_green import EndpointClock, FleetFault
from {{ cookiecutter.package_name }}_emulator.run import Emulator, parse_args, render_emulation, run_pipeline
from {{ cookiecutter.package_name }}_emulator.scenarios import ROLLED_BACK


@pytest.mark.parametrize("fault", list(FleetFault))
def test_fail_update_flag_arms_the_update_step(fault: FleetFault) -> None:
    args = parse_args(["--fail-update", fault.value])
    scenario = run.scenario_for(args.inject_drift, args.fail_training, args.fail_update)
    create, update = scenario.steps
    assert create.fault is None and update.fault is fault and update.checks == ROLLED_BACK


def test_flags_that_cannot_go_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--fail-update", "5xx", "--inject-drift"])
    assert "not allowed with argument" in capsys.readouterr().err
    # The schedule starts executions with its rule target's input: no execution input of our own.
    assert run.main(["--schedule", "--tune"]) == 2
    assert "--schedule starts executions with the rule target's input" in capsys.readouterr().out
    assert parse_args(["--schedule"]).schedule == "" and parse_args([]).schedule is None


@pytest.mark.slow
def test_a_scheduled_run_whose_update_fails_ping_is_rolled_back(tmp_path: Path) -> None:
    output = io.StringIO()
    console = Console(file=output, width=200)
    emulator = Emulator(
        "process", tmp_path / "run", console, clock=EndpointClock(speedup=60.0), schedule_rule=""
    )
    try:
        result = run_pipeline(emulator, fail_update="ping", stamp="scheduled")
        render_emulation(console, emulator)
    finally:
        emulator.close()
    assert result.ok, result.problems
    create, update = result.executions
    for outcome in (create, update):  # EventBridge named them: the schedule started both
        assert uuid.UUID(outcome.name)
    assert create.status == "SUCCEEDED" and update.status == "FAILED"
    assert update.error.startswith("EndpointRolledBack")
    text = " ".join(output.getvalue().split())  # the console wraps long lines
    assert re.search(r"FailureReason: Update to config-\w+ failed: The primary container", text)
    assert "did not pass the ping health check" in text
    assert "(fault injected by the emulator: --fail-update ping)" in text
    assert "Not enforced offline" in text and "aws:SecureTransport" in text
    # IAM offline: the least-privilege summary, its table, and what enforcement does not check.
    assert re.search(r"least privilege: \d+ statements necessary", text)
    assert (emulator.run_dir / "least-privilege.md").is_file()
    assert "identity policies and permissions boundaries" in text
    assert "not checked: the emulator itself" in text
    assert "VolumeSizeInGB is recorded on the jobs, not enforced offline" in text
    subjects = [n["Subject"] for n in result.notifications]
    assert subjects == ["ML pipeline: new model deployed", "ML pipeline: run failed"]
    first, second = result.invocations
    assert first.matches and second.matches and first.model_data_url == second.model_data_url
    assert first.endpoint_config == second.endpoint_config  # still the first run's model
    assert settings.ENDPOINT_NAME in text
