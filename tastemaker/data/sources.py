"""Data locations of import jobs: s3:// objects and folders, and local paths inside the import roots."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse

from tastemaker.errors import InvalidInputException


class DataLocationError(Exception):
    """The data location cannot be read (missing object, bucket or path; access denied).

    The import job turns it into CREATE FAILED with `reason` as failureReason.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class CsvSource:
    """One CSV file to import. `name` is what failure messages show ("s3://bucket/key.csv" or a local path).

    `open` returns a fresh binary stream of the file as stored each time it is called (the importer may
    read a file twice to locate an error); `compression` is "gzip" for `.gz` files, which the importer
    decompresses while streaming.
    """

    name: str
    open: Callable[[], BinaryIO]
    size: int | None
    compression: str | None = None


def resolve_data_location(location: str, *, import_roots: Sequence[Path],
                          s3_client_factory: Callable[[], Any]) -> list[CsvSource]:
    """The files behind a dataLocation, in import order.

    * `s3://bucket/key.csv` is one object; `s3://bucket/prefix/` (ending in `/`) is every object under the
      prefix, sorted by key, skipping folder markers and empty objects.
    * A local absolute path or `file://` URL is a file, or a directory (every non-hidden, non-empty file
      below it, sorted by relative path). It must resolve (after symlinks and `..`) inside one of
      `import_roots`.
    * Files whose name ends in `.gz` are gunzipped transparently (a Tastemaker extension).

    Raises InvalidInputException for a location that is never allowed and DataLocationError for one that
    is allowed but cannot be read.
    """
    local = check_data_location(location, import_roots)
    if local is None:
        return _resolve_s3(location, s3_client_factory)
    return _resolve_local(location, local, import_roots)


def check_data_location(location: str, import_roots: Sequence[Path]) -> Path | None:
    """Refuse a location that can never be imported (InvalidInputException); return the local path it names,
    or None for an s3:// location. Reads nothing (the job finds out whether the data exists).

    Only s3:// and local locations are read: http(s):// URLs (which the Personalize model's pattern admits)
    are refused here. A file:// URL is percent-decoded; a decoded `..` segment (`%2e%2e`) is refused outright,
    and the path must lie inside one of `import_roots` after resolving symlinks and `..`.
    """
    if not isinstance(location, str) or not location.strip():
        raise InvalidInputException("The data location is empty; pass s3://bucket/key.csv or s3://bucket/folder/.")
    if location.startswith("s3://"):
        if not location[len("s3://"):].partition("/")[0]:
            raise InvalidInputException(f"Invalid data location {location!r}: the bucket name is missing.")
        return None
    if location.lower().startswith(("http://", "https://")):
        raise InvalidInputException(
            f"Invalid data location {location!r}: data is read from S3 or the server's import roots, not over "
            "HTTP; use s3://bucket/key.csv, s3://bucket/folder/ or a local path.")
    if location.startswith("file://"):
        parsed = urlparse(location)
        if parsed.netloc not in ("", "localhost"):
            raise InvalidInputException(
                f"Data location {location} names host {parsed.netloc!r}; file:// URLs must be local "
                f"(file:///absolute/path).")
        decoded = unquote(parsed.path)
        if decoded != parsed.path and ".." in Path(decoded).parts:
            raise InvalidInputException(
                f"Data location {location} hides a '..' segment in percent-encoding; write the path plainly.")
        path = Path(decoded)
    elif location.startswith("/"):
        path = Path(location)
    else:
        raise InvalidInputException(
            f"Invalid data location {location!r}: use s3://bucket/key.csv, s3://bucket/folder/ (ending in /), "
            f"or an absolute local path / file:// URL inside the server's import roots.")
    _check_inside_roots(path, import_roots)
    return path


def _compression(name: str) -> str | None:
    return "gzip" if name.lower().endswith(".gz") else None


# ---------------------------------------------------------------------------------------------------
# S3


def _resolve_s3(location: str, s3_client_factory: Callable[[], Any]) -> list[CsvSource]:
    bucket, _, key = location[len("s3://"):].partition("/")
    client = s3_client_factory()
    if key == "" or key.endswith("/"):
        return _list_s3_prefix(client, location, bucket, key)
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except Exception as exc:  # noqa: BLE001 - botocore ClientError or connection failures
        code = _s3_error_code(exc)
        if code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
            hint = ""
            if code != "NoSuchBucket" and _prefix_has_objects(client, bucket, key + "/"):
                hint = f" Objects exist under {location}/; end the location with / to import the folder."
            raise DataLocationError(
                f"Invalid Data location. {location} does not exist ({_bucket_or_key(client, bucket)}).{hint}"
            ) from None
        raise DataLocationError(f"Invalid Data location. Cannot read {location}: {_s3_message(exc)}") from None
    return [CsvSource(name=location, open=_s3_opener(s3_client_factory, bucket, key),
                      size=int(head.get("ContentLength", 0)), compression=_compression(key))]


