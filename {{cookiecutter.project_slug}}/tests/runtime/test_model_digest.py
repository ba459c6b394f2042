"""The model folder's per-file digests and manifest digest (model_digest.py, issue 22)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import model_digest


def make_folder(folder: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return folder


FILES = {"metadata.json": b'{"a": 1}', "model.onnx": b"\x08\x01onnx", "sub/extra.bin": b"\x00" * 10}


def test_digests_are_every_file_by_relative_posix_path(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", FILES)
    assert model_digest.file_digests(folder) == {
        name: hashlib.sha256(content).hexdigest() for name, content in FILES.items()
    }


def test_manifest_is_the_sha256_of_the_sorted_path_nul_digest_lines(tmp_path: Path) -> None:
    files, manifest = model_digest.folder_manifest(make_folder(tmp_path / "m", FILES))
    lines = "".join(f"{name}\0{hashlib.sha256(FILES[name]).hexdigest()}\n" for name in sorted(FILES))
    assert manifest == hashlib.sha256(lines.encode()).hexdigest()
    assert list(files) == sorted(FILES)


def test_manifest_is_stable_across_runs_and_creation_order(tmp_path: Path) -> None:
    forward = make_folder(tmp_path / "forward", FILES)
    backward = make_folder(tmp_path / "backward", dict(reversed(list(FILES.items()))))
    first = model_digest.folder_manifest(forward)
    assert model_digest.folder_manifest(forward) == first == model_digest.folder_manifest(backward)
    # The mapping's order does not matter either.
    assert model_digest.manifest_sha256(dict(reversed(list(first[0].items())))) == first[1]


@pytest.mark.parametrize("change", ["add", "remove", "rename", "byte", "move into a folder"])
def test_any_change_to_the_files_changes_the_manifest(tmp_path: Path, change: str) -> None:
    folder = make_folder(tmp_path / "m", FILES)
    _, before = model_digest.folder_manifest(folder)
    if change == "add":
        (folder / "empty").write_bytes(b"")
    elif change == "remove":
        (folder / "sub" / "extra.bin").unlink()
    elif change == "rename":
        (folder / "model.onnx").rename(folder / "model.onnx.bak")
    elif change == "byte":
        data = bytearray((folder / "model.onnx").read_bytes())
        data[-1] ^= 1
        (folder / "model.onnx").write_bytes(bytes(data))
    else:
        shutil.move(folder / "model.onnx", folder / "sub" / "model.onnx")
    assert model_digest.folder_manifest(folder)[1] != before


def test_a_symlink_is_refused_in_one_line_naming_it(tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.write_bytes(b"outside the folder")
    folder = make_folder(tmp_path / "m", FILES)
    (folder / "sub" / "model.skops").symlink_to(outside)
    with pytest.raises(model_digest.ModelDigestError) as refused:
        model_digest.file_digests(folder)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{folder / 'sub' / 'model.skops'}: a symbolic link in the model folder")


def test_a_symlinked_folder_is_refused_not_followed(tmp_path: Path) -> None:
    elsewhere = make_folder(tmp_path / "elsewhere", {"x": b"1"})
    folder = make_folder(tmp_path / "m", FILES)
    (folder / "linked").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(model_digest.ModelDigestError, match="linked: a symbolic link"):
        model_digest.file_digests(folder)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", FILES)
    os.mkfifo(folder / "pipe")
    with pytest.raises(model_digest.ModelDigestError, match=r"pipe: a special file .* regular files"):
        model_digest.file_digests(folder)


def test_the_folder_itself_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(model_digest.ModelDigestError, match="not a folder"):
        model_digest.file_digests(tmp_path / "missing")
