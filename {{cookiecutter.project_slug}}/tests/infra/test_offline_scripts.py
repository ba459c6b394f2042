"""The offline build scripts: where the base image's apt mirror comes from.

The mirror is never written in the project; build_base_image.sh reads it from the machine's apt
configuration at run time. APT_DIR points the script at a fake configuration here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.settings import MODEL_LIBRARY

DEB822 = """\
# Types: deb
# URIs: http://commented.example/debian
Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
"""
ONE_LINE = """\
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian.gpg] http://security.example/debian-security bookworm-security main
deb http://mirror.example/debian bookworm main
"""


def print_mirror(project_root: Path, apt_dir: Path) -> subprocess.CompletedProcess:
    script = project_root / "container" / "offline" / "build_base_image.sh"
    return subprocess.run(
        ["sh", str(script), "--print-mirror"],
        env={"PATH": "/usr/bin:/bin", "APT_DIR": str(apt_dir)},
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("layout", ["deb822", "one-line"])
def test_mirror_is_the_bookworm_source_and_comments_are_skipped(project_root, tmp_path, layout):
    if layout == "deb822":
        (tmp_path / "sources.list.d").mkdir()
        (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    else:
        (tmp_path / "sources.list").write_text(ONE_LINE)
    result = print_mirror(project_root, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "http://mirror.example/debian"


def test_no_mirror_is_a_clear_error(project_root, tmp_path):
    (tmp_path / "sources.list").write_text("# deb http://commented.example/debian bookworm main\n")
    result = print_mirror(project_root, tmp_path)
    assert result.returncode == 1
    assert "no apt mirror found" in result.stderr and "set MIRROR=http://" in result.stderr


def lock_problems(path: Path) -> list[str]:
    """Parsed by pip's own requirements-file parser (the one the image build runs; pip has no public
    API for it): each requirement not pinned with == or carrying no wheel sha256 (the image installs
    with --require-hashes, issue 22)."""
    from pip._internal.network.session import PipSession
    from pip._internal.req.req_file import parse_requirements

    problems = []
    for requirement in parse_requirements(str(path), PipSession()):
        specifier = requirement.requirement.strip()
        if not re.fullmatch(r"[A-Za-z0-9_.-]+==[\w.]+", specifier):
            problems.append(f"{specifier}: not an exact pin")
        hashes = requirement.options.get("hashes", {}).get("sha256", [])
        if not hashes or not all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes):
            problems.append(f"{specifier}: no sha256")
    return problems


def test_requirements_are_an_exact_lock_with_hashes(project_root, tmp_path):
    lock = project_root / "container" / "requirements.txt"
    assert lock_problems(lock) == []
    # The check can fail: a pin without its hash (the line before it loses its continuation).
    text = lock.read_text()
    unhashed = re.sub(r"^(scipy==\S+) \\\n    --hash=sha256:[0-9a-f]{64}$", r"\1", text, flags=re.M)
    assert unhashed != text
    (tmp_path / "requirements.txt").write_text(unhashed)
    pin = re.search(r"^scipy==[\w.]+", text, flags=re.M).group(0)
    assert lock_problems(tmp_path / "requirements.txt") == [f"{pin}: no sha256"]
    parsed = (project_root / "container" / "requirements.txt").read_text().splitlines()
    names = {line.split("==")[0] for line in parsed if "==" in line and not line.startswith("#")}
    direct = {"numpy", "scipy", "scikit-learn", "flask", "gunicorn", "orjson", "boto3"}
    # The model library's own package: skops stores scikit-learn models; the boosters ship their own.
    library = {"scikit-learn": "skops", "xgboost": "xgboost-cpu", "lightgbm": "lightgbm"}[MODEL_LIBRARY]
    assert direct | {library} <= names
    assert not ({"skops", "xgboost-cpu", "lightgbm"} - {library}) & names  # no other library's weight


def test_slim_keeps_copyrights_and_drops_what_a_server_never_reads(project_root, tmp_path):
    root = tmp_path / "rootfs"
    files = {
        "usr/share/doc/nginx/copyright": "kept",
        "usr/share/doc/nginx/changelog.Debian.gz": "dropped",
        "usr/share/man/man1/nginx.1.gz": "dropped",
        "usr/share/locale/de/LC_MESSAGES/apt.mo": "dropped",
        "usr/share/locale/locale.alias": "kept",
        "var/lib/apt/lists/mirror.example_dists_bookworm_InRelease": "dropped",
        "var/cache/apt/archives/nginx.deb": "dropped",
        "usr/lib/python3.11/os.py": "kept",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    script = project_root / "container" / "offline" / "build_base_image.sh"
    result = subprocess.run(["sh", str(script), "--slim", str(root)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert {name for name in files if (root / name).exists()} == {
        name for name, text in files.items() if text == "kept"
    }
    # Later apt-get installs in a derived image keep the same filter (as debian:*-slim does).
    dpkg_filter = (root / "etc/dpkg/dpkg.cfg.d/slim").read_text().splitlines()
    assert "path-exclude /usr/share/doc/*" in dpkg_filter
    assert "path-include /usr/share/doc/*/copyright" in dpkg_filter
    assert "MB without translations" in result.stdout


def test_base_image_has_the_system_libraries_the_wheels_need(project_root):
    script = (project_root / "container" / "offline" / "build_base_image.sh").read_text()
    packages = next(line for line in script.splitlines() if line.startswith("PACKAGES=")).split("=")[1]
    # libgomp1: LightGBM's manylinux wheel links the system OpenMP runtime.
    wanted = {"python3", "python3-venv", "nginx-light", "ca-certificates", "libgomp1"}
    assert set(packages.split(",")) >= wanted
    dockerfile = (project_root / "container" / "Dockerfile").read_text()
    assert 'missing="$missing libgomp1"' in dockerfile  # the public-base path installs it too
