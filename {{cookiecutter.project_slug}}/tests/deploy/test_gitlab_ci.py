""".gitlab-ci.yml: schema, and which jobs run for which change (rules evaluated like GitLab does)."""

from __future__ import annotations

import copy
import os
import re
import shlex
import stat
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
# The manual "start an execution" job is offered on every default-branch pipeline, with the deploy
# CLI it runs (installed by deploy:cli, which holds no token).
MANUAL = {"pipeline:start": "manual", "deploy:cli": "on_success"}


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


# Building (no token) and pushing (token, no build) the image are two jobs.
IMAGE = {"image:build", "image:push"}


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param([f"src/{PKG}/serving/app.py"], {*IMAGE, "endpoint:update"}, id="serving-only"),
        pytest.param(
            ["container/nginx.conf", "container/serve"],
            {*IMAGE, "endpoint:update"},
            id="serving-container",
        ),
        pytest.param([f"src/{PKG}/model.py"], IMAGE, id="training"),
        pytest.param([f"src/{PKG}/drift/validate.py"], IMAGE, id="drift"),
        pytest.param([f"src/{PKG}/serving/app.py", f"src/{PKG}/training.py"], IMAGE, id="serving+training"),
        pytest.param(["container/Dockerfile"], IMAGE, id="dockerfile"),
        pytest.param(["infra/template.yaml"], {"infra:deploy"}, id="infra"),
        pytest.param(["pipeline/state_machine.asl.json"], {"infra:deploy"}, id="asl"),
        pytest.param(["lambdas/check_endpoint/handler.py"], {"infra:deploy"}, id="lambda"),
        pytest.param(
            ["infra/template.yaml", f"src/{PKG}/serving/app.py"],
            {"infra:deploy", *IMAGE, "endpoint:update"},
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
    assert set(gitlab_rules.credentialed_jobs(config)) == CREDENTIALED
    for name in CREDENTIALED:
        extends = config[name]["extends"]
        assert ".aws" in (extends if isinstance(extends, list) else [extends]), name


def test_job_scripts_call_existing_deploy_commands(config):
    parser = cli._parser()
    calls = 0
    for name in gitlab_rules.job_names(config):
        for line in config[name].get("script", []):
            if f"{PKG}_deploy" not in line:
                continue
            words = shlex.split(line.replace("$CI_COMMIT_SHA", "0123abcd"))
            args = parser.parse_args(words[words.index(f"{PKG}_deploy") + 1 :])
            assert args.command in {"push", "deploy-infra", "update-endpoint", "start-execution"}
            calls += 1
    assert calls >= 4


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


# ---------------------------------------------------------------- credentials (issues 15 and 22)

CREDENTIALED = {"image:push", "infra:deploy", "endpoint:update", "pipeline:start"}
ENVIRONMENTS = {"production-image", "production-infra", "production-endpoint", "production-pipeline"}
# The only variables those jobs (and the jobs feeding them) read: a value, never code.
ALLOWED_VARIABLES = {"CI_COMMIT_SHA"}
LOCKED_INSTALL = "--require-hashes --only-binary=:all: --target .ci/site -r ci/requirements-ci.txt"


def test_jobs_with_credentials_run_only_pinned_code_in_protected_environments(config):
    assert gitlab_rules.credential_problems(config, ALLOWED_VARIABLES) == []
    environments = {config[job]["environment"]["name"] for job in CREDENTIALED}
    assert environments == ENVIRONMENTS
    # The jobs whose artifacts they run: the deploy CLI and the image.
    assert gitlab_rules.feeders(config, sorted(CREDENTIALED)) == {"deploy:cli", "image:build"}


def _mutated(config: dict, job: str, key: str, value) -> dict:
    broken = copy.deepcopy(config)
    if value is None:
        broken[job].pop(key, None)
    else:
        broken[job][key] = value
    return broken


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        pytest.param(
            lambda c: _mutated(
                c, "infra:deploy", "script", ["pip install awscli", *c["infra:deploy"]["script"]]
            ),
            "infra:deploy: installs or builds code where the token exists: pip install awscli",
            id="install-where-the-token-is",
        ),
        pytest.param(
            lambda c: _mutated(c, "infra:deploy", "before_script", [f"python3 -m {PKG}_deploy deploy-infra"]),
            f"infra:deploy: runs outside ci/with-aws.sh (the whole job environment): python3 -m {PKG}_deploy deploy-infra",
            id="command-with-the-whole-environment",
        ),
        pytest.param(
            lambda c: _mutated(c, "infra:deploy", "image", "$PYTHON_IMAGE"),
            "infra:deploy: takes $PYTHON_IMAGE, which a pipeline variable can set",
            id="image-from-a-variable",
        ),
        pytest.param(
            lambda c: _mutated(c, "pipeline:start", "image", "python:3.11-slim-bookworm"),
            "pipeline:start: image python:3.11-slim-bookworm is not pinned by digest",
            id="image-by-tag",
        ),
        pytest.param(
            lambda c: _mutated(c, "deploy:cli", "image", "python:3.11-slim-bookworm"),
            "deploy:cli: image python:3.11-slim-bookworm is not pinned by digest",
            id="feeder-image-by-tag",
        ),
        pytest.param(
            lambda c: _mutated(c, "deploy:cli", "script", ['pip install -r "$CI_LOCK"']),
            "deploy:cli: takes $CI_LOCK, which a pipeline variable can set",
            id="feeder-lock-from-a-variable",
        ),
        pytest.param(
            lambda c: _mutated(
                c, "image:push", "script", ["sh ci/with-aws.sh python3 -m ${PACKAGE}_deploy push"]
            ),
            "image:push: takes $PACKAGE, which a pipeline variable can set",
            id="package-from-a-variable",
        ),
        pytest.param(
            lambda c: _mutated(c, "pipeline:start", "environment", None),
            "pipeline:start: holds a token outside a production (protected) environment",
            id="no-protected-environment",
        ),
        pytest.param(
            lambda c: _mutated(c, "image:build", "services", ["docker:29-dind"]),
            "image:build: image docker:29-dind is not pinned by digest",
            id="privileged-dind-by-tag",
        ),
    ],
)
def test_each_credential_hole_is_found(config, mutate, problem):
    assert problem in gitlab_rules.credential_problems(mutate(config), ALLOWED_VARIABLES)


