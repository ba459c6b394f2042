"""The one S3 URI splitter (``s3://bucket/key`` -> ``("bucket", "key")``)."""

from __future__ import annotations

from urllib.parse import urlsplit


class S3UriError(ValueError):
    """Not an ``s3://bucket/...`` URI; the message quotes it."""


def split(uri: str, *, key_required: bool = False) -> tuple[str, str]:
    """Bucket and key (or prefix, possibly empty) of an S3 URI."""
    parsed = urlsplit(str(uri))
    if parsed.scheme != "s3" or not parsed.netloc:
        raise S3UriError(f"not an S3 URI: {uri!r} (expected s3://bucket/key)")
    key = parsed.path.lstrip("/")
    if key_required and not key:
        raise S3UriError(f"{uri!r}: no object key after the bucket")
    return parsed.netloc, key


def join(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key.lstrip('/')}"
