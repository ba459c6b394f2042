"""Find a model's files from whatever the pipeline hands over.

Accepted: ``none``; ``s3://bucket/key/model.tar.gz`` (the endpoint's ModelDataUrl); a local
``model.tar.gz``; a directory holding ``model.tar.gz`` (a processing input of a training output)
or the unpacked files (``model.skops``, ``metadata.json``, ``profile.json``).

S3 is read with boto3, which itself honours ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` (the
offline emulator points them at moto). Processing containers get no region variable, so the
region falls back to the project's.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import s3uri, tarballs
from .predictor import METADATA_FILE
from .settings import AWS_REGION

ARCHIVE = "model.tar.gz"


class ArtifactError(ValueError):
    """A model location that cannot be read; the message names it."""


def _download(uri: str, target: Path) -> Path:
    import boto3  # lazy: boto3 takes a while to import and local runs do not need it
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        bucket, key = s3uri.split(uri, key_required=True)
    except s3uri.S3UriError as error:
        raise ArtifactError(str(error)) from None
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or AWS_REGION
    path = target / Path(key).name
    try:
        boto3.client("s3", region_name=region).download_file(bucket, key, str(path))
    except (BotoCoreError, ClientError) as error:
        raise ArtifactError(f"{uri}: cannot download ({error})") from None
    return path


def _extract(archive: Path, target: Path) -> Path:
    try:
        tarballs.extract(archive, target)  # size and member caps first, then the "data" filter
    except tarballs.ArchiveError as error:
        raise ArtifactError(f"not a usable model archive: {error}") from None
    return _model_root(target, archive)


def _model_root(folder: Path, source: Path | str) -> Path:
    """The folder holding metadata.json: the root, or the one subfolder a tar may wrap it in."""
    if (folder / METADATA_FILE).is_file():
        return folder
    found = sorted(p.parent for p in folder.glob(f"*/{METADATA_FILE}"))
    if len(found) == 1:
        return found[0]
    raise ArtifactError(f"{source}: no {METADATA_FILE} found (not a model of this project)")


@contextmanager
def open_model(uri: str | Path) -> Iterator[Path | None]:
    """Yield a local folder with the model files (None for ``none``); temporary files are removed."""
    text = str(uri).strip()
    if text.lower() in ("", "none"):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="model-") as scratch:
        work = Path(scratch)
        if text.startswith("s3://"):
            local = _download(text, work)
        else:
            local = Path(text)
            if not local.exists():
                raise ArtifactError(f"{local}: no such file or directory")
        if local.is_dir() and (local / ARCHIVE).is_file() and not (local / METADATA_FILE).is_file():
            local = local / ARCHIVE
        if local.is_file():
            yield _extract(local, work / "model")
        else:
            yield _model_root(local, text)
