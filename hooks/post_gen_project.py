"""Shape the generated project: set run bits, print next steps.

One state machine serves every option (train or tune is the execution input's ``tune``), so no
file is pruned any more.

Runs inside the new project folder. The functions are importable so tests can call them.
"""

from __future__ import annotations

import stat
from pathlib import Path

EXECUTABLES = (
    "container/train",
    "container/serve",
    "container/validate",
    "container/evaluate",
    "container/as-model-user",
    "container/offline/build_base_image.sh",
    "container/offline/build_wheelhouse.sh",
)


def set_run_bits(root: Path) -> None:
    for name in EXECUTABLES:
        path = root / name
        if path.exists():
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


NEXT_STEPS = """
Created {slug}/. Next:
  cd {slug}
  make install          # virtualenv with the project, moto and SageMaker local mode
  make test             # unit, contract and static checks (Docker tests need a daemon)
  make local-pipeline   # the whole Step Functions flow offline (RUNTIME=process without Docker)
  git init && git push  # then set the CI variables in README.md to deploy from GitLab
"""


def main() -> None:
    root = Path.cwd()
    set_run_bits(root)
    print(NEXT_STEPS.format(slug="{{ cookiecutter.project_slug }}"))


if __name__ == "__main__":
    main()
