"""The digest of every file in a model folder, and one manifest digest over them (issue 22).

Evaluate records both for the folder it scored (``decision.json``: ``model_files``,
``model_files_sha256``); the state machine passes the manifest digest to the model as
``MODEL_FILES_SHA256`` (CreateModel's ``PrimaryContainer.Environment``); the serving launcher
recomputes it over ``/opt/ml/model`` and refuses to start on a difference, before any library reads
a byte. So the files an endpoint serves are the files the gate scored, whatever the bucket holds.

- ``file_digests(folder)``: relative POSIX path -> SHA-256 of every regular file below ``folder``,
  read in chunks (a model may not fit in memory). Nothing is followed: a symbolic link, a device,
  a FIFO or a socket anywhere in the folder is refused with one line naming it, so every byte
  hashed lies inside the folder.
- ``manifest_sha256(files)``: SHA-256 over the sorted ``path\\0sha256\\n`` lines, so adding,
  removing, renaming or changing any file changes it (a NUL cannot occur in a path, so no two
  folders give the same lines).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path

CHUNK = 1024 * 1024
# The variable CreateModel sets from the execution's decision (pipeline/state_machine.asl.json).
MANIFEST_ENV = "MODEL_FILES_SHA256"
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class ModelDigestError(ValueError):
    """A model folder whose files cannot be digested as they are; the message names the path."""


def file_sha256(path: Path) -> str:
    """SHA-256 of one regular file, opened without following a link (a file swapped for a link
    or a FIFO after the folder was listed is refused, and never blocks the open)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        raise ModelDigestError(f"{path}: cannot open the model file ({error.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ModelDigestError(f"{path}: not a regular file; a model folder holds regular files only")
        digest = hashlib.sha256()
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _regular_files(folder: Path, root: Path) -> list[Path]:
    """Every regular file below ``folder``; ModelDigestError for anything else but a folder."""
    found: list[Path] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            path = Path(entry.path)
            if entry.is_symlink():
                raise ModelDigestError(
                    f"{path}: a symbolic link in the model folder {root}; model files must be regular files"
                )
            if entry.is_dir(follow_symlinks=False):
                found.extend(_regular_files(path, root))
            elif entry.is_file(follow_symlinks=False):
                found.append(path)
            else:
                raise ModelDigestError(
                    f"{path}: a special file (device, FIFO or socket) in the model folder {root}; "
                    "model files must be regular files"
                )
    return found


def file_digests(folder: Path | str) -> dict[str, str]:
    """Relative POSIX path -> SHA-256 of every regular file below ``folder``, sorted by path."""
    root = Path(folder)
    if root.is_symlink() or not root.is_dir():
        raise ModelDigestError(f"{root}: not a folder (a model folder must be a real directory)")
    digests = {path.relative_to(root).as_posix(): file_sha256(path) for path in _regular_files(root, root)}
    return dict(sorted(digests.items()))


def manifest_sha256(files: Mapping[str, str]) -> str:
    """SHA-256 over the sorted ``path\\0sha256\\n`` lines of ``files`` (path -> sha256)."""
    digest = hashlib.sha256()
    for path in sorted(files):
        # surrogateescape: a name that is not UTF-8 hashes as its bytes, not as an error
        digest.update(f"{path}\0{files[path]}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def folder_manifest(folder: Path | str) -> tuple[dict[str, str], str]:
    """(path -> sha256, manifest digest) of ``folder``."""
    files = file_digests(folder)
    return files, manifest_sha256(files)
