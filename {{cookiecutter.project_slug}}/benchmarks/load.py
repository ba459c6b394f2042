"""Bounded mixed load on the serving stack: valid and malformed requests at high concurrency.

    python benchmarks/load.py [--requests 10000] [--concurrency 32] [--malformed 0.1] [--runtime image|process]

Every valid request must come back 200 with the model's exact scores, every malformed one a 4xx
with a message, none a 5xx, and no worker may die (gunicorn's worker pids are compared before
and after). Prints requests per second and p50/p99 latency. Loopback only, bounded in count.
"""

from __future__ import annotations

import argparse
import http.client
import random
import sys
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
    X: np.ndarray, requests: int, malformed_share: float, seed: int
) -> list[tuple[bytes, str, int | None]]:
    """(body, content type, index of the valid row or None for a malformed body) per request."""
    rng = random.Random(seed)
    out = []
    for _ in range(requests):
        if rng.random() < malformed_share:
            body, content_type = rng.choice(MALFORMED)
            out.append((body, content_type, None))
        else:
            i = rng.randrange(len(X))
            out.append((",".join(repr(float(v)) for v in X[i]).encode() + b"\n", "text/csv", i))
    return out


def run(host: str, port: int, X: np.ndarray, expected: np.ndarray, requests: int, concurrency: int,
        malformed_share: float, seed: int = 0) -> dict:  # fmt: skip
    work = plan(X, requests, malformed_share, seed)
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
                score = float(payload.decode().split(",")[1])
                if abs(score - expected[row]) > 1e-12:
                    local.valid_wrong.append(f"row {row}: {score} != {expected[row]}")
                else:
                    local.valid_ok += 1
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
    model_dir, X = train_sample_model()
    model = bench.Model.load(model_dir)
    runtime = args.runtime or ("image" if bench.image_available(bench.IMAGE) else "process")
    if runtime == "image":
        server = bench.image_server(bench.IMAGE, model_dir, args.workers)
    else:
        server = bench.process_server("process", model_dir, args.workers)
    with server as (host, port, _first_ping, _memory):
        result = run(host, port, X, model.predict_proba(X), args.requests, args.concurrency, args.malformed)
    print(f"load ({runtime}, {args.workers} workers): {result['requests']} requests at concurrency {result['concurrency']}, "
          f"{result['malformed']} malformed")  # fmt: skip
    print(f"  {result['rps']:.0f} rps, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms")
    print(f"  valid correct {result['valid_ok']}/{result['valid']}, malformed 4xx {result['malformed_4xx']}/{result['malformed']}, "
          f"5xx {len(result['server_errors'])}, other {len(result['unexpected']) + len(result['valid_wrong'])}")  # fmt: skip
    failed = result["server_errors"] or result["unexpected"] or result["valid_wrong"]
    sys.exit(1 if failed else 0)


def train_sample_model() -> tuple[Path, np.ndarray]:
    """The sample model in a fresh folder, and the holdout rows to send."""
    import tempfile

    out = Path(tempfile.mkdtemp(prefix="load-"))
    paths = bench.sample_data.write(out / "data")
    table = bench.read_csv(paths["train"])
    features = [c for c in table.columns if c != bench.LABEL_COLUMN]
    model_dir = out / "opt_ml" / "model"
    bench.Model(features).fit(table.matrix(features), table.data[bench.LABEL_COLUMN]).save(model_dir)
    return model_dir, bench.read_csv(paths["holdout"]).matrix(features)


if __name__ == "__main__":
    main()
