"""A bounded mixed load on the real gunicorn server: every valid request answered exactly as the
library predicts, every malformed one (lists, objects, deep nesting in cells, wrong widths, broken
bodies) refused with a 4xx, no 5xx, and no worker dies (pids unchanged). Loopback only."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor

import gunicorn_server
import pytest
from gunicorn_server import request
from serving_bodies import csv_body, expected, parse_csv

from {{ cookiecutter.package_name }}.settings import PROBLEM_TYPE

pytestmark = pytest.mark.slow
REQUESTS, CONCURRENCY = 1500, 16


def malformed(width: int) -> list[tuple[bytes, str]]:
    deep = "[" * 1000 + "1" + "]" * 1000
    return [
        (b"", "text/csv"),
        (b"1,2,3\n", "text/csv"),
        (b"\xff\xfe\x00garbage", "text/csv"),
        (b'{"instances": [[1, 2]', "application/json"),
        (json.dumps([[[1, 2]] * width]).encode(), "application/json"),
        (json.dumps([[{"a": 1}] * width]).encode(), "application/json"),
        (json.dumps([[[]] * width]).encode(), "application/json"),
        (("[[" + ",".join([deep] * width) + "]]").encode(), "application/json"),
        (b"<xml/>", "application/xml"),
    ]


def test_mixed_load_keeps_every_worker_and_answer(served, project_root, tmp_path):
    predictor, holdout, model_dir = served
    names = predictor.feature_names
    rng = random.Random(7)
    bad = malformed(len(names))
    plan = []
    for _ in range(REQUESTS):
        if rng.random() < 0.1:
            plan.append((*rng.choice(bad), None))
        else:
            i = rng.randrange(holdout.n_rows)
            rows = holdout.take(slice(i, i + 1))
            plan.append((csv_body(rows, names).encode(), "text/csv", rows))
    with gunicorn_server.gunicorn(model_dir, project_root, tmp_path) as (port, master):
        before = gunicorn_server.workers(master)

        def send(item):
            body, content_type, _ = item
            status, _, data = request(port, "POST", "/invocations", body, {"Content-Type": content_type})
            return item, status, data

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            results = list(pool.map(send, plan))
        after = gunicorn_server.workers(master)
    assert len(before) == 2 and after == before, "a worker died or was replaced"
    assert [s for _, s, _ in results if s >= 500] == []
    wrong = []
    for (_, _, rows), status, data in results:
        if rows is None:
            assert 400 <= status < 500, data[:200]
            continue
        assert status == 200, data[:200]
        answer, want = parse_csv(data.decode(), PROBLEM_TYPE), expected(predictor, rows)
        numbers = {"regression": "values", "binary": "scores"}.get(PROBLEM_TYPE, "probabilities")
        if answer[numbers] != getattr(want, numbers).tolist():
            wrong.append(data[:200])
    assert wrong == []
    n_bad = sum(1 for *_, rows in plan if rows is None)
    print(f"\nload: {REQUESTS} requests at concurrency {CONCURRENCY}, {n_bad} malformed (all 4xx), 0 5xx")
    assert n_bad > 100