def test_only_deploy_cli_installs_and_from_the_lock(config):
    installs = {
        name: [line for line in gitlab_rules._lines(config, name) if re.search(r"\bpip3? install\b", line)]
        for name in gitlab_rules.job_names(config)
        if name != "test"  # `make install`, no token
    }
    assert {name for name, lines in installs.items() if lines} == {"deploy:cli"}
    locked, project = installs["deploy:cli"]
    assert LOCKED_INSTALL in locked
    assert project.endswith("--no-deps --no-build-isolation --target .ci/site .")
    assert config["deploy:cli"]["artifacts"]["paths"] == [".ci/site"]


@pytest.fixture
def with_aws(project_root, tmp_path):
    """Run ci/with-aws.sh in a scratch job directory with a hostile environment."""

    def run(*command: str, **extra: str) -> subprocess.CompletedProcess:
        env = {
            "PATH": os.environ["PATH"],
            "TMPDIR": str(tmp_path),
            "GITLAB_OIDC_TOKEN": "header.claims.signature",
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/stack-ci",
            "CI_COMMIT_SHA": "0123abcd",
            "CI_PROJECT_ID": "7",
            "CI_PIPELINE_ID": "42",
            # What a pipeline variable could set to choose the code or where the token goes.
            "PYTHONPATH": "/attacker",
            "PYTHONSTARTUP": "/attacker/startup.py",
            "LD_PRELOAD": "/attacker/hook.so",
            "AWS_ENDPOINT_URL_STS": "https://attacker.invalid",
            "AWS_CA_BUNDLE": "/attacker/ca.pem",
            "HTTPS_PROXY": "http://attacker.invalid:3128",
            "PIP_INDEX_URL": "https://attacker.invalid/simple",
            **extra,
        }
        job = tmp_path / "job"
        job.mkdir(exist_ok=True)
        script = project_root / "ci" / "with-aws.sh"
        return subprocess.run(["sh", str(script), *command], cwd=job, env=env, capture_output=True, text=True)

    return run


def test_with_aws_passes_only_the_allowlisted_environment(with_aws, tmp_path):
    result = with_aws("env")
    assert result.returncode == 0, result.stderr
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert set(seen) == {
        "PATH", "HOME", "PYTHONPATH", "PYTHONNOUSERSITE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME", "CFN_ROLE_ARN", "CI_COMMIT_SHA",
        "DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH",
    }  # fmt: skip
    job = tmp_path / "job"
    assert seen["PYTHONPATH"] == f"{job}/.ci/site" and seen["PATH"].startswith(f"{job}/.ci/bin:")
    assert seen["AWS_REGION"] == settings.AWS_REGION and seen["AWS_ROLE_SESSION_NAME"] == "gitlab-7-42"
    assert "header.claims.signature" not in result.stdout  # the token is in a file, not the environment
    token = tmp_path.joinpath(seen["AWS_WEB_IDENTITY_TOKEN_FILE"])
    assert token.read_text() == "header.claims.signature"
    assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("missing", "message"), [("AWS_ROLE_ARN", "CiRoleArn"), ("GITLAB_OIDC_TOKEN", "id_tokens")]
)
def test_with_aws_refuses_to_run_without_the_role_or_the_token(with_aws, missing, message):
    result = with_aws("env", **{missing: ""})
    assert result.returncode != 0 and message in result.stderr and result.stdout == ""


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


def test_image_builds_use_the_pinned_base_image(config):
    for job in ("image:check", "image:build"):
        (build,) = [line for line in gitlab_rules._lines(config, job) if "docker build" in line]
        base = re.search(r"--build-arg BASE_IMAGE=(\S+)", build).group(1)
        assert gitlab_rules.DIGEST.fullmatch(base), (job, base)
        assert base == config[".pins"]["python"]


def test_readme_documents_protected_variables_environments_and_pins(project_root):
    readme = (project_root / "README.md").read_text()
    for name in ("AWS_ROLE_ARN", "CFN_ROLE_ARN", "PYTHON_IMAGE", *sorted(ENVIRONMENTS)):
        assert f"`{name}`" in readme, name
    lowered = readme.lower()
    assert "protected environment" in lowered and "approval" in lowered
    assert "no one allowed" in lowered  # pipeline variables
    assert "ci/requirements-ci.txt" in readme and "ci/with-aws.sh" in readme
