"""Serving speed: our stack against the classic per-request pandas handler, same gunicorn settings.

    python benchmarks/serving.py [--requests 2000] [--rounds 4] [--workers N] [--image NAME]

Trains the sample model, then for each server measures throughput and p50/p99 latency for 1-row
and 100-row CSV requests at concurrency 1 and 8, the time from start to the first 200 on /ping and
the memory of each gunicorn worker (RSS, and USS: what the worker does not share with the others).
Servers, all on loopback (the container through its local bridge address):
  image     the real stack: the image's `serve` (nginx -> gunicorn) in Docker, if the image exists
  process   `python -m <package>.serving.server --no-nginx` (the process runtime)
  baseline  the AWS scikit_bring_your_own handler (pd.read_csv per request) under the same
            gunicorn settings as `process`, so process / baseline is a like-for-like ratio
All servers run at once, idle but for the one under load; each cell is measured in interleaved
rounds so outside load on a shared machine hits them alike.
Targets: >= 2x the baseline's 1-row throughput with no worse p99; first /ping < 1.5 s.
Figures go to stdout and .local-pipeline/bench/serving.json. The load is bounded and local only.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

from {{ cookiecutter.package_name }} import sample_data
from {{ cookiecutter.package_name }}.data import read_csv
from {{ cookiecutter.package_name }}.model import Model
from {{ cookiecutter.package_name }}.settings import LABEL_COLUMN

PACKAGE = "{{ cookiecutter.package_name }}"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("IMAGE", "{{ cookiecutter.project_slug }}:latest")


# ---- the baseline: SageMaker's scikit_bring_your_own predictor.py, pandas per request ----------
def create_baseline_app():
    """gunicorn loads this with --preload, like our app; the model comes from BASELINE_MODEL_DIR."""
    import flask
    import pandas as pd

    model = Model.load(Path(os.environ["BASELINE_MODEL_DIR"]))
    app = flask.Flask(__name__)

    @app.route("/ping", methods=["GET"])
    def ping():
        return flask.Response(response="\n", status=200, mimetype="application/json")

    @app.route("/invocations", methods=["POST"])
    def transformation():
        if flask.request.content_type != "text/csv":
            return flask.Response(
                response="This predictor only supports CSV data", status=415, mimetype="text/plain"
            )
        data = pd.read_csv(io.StringIO(flask.request.data.decode("utf-8")), header=None)
        scores = model.predict_proba(data.values)
        out = io.StringIO()
        pd.DataFrame({"label": (scores >= 0.5).astype(int), "score": scores}).to_csv(
            out, header=False, index=False
        )
        return flask.Response(response=out.getvalue(), status=200, mimetype="text/csv")

    return app


# ---- servers ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_ping(host: str, port: int, started: float, alive, timeout: float = 120) -> float:
    """Seconds from ``started`` to the first 200 on /ping."""
    while time.monotonic() - started < timeout:
        if not alive():
            raise RuntimeError("the server exited before /ping answered")
        try:
            connection = http.client.HTTPConnection(host, port, timeout=1)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"no 200 on /ping within {timeout} s")


def memory_of(pids: list[int]) -> list[dict[str, float]]:
    """RSS and USS (private pages) in MB for each pid, from /proc."""
    out = []
    for pid in pids:
        fields = {}
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            name, value = line.split(":", 1)
            fields[name] = int(value.split()[0]) / 1024
        out.append({"rss_mb": fields["Rss"], "uss_mb": fields["Private_Clean"] + fields["Private_Dirty"]})
    return out


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


@contextmanager
def process_server(name: str, model_dir: Path, workers: int):
    port = free_port()
    env = {**os.environ, "OPT_ML_ROOT": str(model_dir.parent), "BASELINE_MODEL_DIR": str(model_dir)}
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT / "src"), env.get("PYTHONPATH", "")])
    if name == "process":
        command = [sys.executable, "-m", f"{PACKAGE}.serving.server", "--no-nginx", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", str(workers)]
    else:  # the same gunicorn settings server.py uses, pointed at the baseline app
        from {{ cookiecutter.package_name }}.serving.server import gunicorn_command

        command = gunicorn_command(f"127.0.0.1:{port}", workers, 60)
        command[-1:] = ["--pythonpath", str(Path(__file__).parent), "serving:create_baseline_app()"]
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        first_ping = wait_for_ping("127.0.0.1", port, started, lambda: process.poll() is None)
        yield "127.0.0.1", port, first_ping, lambda: memory_of(worker_pids(process.pid))
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def image_server(image: str, model_dir: Path, workers: int):
    import docker

    client = docker.from_env()
    started = time.monotonic()
    container = client.containers.run(
        image,
        "serve",
        volumes={str(model_dir): {"bind": "/opt/ml/model", "mode": "ro"}},
        ports={"8080/tcp": ("127.0.0.1", None)},
        environment={"MODEL_SERVER_WORKERS": str(workers)},
        detach=True,
    )
    try:
        container.reload()
        # The container's bridge address, not the published port: docker-proxy would add its own
        # copy per request and the figures would measure it instead of the serving stack.
        host, port = container.attrs["NetworkSettings"]["IPAddress"], 8080
        if not host:
            host, port = (
                "127.0.0.1",
                int(container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]),
            )
        first_ping = wait_for_ping(
            host, port, started, lambda: container.reload() or container.status == "running"
        )

        def memory():
            rows = container.top(ps_args="-o pid,ppid,args")["Processes"]
            gunicorn = [(int(pid), int(ppid)) for pid, ppid, args in rows if "gunicorn" in args]
            masters = {pid for pid, _ in gunicorn}
            return memory_of([pid for pid, ppid in gunicorn if ppid in masters])

        yield host, port, first_ping, memory
    finally:
        container.remove(force=True)


def image_available(image: str) -> bool:
    try:
        import docker

        docker.from_env().images.get(image)
        return True
    except Exception:  # no SDK, no daemon or no image: the process runtime stands in
        return False


# ---- load -----------------------------------------------------------------------------------------
def load(host: str, port: int, body: bytes, requests: int, concurrency: int) -> dict:
    """``requests`` POSTs spread over ``concurrency`` threads: wall time, latencies, failures."""
    latencies: list[float] = []
    failures: list[int] = []
    lock = threading.Lock()
    headers = {"Content-Type": "text/csv", "Accept": "text/csv"}

    def client(count: int) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=60)
        mine, bad = [], 0
        for _ in range(count):
            start = time.perf_counter()
            connection.request("POST", "/invocations", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            bad += response.status != 200
            if response.getheader("Connection", "").lower() == "close":
                connection.close()  # gunicorn's sync workers close after each response
        with lock:
            latencies.extend(mine)
            failures.append(bad)

    shares = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]
    threads = [threading.Thread(target=client, args=(n,)) for n in shares]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "seconds": time.perf_counter() - start,
        "latencies_ms": np.asarray(latencies) * 1000,
        "errors": sum(failures),
    }


def measure(servers: dict[str, tuple], bodies: dict[str, bytes], requests: int, rounds: int) -> list[dict]:
    """Every cell for every server, interleaved in rounds, so a burst of outside load on this
    machine hits all servers alike instead of skewing whichever one happened to run then."""
    for host, port, _, _ in servers.values():
        load(host, port, bodies["1 row"], 50, 2)  # warm-up: first requests page in code and data
    share = max(requests // rounds, 1)
    runs: dict[tuple[str, str], list[dict]] = {}
    for rows, body in bodies.items():
        for concurrency in (1, 8):
            cell = f"{rows} x{concurrency}"
            for _ in range(rounds):
                for name, (host, port, _, _) in servers.items():
                    runs.setdefault((name, cell), []).append(load(host, port, body, share, concurrency))
    results = []
    for name, (_, _, first_ping, memory) in servers.items():
        cells = {}
        for (server, cell), parts in runs.items():
            if server == name:
                ms = np.concatenate([p["latencies_ms"] for p in parts])
                cells[cell] = {
                    "rps": len(ms) / sum(p["seconds"] for p in parts),
                    "p50_ms": float(np.percentile(ms, 50)),
                    "p99_ms": float(np.percentile(ms, 99)),
                    "errors": sum(p["errors"] for p in parts),
                }
        results.append({"server": name, "first_ping_s": first_ping, "workers": memory(), "cells": cells})
    return results


def report(results: list[dict]) -> None:
    print(f"\n{'server':<9} {'cell':<12} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for result in results:
        for cell, figures in result["cells"].items():
            print(
                f"{result['server']:<9} {cell:<12} {figures['rps']:>8.0f} {figures['p50_ms']:>8.2f} "
                f"{figures['p99_ms']:>8.2f} {figures['errors']:>6}"
            )
    print()
    for result in results:
        memory = ", ".join(f"{w['rss_mb']:.0f}/{w['uss_mb']:.0f}" for w in result["workers"])
        print(
            f"{result['server']:<9} first /ping 200: {result['first_ping_s']:.2f} s; worker RSS/USS MB: {memory}"
        )
    by_name = {r["server"]: r for r in results}
    baseline = by_name["baseline"]["cells"]
    print()
    for name in ("process", "image"):
        if name not in by_name:
            continue
        for cell in ("1 row x1", "1 row x8", "100 rows x1", "100 rows x8"):
            ours, theirs = by_name[name]["cells"][cell], baseline[cell]
            print(
                f"{name} / baseline, {cell:<12}: throughput x{ours['rps'] / theirs['rps']:.2f}, "
                f"p99 {ours['p99_ms']:.2f} vs {theirs['p99_ms']:.2f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per cell")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="gunicorn workers, all servers"
    )
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds per cell")
    parser.add_argument("--image", default=IMAGE, help="image to benchmark in Docker when it exists")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    try:
        paths = sample_data.write(work / "data")
        table = read_csv(paths["train"])
        features = [c for c in table.columns if c != LABEL_COLUMN]
        model_dir = work / "opt_ml" / "model"
        Model(features).fit(table.matrix(features), table.data[LABEL_COLUMN]).save(model_dir)
        X = read_csv(paths["holdout"]).matrix(features)
        rows = [",".join(repr(float(v)) for v in row) for row in np.resize(X, (100, X.shape[1]))]
        bodies = {"1 row": (rows[0] + "\n").encode(), "100 rows": ("\n".join(rows) + "\n").encode()}

        if importlib.util.find_spec("pandas") is None:
            sys.exit("the baseline needs pandas (it comes with the local extra: make install)")
        servers = {
            "process": process_server("process", model_dir, args.workers),
            "baseline": process_server("baseline", model_dir, args.workers),
        }
        if image_available(args.image):
            servers = {"image": image_server(args.image, model_dir, args.workers), **servers}
        else:
            print(
                f"image {args.image} not found (or no Docker): the real stack is measured in the process runtime"
            )
        print(
            f"{args.requests} requests per cell in {args.rounds} interleaved rounds, {args.workers} gunicorn "
            f"workers, {os.cpu_count()} CPUs, servers: {', '.join(servers)}",
            flush=True,
        )
        with ExitStack() as stack:
            # Started one after the other, so each first /ping is timed without the others' start.
            running = {name: stack.enter_context(server) for name, server in servers.items()}
            results = measure(running, bodies, args.requests, args.rounds)
        report(results)
        out = PROJECT_ROOT / ".local-pipeline" / "bench" / "serving.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        print(f"\nwritten: {out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
