"""Serving speed: the project's image against a ceiling image on the same stack, and in process.

    python benchmarks/serving.py [--seconds 3] [--rounds 3] [--starts 5] [--image NAME] [--no-image]

Table 1 (needs Docker and the image, `make build` or `make build-offline`): the project's image
and a ceiling image built from it by benchmarks/ceiling/ (same base, nginx.conf, launcher and
gunicorn settings; the app swapped for a bare WSGI handler that returns a constant). Both serve a
model that the image itself trained on the sample data. For 1 and 100 CSV rows at concurrency 1
and 8: rps, p50, p99 and image / ceiling. Then, per image: first /ping 200 after `docker run`
(median of --starts starts), image size and idle memory (the container's cgroup).

Table 2 (in process, no Docker): our app and the classic per-request pandas handler of the AWS
scikit_bring_your_own sample, both under the launcher's gunicorn settings on loopback.

Load generator: wrk (`apt-get install wrk`; `make bench` installs it when it can), else a Python
client, with a note. Cells run in interleaved rounds, so outside load on a shared machine hits
every server alike. All load stays on loopback and the local Docker bridge, bounded in time
(wrk) or count (the Python client). Figures also go to .local-pipeline/bench/serving.json.
Targets (issue 13): image / ceiling >= 0.70 at 1 row, >= 0.50 at 100 rows; p99 <= 2.5 x p50 at
concurrency 1; first /ping < 1 s; image < 400 MB for the default library.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}.steps.serve import gunicorn_command
from {{ cookiecutter.package_name }}_emulator import sample_data

PACKAGE = "{{ cookiecutter.package_name }}"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("IMAGE", "{{ cookiecutter.project_slug }}:latest")
CELLS = [(rows, concurrency) for rows in (1, 100) for concurrency in (1, 8)]
WRK_SCRIPT = """
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "text/csv"
wrk.headers["Accept"] = "text/csv"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "errors": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.timeout + e.status))
end
"""


# ---- the baseline: SageMaker's scikit_bring_your_own predictor.py, pandas per request ----------
def create_baseline_app():
    """gunicorn loads this with --preload, like our app; the model comes from BASELINE_MODEL_DIR."""
    import flask
    import pandas as pd

    from {{ cookiecutter.package_name }}.predictor import Predictor

    predictor = Predictor.load(Path(os.environ["BASELINE_MODEL_DIR"]))
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
        predictions = predictor.predict(data.values)
        out = io.StringIO()
        columns = {"label": predictions.labels, "score": predictions.scores, "value": predictions.values}
        pd.DataFrame({k: v for k, v in columns.items() if v is not None}).to_csv(
            out, header=False, index=False
        )
        return flask.Response(response=out.getvalue(), status=200, mimetype="text/csv")

    return app


# ---- the model and the request bodies ------------------------------------------------------------
def train_in_image(image: str, work: Path) -> tuple[Path, dict[int, bytes]]:
    """The sample data, a model the image itself trains on it, and 1- and 100-row CSV bodies."""
    paths = sample_data.write(work / "data")
    opt_ml = work / "opt_ml"
    shutil.copytree(Path(paths["train"]).parent, opt_ml / "input" / "data" / "train")
    (opt_ml / "input" / "config").mkdir(parents=True)
    (opt_ml / "input" / "config" / "hyperparameters.json").write_text("{}")
    result = subprocess.run(
        ["docker", "run", "--rm", "-v", f"{opt_ml}:/opt/ml", image, "train"], capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"training in {image} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return opt_ml / "model", bodies(Path(paths["holdout"]))


def train_in_process(work: Path) -> Path:
    """The same training entrypoint, run by this venv's Python (for the in-process table)."""
    opt_ml = work / "opt_ml_process"
    shutil.copytree(work / "opt_ml" / "input", opt_ml / "input")
    env = {**os.environ, "OPT_ML_ROOT": str(opt_ml), "PYTHONPATH": str(PROJECT_ROOT / "src")}
    subprocess.run([sys.executable, "-m", f"{PACKAGE}.steps.train"], env=env, check=True, capture_output=True)
    return opt_ml / "model"


def feature_lines(holdout: Path) -> list[bytes]:
    """One CSV line per holdout row, its feature columns only (label dropped), as a client sends it."""
    with holdout.open(newline="") as handle:
        reader = csv.reader(handle)
        label = next(reader).index(settings.LABEL_COLUMN)
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(
            [cell for i, cell in enumerate(row) if i != label] for row in reader
        )
    return out.getvalue().encode().splitlines(keepends=True)


def bodies(holdout: Path) -> dict[int, bytes]:
    """1- and 100-row CSV bodies (the holdout repeated when it has fewer rows)."""
    lines = feature_lines(holdout)
    return {1: lines[0], 100: b"".join(lines[i % len(lines)] for i in range(100))}


