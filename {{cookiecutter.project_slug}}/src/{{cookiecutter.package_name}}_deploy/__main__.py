"""``python -m <package>_deploy <command>``: the deploy CLI (cli.py)."""

from .cli import main

raise SystemExit(main())
