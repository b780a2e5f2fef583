"""Dataset tables: upsert and dedup when reading parts; validated Put* record writes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tastemaker.data import tables
from tastemaker.data.csv_import import import_csv
from tastemaker.data.schemas import parse_schema
from tastemaker.data.sources import resolve_data_location
from tastemaker.data.tables import read_dataset, write_records
from tastemaker.errors import InvalidInputException


def schema_of(name: str, *fields: tuple) -> object:
    return parse_schema(json.dumps({"type": "record", "name": name, "fields": [
        {"name": n, "type": t, **({"categorical": True} if n == "GENRES" else {})} for n, t in fields]}))


ITEMS = schema_of("Items", ("ITEM_ID", "string"), ("GENRES", ["null", "string"]), ("YEAR", ["null", "int"]))
INTERACTIONS = schema_of("Interactions", ("USER_ID", "string"), ("ITEM_ID", "string"), ("TIMESTAMP", "long"),
                         ("EVENT_TYPE", "string"), ("EVENT_VALUE", ["null", "float"]))


def test_items_keep_the_last_record_per_id(tmp_path: Path) -> None:
    first = tmp_path / "p0.parquet"
    second = tmp_path / "p1.parquet"
    write_records([{"ITEM_ID": "m1", "GENRES": "A", "YEAR": 1990}, {"ITEM_ID": "m2", "GENRES": "B"},
                   {"ITEM_ID": "m3", "YEAR": "2001"}], ITEMS, "Items", first)
    write_records([{"ITEM_ID": "m1", "GENRES": "C|D", "YEAR": None}, {"ITEM_ID": "m3", "GENRES": "E"},
                   {"ITEM_ID": "m3", "GENRES": "F", "YEAR": 2003}], ITEMS, "Items", second)
    table = read_dataset([first, second], ITEMS, "items")
    assert table.to_pylist() == [
        {"ITEM_ID": "m2", "GENRES": "B", "YEAR": None},
        {"ITEM_ID": "m1", "GENRES": "C|D", "YEAR": None},
        {"ITEM_ID": "m3", "GENRES": "F", "YEAR": 2003},
    ]
    # order of parts decides which record wins
    assert read_dataset([second, first], ITEMS, "Items").to_pylist() == [
        {"ITEM_ID": "m1", "GENRES": "A", "YEAR": 1990}, {"ITEM_ID": "m2", "GENRES": "B", "YEAR": None},
        {"ITEM_ID": "m3", "GENRES": None, "YEAR": 2001}]


def test_interactions_drop_exact_duplicates_only(tmp_path: Path) -> None:
    rows = [
        {"USER_ID": "u1", "ITEM_ID": "i1", "TIMESTAMP": 10, "EVENT_TYPE": "click", "EVENT_VALUE": 1.0},
        {"USER_ID": "u1", "ITEM_ID": "i1", "TIMESTAMP": 10, "EVENT_TYPE": "click", "EVENT_VALUE": None},
        {"USER_ID": "u1", "ITEM_ID": "i1", "TIMESTAMP": 11, "EVENT_TYPE": "click", "EVENT_VALUE": 1.0},
        {"USER_ID": "u1", "ITEM_ID": "i1", "TIMESTAMP": 10, "EVENT_TYPE": "view", "EVENT_VALUE": 1.0},
    ]
    write_records(rows, INTERACTIONS, "Interactions", tmp_path / "a.parquet")
    write_records([rows[1], rows[0], rows[0]], INTERACTIONS, "Interactions", tmp_path / "b.parquet")
    table = read_dataset([tmp_path / "a.parquet", tmp_path / "b.parquet"], INTERACTIONS, "Interactions")
    assert table.to_pylist() == rows


def test_parts_written_under_an_older_schema_are_projected(tmp_path: Path) -> None:
    old = schema_of("Items", ("ITEM_ID", "string"), ("YEAR", "int"), ("OLD", ["null", "string"]))
    write_records([{"ITEM_ID": "m1", "YEAR": 1999, "OLD": "x"}], old, "Items", tmp_path / "old.parquet")
    new = schema_of("Items", ("ITEM_ID", "string"), ("YEAR", ["null", "long"]), ("GENRES", ["null", "string"]))
    write_records([{"ITEM_ID": "m2", "YEAR": 2001, "GENRES": "A"}], new, "Items", tmp_path / "new.parquet")
    table = read_dataset([tmp_path / "old.parquet", tmp_path / "new.parquet"], new, "Items")
    assert table.schema == pa.schema([("ITEM_ID", pa.string()), ("YEAR", pa.int64()), ("GENRES", pa.string())])
    assert table.to_pylist() == [{"ITEM_ID": "m1", "YEAR": 1999, "GENRES": None},
                                 {"ITEM_ID": "m2", "YEAR": 2001, "GENRES": "A"}]
    incompatible = schema_of("Items", ("ITEM_ID", "string"), ("OLD", ["null", "long"]))
    with pytest.raises(InvalidInputException, match="old.parquet has column OLD as string"):
        read_dataset([tmp_path / "old.parquet"], incompatible, "Items")


def test_no_parts_gives_an_empty_table() -> None:
    table = read_dataset([], INTERACTIONS, "Interactions")
    assert table.num_rows == 0
    assert table.schema.names == INTERACTIONS.field_names


def test_csv_import_then_put_records_upsert(tmp_path: Path) -> None:
    csv_path = tmp_path / "items.csv"
    csv_path.write_text("ITEM_ID,GENRES,YEAR\nm1,A,1990\nm2,B,1991\n")
    sources = resolve_data_location(str(csv_path), import_roots=[tmp_path], s3_client_factory=dict)
    parts = import_csv(sources, ITEMS, "Items", tmp_path / "bulk").files
    write_records([{"ITEM_ID": "m1", "GENRES": "Z", "YEAR": 2020}], ITEMS, "Items", tmp_path / "put" / "0.parquet")
    table = read_dataset([*parts, tmp_path / "put" / "0.parquet"], ITEMS, "Items")
    assert dict(zip(table.column("ITEM_ID").to_pylist(), table.column("GENRES").to_pylist(), strict=True)) == {
        "m1": "Z", "m2": "B"}


@pytest.mark.parametrize(("records", "message"), [
    ([{"ITEM_ID": "m1", "YEAR": 1}, {"ITEM_ID": "m2", "YEAR": "abc"}],
     "Invalid data in record[1], field YEAR: 'abc' is not an integer."),
    ([{"ITEM_ID": "m1", "YEAR": 1.5}], "Invalid data in record[0], field YEAR: '1.5' is not an integer."),
    ([{"ITEM_ID": "m1", "YEAR": 3_000_000_000}],
     "Invalid data in record[0], field YEAR: '3000000000' is out of range for int."),
    ([{"ITEM_ID": "m1"}, {"GENRES": "A"}], ("Invalid data in record[1], field ITEM_ID: empty value, but ITEM_ID "
                                           "is not nullable.")),
    ([{"ITEM_ID": "x" * 257}], ("Invalid data in record[0], field ITEM_ID: value is 257 characters long; ids are "
                               "limited to 256.")),
    ([{"ITEM_ID": "m1", "COLOR": "red"}], "Invalid data in record[0]: field(s) ['COLOR'] are not in the schema"),
    ([{"ITEM_ID": "m1", "GENRES": ["A", "B"]}], ("Invalid data in record[0], field GENRES: a list value is not "
                                                "allowed")),
])
def test_write_records_rejects_bad_values(tmp_path: Path, records: list, message: str) -> None:
    with pytest.raises(InvalidInputException) as info:
        write_records(records, ITEMS, "Items", tmp_path / "x.parquet")
    assert info.value.message.startswith(message)
    assert not (tmp_path / "x.parquet").exists()


def test_write_records_types_and_booleans(tmp_path: Path) -> None:
    schema = schema_of("Users", ("USER_ID", "string"), ("VIP", ["null", "boolean"]), ("SCORE", ["null", "double"]))
    count = write_records([{"USER_ID": "u1", "VIP": True, "SCORE": 0.1}, {"USER_ID": "u2", "VIP": "false",
                                                                           "SCORE": "2"}],
                          schema, "Users", tmp_path / "u.parquet")
    assert count == 2
    assert read_dataset([tmp_path / "u.parquet"], schema, "Users").to_pylist() == [
        {"USER_ID": "u1", "VIP": True, "SCORE": 0.1}, {"USER_ID": "u2", "VIP": False, "SCORE": 2.0}]
    with pytest.raises(InvalidInputException, match=r"record\[0\], field VIP: 'True' is not a boolean"):
        write_records([{"USER_ID": "u1", "VIP": "True"}], schema, "Users", tmp_path / "v.parquet")


def test_dedup_and_upsert_match_a_plain_python_reference(tmp_path: Path) -> None:
    rng = random.Random(3)
    rows = [{"USER_ID": rng.choice(["u1", "u2", "é", "", "u1u1"]) or "u", "ITEM_ID": rng.choice(["i1", "i2"]),
             "TIMESTAMP": rng.choice([1, 2, -3]), "EVENT_TYPE": rng.choice(["click", "view"]),
             "EVENT_VALUE": rng.choice([None, 0.5, 0.0, -0.0])} for _ in range(3000)]
    write_records(rows[:1000], INTERACTIONS, "Interactions", tmp_path / "a.parquet")
    write_records(rows[1000:], INTERACTIONS, "Interactions", tmp_path / "b.parquet")
    table = read_dataset([tmp_path / "a.parquet", tmp_path / "b.parquet"], INTERACTIONS, "Interactions")
    first_seen: dict[tuple, dict] = {}
    for row in rows:
        first_seen.setdefault(tuple(row.values()), row)
    assert table.to_pylist() == list(first_seen.values())

    items = [{"ITEM_ID": f"m{rng.randrange(50)}", "GENRES": rng.choice([None, "A", "B|C"]), "YEAR": i}
             for i in range(2000)]
    write_records(items, ITEMS, "Items", tmp_path / "items.parquet")
    last = {item["ITEM_ID"]: item for item in items}
    expected = sorted(last.values(), key=lambda item: item["YEAR"])
    assert read_dataset([tmp_path / "items.parquet"], ITEMS, "Items").to_pylist() == expected


def test_rows_with_colliding_fingerprints_stay_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A deliberately weak string hash (length only) makes different ids collide; the exact check must
    # still keep them apart.
    monkeypatch.setattr(tables, "_string_hash", lambda array: pc.binary_length(array).to_numpy(
        zero_copy_only=False).astype(np.uint64))
    ids = ["abcdefgh-1-stuvwxyz", "abcdefgh-2-stuvwxyz", "abcdefgh-1-stuvwxyz", "abcdefgh-3-stuvwxyz"]
    write_records([{"ITEM_ID": item, "YEAR": i} for i, item in enumerate(ids)], ITEMS, "Items", tmp_path / "i.parquet")
    table = read_dataset([tmp_path / "i.parquet"], ITEMS, "Items")
    assert list(zip(table.column("ITEM_ID").to_pylist(), table.column("YEAR").to_pylist(), strict=True)) == [
        ("abcdefgh-2-stuvwxyz", 1), ("abcdefgh-1-stuvwxyz", 2), ("abcdefgh-3-stuvwxyz", 3)]
    events = [{"USER_ID": "u", "ITEM_ID": item, "TIMESTAMP": 1, "EVENT_TYPE": "click"} for item in ids]
    write_records(events, INTERACTIONS, "Interactions", tmp_path / "e.parquet")
    table = read_dataset([tmp_path / "e.parquet"], INTERACTIONS, "Interactions")
    assert table.column("ITEM_ID").to_pylist() == [ids[0], ids[1], ids[3]]


def test_few_duplicates_among_many_rows(tmp_path: Path) -> None:
    rows = [{"USER_ID": f"u{i % 97}", "ITEM_ID": f"i{i}", "TIMESTAMP": i, "EVENT_TYPE": "click"} for i in range(3000)]
    repeated = [rows[10], rows[2000], rows[10], rows[2999]]
    write_records(rows, INTERACTIONS, "Interactions", tmp_path / "a.parquet")
    write_records(repeated, INTERACTIONS, "Interactions", tmp_path / "b.parquet")
    table = read_dataset([tmp_path / "a.parquet", tmp_path / "b.parquet"], INTERACTIONS, "Interactions")
    assert table.num_rows == 3000
    assert table.column("ITEM_ID").to_pylist() == [f"i{i}" for i in range(3000)]
    items = [{"ITEM_ID": f"m{i}", "YEAR": i} for i in range(3000)] + [{"ITEM_ID": "m7", "YEAR": -7}]
    write_records(items, ITEMS, "Items", tmp_path / "items.parquet")
    table = read_dataset([tmp_path / "items.parquet"], ITEMS, "Items")
    assert table.num_rows == 3000
    assert table.column("YEAR").to_pylist()[-1] == -7
    assert "m7" not in table.column("ITEM_ID").to_pylist()[:-1]
