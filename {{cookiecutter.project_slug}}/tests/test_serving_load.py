"""A bounded mixed load on the real gunicorn stack: every valid request answered correctly,
every malformed one refused with a 4xx, no 5xx, and no worker dies (pids unchanged)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from benchmarks import load
from benchmarks.serving import free_port, wait_for_ping, worker_pids
from {{ cookiecutter.package_name }}.model import Model

pytestmark = pytest.mark.slow


def test_mixed_load_keeps_every_worker_and_answer(project_root, tmp_path_factory):
    model_dir, X = load.train_sample_model()
    expected = Model.load(model_dir).predict_proba(X)
    port = free_port()
    env = {**os.environ, "OPT_ML_ROOT": str(model_dir.parent)}
    env["PYTHONPATH"] = os.pathsep.join([str(project_root / "src"), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}.serving.server", "--no-nginx"]
    server = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_ping("127.0.0.1", port, time.monotonic(), lambda: server.poll() is None)
        deadline = time.monotonic() + 30  # /ping answers once the first worker is up; wait for both
        while len(worker_pids(server.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers_before = sorted(worker_pids(server.pid))
        result = load.run("127.0.0.1", port, X, expected, requests=2000, concurrency=32, malformed_share=0.1)
        workers_after = sorted(worker_pids(server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\nload: {result['rps']:.0f} rps, p99 {result['p99_ms']:.1f} ms, {result['malformed']} malformed")
    assert len(workers_before) == 2 and workers_after == workers_before, "a worker died or was replaced"
    assert result["server_errors"] == [] and result["unexpected"] == [] and result["valid_wrong"] == []
    assert result["valid_ok"] == result["valid"] > 1500
    assert result["malformed_4xx"] == result["malformed"] > 100
