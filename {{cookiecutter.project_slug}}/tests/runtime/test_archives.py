"""Archives and S3 URIs: safe tar extraction with caps, model archives, the S3 URI splitter."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import artifacts, s3uri, settings, tarballs


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return path


def test_caps_come_from_settings() -> None:
    assert settings.MAX_ARCHIVE_BYTES >= 100 * 1024**2
    assert 100 <= settings.MAX_ARCHIVE_MEMBERS < 100_000


def test_a_tar_bomb_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    # 1 GiB of zeros compresses to about 1 MB: the header's size is what counts, not the file's.
    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz") as tar:
        info = tarfile.TarInfo("model.skops")
        info.size = 1024**3
        tar.addfile(info, _Zeros(info.size))
    assert bomb.stat().st_size < 2 * 1024**2
    dest = tmp_path / "out"
    with pytest.raises(
        tarballs.ArchiveError, match=r"unpacks to 1,073,741,824 bytes, over the cap of 1,000,000"
    ):
        tarballs.extract(bomb, dest, max_bytes=1_000_000)
    assert not dest.exists()


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n

    def readable(self) -> bool:
        return True


def test_a_tar_with_100k_members_is_refused_at_the_cap(tmp_path: Path) -> None:
    archive = tmp_path / "many.tar"
    with tarfile.open(archive, "w") as tar:
        for i in range(100_000):
            tar.addfile(tarfile.TarInfo(f"f{i}"))
    dest = tmp_path / "out"
    with pytest.raises(tarballs.ArchiveError, match=rf"more than {settings.MAX_ARCHIVE_MEMBERS:,} members"):
        tarballs.extract(archive, dest)
    assert not dest.exists()


def test_model_archives_go_through_the_caps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _tar(tmp_path / "model.tar.gz", {"metadata.json": b"{}", "model.skops": b"x" * 5000})
    monkeypatch.setattr(settings, "MAX_ARCHIVE_BYTES", 1000)
    with pytest.raises(artifacts.ArtifactError, match="MAX_ARCHIVE_BYTES"), artifacts.open_model(archive):
        pass


def test_links_out_of_the_folder_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../escape.txt")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(tarballs.ArchiveError):
        tarballs.extract(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_create_then_extract_round_trips(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a.json").write_text("{}")
    archive = tarballs.create(folder, tmp_path / "model.tar.gz")
    assert (tarballs.extract(archive, tmp_path / "back") / "a.json").read_text() == "{}"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [("s3://b/k/x.tar.gz", ("b", "k/x.tar.gz")), ("s3://b", ("b", "")), ("s3://b/p/", ("b", "p/"))],
)
def test_s3_uris_split_into_bucket_and_key(uri: str, expected: tuple[str, str]) -> None:
    assert s3uri.split(uri) == expected


@pytest.mark.parametrize("uri", ["b/k", "https://b/k", "s3:///k", ""])
def test_s3_uri_splitter_refuses_what_is_not_one(uri: str) -> None:
    with pytest.raises(s3uri.S3UriError, match="not an S3 URI"):
        s3uri.split(uri)


def test_s3_uri_splitter_can_require_a_key() -> None:
    with pytest.raises(s3uri.S3UriError, match="no object key"):
        s3uri.split("s3://bucket/", key_required=True)
