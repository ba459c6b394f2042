"""The one poller: call ``describe`` until ``done`` says so, or a deadline passes.

Used by the offline emulator (executions, jobs), the control plane and the deploy CLI (stacks,
endpoints, executions), so the interval and the timeout message are written once. Waiting for AWS
with a fixed short interval is what boto3's own waiters do (e.g. 15-30 s for stacks); offline,
callers pass a fraction of a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """``done`` was still false at the deadline; ``last`` is the final description."""

    def __init__(self, message: str, last: object) -> None:
        super().__init__(message)
        self.last = last


def wait_until(
    describe: Callable[[], T],
    done: Callable[[T], bool],
    timeout: float,
    interval: float,
    *,
    what: str = "resource",
    on_poll: Callable[[T], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """The first description for which ``done`` is true; WaitTimeout naming ``what`` otherwise.

    ``on_poll`` sees every description (progress output); ``sleep`` is injectable for tests.
    """
    deadline = time.monotonic() + timeout
    while True:
        described = describe()
        if on_poll is not None:
            on_poll(described)
        if done(described):
            return described
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(f"{what} not done after {timeout:.0f} s", described)
        sleep(min(interval, remaining))
