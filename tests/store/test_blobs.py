"""One behaviour suite for every blob store backend: a local directory and S3 (moto's server)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from tastemaker.store.blobs import BlobNotFound, BlobStore, LocalBlobStore, S3BlobStore, open_blob_store

BACKENDS = ["local", "s3", "s3-prefixed"]


@pytest.fixture(scope="module")
def s3_client(moto_s3: str) -> Any:
    """One boto3 client for the module (creating a client per test would dominate the run time)."""
    return open_blob_store("s3://unused", s3_endpoint_url=moto_s3).client  # type: ignore[attr-defined]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return open_blob_store(str(tmp_path / "blobs"), cache_dir=tmp_path / "cache")
    endpoint = request.getfixturevalue("moto_s3")
    bucket = request.getfixturevalue("s3_bucket")
    prefix = "/tenant one/blobs" if request.param == "s3-prefixed" else ""
    opened = open_blob_store(f"s3://{bucket}{prefix}", s3_endpoint_url=endpoint, cache_dir=tmp_path / "cache")
    assert isinstance(opened, S3BlobStore)
    opened._client = request.getfixturevalue("s3_client")
    return opened


def test_bytes_round_trip_and_overwrite(store: BlobStore) -> None:
    data = bytes(range(256)) * 3
    store.put_bytes("models/v1/factors.npy", data)
    assert store.get_bytes("models/v1/factors.npy") == data
    store.put_bytes("models/v1/factors.npy", b"second")
    assert store.get_bytes("models/v1/factors.npy") == b"second"
    store.put_bytes("empty", b"")
    assert store.get_bytes("empty") == b""


def test_missing_blob_raises_blob_not_found(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound, match="nothing/here.parquet") as info:
        store.get_bytes("nothing/here.parquet")
    assert isinstance(info.value, KeyError) and info.value.key == "nothing/here.parquet"
    with pytest.raises(BlobNotFound):
        store.local_path("nothing/here.parquet")
    with pytest.raises(KeyError):
        store.get_file("nothing/here.parquet", Path("/nonexistent/never-written"))
    assert not store.exists("nothing/here.parquet")


def test_exists(store: BlobStore) -> None:
    store.put_bytes("a/b.txt", b"x")
    assert store.exists("a/b.txt")
    assert not store.exists("a")  # a folder is not a blob
    assert not store.exists("a/b.tx")


def test_put_file_and_local_path_give_the_bytes(store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "upload.bin"
    source.write_bytes(os.urandom(70_000))
    store.put_file("datasets/d1/part-0.parquet", source)
    local = store.local_path("datasets/d1/part-0.parquet")
    assert local.is_file() and local.read_bytes() == source.read_bytes()
    copy = store.get_file("datasets/d1/part-0.parquet", tmp_path / "out" / "copy.bin")
    assert copy.read_bytes() == source.read_bytes()


def test_local_path_follows_changes_to_the_blob(store: BlobStore) -> None:
    store.put_bytes("m/model.json", b'{"v": 1}')
    assert store.local_path("m/model.json").read_bytes() == b'{"v": 1}'
    store.put_bytes("m/model.json", b'{"v": 2}')  # same size, different content
    assert store.local_path("m/model.json").read_bytes() == b'{"v": 2}'
    store.put_bytes("m/model.json", b'{"v": 300}')
    assert store.local_path("m/model.json").read_bytes() == b'{"v": 300}'


def test_list_is_sorted_and_filters_by_string_prefix(store: BlobStore) -> None:
    keys = ["b/2", "a/1", "a/10/x", "ab/1", "a/ü n i/ç.csv", "z"]
    for key in keys:
        store.put_bytes(key, key.encode())
    assert store.list() == sorted(keys)
    assert store.list("") == sorted(keys)
    assert store.list("a/") == ["a/1", "a/10/x", "a/ü n i/ç.csv"]
    assert store.list("a") == ["a/1", "a/10/x", "a/ü n i/ç.csv", "ab/1"]
    assert store.list("a/1") == ["a/1", "a/10/x"]
    assert store.list("missing/") == []
    assert store.get_bytes("a/ü n i/ç.csv") == "a/ü n i/ç.csv".encode()


def test_delete_and_delete_prefix(store: BlobStore) -> None:
    for key in ["jobs/j1/out.json", "jobs/j1/sub/part", "jobs/j10/out.json", "keep/me"]:
        store.put_bytes(key, b"1")
    store.delete("keep/me")
    store.delete("keep/me")  # deleting what is gone is fine
    assert not store.exists("keep/me")
    assert store.delete_prefix("jobs/j1/") == 2
    assert store.list() == ["jobs/j10/out.json"]
    assert store.delete_prefix("nothing/") == 0
    assert store.delete_prefix("") == 1
    assert store.list() == []


def test_directory_round_trip(store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "artifact"
    (source / "nested" / "deeper").mkdir(parents=True)
    files = {"model.json": b"{}", "nested/factors.npy": os.urandom(5000), "nested/deeper/ids.txt": b"a\nb"}
    for relative, data in files.items():
        (source / relative).write_bytes(data)
    written = store.put_dir("models/sv1", source)
    assert written == sorted(f"models/sv1/{r}" for r in files)
    target = tmp_path / "restored"
    paths = store.get_dir("models/sv1/", target)
    assert sorted(p.relative_to(target).as_posix() for p in paths) == sorted(files)
    for relative, data in files.items():
        assert (target / relative).read_bytes() == data


def test_unsafe_keys_are_rejected(store: BlobStore) -> None:
    for key in ["", "/abs/key", "a/../b", "..", "a//b", "./a", "a/.", "back\\slash", "nul\x00"]:
        with pytest.raises(ValueError):
            store.put_bytes(key, b"x")
        with pytest.raises(ValueError):
            store.exists(key)
        with pytest.raises(ValueError):
            store.delete(key)
    with pytest.raises(ValueError):
        store.list("../")
    assert store.list() == []


def test_url_reopens_the_same_store(store: BlobStore, tmp_path: Path) -> None:
    store.put_bytes("x/y", b"shared")
    endpoint = getattr(store, "endpoint_url", None)
    again = open_blob_store(store.url, s3_endpoint_url=endpoint, cache_dir=tmp_path / "other-cache")
    assert again.url == store.url
    assert again.get_bytes("x/y") == b"shared"
    assert isinstance(again, BlobStore)


# --- backend specifics -----------------------------------------------------------------------------------


def test_open_blob_store_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_blob_store(str(tmp_path / "plain")), LocalBlobStore)
    by_uri = open_blob_store((tmp_path / "with space").as_uri())
    assert isinstance(by_uri, LocalBlobStore) and by_uri.root == (tmp_path / "with space").resolve()
    s3 = open_blob_store("s3://my-bucket/some/prefix/", s3_endpoint_url="http://127.0.0.1:9000", cache_dir=tmp_path)
    assert isinstance(s3, S3BlobStore)
    assert (s3.bucket, s3.prefix, s3.endpoint_url, s3.url) == ("my-bucket", "some/prefix", "http://127.0.0.1:9000",
                                                               "s3://my-bucket/some/prefix")
    for bad in ("s3:///no-bucket", "gs://bucket/x", "file://otherhost/x"):
        with pytest.raises(ValueError):
            open_blob_store(bad)


def test_local_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    store.put_bytes("d/f", b"1" * 1000)
    # A crash mid-write leaves only a hidden temp file: readers never see it, and the old blob survives.
    (tmp_path / "b" / "d" / ".f.tmp-deadbeef").write_bytes(b"partial")
    assert store.list() == ["d/f"]
    assert store.get_bytes("d/f") == b"1" * 1000
    store.put_bytes("d/f", b"2")
    assert sorted(p.name for p in (tmp_path / "b" / "d").iterdir()) == [".f.tmp-deadbeef", "f"]
    assert store.local_path("d/f") == tmp_path / "b" / "d" / "f"


def test_local_delete_prefix_removes_what_a_killed_writer_left(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    store.put_bytes("imports/claim-1/a.parquet", b"1")
    # A writer killed mid-upload leaves a temp file that list() hides; deleting its folder removes it too.
    (tmp_path / "b" / "imports" / "claim-1" / ".b.parquet.tmp-deadbeef").write_bytes(b"partial")
    (tmp_path / "b" / "imports" / "claim-2").mkdir()
    (tmp_path / "b" / "imports" / "claim-2" / ".c.parquet.tmp-deadbeef").write_bytes(b"another claim's")
    assert store.delete_prefix("imports/claim-1/") == 1
    assert not (tmp_path / "b" / "imports" / "claim-1").exists()
    assert (tmp_path / "b" / "imports" / "claim-2" / ".c.parquet.tmp-deadbeef").exists()


def test_local_delete_prunes_empty_folders(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    store.put_bytes("models/sv1/a/b.npy", b"1")
    store.delete_prefix("models/sv1/")
    assert not (tmp_path / "b" / "models").exists()
    assert (tmp_path / "b").is_dir()


def test_s3_local_path_cache_downloads_only_when_the_object_changes(moto_s3: str, s3_bucket: str, s3_client: Any,
                                                                     tmp_path: Path) -> None:
    store = S3BlobStore(s3_bucket, "p", endpoint_url=moto_s3, cache_dir=tmp_path / "cache", client=s3_client)
    store.put_bytes("model/factors.npy", b"A" * 4096)
    first = store.local_path("model/factors.npy")
    assert first.is_relative_to(tmp_path / "cache")
    inode = first.stat().st_ino
    assert store.local_path("model/factors.npy").stat().st_ino == inode  # unchanged: served from the cache
    store.put_bytes("model/factors.npy", b"B" * 4096)
    second = store.local_path("model/factors.npy")
    assert second == first and second.stat().st_ino != inode and second.read_bytes() == b"B" * 4096
    # Without its ETag stamp a cached copy is not trusted: it is downloaded again.
    second.with_name(f".{second.name}.etag").unlink()
    second.write_bytes(b"C" * 4096)
    assert store.local_path("model/factors.npy").read_bytes() == b"B" * 4096
    store.delete("model/factors.npy")
    assert not second.exists()


def test_s3_multipart_upload_of_a_large_file(moto_s3: str, s3_bucket: str, s3_client: Any, tmp_path: Path) -> None:
    store = S3BlobStore(s3_bucket, "", endpoint_url=moto_s3, cache_dir=tmp_path / "cache", client=s3_client)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024))  # above boto3's 8 MiB multipart threshold
    store.put_file("big.bin", big)
    assert store.local_path("big.bin").read_bytes() == big.read_bytes()


def test_s3_listing_and_bulk_delete_span_several_pages(moto_s3: str, s3_bucket: str, s3_client: Any,
                                                       tmp_path: Path) -> None:
    store = S3BlobStore(s3_bucket, "p", endpoint_url=moto_s3, cache_dir=tmp_path / "cache", client=s3_client)
    store.page_size = 2  # S3 pages at 1000; a tiny page size exercises the same paging with 5 keys
    keys = [f"d/part-{i}" for i in range(5)]
    for key in keys:
        store.put_bytes(key, b"x")
    store.put_bytes("other", b"y")
    assert store.list("d/") == keys
    assert store.delete_prefix("d/") == 5
    assert store.list() == ["other"]


def test_local_concurrent_writers_never_expose_a_partial_blob(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    store.put_bytes("k", b"0" * 200_000)
    seen: set[bytes] = set()

    def write(digit: int) -> None:
        for _ in range(5):
            store.put_bytes("k", str(digit).encode() * 200_000)

    def read() -> None:
        for _ in range(40):
            data = store.get_bytes("k")
            seen.add(bytes(set(data)))  # the distinct bytes in one read: exactly one digit if writes are atomic

    threads = [threading.Thread(target=write, args=(d,)) for d in range(1, 4)] + [threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(distinct) == 1 for distinct in seen)
    assert store.list() == ["k"]  # no temp files left behind
