"""Blob stores chosen by URL: a local directory (default) or S3 / any S3-compatible store."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

_TEMP_MARK = ".tmp-"  # in-flight files are named ".<name>.tmp-<hex>" and never listed
_CHUNK = 1 << 20

# Aliases: inside the classes below, `list` names the method, not the builtin.
Keys = list[str]
Paths = list[Path]


class BlobNotFound(KeyError):
    """No blob under that key. A KeyError, so `except KeyError` works too."""

    def __init__(self, key: str, where: str) -> None:
        super().__init__(key)
        self.key = key
        self.message = f"No blob '{key}' in {where}"

    def __str__(self) -> str:
        return self.message


def check_key(key: str) -> str:
    """A valid key is a relative '/'-separated path without '.', '..' or empty components."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"blob key must be a non-empty string, got {key!r}")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise ValueError(f"blob key must be a relative '/'-separated path: {key!r}")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(f"blob key has an empty, '.' or '..' component: {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    """Like a key, but may be empty and may end with '/' (a folder)."""
    if prefix:
        check_key(prefix.removesuffix("/"))
    return prefix


def _folder(prefix: str) -> str:
    """`models/x` and `models/x/` both name the folder `models/x/`; '' is the root."""
    check_prefix(prefix)
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def _temp_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}{_TEMP_MARK}{uuid.uuid4().hex}")


