"""Batch job files: JSON Lines inputs streamed line by line, outputs published whole or not at all.

Inputs are the files behind an `s3://` object or prefix or a local path inside the import roots (resolved and
checked by tastemaker.data.sources, as import jobs do). `read_lines` streams one file, so memory never grows
with its size. Outputs go to an `s3://` folder or a local folder inside the import roots: `OutputFile` writes a
local temporary file while the job runs, then `publish` uploads it under a temporary key
(`<name>.tmp-<random>`) and moves it to `<name>` (S3: copy then delete the temporary key; local: an atomic
rename), so a reader listing the folder never sees a half-written `<name>`. A second run (a retried job)
overwrites the same names.

The move to `<name>` runs inside `guard()` when one is given: a job passes a context that holds its lease
(a fenced transaction, see docs/architecture.md), so an owner that lost the job never replaces an output; its
temporary copy is removed and the guard's error raised.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, BinaryIO

from tastemaker.data.sources import (
    CsvSource,
    DataLocationError,
    check_data_location,
    resolve_data_location,
)
from tastemaker.errors import InvalidInputException

MAX_FILES, MAX_INPUT_BYTES = 1000, 1 << 30  # Personalize's batch input limits
MAX_LINE_BYTES = 1_000_000  # a longer line is answered with an error instead of being parsed


def input_files(location: str, *, import_roots: Sequence[Path],
                s3_client_factory: Callable[[], Any]) -> list[CsvSource]:
    """The files of a batch input location, in name order (DataLocationError when there are none)."""
    return resolve_data_location(location, import_roots=import_roots, s3_client_factory=s3_client_factory)


def check_input_limits(location: str, files: Sequence[CsvSource]) -> None:
    """Personalize's limits on a batch job's input: at most MAX_FILES files and MAX_INPUT_BYTES in all
    (DataLocationError naming the location otherwise)."""
    if len(files) > MAX_FILES:
        raise DataLocationError(f"{location} holds {len(files):,} files; a batch job reads at most {MAX_FILES:,}.")
    total = sum(int(f.size or 0) for f in files)
    if total > MAX_INPUT_BYTES:
        raise DataLocationError(f"{location} holds {total:,} bytes; a batch job reads at most 1 GB "
                                f"({MAX_INPUT_BYTES:,} bytes). Split it into several jobs.")


def read_lines(source: CsvSource) -> Iterator[str]:
    """The non-blank lines of one input file, decoded as UTF-8 (a stream: one chunk in memory at a time)."""
    raw: BinaryIO = source.open()
    try:
        stream: Any = gzip.GzipFile(fileobj=raw) if source.compression == "gzip" else raw
        for line in _split(stream):
            if len(line) > MAX_LINE_BYTES:
                yield TOO_LONG
                continue
            text = line.decode("utf-8", errors="replace").strip()
            if text:
                yield text
    finally:
        raw.close()


TOO_LONG = "\x00"  # stands for a line over MAX_LINE_BYTES (never valid JSON)


def _split(stream: Any, chunk: int = 1 << 16) -> Iterator[bytes]:
    """Lines of a byte stream; a line longer than MAX_LINE_BYTES is dropped as it streams (never held whole)
    and stands as one line of MAX_LINE_BYTES + 1 bytes, which read_lines answers with TOO_LONG."""
    pending = b""
    skipping = False
    while True:
        data = stream.read(chunk)
        if not data:
            break
        pending += data
        *complete, pending = pending.split(b"\n")
        for line in complete:
            if skipping:
                skipping = False
                yield b"x" * (MAX_LINE_BYTES + 1)
            else:
                yield line
        if len(pending) > MAX_LINE_BYTES:
            pending, skipping = b"", True
    if skipping:
        yield b"x" * (MAX_LINE_BYTES + 1)
    elif pending:
        yield pending


def file_name(source_name: str) -> str:
    """The last segment of an input file's name (what `<input-file-name>.out` is made of)."""
    return source_name.rstrip("/").rsplit("/", 1)[-1]


def check_output_location(location: str, import_roots: Sequence[Path], input_location: str) -> str:
    """A batch output folder as the job will write it (ending in `/`); refuses what can never be written."""
    if not location:
        raise InvalidInputException("jobOutput.s3DataDestination.path is required: an s3:// folder.")
    check_data_location(location, import_roots)
    folder = location if location.endswith("/") else location + "/"
    if folder.rstrip("/") == input_location.rstrip("/"):
        raise InvalidInputException(f"The output path {location} must differ from the input path {input_location}.")
    return folder