# ---- servers ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_ping(host: str, port: int, started: float, alive, timeout: float = 120) -> float:
    """Seconds from ``started`` to the first 200 on /ping.

    ``alive`` (a `docker inspect`, ~40 ms of CPU) runs at most every 0.5 s: polled every try, it
    took CPU from the start-up it times on a 2-core machine."""
    checked = started
    while time.monotonic() - started < timeout:
        if time.monotonic() - checked > 0.5:
            if not alive():
                raise RuntimeError("the server exited before /ping answered")
            checked = time.monotonic()
        try:
            connection = http.client.HTTPConnection(host, port, timeout=1)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"no 200 on /ping within {timeout} s")


@contextmanager
def container(image: str, model_dir: Path, workers: int):
    """``serve`` as SageMaker runs it; yields (bridge address, port, first /ping s, container id)."""
    started = time.monotonic()
    cid = subprocess.run(
        ["docker", "run", "-d", "-v", f"{model_dir}:/opt/ml/model:ro", "-e", f"MODEL_SERVER_WORKERS={workers}",
         image, "serve"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    try:
        # The bridge address, not a published port: docker-proxy would copy every byte once more.
        host = docker_inspect(cid)["NetworkSettings"]["IPAddress"]
        first = wait_for_ping(host, 8080, started, lambda: docker_inspect(cid)["State"]["Running"])
        yield host, 8080, first, cid
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


def docker_inspect(cid: str) -> dict:
    out = subprocess.run(["docker", "inspect", cid], capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]


def idle_memory_mib(cid: str) -> float:
    """The container's memory use (cgroup, as `docker stats` reports it) while idle."""
    out = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{% raw %}{{.MemUsage}}{% endraw %}", cid],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    value = out.split("/")[0].strip()
    for unit, scale in (("GiB", 1024), ("MiB", 1), ("KiB", 1 / 1024), ("B", 1 / 1024**2)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * scale
    raise ValueError(f"unreadable docker stats output {out!r}")


@contextmanager
def process_server(name: str, model_dir: Path, workers: int):
    """Our app or the baseline under the launcher's gunicorn settings, on loopback TCP."""
    port = free_port()
    env = {**os.environ, "OPT_ML_ROOT": str(model_dir.parent), "BASELINE_MODEL_DIR": str(model_dir)}
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT / "src"), str(Path(__file__).parent)])
    app = "serving:create_baseline_app()" if name == "baseline" else None
    command = gunicorn_command(f"127.0.0.1:{port}", workers, 60, *([app] if app else []))
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        first = wait_for_ping("127.0.0.1", port, started, lambda: process.poll() is None)
        yield "127.0.0.1", port, first, None
    finally:
        process.terminate()
        process.wait(timeout=30)


# ---- load -----------------------------------------------------------------------------------------
def load(host: str, port: int, body: bytes, concurrency: int, seconds: int, requests: int) -> dict:
    """One bounded burst: wrk for ``seconds`` when installed, else the Python client for ``requests``."""
    if shutil.which("wrk"):
        return wrk(host, port, body, concurrency, seconds)
    return python_client(host, port, body, concurrency, requests)


