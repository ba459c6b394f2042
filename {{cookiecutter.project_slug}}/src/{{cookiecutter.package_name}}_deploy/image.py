"""Build the container image and push it to the stack's ECR repository."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .clients import Aws, DeployError, say

DOCKERFILE = Path("container/Dockerfile")


Runner = Callable[..., subprocess.CompletedProcess]


def _run(command: Sequence[str], runner: Runner = subprocess.run, **kwargs: Any) -> None:
    say("+ " + " ".join(command))
    result = runner(list(command), **kwargs)
    if result.returncode != 0:
        raise DeployError(f"{command[0]} {command[1]} failed with exit code {result.returncode}")


def build_image(
    project_root: Path, image: str, build_args: Sequence[str], runner: Runner = subprocess.run
) -> None:
    command = ["docker", "build", "-f", str(DOCKERFILE), "-t", image]
    for item in build_args:
        command += ["--build-arg", item]
    _run([*command, "."], runner, cwd=project_root)


def commit_tag() -> str:
    """The commit SHA tag: CI's variable, else git, else refuse (a moving tag alone is not traceable)."""
    sha = os.environ.get("CI_COMMIT_SHA")
    if sha:
        return sha
    result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    if result.returncode == 0 and result.stdout.strip():
        return result.stdout.strip()
    raise DeployError("no commit SHA: set CI_COMMIT_SHA or pass --tag")


def repository_uri(ecr: Any, repository: str) -> str:
    try:
        return ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]["repositoryUri"]
    except ecr.exceptions.RepositoryNotFoundException as error:
        raise DeployError(f"ECR repository {repository} does not exist: run `deploy-infra` first") from error


def push_image(
    aws: Aws, image: str, repository: str, tags: Sequence[str], runner: Runner = subprocess.run
) -> list[str]:
    """Log docker in to ECR with a token from the API, tag the local image, push every tag."""
    ecr = aws.client("ecr")
    uri = repository_uri(ecr, repository)
    auth = ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
    _run(
        ["docker", "login", "--username", user, "--password-stdin", auth["proxyEndpoint"]],
        runner,
        input=password,
        text=True,
    )
    pushed = []
    for tag in tags:
        target = f"{uri}:{tag}"
        _run(["docker", "tag", image, target], runner)
        _run(["docker", "push", target], runner)
        pushed.append(target)
    return pushed