class OutputFile:
    """One output file: lines appended to a local temporary file, then published in one step."""

    def __init__(self, folder: str, name: str, workdir: Path, *, import_roots: Sequence[Path],
                 s3_client_factory: Callable[[], Any]) -> None:
        self.folder = folder
        self.name = name
        self.import_roots = import_roots
        self.s3_client_factory = s3_client_factory
        self.local = workdir / f"{uuid.uuid4().hex}-{name}"
        self._fh = self.local.open("wb")
        self.lines = 0

    def write(self, line: bytes) -> None:
        self._fh.write(line)
        self._fh.write(b"\n")
        self.lines += 1

    def publish(self, guard: Guard | None = None) -> str:
        """Move the finished file into place (the move under `guard`); returns its final location."""
        self._fh.close()
        try:
            return publish_file(self.local, self.folder, self.name, import_roots=self.import_roots,
                                s3_client_factory=self.s3_client_factory, guard=guard)
        finally:
            self.local.unlink(missing_ok=True)

    def discard(self) -> None:
        self._fh.close()
        self.local.unlink(missing_ok=True)


Guard = Callable[[], AbstractContextManager[Any]]


def publish_file(local: Path, folder: str, name: str, *, import_roots: Sequence[Path],
                 s3_client_factory: Callable[[], Any], guard: Guard | None = None) -> str:
    """Put `local` at `folder` + `name` through a temporary name, the final move inside `guard()`;
    DataLocationError when it cannot be written (the guard's own error when it refuses)."""
    target = folder + name
    temporary = f"{name}.tmp-{uuid.uuid4().hex[:12]}"
    path = check_data_location(folder, import_roots)
    guard = guard or nullcontext
    if path is None:
        bucket, _, prefix = folder[len("s3://"):].partition("/")
        client = s3_client_factory()
        try:
            client.upload_file(str(local), bucket, prefix + temporary)
        except Exception as exc:  # noqa: BLE001 - botocore errors of every kind end the job with a reason
            raise DataLocationError(f"Cannot write the output {target}: {exc}") from None
        try:
            with guard():
                try:
                    client.copy_object(Bucket=bucket, Key=prefix + name,
                                       CopySource={"Bucket": bucket, "Key": prefix + temporary})
                except Exception as exc:  # noqa: BLE001 - as above
                    raise DataLocationError(f"Cannot write the output {target}: {exc}") from None
        finally:
            try:
                client.delete_object(Bucket=bucket, Key=prefix + temporary)
            except Exception:  # noqa: BLE001,S110 - a leftover temporary key is named .tmp-, never an output
                pass
        return target
    try:
        path.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, path / temporary)
        with guard():
            os.replace(path / temporary, path / name)
    except OSError as exc:
        raise DataLocationError(f"Cannot write the output {target}: {exc.strerror or exc}") from None
    finally:
        (path / temporary).unlink(missing_ok=True)
    return str(path / name)


_TEMPORARY = re.compile(r"\.tmp-[0-9a-f]{12}$")


def remove_temporaries(folder: str, *, import_roots: Sequence[Path], s3_client_factory: Callable[[], Any]) -> int:
    """Remove the temporary copies (`<name>.tmp-<random>`) an earlier run of the job left in its output folder
    when it died between upload and move; returns how many. Called by the job's owner before it publishes."""
    path = check_data_location(folder, import_roots)
    removed = 0
    if path is None:
        bucket, _, prefix = folder[len("s3://"):].partition("/")
        client = s3_client_factory()
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for entry in page.get("Contents", []):
                    if _TEMPORARY.search(entry["Key"]) and "/" not in entry["Key"][len(prefix):]:
                        client.delete_object(Bucket=bucket, Key=entry["Key"])
                        removed += 1
        except Exception:  # noqa: BLE001 - a leftover temporary costs space, never correctness
            return removed
        return removed
    if path.is_dir():
        for entry in path.iterdir():
            if _TEMPORARY.search(entry.name) and entry.is_file():
                entry.unlink(missing_ok=True)
                removed += 1
    return removed