def wrk(host: str, port: int, body: bytes, concurrency: int, seconds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "body").write_bytes(body)
        (Path(tmp) / "post.lua").write_text(WRK_SCRIPT)
        result = subprocess.run(
            ["wrk", f"-t{min(concurrency, 2)}", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s",
             "-s", str(Path(tmp) / "post.lua"), f"http://{host}:{port}/invocations"],
            env={**os.environ, "BENCH_BODY": str(Path(tmp) / "body")},
            capture_output=True, text=True, timeout=seconds + 30,
        )  # fmt: skip
    line = next((line for line in result.stdout.splitlines() if line.startswith("{")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no figures: {result.stdout[-500:]}{result.stderr[-500:]}")
    return json.loads(line)


def python_client(host: str, port: int, body: bytes, concurrency: int, requests: int) -> dict:
    latencies: list[float] = []
    errors = [0]
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
                connection.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    shares = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]
    threads = [threading.Thread(target=client, args=(n,)) for n in shares]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ms = np.asarray(latencies) * 1000
    return {
        "requests": len(ms),
        "seconds": time.perf_counter() - start,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "errors": errors[0],
    }


def measure(servers: dict[str, tuple], body_of: dict[int, bytes], args) -> dict[str, dict[str, dict]]:
    """Every cell for every server, in interleaved rounds. p50/p99 are medians over the rounds."""
    for host, port, *_ in servers.values():  # warm-up: the first requests page in code and data
        load(host, port, body_of[1], 2, 1, 100)
    runs: dict[tuple[str, str], list[dict]] = {}
    for rows, concurrency in CELLS:
        for _ in range(args.rounds):
            for name, (host, port, *_) in servers.items():
                part = load(host, port, body_of[rows], concurrency, args.seconds, args.requests)
                runs.setdefault((name, f"{rows} x{concurrency}"), []).append(part)
    out: dict[str, dict[str, dict]] = {}
    for (name, cell), parts in runs.items():
        out.setdefault(name, {})[cell] = {
            "rps": sum(p["requests"] for p in parts) / sum(p["seconds"] for p in parts),
            "p50_ms": statistics.median(p["p50_ms"] for p in parts),
            "p99_ms": statistics.median(p["p99_ms"] for p in parts),
            "errors": sum(p["errors"] for p in parts),
        }
    return out


def first_pings(image: str, model_dir: Path, workers: int, starts: int) -> list[float]:
    times = []
    for _ in range(starts):
        with container(image, model_dir, workers) as (_, _, first, _):
            times.append(first)
    return times


def image_size_mb(image: str) -> float:
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", "{% raw %}{{.Size}}{% endraw %}", image],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return int(out) / 1e6


def build_ceiling(image: str) -> str:
    tag = image.rsplit(":", 1)[0] + "-ceiling:bench"
    subprocess.run(
        ["docker", "build", "-q", "-f", str(PROJECT_ROOT / "benchmarks/ceiling/Dockerfile"),
         "--build-arg", f"IMAGE={image}", "-t", tag, str(PROJECT_ROOT / "benchmarks/ceiling")],
        check=True, capture_output=True,
    )  # fmt: skip
    return tag


def image_available(image: str) -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0


# ---- report ---------------------------------------------------------------------------------------
def print_table(title: str, results: dict[str, dict[str, dict]], ours: str, reference: str) -> None:
    print(f"\n{title}")
    print(f"{'cell':<10} {'server':<9} {'rps':>7} {'p50 ms':>8} {'p99 ms':>8} {'p99/p50':>8} {'errors':>6} "
          f"{'/ ' + reference:>11}")  # fmt: skip
    for rows, concurrency in CELLS:
        cell = f"{rows} x{concurrency}"
        for name in (ours, reference):
            f = results[name][cell]
            ratio = f["rps"] / results[reference][cell]["rps"] if name == ours else 1.0
            print(
                f"{cell:<10} {name:<9} {f['rps']:>7.0f} {f['p50_ms']:>8.2f} {f['p99_ms']:>8.2f} "
                f"{f['p99_ms'] / f['p50_ms']:>8.2f} {f['errors']:>6} {ratio:>11.2f}"
            )


def image_table(args, work: Path, model_dir: Path, body_of: dict[int, bytes]) -> dict:
    ceiling = build_ceiling(args.image)
    images = {"image": args.image, "ceiling": ceiling}
    facts = {}
    for name, tag in images.items():
        pings = first_pings(tag, model_dir, args.workers, args.starts)
        facts[name] = {"tag": tag, "first_ping_s": pings, "size_mb": image_size_mb(tag)}
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(container(tag, model_dir, args.workers)) for name, tag in images.items()
        }
        time.sleep(2)  # let start-up work settle before the idle reading
        for name, (*_, cid) in servers.items():
            facts[name]["idle_memory_mib"] = idle_memory_mib(cid)
        results = measure(servers, body_of, args)
    baked = f"{settings.PROBLEM_TYPE}, {settings.MODEL_LIBRARY}"
    title = f"Table 1: the image vs the ceiling ({baked}), {args.workers} gunicorn workers"
    print_table(title, results, "image", "ceiling")
    print()
    for name, f in facts.items():
        pings = ", ".join(f"{p:.2f}" for p in f["first_ping_s"])
        print(
            f"{name:<8} {f['tag']}: first /ping 200 median {statistics.median(f['first_ping_s']):.2f} s "
            f"({pings}); size {f['size_mb']:.0f} MB; idle memory {f['idle_memory_mib']:.0f} MiB"
        )
    return {"cells": results, "facts": facts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="wrk: seconds per round and cell")
    parser.add_argument("--requests", type=int, default=600, help="Python client: requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per cell")
    parser.add_argument("--starts", type=int, default=5, help="docker runs timed to the first /ping")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="gunicorn workers")
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--no-image", action="store_true", help="only the in-process table")
    args = parser.parse_args()
    tool = "wrk" if shutil.which("wrk") else "a Python client (note: wrk not installed; figures are lower)"
    print(f"load: {tool}; {args.rounds} interleaved rounds per cell; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    out: dict = {}
    try:
        if not args.no_image and image_available(args.image):
            model_dir, body_of = train_in_image(args.image, work)
            out["image"] = image_table(args, work, model_dir, body_of)
            process_model = train_in_process(work)
        else:
            print(f"\nimage {args.image} not found (or no Docker): Table 1 skipped; make build-offline first")
            paths = sample_data.write(work / "data")
            (work / "opt_ml" / "input" / "data").mkdir(parents=True)
            shutil.copytree(Path(paths["train"]).parent, work / "opt_ml" / "input" / "data" / "train")
            (work / "opt_ml" / "input" / "config").mkdir()
            (work / "opt_ml" / "input" / "config" / "hyperparameters.json").write_text("{}")
            body_of = bodies(Path(paths["holdout"]))
            process_model = train_in_process(work)
        with ExitStack() as stack:
            servers = {
                name: stack.enter_context(process_server(name, process_model, args.workers))
                for name in ("process", "baseline")
            }
            results = measure(servers, body_of, args)
        print_table("Table 2: in process, our app vs the per-request pandas handler (same gunicorn settings)",
                    results, "process", "baseline")  # fmt: skip
        out["process"] = results
        target = PROJECT_ROOT / ".local-pipeline" / "bench" / "serving.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(out, indent=2))
        print(f"\nwritten: {target}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
