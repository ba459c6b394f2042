"""What a skops file needs beyond ``model.SKOPS_TYPES``: run it after swapping the estimator.

python -m {{ cookiecutter.package_name }}.skops_types model/model.skops
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import model
from .model_files import allowed_loaders, skops_schema, skops_types


def main(argv: list[str] | None = None) -> int:
    """List what a skops file needs beyond ``model.SKOPS_TYPES`` (after swapping the estimator).

    python -m {{ cookiecutter.package_name }}.skops_types model/model.skops
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m {{ cookiecutter.package_name }}.skops_types PATH/model.skops", file=sys.stderr)
        return 2
    types, loaders = skops_types(skops_schema(Path(args[0])))
    extra = sorted(types - model.SKOPS_TYPES)
    kinds = sorted(loaders - allowed_loaders(frozenset(types), model.SKOPS_NODE_KINDS))
    for name in extra:
        print(name)
    if kinds:
        print(f"node kinds for model.SKOPS_NODE_KINDS: {', '.join(kinds)}", file=sys.stderr)
    if "__reduce__" in kinds:
        print(
            "__reduce__: a node calls a constructor the file names; no declaration allows it", file=sys.stderr
        )
    return 1 if extra or kinds else 0


if __name__ == "__main__":
    raise SystemExit(main())
