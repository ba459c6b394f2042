"""No secrets in the repository; the CloudFormation template passes checkov's checks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from detect_secrets import SecretsCollection
from detect_secrets.settings import default_settings

SKIP_DIRS = {
    ".git",
    ".venv",
    ".venv-security",
    "data",
    "build",
    ".local-pipeline",
    "wheelhouse",
    "__pycache__",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
}


# Template commit SHAs recorded by cruft are not secrets.
SKIP_FILES = {".cruft.json"}


def project_files(root: Path) -> list[Path]:
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and p.name not in SKIP_FILES and not SKIP_DIRS.intersection(p.relative_to(root).parts)
    ]


def scan(paths: list[Path]) -> dict:
    secrets = SecretsCollection()
    with default_settings():
        for path in paths:
            secrets.scan_file(str(path))
    return secrets.json()


def test_scanner_finds_a_planted_key(tmp_path: Path) -> None:
    planted = tmp_path / "leak.py"
    planted.write_text('AWS_ACCESS_KEY_ID = "AKIA' + 'IOSFODNN7EXAMPLF"\n')
    assert scan([planted]), "detect-secrets must flag an AWS access key"


def test_no_secrets_in_the_project(project_root: Path) -> None:
    findings = scan(project_files(project_root))
    assert not findings, {
        f: [s["type"] + f" line {s['line_number']}" for s in v] for f, v in findings.items()
    }


@pytest.mark.slow
def test_checkov_passes_on_the_template(project_root: Path) -> None:
    result = subprocess.run(
        ["make", "security"], cwd=project_root, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Failed checks: 0" in result.stdout or "Passed checks" in result.stdout
