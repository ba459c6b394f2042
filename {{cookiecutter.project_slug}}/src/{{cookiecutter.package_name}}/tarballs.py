"""The one safe tarball extraction and creation (model.tar.gz, job outputs).

``extract`` reads the member list first and refuses, before writing anything, an archive whose
member count or total unpacked size is over the caps (a 1 MB tar can hold 1 GiB of zeros; 100k
empty members exhaust inodes and time), then extracts with the standard library's ``data`` filter,
which refuses absolute paths, ``..``, links out of the folder and device files (PEP 706). The caps
default to ``settings.MAX_ARCHIVE_BYTES`` / ``settings.MAX_ARCHIVE_MEMBERS``.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from . import settings


class ArchiveError(ValueError):
    """An archive that cannot or must not be extracted; the message names the archive and the cap."""


def extract(
    path: Path | str,
    dest: Path | str,
    max_bytes: int | None = None,
    max_members: int | None = None,
) -> Path:
    """Extract ``path`` into ``dest`` (created) after checking the caps; return ``dest``."""
    max_bytes = settings.MAX_ARCHIVE_BYTES if max_bytes is None else max_bytes
    max_members = settings.MAX_ARCHIVE_MEMBERS if max_members is None else max_members
    dest = Path(dest)
    try:
        with tarfile.open(path) as tar:
            members = _members(tar, path, max_members)
            total = sum(m.size for m in members if m.isfile())
            if total > max_bytes:
                raise ArchiveError(
                    f"{path}: unpacks to {total:,} bytes, over the cap of {max_bytes:,} "
                    "(settings.MAX_ARCHIVE_BYTES)"
                )
            dest.mkdir(parents=True, exist_ok=True)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:  # a Python before 3.11.4 without the backport: plain files and folders only
                unsafe = [m.name for m in members if not (m.isfile() or m.isdir()) or _escapes(m.name)]
                if unsafe:
                    raise ArchiveError(f"{path}: refusing unsafe archive member(s) {unsafe[:3]}")
                tar.extractall(dest, members=members)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ArchiveError(f"{path}: not a readable tar archive ({error})") from None
    return dest


def _members(tar: tarfile.TarFile, path: Path | str, max_members: int) -> list[tarfile.TarInfo]:
    """The member list, counted while it is read: stop at the cap, not after reading 100k headers."""
    members = []
    for member in tar:
        members.append(member)
        if len(members) > max_members:
            raise ArchiveError(
                f"{path}: more than {max_members:,} members, over the cap (settings.MAX_ARCHIVE_MEMBERS)"
            )
    return members


def _escapes(name: str) -> bool:
    parts = Path(name)
    return parts.is_absolute() or ".." in parts.parts


def create(folder: Path, target: Path) -> Path:
    """``model.tar.gz`` as SageMaker writes it: the folder's contents at the archive root."""
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(Path(folder).iterdir()):
            tar.add(path, arcname=path.name)
    return target
