"""Bounded mixed load on the serving stack: valid and malformed requests at high concurrency.

    python benchmarks/load.py [--requests 10000] [--concurrency 32] [--malformed 0.1] [--runtime image|process]

Every valid request must come back 200 with the model's own answer (the CSV line the library's
prediction gives; numbers within 1e-6, the compiled predictor's tolerance), every malformed one a 4xx
with a message, none a 5xx, and no worker may die (gunicorn's worker pids are compared before
and after). Prints requests per second and p50/p99 latency. Loopback only, bounded in count.
"""

from __future__ import annotations

import argparse
import http.client
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving as bench

# Bodies a careless or hostile client sends: each must be refused with a 4xx.
MALFORMED: list[tuple[bytes, str]] = [
    (b"", "text/csv"),
    (b"1,2,3\n", "text/csv"),
    (b"not,a,number\n", "text/csv"),
    (b"\xff\xfe\x00garbage", "text/csv"),
    (b'{"instances": [[1, 2]', "application/json"),
    (b'{"rows": []}', "application/json"),
    (b"<xml/>", "application/xml"),
    (b"1," * 40 + b"\n", "text/csv"),
]


@dataclass
class Outcome:
    latencies_ms: list[float] = field(default_factory=list)
    valid_ok: int = 0
    valid_wrong: list[str] = field(default_factory=list)
    malformed_4xx: int = 0
    server_errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def plan(
    rows: list[bytes], requests: int, malformed_share: float, seed: int
) -> list[tuple[bytes, str, int | None]]:
    """(body, content type, index of the valid row or None for a malformed body) per request."""
    rng = random.Random(seed)
    out = []
    for _ in range(requests):
        if rng.random() < malformed_share:
            body, content_type = rng.choice(MALFORMED)
            out.append((body, content_type, None))
        else:
            i = rng.randrange(len(rows))
            out.append((rows[i], "text/csv", i))
    return out


def same_answer(line: str, want: list) -> bool:
    """A CSV answer line against the library's own cells: text exactly, numbers within 1e-6 (what
    training checks before it ships a compiled predictor)."""
    cells = line.split(",")
    if len(cells) != len(want):
        return False
    for cell, wanted in zip(cells, want, strict=True):
        if isinstance(wanted, float):
            if abs(float(cell) - wanted) > 1e-6:
                return False
        elif cell != str(wanted):
            return False
    return True


def run(host: str, port: int, rows: list[bytes], expected: list[list], requests: int, concurrency: int,
        malformed_share: float, seed: int = 0) -> dict:  # fmt: skip
    work = plan(rows, requests, malformed_share, seed)
    outcome = Outcome()
    lock = threading.Lock()

    def client(items: list[tuple[bytes, str, int | None]]) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=60)
        local = Outcome()
        for body, content_type, row in items:
            start = time.perf_counter()
            connection.request("POST", "/invocations", body=body, headers={"Content-Type": content_type})
            response = connection.getresponse()
            payload = response.read()
            local.latencies_ms.append((time.perf_counter() - start) * 1000)
            status = response.status
            if status >= 500:
                local.server_errors.append(f"{status}: {payload[:200]!r}")
            elif row is None:
                if 400 <= status < 500 and payload.strip():
                    local.malformed_4xx += 1
                else:
                    local.unexpected.append(f"malformed body answered {status}")
            elif status != 200:
                local.unexpected.append(f"valid row {row} answered {status}: {payload[:200]!r}")
            else:
                line = payload.decode().splitlines()[-1]  # multiclass CSV starts with a header line
                if same_answer(line, expected[row]):
                    local.valid_ok += 1
                else:
                    local.valid_wrong.append(f"row {row}: {line} != {expected[row]}")
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
        with lock:
            outcome.latencies_ms += local.latencies_ms
            outcome.valid_ok += local.valid_ok
            outcome.valid_wrong += local.valid_wrong
            outcome.malformed_4xx += local.malformed_4xx
            outcome.server_errors += local.server_errors
            outcome.unexpected += local.unexpected

    threads = [threading.Thread(target=client, args=(work[i::concurrency],)) for i in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    latencies = np.asarray(outcome.latencies_ms)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "valid": sum(1 for _, _, row in work if row is not None),
        "malformed": sum(1 for _, _, row in work if row is None),
        "valid_ok": outcome.valid_ok,
        "valid_wrong": outcome.valid_wrong,
        "malformed_4xx": outcome.malformed_4xx,
        "server_errors": outcome.server_errors,
        "unexpected": outcome.unexpected,
        "rps": requests / seconds,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--malformed", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runtime", choices=["image", "process"], default=None)
    args = parser.parse_args()
    runtime = args.runtime or ("image" if bench.image_available(bench.IMAGE) else "process")
    work = Path(tempfile.mkdtemp(prefix="load-"))
    try:
        model_dir, rows, expected = train_sample_model(work, runtime)
        if runtime == "image":
            server = bench.container(bench.IMAGE, model_dir, args.workers)
        else:
            server = bench.process_server("process", model_dir, args.workers)
        with server as (host, port, _first_ping, _id):
            result = run(host, port, rows, expected, args.requests, args.concurrency, args.malformed)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load ({runtime}, {args.workers} workers): {result['requests']} requests at concurrency {result['concurrency']}, "
          f"{result['malformed']} malformed")  # fmt: skip
    print(f"  {result['rps']:.0f} rps, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms")
    print(f"  valid correct {result['valid_ok']}/{result['valid']}, malformed 4xx {result['malformed_4xx']}/{result['malformed']}, "
          f"5xx {len(result['server_errors'])}, other {len(result['unexpected']) + len(result['valid_wrong'])}")  # fmt: skip
    for line in (result["server_errors"] + result["unexpected"] + result["valid_wrong"])[:5]:
        print(f"  e.g. {line}")
    failed = result["server_errors"] or result["unexpected"] or result["valid_wrong"]
    sys.exit(1 if failed else 0)


def train_sample_model(work: Path, runtime: str) -> tuple[Path, list[bytes], list[list]]:
    """The sample model (trained by the image or in process), one CSV body per holdout row, and
    the CSV cells the library itself answers for each row."""
    from {{ cookiecutter.package_name }}.data import read_csv
    from {{ cookiecutter.package_name }}.predictor import Predictor

    if runtime == "image":
        model_dir, _ = bench.train_in_image(bench.IMAGE, work)
    else:
        paths = bench.sample_data.write(work / "data")
        shutil.copytree(Path(paths["train"]).parent, work / "opt_ml" / "input" / "data" / "train")
        (work / "opt_ml" / "input" / "config").mkdir(parents=True)
        (work / "opt_ml" / "input" / "config" / "hyperparameters.json").write_text("{}")
        model_dir = bench.train_in_process(work)
    holdout = work / "data" / "holdout" / "holdout.csv"
    rows = bench.feature_lines(holdout)
    predictor = Predictor.load(model_dir)
    result = predictor.predict(predictor.features(read_csv(holdout)))
    if result.values is not None:
        expected = [[v] for v in result.values.tolist()]
    elif result.scores is not None:
        scores = result.scores.tolist()
        expected = [[label, p] for label, p in zip(result.labels.tolist(), scores, strict=True)]
    else:
        rows_p = result.probabilities.tolist()
        expected = [[label, *p] for label, p in zip(result.labels.tolist(), rows_p, strict=True)]
    return model_dir, rows, expected


if __name__ == "__main__":
    main()
