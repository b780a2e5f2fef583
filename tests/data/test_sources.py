"""Data locations: local files inside the import roots, S3 objects and folders (moto server)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import boto3
import pytest

from tastemaker.data.sources import CsvSource, DataLocationError, resolve_data_location
from tastemaker.errors import InvalidInputException


def no_s3() -> None:
    raise AssertionError("S3 must not be used for local paths")


def read_all(source: CsvSource) -> bytes:
    stream = source.open()
    try:
        return stream.read()
    finally:
        stream.close()


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    allowed = tmp_path / "imports"
    allowed.mkdir()
    return allowed


def test_local_file_inside_root(root: Path) -> None:
    path = root / "interactions.csv"
    path.write_bytes(b"USER_ID,ITEM_ID,TIMESTAMP\n")
    for location in (str(path), f"file://{path}"):
        [source] = resolve_data_location(location, import_roots=[root], s3_client_factory=no_s3)
        assert source.name == str(path)
        assert source.size == path.stat().st_size
        assert source.compression is None
        assert read_all(source) == b"USER_ID,ITEM_ID,TIMESTAMP\n"


def test_local_directory_lists_files_sorted_skipping_hidden_and_empty(root: Path) -> None:
    folder = root / "batch"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.csv").write_text("b")
    (folder / "a.csv.gz").write_bytes(gzip.compress(b"a"))
    (folder / "sub" / "c.csv").write_text("c")
    (folder / ".hidden.csv").write_text("h")
    (folder / "empty.csv").write_text("")
    sources = resolve_data_location(str(folder) + "/", import_roots=[root], s3_client_factory=no_s3)
    assert [Path(s.name).relative_to(folder).as_posix() for s in sources] == ["a.csv.gz", "b.csv", "sub/c.csv"]
    assert [s.compression for s in sources] == ["gzip", None, None]


def test_local_path_outside_roots_is_refused(root: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputException) as info:
        resolve_data_location("/etc/passwd", import_roots=[root], s3_client_factory=no_s3)
    assert "Local path /etc/passwd is outside the configured import roots (" in info.value.message
    assert "--import-root DIR or set TASTEMAKER_IMPORT_ROOTS" in info.value.message
    with pytest.raises(InvalidInputException, match="none configured"):
        resolve_data_location(str(root / "x.csv"), import_roots=[], s3_client_factory=no_s3)


def test_dotdot_and_symlink_escapes_are_refused(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("USER_ID\n1\n")
    with pytest.raises(InvalidInputException, match="outside the configured import roots"):
        resolve_data_location(f"{root}/../secret.csv", import_roots=[root], s3_client_factory=no_s3)
    link = root / "link.csv"
    link.symlink_to(secret)
    with pytest.raises(InvalidInputException, match="outside the configured import roots"):
        resolve_data_location(str(link), import_roots=[root], s3_client_factory=no_s3)
    folder = root / "folder"
    folder.mkdir()
    (folder / "ok.csv").write_text("x")
    os.symlink(secret, folder / "escape.csv")
    with pytest.raises(InvalidInputException, match="links outside the configured import roots"):
        resolve_data_location(str(folder), import_roots=[root], s3_client_factory=no_s3)


def test_symlink_within_roots_is_allowed(root: Path) -> None:
    target = root / "real.csv"
    target.write_text("x")
    (root / "alias.csv").symlink_to(target)
    [source] = resolve_data_location(str(root / "alias.csv"), import_roots=[root], s3_client_factory=no_s3)
    assert read_all(source) == b"x"


def test_missing_local_path_is_a_data_location_error(root: Path) -> None:
    with pytest.raises(DataLocationError) as info:
        resolve_data_location(str(root / "nope.csv"), import_roots=[root], s3_client_factory=no_s3)
    assert info.value.reason.startswith("Invalid Data location.")
    assert "nope.csv does not exist" in info.value.reason
    (root / "void").mkdir()
    with pytest.raises(DataLocationError, match="No files found"):
        resolve_data_location(str(root / "void"), import_roots=[root], s3_client_factory=no_s3)


@pytest.mark.parametrize("location", ["relative/file.csv", "http://example.com/x.csv", "ftp://x/y", "",
                                      "s3:///key.csv", "file://otherhost/tmp/x.csv"])
def test_unsupported_locations_are_invalid_input(location: str, root: Path) -> None:
    with pytest.raises(InvalidInputException):
        resolve_data_location(location, import_roots=[root], s3_client_factory=no_s3)


def s3_factory(endpoint: str):
    return lambda: boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def test_s3_single_object(moto_s3: str, s3_bucket: str) -> None:
    client = s3_factory(moto_s3)()
    client.put_object(Bucket=s3_bucket, Key="data/interactions.csv", Body=b"USER_ID\nu1\n")
    [source] = resolve_data_location(f"s3://{s3_bucket}/data/interactions.csv", import_roots=[],
                                     s3_client_factory=s3_factory(moto_s3))
    assert source.name == f"s3://{s3_bucket}/data/interactions.csv"
    assert source.size == len(b"USER_ID\nu1\n")
    assert read_all(source) == b"USER_ID\nu1\n"
    assert read_all(source) == b"USER_ID\nu1\n"  # each open() is a fresh stream


def test_s3_prefix_lists_objects_sorted_skipping_markers(moto_s3: str, s3_bucket: str) -> None:
    client = s3_factory(moto_s3)()
    client.put_object(Bucket=s3_bucket, Key="batch/", Body=b"")
    client.put_object(Bucket=s3_bucket, Key="batch/2.csv", Body=b"two")
    client.put_object(Bucket=s3_bucket, Key="batch/1.csv.gz", Body=gzip.compress(b"one"))
    client.put_object(Bucket=s3_bucket, Key="batch/empty.csv", Body=b"")
    client.put_object(Bucket=s3_bucket, Key="batch/deeper/3.csv", Body=b"three")
    client.put_object(Bucket=s3_bucket, Key="other/x.csv", Body=b"x")
    sources = resolve_data_location(f"s3://{s3_bucket}/batch/", import_roots=[],
                                    s3_client_factory=s3_factory(moto_s3))
    assert [s.name for s in sources] == [f"s3://{s3_bucket}/batch/1.csv.gz", f"s3://{s3_bucket}/batch/2.csv",
                                         f"s3://{s3_bucket}/batch/deeper/3.csv"]
    assert [s.compression for s in sources] == ["gzip", None, None]
    assert read_all(sources[1]) == b"two"


def test_s3_missing_object_bucket_and_prefix(moto_s3: str, s3_bucket: str) -> None:
    factory = s3_factory(moto_s3)
    factory().put_object(Bucket=s3_bucket, Key="folder/a.csv", Body=b"a")
    with pytest.raises(DataLocationError) as info:
        resolve_data_location(f"s3://{s3_bucket}/missing.csv", import_roots=[], s3_client_factory=factory)
    assert info.value.reason.startswith("Invalid Data location.")
    assert f"s3://{s3_bucket}/missing.csv does not exist" in info.value.reason
    with pytest.raises(DataLocationError, match="end the location with /"):
        resolve_data_location(f"s3://{s3_bucket}/folder", import_roots=[], s3_client_factory=factory)
    with pytest.raises(DataLocationError, match="No files found under"):
        resolve_data_location(f"s3://{s3_bucket}/nothing/", import_roots=[], s3_client_factory=factory)
    with pytest.raises(DataLocationError, match="bucket tm-no-such-bucket-x not found"):
        resolve_data_location("s3://tm-no-such-bucket-x/a.csv", import_roots=[], s3_client_factory=factory)
    with pytest.raises(DataLocationError, match="Cannot list"):
        resolve_data_location("s3://tm-no-such-bucket-x/folder/", import_roots=[], s3_client_factory=factory)