def _list_s3_prefix(client: Any, location: str, bucket: str, prefix: str) -> list[CsvSource]:
    objects: list[tuple[str, int]] = []
    try:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key, size = item["Key"], int(item.get("Size", 0))
                if key.endswith("/") or size == 0:
                    continue  # folder markers and empty objects carry no rows
                objects.append((key, size))
    except Exception as exc:  # noqa: BLE001
        raise DataLocationError(f"Invalid Data location. Cannot list {location}: {_s3_message(exc)}") from None
    if not objects:
        raise DataLocationError(f"Invalid Data location. No files found under {location}.")
    objects.sort()
    return [CsvSource(name=f"s3://{bucket}/{key}", open=_s3_opener(lambda: client, bucket, key), size=size,
                      compression=_compression(key)) for key, size in objects]


def _s3_opener(s3_client_factory: Callable[[], Any], bucket: str, key: str) -> Callable[[], BinaryIO]:
    def open_object() -> BinaryIO:
        try:
            response = s3_client_factory().get_object(Bucket=bucket, Key=key)
        except Exception as exc:  # noqa: BLE001
            raise DataLocationError(
                f"Invalid Data location. Cannot read s3://{bucket}/{key}: {_s3_message(exc)}") from None
        return response["Body"]  # a streaming body: read(n) pulls from the network as it goes

    return open_object


def _prefix_has_objects(client: Any, bucket: str, prefix: str) -> bool:
    try:
        return bool(client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("Contents"))
    except Exception:  # noqa: BLE001 - only a hint
        return False


def _bucket_or_key(client: Any, bucket: str) -> str:
    try:
        client.head_bucket(Bucket=bucket)
    except Exception as exc:  # noqa: BLE001
        if _s3_error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return f"bucket {bucket} not found"
        return f"bucket {bucket} not accessible"
    return "no such key"


def _s3_error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _s3_message(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        if code in ("NoSuchBucket",):
            return f"bucket not found ({code})"
        if code in ("AccessDenied", "403"):
            return "access denied (AccessDenied); check the bucket policy and credentials"
        return f"{code}: {message}".strip(": ") or str(exc)
    return str(exc)


# ---------------------------------------------------------------------------------------------------
# Local files


def _check_inside_roots(path: Path, import_roots: Sequence[Path]) -> None:
    if not path.is_absolute():
        raise InvalidInputException(f"Local data location {str(path)!r} must be an absolute path.")
    roots = [Path(root).resolve() for root in import_roots]
    resolved = path.resolve()  # follows symlinks and removes `..`, also for paths that do not exist yet
    if not _inside(resolved, roots):
        shown = ", ".join(str(r) for r in roots) or "none configured"
        raise InvalidInputException(
            f"Local path {path} is outside the configured import roots ({shown}). Start the server with "
            f"--import-root DIR or set TASTEMAKER_IMPORT_ROOTS.")


def _resolve_local(location: str, path: Path, import_roots: Sequence[Path]) -> list[CsvSource]:
    _check_inside_roots(path, import_roots)
    roots = [Path(root).resolve() for root in import_roots]
    resolved = path.resolve()
    if not resolved.exists():
        raise DataLocationError(f"Invalid Data location. {location} does not exist.")
    if resolved.is_file():
        return [_local_source(resolved, str(path))]
    if not resolved.is_dir():
        raise DataLocationError(f"Invalid Data location. {location} is neither a file nor a directory.")
    sources = []
    for dirpath, dirnames, filenames in os.walk(resolved):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            if filename.startswith("."):
                continue
            file_path = Path(dirpath) / filename
            real = file_path.resolve()
            if not _inside(real, roots):
                raise InvalidInputException(
                    f"Local file {file_path} links outside the configured import roots; remove the link or "
                    f"add its target's folder with --import-root / TASTEMAKER_IMPORT_ROOTS.")
            if real.is_file() and real.stat().st_size > 0:
                sources.append(_local_source(real, str(file_path)))
    if not sources:
        raise DataLocationError(f"Invalid Data location. No files found under {location}.")
    sources.sort(key=lambda s: s.name)
    return sources


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _local_source(real: Path, name: str) -> CsvSource:
    def open_file() -> BinaryIO:
        try:
            return open(real, "rb")
        except OSError as exc:
            raise DataLocationError(f"Invalid Data location. Cannot read {name}: {exc.strerror}.") from None

    return CsvSource(name=name, open=open_file, size=real.stat().st_size, compression=_compression(name))
