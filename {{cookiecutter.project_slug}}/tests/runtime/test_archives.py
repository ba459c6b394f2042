"""Archives and S3 URIs: safe tar extraction with caps, model archives, the S3 URI splitter."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from sandbox import load_in_child

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


def test_a_tar_bomb_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1 GiB of zeros compresses to about 1 MB: the header's size is what counts, not the file's.
    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz") as tar:
        info = tarfile.TarInfo("model.skops")
        info.size = 1024**3
        tar.addfile(info, _Zeros(info.size))
        tar.addfile(tarfile.TarInfo("metadata.json"))  # a header after the bomb: never read
    assert bomb.stat().st_size < 2 * 1024**2
    dest = tmp_path / "out"
    inflated = _spy_on_inflation(monkeypatch)
    with pytest.raises(
        tarballs.ArchiveError, match=r"unpacks to 1,073,741,824 bytes, over the cap of 1,000,000"
    ):
        tarballs.extract(bomb, dest, max_bytes=1_000_000)
    assert not dest.exists()
    # Refused at the bomb's own header: its gigabyte was never inflated (issue 22: the cap used to
    # be checked after the whole stream was).
    assert max(inflated) < 64 * 1024


def _spy_on_inflation(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How far into the inflated stream extraction read (positions after each read)."""
    positions = [0]
    opened = tarballs._open

    def counting(path: Path | str):
        raw = opened(path)
        read = raw.read

        def spy(size: int = -1) -> bytes:
            data = read(size)
            positions.append(raw.tell())
            return data

        raw.read = spy  # type: ignore[method-assign]
        return raw

    monkeypatch.setattr(tarballs, "_open", counting)
    return positions


def test_a_gzip_bomb_in_one_header_is_refused_at_the_header_cap(tmp_path: Path) -> None:
    """A pax header is read whole: 64 MiB of it (64 KB gzipped) is refused, not held in memory."""
    bomb = tmp_path / "header.tar.gz"
    with tarfile.open(bomb, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("model.skops")
        info.pax_headers = {"comment": "x" * (64 * 1024**2)}
        tar.addfile(info, io.BytesIO(b""))
    assert bomb.stat().st_size < 1024**2
    outcome = load_in_child("archive", bomb, memory=256 * 1024**2)
    outcome.assert_refused(f"{bomb}: a tar header larger than {tarballs.MAX_HEADER_BYTES:,} bytes")
    assert not Path(f"{bomb}.out").exists()


def test_the_inflated_stream_is_capped_whatever_the_headers_say(tmp_path: Path) -> None:
    """Empty members, each behind a pax header just under the header cap: sizes add up to 0, the
    inflated stream to 10 MiB. It stops at the stream cap, not at the end of the stream."""
    archive = tmp_path / "padded.tar.gz"
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for i in range(10):
            info = tarfile.TarInfo(f"f{i}")
            info.pax_headers = {"comment": "x" * (tarballs.MAX_HEADER_BYTES - 4096)}
            tar.addfile(info)
    with pytest.raises(tarballs.ArchiveError, match="inflates to more than"):
        tarballs.extract(archive, tmp_path / "out", max_bytes=1_000_000, max_members=100)
    assert not (tmp_path / "out").exists()


def test_a_hard_link_to_a_missing_member_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    archive = tmp_path / "link.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.addfile(_info("metadata.json", 2), io.BytesIO(b"{}"))
        link = tarfile.TarInfo("model.onnx")
        link.type, link.linkname = tarfile.LNKTYPE, "missing.onnx"
        tar.addfile(link)
    load_in_child("archive", archive).assert_refused(
        f"{archive}: hard link 'model.onnx' -> 'missing.onnx' names no earlier file of the archive"
    )
    assert not Path(f"{archive}.out").exists()  # not even metadata.json, which came first


def test_a_hard_link_to_an_earlier_member_extracts(tmp_path: Path) -> None:
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tar:
        tar.addfile(_info("a.json", 2), io.BytesIO(b"{}"))
        link = tarfile.TarInfo("b.json")
        link.type, link.linkname = tarfile.LNKTYPE, "a.json"
        tar.addfile(link)
    assert (tarballs.extract(archive, tmp_path / "out") / "b.json").read_text() == "{}"


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


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
        tar.addfile(_info("fine.json", 2), io.BytesIO(b"{}"))
        info = tarfile.TarInfo("../escape.txt")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(tarballs.ArchiveError, match=r"refusing member '\.\./escape\.txt'"):
        tarballs.extract(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "out").exists()  # checked before the first member was written


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
