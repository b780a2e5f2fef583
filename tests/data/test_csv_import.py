"""CSV import: validation rules, failure reasons (file, line, column), Parquet output."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tastemaker.data import csv_import
from tastemaker.data.csv_import import CsvImportError, import_csv
from tastemaker.data.schemas import parse_schema
from tastemaker.data.sources import CsvSource, resolve_data_location

INTERACTIONS = parse_schema(json.dumps({"type": "record", "name": "Interactions", "fields": [
    {"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
    {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"},
    {"name": "EVENT_VALUE", "type": ["null", "float"]}]}))
MINIMAL = parse_schema(json.dumps({"type": "record", "name": "Interactions", "fields": [
    {"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
    {"name": "TIMESTAMP", "type": "long"}]}))
ITEMS = parse_schema(json.dumps({"type": "record", "name": "Items", "fields": [
    {"name": "ITEM_ID", "type": "string"}, {"name": "GENRES", "type": ["null", "string"], "categorical": True},
    {"name": "YEAR", "type": ["null", "int"]}, {"name": "RATING", "type": ["null", "double"]},
    {"name": "ADULT", "type": ["null", "boolean"]}, {"name": "DESCRIPTION", "type": ["null", "string"],
                                                     "textual": True},
    {"name": "CREATION_TIMESTAMP", "type": "long"}]}))


def source_for(path: Path) -> list[CsvSource]:
    return resolve_data_location(str(path), import_roots=[path.parent], s3_client_factory=dict)


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def run(tmp_path: Path, text: str, schema=INTERACTIONS, dataset_type: str = "Interactions", **kw) -> pa.Table:
    path = write(tmp_path, text)
    result = import_csv(source_for(path), schema, dataset_type, tmp_path / "out", **kw)
    return pa.concat_tables(pq.read_table(p) for p in result.files)


def failure(tmp_path: Path, text: str, schema=INTERACTIONS, **kw) -> tuple[str, Path]:
    path = write(tmp_path, text)
    with pytest.raises(CsvImportError) as info:
        import_csv(source_for(path), schema, "Interactions", tmp_path / "out", **kw)
    return info.value.reason, path


def test_imports_typed_columns_in_schema_order(tmp_path: Path) -> None:
    table = run(tmp_path, "EVENT_VALUE,TIMESTAMP,ITEM_ID,USER_ID,EVENT_TYPE\n"
                          "4.5,1700000000,i1,u1,click\n"
                          ",1700000001,i2,u2,view\n"
                          "-1,1700000002,\"i,3\",u3,purchase\n")
    assert table.schema.names == ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"]
    assert table.schema.field("TIMESTAMP").type == pa.int64()
    assert table.schema.field("EVENT_VALUE").type == pa.float32()
    assert table.to_pylist() == [
        {"USER_ID": "u1", "ITEM_ID": "i1", "TIMESTAMP": 1700000000, "EVENT_TYPE": "click", "EVENT_VALUE": 4.5},
        {"USER_ID": "u2", "ITEM_ID": "i2", "TIMESTAMP": 1700000001, "EVENT_TYPE": "view", "EVENT_VALUE": None},
        {"USER_ID": "u3", "ITEM_ID": "i,3", "TIMESTAMP": 1700000002, "EVENT_TYPE": "purchase",
         "EVENT_VALUE": -1.0}]


def test_missing_nullable_column_imports_as_nulls(tmp_path: Path) -> None:
    table = run(tmp_path, "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\nu1,i1,5,click\n")
    assert table.column("EVENT_VALUE").to_pylist() == [None]


def test_items_with_all_types_multivalue_categoricals_and_multiline_text(tmp_path: Path) -> None:
    table = run(tmp_path, "ITEM_ID,GENRES,YEAR,RATING,ADULT,DESCRIPTION,CREATION_TIMESTAMP\n"
                          "m1,Action|Comedy,1995,4.25,false,\"Two lines,\nwith a comma\",1600000000\n"
                          "m2,,,,true,,1600000001\n", schema=ITEMS, dataset_type="Items")
    assert table.schema.field("YEAR").type == pa.int32()
    assert table.schema.field("RATING").type == pa.float64()
    assert table.schema.field("ADULT").type == pa.bool_()
    assert table.to_pylist() == [
        {"ITEM_ID": "m1", "GENRES": "Action|Comedy", "YEAR": 1995, "RATING": 4.25, "ADULT": False,
         "DESCRIPTION": "Two lines,\nwith a comma", "CREATION_TIMESTAMP": 1600000000},
        {"ITEM_ID": "m2", "GENRES": None, "YEAR": None, "RATING": None, "ADULT": True, "DESCRIPTION": None,
         "CREATION_TIMESTAMP": 1600000001}]


def test_folder_of_files_with_gzip_and_part_splitting(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    header = "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\n"
    (folder / "a.csv").write_text(header + "".join(f"u{i},i{i},{i},click,1\n" for i in range(5)))
    (folder / "b.csv.gz").write_bytes(gzip.compress((header + "u9,i9,9,view,\n").encode()))
    sources = resolve_data_location(str(folder), import_roots=[tmp_path], s3_client_factory=dict)
    result = import_csv(sources, INTERACTIONS, "Interactions", tmp_path / "out", rows_per_file=4)
    assert result.rows == 6
    assert [p.name for p in result.files] == ["part-00000.parquet", "part-00001.parquet"]
    assert all(p.parent == tmp_path / "out" for p in result.files)
    assert result.bytes_read == sum(s.size for s in sources)
    users = pa.concat_tables(pq.read_table(p) for p in result.files).column("USER_ID").to_pylist()
    assert users == ["u0", "u1", "u2", "u3", "u4", "u9"]


def test_header_only_file_gives_one_empty_part(tmp_path: Path) -> None:
    table = run(tmp_path, "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\n")
    assert table.num_rows == 0
    assert table.schema.names == ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"]


def test_min_rows(tmp_path: Path) -> None:
    reason, _ = failure(tmp_path, "USER_ID,ITEM_ID,TIMESTAMP\nu,i,1\n", schema=MINIMAL, min_rows=1000)
    assert reason == "The import has 1 records; a Interactions import needs at least 1000."


def test_missing_required_column(tmp_path: Path) -> None:
    reason, path = failure(tmp_path, "USER_ID,EVENT_TYPE\nu1,click\n")
    assert reason == (f"Input CSV is missing the following columns: [ITEM_ID, TIMESTAMP]. File: {path}; "
                      f"header: [USER_ID, EVENT_TYPE].")


def test_unknown_and_repeated_columns(tmp_path: Path) -> None:
    reason, path = failure(tmp_path, "USER_ID,ITEM_ID,TIMESTAMP,color,event_type\nu,i,1,red,x\n")
    assert reason.startswith(f"Input CSV {path} has columns that are not in the schema: [color, event_type].")
    assert "'event_type' -> EVENT_TYPE" in reason
    reason, _ = failure(tmp_path, "USER_ID,ITEM_ID,TIMESTAMP,USER_ID\nu,i,1,u\n")
    assert "repeats column(s) in its header: [USER_ID]" in reason


@pytest.mark.parametrize(("row", "column", "problem"), [
    ("u1,i1,17000x,click,1", "TIMESTAMP", "'17000x' is not an integer."),
    ("u1,i1,1.5,click,1", "TIMESTAMP", "'1.5' is not an integer."),
    ("u1,i1,0x1F,click,1", "TIMESTAMP", "'0x1F' is not an integer."),
    ("u1,i1,99999999999999999999,click,1", "TIMESTAMP", "'99999999999999999999' is out of range for long."),
    ("u1,i1,5,click,abc", "EVENT_VALUE", "'abc' is not a float."),
    ("u1,i1,5,click,inf", "EVENT_VALUE", "'inf' is not a finite float."),
    ("u1,,5,click,1", "ITEM_ID", "empty value, but ITEM_ID is not nullable."),
    ("u1,i1,5,,1", "EVENT_TYPE", "empty value, but EVENT_TYPE is not nullable."),
    (f"{'u' * 257},i1,5,click,1", "USER_ID", "value is 257 characters long; ids are limited to 256."),
])
def test_bad_value_names_file_line_and_column(tmp_path: Path, row: str, column: str, problem: str) -> None:
    text = "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\nu0,i0,1,click,1\n" + row + "\n"
    reason, path = failure(tmp_path, text)
    assert reason == f"Invalid data in {path} line 3, column {column}: {problem}"


def test_bad_boolean_and_categorical_length(tmp_path: Path) -> None:
    header = "ITEM_ID,GENRES,ADULT,CREATION_TIMESTAMP\n"
    reason, path = failure(tmp_path, header + "m1,a,True,1\n", schema=ITEMS)
    assert reason == (f"Invalid data in {path} line 2, column ADULT: 'True' is not a boolean "
                      f"(use lowercase true or false).")
    reason, path = failure(tmp_path, header + f"m1,{'a|' * 500}b,true,1\n", schema=ITEMS)
    assert reason == (f"Invalid data in {path} line 2, column GENRES: value is 1001 characters long; "
                      f"categorical values are limited to 1000.")
    table = run(tmp_path, header + f"{'é' * 256},{'é' * 1000},true,1\n", schema=ITEMS, dataset_type="Items")
    assert table.column("ITEM_ID").to_pylist() == ["é" * 256]  # limits count characters, not bytes


def test_line_numbers_count_physical_lines_and_skip_blank_lines(tmp_path: Path) -> None:
    text = ("ITEM_ID,DESCRIPTION,CREATION_TIMESTAMP\n"
            "m1,\"line one\nline two\nline three\",1\n"
            "\n"
            "m2,plain,notanumber\n")
    reason, path = failure(tmp_path, text, schema=ITEMS)
    assert reason == f"Invalid data in {path} line 6, column CREATION_TIMESTAMP: 'notanumber' is not an integer."


def test_errors_in_later_batches_and_max_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_import, "BLOCK_SIZE", 256)  # many small batches
    rows = [f"u{i},i{i},{i},click,1" for i in range(200)]
    rows[150] = "u150,i150,x,click,1"
    rows[160] = "u160,i160,160,click,bad"
    rows[170] = "u170,,170,click,1"
    reason, path = failure(tmp_path, "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\n" + "\n".join(rows) + "\n",
                           max_errors=2)
    assert reason == (f"Invalid data in {path} line 152, column TIMESTAMP: 'x' is not an integer. "
                      f"Invalid data in {path} line 162, column EVENT_VALUE: 'bad' is not a float. "
                      f"Import stopped after 2 problems.")


def test_several_problems_in_one_row_are_listed_in_column_order(tmp_path: Path) -> None:
    reason, path = failure(tmp_path, "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\nu1,,x,click,y\n")
    assert reason == (f"Invalid data in {path} line 2, column ITEM_ID: empty value, but ITEM_ID is not nullable. "
                      f"Invalid data in {path} line 2, column TIMESTAMP: 'x' is not an integer. "
                      f"Invalid data in {path} line 2, column EVENT_VALUE: 'y' is not a float.")


def test_ragged_rows_and_bad_utf8_name_the_line(tmp_path: Path) -> None:
    reason, path = failure(tmp_path, "USER_ID,ITEM_ID,TIMESTAMP\nu1,i1,1\nu2,i2,2,extra\n", schema=MINIMAL)
    assert reason == (f"Invalid data in {path} line 3: expected 3 columns, found 4. "
                      f"Quote values that contain commas.")
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"USER_ID,ITEM_ID,TIMESTAMP\nu1,i1,1\nu\xe9,i2,2\n")
    with pytest.raises(CsvImportError) as info:
        import_csv(source_for(path), MINIMAL, "Interactions", tmp_path / "out")
    assert info.value.reason == f"Invalid data in {path} line 3: the text is not valid UTF-8."


def test_empty_file(tmp_path: Path) -> None:
    reason, path = failure(tmp_path, "")
    assert reason == f"{path} is empty; the first line must be a header naming the schema fields."


def test_gzip_error_reports_line(tmp_path: Path) -> None:
    path = tmp_path / "x.csv.gz"
    path.write_bytes(gzip.compress(b"USER_ID,ITEM_ID,TIMESTAMP\nu1,i1,1\n\nu2,i2,zz\n"))
    with pytest.raises(CsvImportError) as info:
        import_csv(source_for(path), MINIMAL, "Interactions", tmp_path / "out")
    assert info.value.reason == f"Invalid data in {path} line 4, column TIMESTAMP: 'zz' is not an integer."


def test_import_from_s3_folder(moto_s3: str, s3_bucket: str, tmp_path: Path) -> None:
    def factory():
        return boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")

    header = "USER_ID,ITEM_ID,TIMESTAMP\n"
    factory().put_object(Bucket=s3_bucket, Key="in/1.csv", Body=(header + "u1,i1,1\n").encode())
    factory().put_object(Bucket=s3_bucket, Key="in/2.csv.gz", Body=gzip.compress((header + "u2,i2,2\n").encode()))
    factory().put_object(Bucket=s3_bucket, Key="bad/x.csv", Body=(header + "u1,i1,1\nu2,i2,abc\n").encode())
    sources = resolve_data_location(f"s3://{s3_bucket}/in/", import_roots=[], s3_client_factory=factory)
    result = import_csv(sources, MINIMAL, "Interactions", tmp_path / "out")
    assert result.rows == 2
    assert pq.read_table(result.files[0]).column("ITEM_ID").to_pylist() == ["i1", "i2"]
    sources = resolve_data_location(f"s3://{s3_bucket}/bad/x.csv", import_roots=[], s3_client_factory=factory)
    with pytest.raises(CsvImportError) as info:
        import_csv(sources, MINIMAL, "Interactions", tmp_path / "out2")
    assert info.value.reason == (f"Invalid data in s3://{s3_bucket}/bad/x.csv line 3, column TIMESTAMP: "
                                 f"'abc' is not an integer.")


def test_corrupt_gzip_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(gzip.compress(b"USER_ID,ITEM_ID,TIMESTAMP\n" + b"u1,i1,1\n" * 1000)[:-40] + b"garbage" * 10)
    with pytest.raises(CsvImportError, match=f"Cannot read {path} as gzip data"):
        import_csv(source_for(path), MINIMAL, "Interactions", tmp_path / "out")
