"""Several training hosts, one model: join the library's own collective around ``fit``.

SageMaker starts the training image on every host of a job and names them in resourceconfig.json.
``collective(hosts, current_host)`` is a context manager around the estimator's ``fit``: it yields
the parameters to set on the estimator, and holds whatever connection the library needs while
``fit`` runs. Every host fits on its own rows; the library exchanges histograms (statistics, not
rows), so all hosts end with the same model, trained on every row.

- LightGBM: the data-parallel tree learner (``tree_learner="data"``, ``machines``,
  ``pre_partition=True``: each host passes its own rows).
  https://lightgbm.readthedocs.io/en/latest/Parallel-Learning-Guide.html
- XGBoost: ``xgboost.collective``. The leader (first of the sorted host names) runs the
  ``RabitTracker``; every host fits inside a ``CommunicatorContext``, where the sklearn API's
  ``fit`` all-reduces its quantile sketches and gradient histograms.
  https://xgboost.readthedocs.io/en/stable/tutorials/dask.html (the same collective, without Dask)

Addresses: a host name resolves by DNS (SageMaker, and the compose network of local mode), at a
fixed port per library. The offline process runtime runs every host on this machine: it sets
``EMULATED_HOST_ADDRESSES`` to ``{"algo-1": "127.0.0.1:<port>", ...}``; nothing else sets it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import model

HOSTS_ENV = "EMULATED_HOST_ADDRESSES"
LIGHTGBM_PORT = 12400  # LightGBM's default local_listen_port
XGBOOST_TRACKER_PORT = 9099  # the tracker port SageMaker's own XGBoost container uses
# Joining waits for the slowest host to read its data: generous, but a host that never comes fails
# the job instead of holding the others forever (SageMaker stops the job when any host fails).
JOIN_TIMEOUT_SECONDS = 900


class DistributedError(Exception):
    """Training cannot run on these hosts; the message is one line for the failure file."""


@dataclass(frozen=True)
class Peer:
    host: str
    address: str
    port: int


def supports_hosts() -> bool:
    """Whether model.py's estimator trains data-parallel (model.DISTRIBUTED_TRAINING)."""
    return bool(getattr(model, "DISTRIBUTED_TRAINING", False))


def check_hosts(hosts: list[str]) -> None:
    """One line refusing several hosts when the estimator would train one model per host."""
    if len(hosts) > 1 and not supports_hosts():
        raise DistributedError(
            f"{model.LIBRARY} trains on one host only (model.DISTRIBUTED_TRAINING is False): "
            f"set training_instance_count to 1 (this job has {len(hosts)} hosts)"
        )


def peers(hosts: list[str], default_port: int) -> list[Peer]:
    """Every host, sorted by name (the leader first), with the address and port to reach it."""
    emulated = os.environ.get(HOSTS_ENV)
    if emulated:
        table = json.loads(emulated)
        missing = sorted(set(hosts) - set(table))
        if missing:
            raise DistributedError(f"{HOSTS_ENV} has no address for host(s) {', '.join(missing)}")
        return [_peer(host, table[host]) for host in sorted(hosts)]
    return [Peer(host, _resolve(host), default_port) for host in sorted(hosts)]


def _peer(host: str, address: str) -> Peer:
    ip, _, port = address.rpartition(":")
    return Peer(host, ip, int(port))


def _resolve(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError as error:
        raise DistributedError(f"cannot resolve training host {host!r}: {error}") from None


@contextmanager
def collective(hosts: list[str], current_host: str) -> Iterator[dict[str, Any]]:
    """Yields the estimator parameters for this host; the fit inside joins the other hosts."""
    check_hosts(hosts)
    if len(hosts) == 1:
        yield {}
    elif model.LIBRARY == "lightgbm":
        yield lightgbm_parameters(peers(hosts, LIGHTGBM_PORT), current_host)
    elif model.LIBRARY == "xgboost":
        with xgboost_communicator(peers(hosts, XGBOOST_TRACKER_PORT), current_host):
            yield {}
    else:
        raise DistributedError(
            f"model.DISTRIBUTED_TRAINING is True but distributed.py can join only lightgbm and xgboost, "
            f"not {model.LIBRARY}"
        )


def lightgbm_parameters(all_peers: list[Peer], current_host: str) -> dict[str, Any]:
    """LightGBM's socket network: each host listens on its port and finds its rank in ``machines``
    by its own address and port (so several hosts on one machine differ by port)."""
    me = next(p for p in all_peers if p.host == current_host)
    return {
        "tree_learner": "data",
        "num_machines": len(all_peers),
        "machines": ",".join(f"{p.address}:{p.port}" for p in all_peers),
        "local_listen_port": me.port,
        "pre_partition": True,  # each host passes its own rows; LightGBM must not re-split them
        "time_out": JOIN_TIMEOUT_SECONDS // 60,  # minutes
    }


@contextmanager
def xgboost_communicator(all_peers: list[Peer], current_host: str) -> Iterator[None]:
    """The leader's tracker (ranks sorted by task id = host name, so the leader is rank 0) and
    this host's membership of the collective for the duration of the block."""
    from xgboost import collective as xgb_collective
    from xgboost.tracker import RabitTracker

    leader = all_peers[0]
    tracker = None
    if current_host == leader.host:
        tracker = RabitTracker(
            n_workers=len(all_peers),
            host_ip=leader.address,
            port=leader.port,
            sortby="task",
            timeout=JOIN_TIMEOUT_SECONDS,
        )
        tracker.start()
    else:
        _wait_for_tracker(leader)
    arguments = {
        "dmlc_tracker_uri": leader.address,
        "dmlc_tracker_port": leader.port,
        "dmlc_task_id": current_host,
        "dmlc_timeout": JOIN_TIMEOUT_SECONDS,
    }
    with xgb_collective.CommunicatorContext(**arguments):
        yield
    if tracker is not None:
        tracker.wait_for(JOIN_TIMEOUT_SECONDS)


def _wait_for_tracker(leader: Peer) -> None:
    """Connect only once the leader's tracker listens: a worker that tried earlier hung in
    XGBoost 3.2's reconnect (measured). The probe costs the tracker one warning line."""
    deadline = time.monotonic() + JOIN_TIMEOUT_SECONDS
    while True:
        try:
            socket.create_connection((leader.address, leader.port), timeout=2).close()
            return
        except OSError as error:
            if time.monotonic() > deadline:
                raise DistributedError(
                    f"the XGBoost tracker on {leader.host} ({leader.address}:{leader.port}) did not "
                    f"answer within {JOIN_TIMEOUT_SECONDS} s: {error}"
                ) from None
            time.sleep(0.2)
