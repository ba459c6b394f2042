"""Counts the import searches that reach the file system while the app serves (issue 13).

    python tests/support/import_spy.py MODEL_DIR [--no-cache]

Runs in its own process (it changes the import system). The image has no pandas; here it may be
installed, so the spy hides it (and pyarrow, polars) the way a missing package looks: sys.path's
finder answers "not found". The spy replaces that finder and counts every search that gets to it,
i.e. every search that would scan sys.path. ``--no-cache`` takes the serving app's absent-module
finders out again after start-up, to show what the spy sees without them. Prints one JSON object:
{"warm_up": searches during /ping, "requests": n, "per_request": searches per request, "names": [...]}
"""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types
from collections import Counter
from pathlib import Path

HIDDEN = ("pandas", "pyarrow", "polars")


class Spy:
    """sys.path's finder, counting its searches and hiding HIDDEN packages."""

    def __init__(self) -> None:
        self.searches: Counter[str] = Counter()

    def find_spec(self, name: str, path: object = None, target: object = None):
        self.searches[name] += 1
        if name.split(".")[0] in HIDDEN:
            return None
        return importlib.machinery.PathFinder.find_spec(name, path, target)

    def invalidate_caches(self) -> None:
        importlib.machinery.PathFinder.invalidate_caches()

    def find_distributions(self, *args, **kwargs):  # importlib.metadata asks sys.path's finder too
        return importlib.machinery.PathFinder.find_distributions(*args, **kwargs)


def main(argv: list[str]) -> int:
    model_dir, no_cache = Path(argv[0]), "--no-cache" in argv
    spy = Spy()
    sys.meta_path[:] = [spy if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
    from {{ cookiecutter.package_name }}.serving import imports
    from {{ cookiecutter.package_name }}.serving.app import create_app

    client = create_app(model_dir, inference=types.SimpleNamespace()).test_client()  # the default functions
    if no_cache:
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, imports._Refuse | imports._Record)]
    spy.searches.clear()
    assert client.get("/ping").status_code == 200
    warm_up = sum(spy.searches.values())
    spy.searches.clear()
    bodies = _bodies(client.application.extensions["serving"].predictor)
    for content_type, body, status in bodies:
        reply = client.post("/invocations", data=body, content_type=content_type)
        assert reply.status_code == status, reply.get_data(as_text=True)
    print(
        json.dumps(
            {
                "warm_up": warm_up,
                "requests": len(bodies),
                "per_request": sum(spy.searches.values()) / len(bodies),
                "names": sorted(spy.searches),
            }
        )
    )
    return 0


def _bodies(predictor) -> list[tuple[str, bytes, int]]:
    """Request shapes of every kind: CSV and JSON, 1 and 100 rows, missing and unseen cells, a 400."""
    row = list(predictor.example)
    holes = [None if i % 3 == 0 else v for i, v in enumerate(row)]
    unseen = [
        "never-seen" if k == "categorical" else v for k, v in zip(predictor.feature_kinds, row, strict=True)
    ]

    def csv_line(cells: list) -> str:
        return ",".join("" if v is None else str(v) for v in cells) + "\n"

    names = predictor.feature_names
    return [
        ("text/csv", csv_line(row).encode(), 200),
        ("text/csv", (csv_line(row) * 100).encode(), 200),
        ("text/csv", csv_line(holes).encode(), 200),
        ("application/json", json.dumps([row, unseen]).encode(), 200),
        (
            "application/json",
            json.dumps({"instances": [dict(zip(names, row, strict=True))] * 10}).encode(),
            200,
        ),
        ("application/json", json.dumps([[*row, 1]]).encode(), 400),
    ] * 5


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
