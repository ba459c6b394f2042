"""Service-layer modules for the tests: the project's inference.py, the defaults commented in it, the
README's example, and small modules a test writes, each loaded as a module of the package.

README.md's "The service layer" holds its example in the ```python block after the line
``<!-- inference.py example -->``; the tests load that text, so the README's code is the code
they run. ``replace_fenced`` puts code between inference.py's REPLACE THIS fences, as a user does.
"""

from __future__ import annotations

import linecache
import re
import textwrap
import types
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "{{ cookiecutter.package_name }}"
INFERENCE = PROJECT_ROOT / "src" / PACKAGE / "inference.py"
README = PROJECT_ROOT / "README.md"
FENCE_OPEN = "# ---- REPLACE THIS WITH YOUR OWN CODE ----"
FENCE_CLOSE = "# ----"
EXAMPLE_MARKER = "<!-- inference.py example -->"


def _fence(lines: list[str]) -> tuple[int, int]:
    start = lines.index(FENCE_OPEN)
    return start, lines.index(FENCE_CLOSE, start + 1)


def fenced(text: str) -> str:
    """The code between the REPLACE THIS fences of an inference.py."""
    lines = text.splitlines()
    start, end = _fence(lines)
    return "\n".join(lines[start + 1 : end]) + "\n"


def replace_fenced(text: str, code: str) -> str:
    """``text`` (an inference.py) with ``code`` between its fences instead of what was there."""
    lines = text.splitlines()
    start, end = _fence(lines)
    # Two blank lines before the closing fence, as ruff format puts them after a function.
    code_lines = [*code.rstrip("\n").splitlines(), "", ""]
    return "\n".join([*lines[: start + 1], *code_lines, *lines[end:]]) + "\n"


def commented_defaults(text: str) -> str | None:
    """The fenced code uncommented when every line of it is a comment (the template as shipped),
    else None (the user has written code there)."""
    lines = fenced(text).splitlines()
    if not all(line.startswith("#") for line in lines if line.strip()):
        return None
    return "\n".join(re.sub(r"^# ?", "", line) for line in lines) + "\n"


def readme_example(readme: Path = README) -> str:
    """The ```python block that follows the example marker in the README."""
    text = readme.read_text()
    after = text[text.index(EXAMPLE_MARKER) :]
    match = re.search(r"```python\n(.*?)```", after, re.DOTALL)
    assert match, f"no ```python block after {EXAMPLE_MARKER} in {readme}"
    return match.group(1)


def module_from(source: str, name: str = "inference_under_test") -> types.ModuleType:
    """``source`` run as a module of the package (relative imports work); tracebacks show its lines."""
    module = types.ModuleType(f"{PACKAGE}.{name}")
    module.__package__ = PACKAGE
    module.__file__ = f"<{name}>"
    source = textwrap.dedent(source)
    linecache.cache[module.__file__] = (len(source), None, source.splitlines(True), module.__file__)
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module
