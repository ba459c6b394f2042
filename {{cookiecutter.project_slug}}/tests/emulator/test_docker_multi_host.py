"""Multi-host training on local mode waits for every host (<package>_emulator/runtimes/docker.py ``_compose``).

Local mode's ``compose up --abort-on-container-exit`` stops the leader as soon as a worker, which
writes no model, exits first: the job then "completes" with an empty model.tar.gz. No Docker needed.
"""

from __future__ import annotations

from {{ cookiecutter.package_name }}_emulator.runtimes import docker as docker_runtime


class Container:
    """The attributes local mode's ``_SageMakerContainer._compose`` reads."""

    def __init__(self, hosts: list[str]) -> None:
        self.hosts = hosts
        self.container_root = "/tmp/job"
        self.compose_cmd_prefix = ["docker-compose"]


def test_one_host_keeps_local_modes_abort_on_exit() -> None:
    command = docker_runtime._compose(Container(["algo-1-abcde"]))
    assert command[-1] == "--abort-on-container-exit"


def test_two_hosts_wait_for_every_container() -> None:
    command = docker_runtime._compose(Container(["algo-1-abcde", "algo-2-abcde"]))
    assert command[:3] == ["docker-compose", "-f", "/tmp/job/docker-compose.yaml"]
    assert "up" in command and "--abort-on-container-exit" not in command


def test_detached_serving_is_left_alone() -> None:
    command = docker_runtime._compose(Container(["algo-1-abcde", "algo-2-abcde"]), detached=True)
    assert command[-1] == "--detach"