def _write_atomically(path: Path, write: Any) -> None:
    """Write through `write(file)` into a temp file next to `path`, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_beside(path)
    try:
        with open(temp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@runtime_checkable
class BlobStore(Protocol):
    """Where imported data, model artifacts and batch outputs live. Keys are relative '/' paths."""

    @property
    def url(self) -> str: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def put_file(self, key: str, local_path: Path) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def get_file(self, key: str, local_path: Path) -> Path: ...

    def local_path(self, key: str) -> Path: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str = "") -> Keys: ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def put_dir(self, prefix: str, local_dir: Path) -> Keys: ...

    def get_dir(self, prefix: str, local_dir: Path) -> Paths: ...


class _DirectoryHelpers:
    """put_dir/get_dir written once on top of put_file/get_file/list."""

    def put_file(self, key: str, local_path: Path) -> None:
        raise NotImplementedError

    def get_file(self, key: str, local_path: Path) -> Path:
        raise NotImplementedError

    def list(self, prefix: str = "") -> Keys:
        raise NotImplementedError

    def put_dir(self, prefix: str, local_dir: Path) -> Keys:
        """Upload every file under `local_dir` to `prefix/<relative path>`; returns the keys written."""
        folder = _folder(prefix)
        local_dir = Path(local_dir)
        keys: Keys = []
        for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
            key = folder + path.relative_to(local_dir).as_posix()
            self.put_file(key, path)
            keys.append(key)
        return keys

    def get_dir(self, prefix: str, local_dir: Path) -> Paths:
        """Download every blob under the folder `prefix` into `local_dir`, keeping relative paths."""
        folder = _folder(prefix)
        local_dir = Path(local_dir)
        return [self.get_file(key, local_dir / key[len(folder):]) for key in self.list(folder)]


class LocalBlobStore(_DirectoryHelpers):
    """Blobs as files under one directory; every write is atomic (temp file, fsync, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def put_bytes(self, key: str, data: bytes) -> None:
        _write_atomically(self._path(key), lambda handle: handle.write(data))

    def put_file(self, key: str, local_path: Path) -> None:
        with open(local_path, "rb") as source:
            _write_atomically(self._path(key), lambda handle: shutil.copyfileobj(source, handle, _CHUNK))

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFound(key, self.url) from None

    def get_file(self, key: str, local_path: Path) -> Path:
        source = self.local_path(key)
        with open(source, "rb") as handle:
            _write_atomically(Path(local_path), lambda out: shutil.copyfileobj(handle, out, _CHUNK))
        return Path(local_path)

    def local_path(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise BlobNotFound(key, self.url)
        return path

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _walk(self, folder: Path, *, temps: bool = False) -> Iterator[str]:
        """Keys under `folder`; with `temps`, the in-flight temp files there instead."""
        for dirpath, _dirs, files in os.walk(folder):
            base = Path(dirpath).relative_to(self.root).as_posix()
            for name in files:
                if (name.startswith(".") and _TEMP_MARK in name) == temps:
                    yield name if base == "." else f"{base}/{name}"

    def list(self, prefix: str = "") -> Keys:
        check_prefix(prefix)
        # Walk only the deepest folder the prefix is certainly inside, then filter by the string prefix.
        folder = self.root.joinpath(*prefix.split("/")[:-1]) if "/" in prefix else self.root
        return sorted(key for key in self._walk(folder) if key.startswith(prefix))

    def _temps(self, prefix: str) -> Paths:
        """Temp files of writes under `prefix` that never finished (a writer killed mid-write leaves one)."""
        folder = self.root.joinpath(*prefix.split("/")[:-1]) if "/" in prefix else self.root
        found = []
        for temp in self._walk(folder, temps=True):
            head, _, name = temp.rpartition("/")
            target = name[1:name.index(_TEMP_MARK)]  # ".<name>.tmp-<hex>" is a write of <name>
            if (f"{head}/{target}" if head else target).startswith(prefix):
                found.append(self.root / temp)
        return found

    def _prune_empty_parents(self, path: Path) -> None:
        parent = path.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:  # not empty (or already gone): stop
                return
            parent = parent.parent

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        self._prune_empty_parents(path)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under `prefix`, and the temp files of writes there that a killed writer left."""
        keys = self.list(prefix)
        for key in keys:
            self.delete(key)
        for temp in self._temps(prefix):
            temp.unlink(missing_ok=True)
            self._prune_empty_parents(temp)
        return len(keys)


class S3BlobStore(_DirectoryHelpers):
    """Blobs in an S3 bucket under a prefix; local_path() keeps an ETag-checked download cache."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 cache_dir: Path | None = None, client: Any = None) -> None:
        if not bucket:
            raise ValueError("S3 blob store needs a bucket name")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            check_key(self.prefix)
        self.endpoint_url = endpoint_url
        self.cache_dir = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "tastemaker-blob-cache"
        self._client = client
        self.page_size = 1000  # keys per ListObjectsV2 page and per DeleteObjects call (S3's maximum)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def client(self) -> Any:
        """A boto3 S3 client with credentials from the standard AWS chain (env, profile, role)."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session()
            config = Config(retries={"max_attempts": 5, "mode": "standard"},
                            s3={"addressing_style": "path"} if self.endpoint_url else {})
            self._client = session.client("s3", endpoint_url=self.endpoint_url,
                                          region_name=session.region_name or "us-east-1", config=config)
        return self._client

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, full_key: str) -> str:
        return full_key[len(self.prefix) + 1:] if self.prefix else full_key

    @staticmethod
    def _is_missing(error: Exception) -> bool:
        response = getattr(error, "response", None) or {}
        code = str(response.get("Error", {}).get("Code", ""))
        return code in ("NoSuchKey", "404", "NotFound")

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._full(check_key(key)), Body=data)

    def put_file(self, key: str, local_path: Path) -> None:
        # upload_file switches to parallel multipart uploads for large files.
        self.client.upload_file(str(local_path), self.bucket, self._full(check_key(key)))

    def _get_object(self, key: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._full(check_key(key)))
        except ClientError as error:
            if self._is_missing(error):
                raise BlobNotFound(key, self.url) from None
            raise

    def get_bytes(self, key: str) -> bytes:
        body = self._get_object(key)["Body"]
        try:
            return body.read()
        finally:
            body.close()

    def _stream_to(self, key: str, local_path: Path) -> dict[str, Any]:
        response = self._get_object(key)
        body: BinaryIO = response["Body"]
        try:
            _write_atomically(Path(local_path), lambda out: shutil.copyfileobj(body, out, _CHUNK))
        finally:
            body.close()
        return response

    def get_file(self, key: str, local_path: Path) -> Path:
        self._stream_to(key, Path(local_path))
        return Path(local_path)

    def _cache_path(self, key: str) -> Path:
        return self.cache_dir.joinpath(self.bucket, *self._full(check_key(key)).split("/"))

    def local_path(self, key: str) -> Path:
        """A local copy of the blob, downloaded once and again only when its ETag or size changes."""
        from botocore.exceptions import ClientError

        path = self._cache_path(key)
        stamp_path = path.with_name(f".{path.name}.etag")
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as error:
            if self._is_missing(error):
                raise BlobNotFound(key, self.url) from None
            raise
        stamp = f"{head['ETag']} {head['ContentLength']}"
        if path.is_file() and stamp_path.is_file() and stamp_path.read_text() == stamp \
                and path.stat().st_size == head["ContentLength"]:
            return path
        # The stamp comes from the GET that produced the bytes, so a change in between cannot be missed.
        response = self._stream_to(key, path)
        got = f"{response['ETag']} {response['ContentLength']}"
        _write_atomically(stamp_path, lambda out: out.write(got.encode()))
        return path

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._full(check_key(key)))
        except ClientError as error:
            if self._is_missing(error):
                return False
            raise
        return True

    def list(self, prefix: str = "") -> Keys:
        check_prefix(prefix)
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        paginator = self.client.get_paginator("list_objects_v2")
        keys: Keys = []
        pages = paginator.paginate(Bucket=self.bucket, Prefix=full, PaginationConfig={"PageSize": self.page_size})
        for page in pages:
            keys.extend(self._relative(item["Key"]) for item in page.get("Contents", ()))
        return sorted(keys)

    def _drop_cached(self, key: str) -> None:
        path = self._cache_path(key)
        path.unlink(missing_ok=True)
        path.with_name(f".{path.name}.etag").unlink(missing_ok=True)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._full(check_key(key)))
        self._drop_cached(key)

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for start in range(0, len(keys), self.page_size):  # DeleteObjects takes at most 1000 keys
            batch = keys[start:start + self.page_size]
            response = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": self._full(k)} for k in batch], "Quiet": True})
            if response.get("Errors"):
                first = response["Errors"][0]
                raise OSError(f"S3 refused to delete {first.get('Key')}: {first.get('Code')} {first.get('Message')}")
            for key in batch:
                self._drop_cached(key)
        return len(keys)


def open_blob_store(url: str, *, s3_endpoint_url: str | None = None, cache_dir: Path | None = None) -> BlobStore:
    """`/path`, `./path` or `file:///path` -> LocalBlobStore; `s3://bucket/prefix` -> S3BlobStore.

    `s3_endpoint_url` points S3 at MinIO or any S3-compatible store; `cache_dir` holds local copies of
    S3 blobs (local_path()).
    """
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"S3 blob URL needs a bucket: {url!r} (expected s3://bucket/prefix)")
        return S3BlobStore(parts.netloc, unquote(parts.path).strip("/"), endpoint_url=s3_endpoint_url,
                           cache_dir=cache_dir)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file:// blob URL must name a local path: {url!r}")
        return LocalBlobStore(Path(url2pathname(parts.path)))
    if "://" in url:
        raise ValueError(f"unsupported blob store URL {url!r}; use a local path, file:// or s3://bucket/prefix")
    return LocalBlobStore(Path(url))
