""".gitlab-ci.yml: schema, and which jobs run for which change (rules evaluated like GitLab does)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import gitlab_rules
import pytest
from gitlab_rules import Pipeline, pipeline_jobs

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}_deploy import cli

PKG = settings.PACKAGE_NAME
MAIN = "refs/heads/main"
ALWAYS = {"test": "on_success"}
# The manual "start an execution" job is offered on every default-branch pipeline.
MANUAL = {"pipeline:start": "manual"}


@pytest.fixture(scope="module")
def config(project_root) -> dict:
    return gitlab_rules.load(project_root / ".gitlab-ci.yml")


def push(*files: str) -> Pipeline:
    return Pipeline(source="push", branch="main", changed=list(files), changed_vs={MAIN: []})


def test_file_validates_against_the_gitlab_ci_schema(project_root):
    # The schema ships inside check-jsonschema (vendor.gitlab-ci): no network needed.
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci",
         "--data-transform", "gitlab-ci", ".gitlab-ci.yml"],
        cwd=project_root, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param([f"src/{PKG}/serving/app.py"], {"image:push", "endpoint:update"}, id="serving-only"),
        pytest.param(
            ["container/nginx.conf", "container/serve"],
            {"image:push", "endpoint:update"},
            id="serving-container",
        ),
        pytest.param([f"src/{PKG}/model.py"], {"image:push"}, id="training"),
        pytest.param([f"src/{PKG}/drift/validate.py"], {"image:push"}, id="drift"),
        pytest.param(
            [f"src/{PKG}/serving/app.py", f"src/{PKG}/training.py"], {"image:push"}, id="serving+training"
        ),
        pytest.param(["container/Dockerfile"], {"image:push"}, id="dockerfile"),
        pytest.param(["infra/template.yaml"], {"infra:deploy"}, id="infra"),
        pytest.param(["pipeline/state_machine.asl.json"], {"infra:deploy"}, id="asl"),
        pytest.param(["lambdas/check_endpoint/handler.py"], {"infra:deploy"}, id="lambda"),
        pytest.param(
            ["infra/template.yaml", f"src/{PKG}/serving/app.py"],
            {"infra:deploy", "image:push", "endpoint:update"},
            id="infra+serving",
        ),
        pytest.param(["README.md", "docs/usage.md", "tests/test_x.py"], set(), id="docs-only"),
    ],
)
def test_default_branch_push_ships_what_changed(config, files, expected):
    jobs = pipeline_jobs(config, push(*files))
    assert jobs == {**ALWAYS, **MANUAL, **dict.fromkeys(expected, "on_success")}


def test_schedule_pipeline_only_tests(config):
    # Plain `changes` is always true in a schedule: the source guard must keep deploys out.
    jobs = pipeline_jobs(config, Pipeline(source="schedule", branch="main", changed=None))
    assert jobs == {**ALWAYS, **MANUAL}


def test_web_pipeline_deploys_nothing_by_itself(config):
    assert pipeline_jobs(config, Pipeline(source="web", branch="main", changed=None)) == {**ALWAYS, **MANUAL}


def test_merge_request_tests_and_checks_the_image_but_never_deploys(config):
    serving = Pipeline(source="merge_request_event", branch=None, changed=[f"src/{PKG}/serving/app.py"],
                       changed_vs={MAIN: [f"src/{PKG}/serving/app.py"]})  # fmt: skip
    assert pipeline_jobs(config, serving) == {**ALWAYS, "image:check": "on_success"}
    docs = Pipeline(
        source="merge_request_event", branch=None, changed=["README.md"], changed_vs={MAIN: ["README.md"]}
    )
    assert pipeline_jobs(config, docs) == ALWAYS


def test_new_branch_compares_to_the_default_branch(config):
    # First push of a branch: GitLab has no push diff (plain `changes` would be true); compare_to decides.
    docs = Pipeline(source="push", branch="feature", changed=None, changed_vs={MAIN: ["README.md"]})
    assert pipeline_jobs(config, docs) == ALWAYS
    code = Pipeline(source="push", branch="feature", changed=None, changed_vs={MAIN: [f"src/{PKG}/model.py"]})
    assert pipeline_jobs(config, code) == {**ALWAYS, "image:check": "on_success"}


def test_branch_with_open_merge_request_runs_one_pipeline(config):
    branch = Pipeline(source="push", branch="feature", changed=["README.md"], open_merge_request=True)
    assert pipeline_jobs(config, branch) == {}


def test_needed_jobs_are_always_in_the_pipeline(config):
    scenarios = [
        push(f) for f in (f"src/{PKG}/serving/app.py", "container/serve", "infra/x.yaml", "README.md")
    ]
    for pipeline in scenarios:
        jobs = pipeline_jobs(config, pipeline)
        for name in jobs:
            for need in config[name].get("needs", []):
                assert need in jobs, (name, need, pipeline.changed)


def test_aws_jobs_use_oidc_and_no_static_keys(config, project_root):
    text = (project_root / ".gitlab-ci.yml").read_text()
    assert "AWS_SECRET_ACCESS_KEY" not in text and "AWS_ACCESS_KEY_ID" not in text
    assert config[".aws"]["id_tokens"]["GITLAB_OIDC_TOKEN"]["aud"] == "sts.amazonaws.com"
    assert "AWS_WEB_IDENTITY_TOKEN_FILE" in config[".aws"]["variables"]
    for name in ("image:push", "infra:deploy", "endpoint:update", "pipeline:start"):
        extends = config[name]["extends"]
        assert ".aws" in (extends if isinstance(extends, list) else [extends]), name


def test_job_scripts_call_existing_deploy_commands(config):
    parser = cli._parser()
    variables = {"${PACKAGE}": PKG, "$IMAGE_NAME": settings.PROJECT_SLUG, "$CI_COMMIT_SHA": "0123abcd",
                 "$BASE_IMAGE": "python:3.11-slim-bookworm"}  # fmt: skip
    calls = 0
    for name in gitlab_rules.job_names(config):
        for line in config[name].get("script", []):
            if "${PACKAGE}_deploy" not in line:
                continue
            for key, value in variables.items():
                line = line.replace(key, value)
            words = shlex.split(line)
            args = parser.parse_args(words[words.index(f"{PKG}_deploy") + 1 :])
            assert args.command in {"build", "push", "deploy-infra", "update-endpoint", "start-execution"}
            calls += 1
    assert calls >= 5


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('$CI_PIPELINE_SOURCE == "push"', True),
        ('$CI_PIPELINE_SOURCE != "push" || $CI_COMMIT_BRANCH != $CI_DEFAULT_BRANCH', False),
        ("$CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS", False),
        ('($CI_PIPELINE_SOURCE == "web" || $CI_COMMIT_BRANCH == "main") && $CI_DEFAULT_BRANCH', True),
    ],
)
def test_evaluator_if_expressions(expression, expected):
    assert gitlab_rules.evaluate_if(expression, push().variables()) is expected


def test_evaluator_globs_follow_fnmatch_pathname():
    assert gitlab_rules.glob_to_regex("src/**/*").match("src/a/b/c.py")
    assert gitlab_rules.glob_to_regex("src/**/*").match("src/c.py")
    assert not gitlab_rules.glob_to_regex("src/pkg/*.py").match("src/pkg/serving/app.py")
    assert gitlab_rules.glob_to_regex("container/{serve,nginx.conf}").match("container/nginx.conf")


# ---------------------------------------------------------------- supply chain (issue 15)

TOKEN_LINE = '> "$AWS_WEB_IDENTITY_TOKEN_FILE"'
LOCKED_INSTALL = '--require-hashes --only-binary=:all: -r "$CI_LOCK"'
PROJECT_INSTALL = "--no-deps --no-build-isolation ."


def aws_jobs(config: dict) -> list[str]:
    names = []
    for name in gitlab_rules.job_names(config):
        extends = config[name].get("extends", [])
        if ".aws" in (extends if isinstance(extends, list) else [extends]):
            names.append(name)
    return names


def steps(config: dict, job: str) -> list[str]:
    before = gitlab_rules.job_setting(config, job, "before_script") or []
    return [*before, *(gitlab_rules.job_setting(config, job, "script") or [])]


def test_every_install_happens_from_the_lock_before_the_token_exists(config):
    jobs = aws_jobs(config)
    assert set(jobs) == {"image:push", "infra:deploy", "endpoint:update", "pipeline:start"}
    for job in jobs:
        lines = steps(config, job)
        (token,) = [i for i, line in enumerate(lines) if TOKEN_LINE in line]
        installs = [i for i, line in enumerate(lines) if re.search(r"\bpip3? install\b|\bapk add\b", line)]
        assert installs and max(installs) < token, (job, lines)
        assert all(isinstance(line, str) for line in lines), (job, lines)  # no line read as a mapping
        for i in installs:
            line = lines[i]
            if re.search(r"\bpip3? install\b", line):  # apk packages come signed from Alpine
                assert LOCKED_INSTALL in line or line.endswith(PROJECT_INSTALL), (job, line)
        # The locked install precedes the project's own (which must not fetch build dependencies).
        locked = [i for i in installs if LOCKED_INSTALL in lines[i]]
        project = [i for i in installs if lines[i].endswith(PROJECT_INSTALL)]
        assert locked and project and max(locked) < min(project), job


def test_the_lock_pins_the_whole_dependency_closure_with_hashes(project_root):
    from importlib import metadata

    from packaging.requirements import Requirement

    text = (project_root / "ci" / "requirements-ci.txt").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\", text, flags=re.M))
    blocks = re.split(r"\n(?=[A-Za-z])", text.split("\n", 1)[1])
    for block in blocks:
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", block), block.splitlines()[0]
    assert {"boto3", "setuptools"} <= set(pins)
    # boto3's requirements, recursively (markers for this interpreter), all pinned.
    wanted, seen = ["boto3"], set()
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        for raw in metadata.requires(name) or []:
            requirement = Requirement(raw)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                wanted.append(requirement.name.lower())
    normalised = {k.lower().replace("_", "-") for k in pins}
    assert {n.replace("_", "-") for n in seen} <= normalised


def test_images_are_variables_that_take_a_digest(config, project_root, tmp_path):
    variables = config["variables"]
    for job in [*gitlab_rules.job_names(config), ".python", ".docker"]:
        image = gitlab_rules.job_setting(config, job, "image")
        services = gitlab_rules.job_setting(config, job, "services") or []
        for ref in [image, *services]:
            if ref is not None:
                assert re.fullmatch(r"\$[A-Z_]+", ref) and ref[1:] in variables, (job, ref)
    # The documented override, a digest, still validates.
    digest = "@sha256:" + "0" * 64
    text = (project_root / ".gitlab-ci.yml").read_text()
    for name in ("PYTHON_IMAGE", "DOCKER_IMAGE", "DIND_IMAGE", "BASE_IMAGE"):
        text = text.replace(f"  {name}: {variables[name]}\n", f"  {name}: {variables[name]}{digest}\n")
    assert text.count(digest) == 4
    pinned = tmp_path / ".gitlab-ci.yml"
    pinned.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci",
         "--data-transform", "gitlab-ci", str(pinned)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_builds_use_the_pinnable_base_image(config):
    for job in ("image:check", "image:push"):
        (build,) = [line for line in steps(config, job) if " build " in line]
        assert "--build-arg BASE_IMAGE=$BASE_IMAGE" in build, job


def test_deploy_jobs_run_in_protected_production_environments(config):
    for job in ("infra:deploy", "endpoint:update"):
        environment = config[job]["environment"]
        assert environment["deployment_tier"] == "production" and environment["name"], job


def test_readme_documents_protected_variables_and_the_approval(project_root):
    readme = (project_root / "README.md").read_text()
    for name in ("AWS_ROLE_ARN", "CFN_ROLE_ARN", "PYTHON_IMAGE", "DOCKER_IMAGE", "DIND_IMAGE", "BASE_IMAGE"):
        assert f"`{name}`" in readme, name
    assert "protected environment" in readme.lower() and "approval" in readme.lower()
    assert "ci/requirements-ci.txt" in readme
