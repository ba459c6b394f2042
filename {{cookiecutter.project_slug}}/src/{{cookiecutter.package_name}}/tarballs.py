"""The one safe tarball extraction and creation (model.tar.gz, job outputs).

``extract`` checks every member before writing anything, and refuses the archive when:
- the member count or the running total of unpacked sizes passes its cap: checked as each header is
  read, so a gzip bomb is refused at the header that declares too much, before its data is
  inflated (a 1 MB tar.gz can hold 1 GiB of zeros; 100k empty members exhaust inodes and time);
- the inflated stream itself, headers included, grows past the size cap plus a small allowance
  per member, or one header is larger than ``MAX_HEADER_BYTES`` (a pax header is read whole);
- the standard library's ``data`` filter refuses a member (absolute paths, ``..``, links out of
  the folder, device files: PEP 706), run here on every member first rather than halfway through;
- a hard link names no earlier regular file of the archive (tarfile would raise KeyError after
  writing the members before it, issue 22).
Only then does it extract, with the same ``data`` filter. The caps default to
``settings.MAX_ARCHIVE_BYTES`` / ``settings.MAX_ARCHIVE_MEMBERS``. Archives are plain or gzip tar
(what SageMaker writes); other compressions are refused.
"""

from __future__ import annotations

import gzip
import os
import tarfile
from pathlib import Path
from typing import IO

from . import settings

# tarfile reads a header in one call: 512 bytes, or a pax / GNU long-name header whole. Data is
# copied in 16 KiB reads. A model folder's names are short: a larger header is an attack.
MAX_HEADER_BYTES = 1024 * 1024
# The inflated stream may exceed the sum of member sizes by a header and its padding per member.
ALLOWANCE_PER_MEMBER = 4 * tarfile.BLOCKSIZE
GZIP_MAGIC = b"\x1f\x8b"


class ArchiveError(ValueError):
    """An archive that cannot or must not be extracted; the message names the archive and the cap."""


class _Capped:
    """The inflated archive as a seekable read-only file that refuses to read past ``cap`` bytes
    or more than MAX_HEADER_BYTES at once, so no member or header can make extraction inflate or
    hold more than the caps allow."""

    def __init__(self, raw: IO[bytes], cap: int, path: Path | str):
        self._raw, self._cap, self._path = raw, cap, path

    def _refuse_past(self, end: int) -> None:
        if end > self._cap:
            raise ArchiveError(
                f"{self._path}: inflates to more than {self._cap:,} bytes, over the cap "
                "(settings.MAX_ARCHIVE_BYTES plus headers)"
            )

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > MAX_HEADER_BYTES:
            raise ArchiveError(f"{self._path}: a tar header larger than {MAX_HEADER_BYTES:,} bytes")
        self._refuse_past(self._raw.tell() + size)
        return self._raw.read(size)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET:  # tarfile only seeks to absolute offsets when reading
            raise ArchiveError(f"{self._path}: unexpected relative seek")
        self._refuse_past(offset)
        return self._raw.seek(offset)

    def tell(self) -> int:
        return self._raw.tell()


def extract(
    path: Path | str,
    dest: Path | str,
    max_bytes: int | None = None,
    max_members: int | None = None,
) -> Path:
    """Extract ``path`` into ``dest`` (created) after checking every member; return ``dest``."""
    max_bytes = settings.MAX_ARCHIVE_BYTES if max_bytes is None else max_bytes
    max_members = settings.MAX_ARCHIVE_MEMBERS if max_members is None else max_members
    dest = Path(dest)
    stream_cap = max_bytes + (max_members + 2) * ALLOWANCE_PER_MEMBER
    try:
        with _open(path) as raw, tarfile.open(fileobj=_Capped(raw, stream_cap, path), mode="r:") as tar:  # type: ignore[call-overload]
            members = _members(tar, path, max_bytes, max_members)
            _check_members(members, path, dest)
            dest.mkdir(parents=True, exist_ok=True)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:
                tar.extractall(dest, members=members)
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as error:
        raise ArchiveError(f"{path}: not a readable tar archive ({error})") from None
    return dest


def _open(path: Path | str) -> IO[bytes]:
    """The archive's tar stream: inflated when it is gzip, the file itself when it is plain tar."""
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if gzipped else open(path, "rb")  # the caller closes it


def _members(
    tar: tarfile.TarFile, path: Path | str, max_bytes: int, max_members: int
) -> list[tarfile.TarInfo]:
    """The member list, each cap checked as each header is read: stop at the header that passes a
    cap, before inflating its data or reading 100k headers."""
    members, total = [], 0
    for member in tar:
        members.append(member)
        if len(members) > max_members:
            raise ArchiveError(
                f"{path}: more than {max_members:,} members, over the cap (settings.MAX_ARCHIVE_MEMBERS)"
            )
        total += member.size if member.isfile() else 0
        if total > max_bytes:
            raise ArchiveError(
                f"{path}: unpacks to {total:,} bytes, over the cap of {max_bytes:,} "
                "(settings.MAX_ARCHIVE_BYTES)"
            )
    return members


def _check_members(members: list[tarfile.TarInfo], path: Path | str, dest: Path) -> None:
    """Refuse, before anything is written, what extraction would refuse or fail on halfway."""
    files: set[str] = set()
    for member in members:
        if hasattr(tarfile, "data_filter"):
            try:
                tarfile.data_filter(member, str(dest))
            except tarfile.FilterError as error:
                raise ArchiveError(f"{path}: refusing member {member.name!r} ({error})") from None
        elif not (member.isfile() or member.isdir()) or _escapes(member.name):
            # a Python before 3.11.4 without the backport: plain files and folders only
            raise ArchiveError(f"{path}: refusing unsafe archive member {member.name!r}")
        if member.islnk() and os.path.normpath(member.linkname) not in files:
            raise ArchiveError(
                f"{path}: hard link {member.name!r} -> {member.linkname!r} names no earlier file of the archive"
            )
        if member.isfile():
            files.add(os.path.normpath(member.name))


def _escapes(name: str) -> bool:
    parts = Path(name)
    return parts.is_absolute() or ".." in parts.parts


def create(folder: Path, target: Path) -> Path:
    """``model.tar.gz`` as SageMaker writes it: the folder's contents at the archive root."""
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(Path(folder).iterdir()):
            tar.add(path, arcname=path.name)
    return target
