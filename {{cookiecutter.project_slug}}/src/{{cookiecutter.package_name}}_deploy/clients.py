"""Where the deploy tooling's boto3 clients point, and its one error type."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

Progress = Callable[[str], None]


class DeployError(Exception):
    """A failure with a message for the person or CI job running the command."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Aws:
    """Where every boto3 client of a command points (moto in tests, AWS otherwise)."""

    region: str | None = None
    endpoint_url: str | None = None

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)

    def account(self) -> str:
        """The caller's account id: the ExpectedBucketOwner of every artifacts-bucket call."""
        return self.client("sts").get_caller_identity()["Account"]
