"""Import benchmark: CSV -> validated Parquet (import_csv) against a parse-only pyarrow read of the same file.

    .venv/bin/python bench/import_bench.py [--rows 20000000] [--repeat 3] [--cache-dir DIR]

Generates a Personalize interactions CSV (USER_ID, ITEM_ID, TIMESTAMP, EVENT_TYPE, EVENT_VALUE) once per
row count (cached in --cache-dir), then runs, each in a fresh child process, the reference (pyarrow's
streaming CSV reader, all columns parsed, nothing validated or written) and import_csv. Prints rows/s,
CPU seconds and peak RSS (ru_maxrss of the child) per run, medians, and the import/reference ratio.
Targets: >= 1,000,000 rows/s and <= 2 GiB peak for the import.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.dumps({
    "type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
    "fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
               {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"},
               {"name": "EVENT_VALUE", "type": ["null", "float"]}],
    "version": "1.0"})
TARGET_ROWS_PER_S = 1_000_000
TARGET_PEAK_BYTES = 2 << 30


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Write `rows` synthetic interactions with vectorised numpy/pyarrow (no Python loop per row)."""
    rng = np.random.default_rng(seed)
    schema = pa.schema([("USER_ID", pa.string()), ("ITEM_ID", pa.string()), ("TIMESTAMP", pa.int64()),
                        ("EVENT_TYPE", pa.string()), ("EVENT_VALUE", pa.float32())])
    event_types = pa.array(["click", "purchase", "view", "watch"])
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        out.write((",".join(schema.names) + "\n").encode())  # Personalize headers are not quoted
    with open(tmp, "ab") as out, pcsv.CSVWriter(
            out, schema, write_options=pcsv.WriteOptions(quoting_style="none", include_header=False)) as writer:
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            users = rng.zipf(1.3, n) % 500_000  # power-law activity, like real logs
            items = rng.zipf(1.2, n) % 100_000
            values = (rng.integers(1, 11, n) / 2).astype(np.float32)
            value_array = pa.array(values, mask=rng.random(n) < 0.1)  # some empty EVENT_VALUE cells
            writer.write_table(pa.table([
                pc.binary_join_element_wise("user-", pc.cast(pa.array(users), pa.string()), ""),
                pc.binary_join_element_wise("item-", pc.cast(pa.array(items), pa.string()), ""),
                pa.array(1_500_000_000 + np.sort(rng.integers(0, 200_000_000, n))),
                pc.take(event_types, pa.array(rng.integers(0, 4, n))),
                value_array], schema=schema))
    tmp.rename(path)


def child(mode: str, csv_path: str, out_dir: str) -> None:
    """Run one measurement in this (fresh) process and print a JSON line."""
    start_cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    if mode == "read_dataset":
        from tastemaker.data.schemas import parse_schema
        from tastemaker.data.tables import read_dataset

        parts = sorted(Path(csv_path).glob("part-*.parquet"))
        rows = read_dataset(parts, parse_schema(SCHEMA), "Interactions").num_rows
    elif mode == "reference":
        with open(csv_path, "rb") as stream:
            reader = pcsv.open_csv(stream, read_options=pcsv.ReadOptions(block_size=32 << 20),
                                   parse_options=pcsv.ParseOptions(newlines_in_values=True))
            rows = sum(batch.num_rows for batch in reader)
    else:
        from tastemaker.data.csv_import import import_csv
        from tastemaker.data.schemas import parse_schema
        from tastemaker.data.sources import resolve_data_location

        sources = resolve_data_location(csv_path, import_roots=[Path(csv_path).parent], s3_client_factory=dict)
        rows = import_csv(sources, parse_schema(SCHEMA), "Interactions", Path(out_dir)).rows
        if os.environ.get("KEEP_PARTS"):
            shutil.copytree(out_dir, os.environ["KEEP_PARTS"], dirs_exist_ok=True)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - start_cpu.ru_utime - start_cpu.ru_stime
    print(json.dumps({"rows": rows, "wall": wall, "cpu": cpu, "peak": usage.ru_maxrss * 1024}))


def measure(mode: str, csv_path: Path, env: dict[str, str] | None = None) -> dict[str, float]:
    out_dir = tempfile.mkdtemp(prefix="tm-import-bench-")
    try:
        result = subprocess.run([sys.executable, __file__, "--child", mode, str(csv_path), out_dir],
                                check=True, capture_output=True, text=True, cwd=ROOT,
                                env={**os.environ, **(env or {})})
        return json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "tastemaker-import-bench")
    parser.add_argument("--with-read", action="store_true",
                        help="also time read_dataset (dedup) over the imported parts, once")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    csv_path = args.cache_dir / f"interactions-{args.rows}.csv"
    if not csv_path.exists():
        started = time.perf_counter()
        generate(csv_path, args.rows)
        print(f"generated {args.rows:,} rows ({csv_path.stat().st_size / 2**20:,.0f} MiB) in "
              f"{time.perf_counter() - started:.1f} s: {csv_path}")
    print(f"file: {csv_path} ({csv_path.stat().st_size / 2**20:,.0f} MiB, {args.rows:,} rows)")
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs "
          f"(other processes share the machine; cpu s is less sensitive to that than wall s)")
    print(f"{'run':>4} {'what':<10} {'wall s':>8} {'cpu s':>8} {'rows/s':>12} {'rows/cpu-s':>12} {'peak MiB':>9}")
    runs: dict[str, list[dict[str, float]]] = {"reference": [], "import": []}
    for run in range(1, args.repeat + 1):
        for mode in ("reference", "import"):
            r = measure(mode, csv_path)
            assert r["rows"] == args.rows, r
            runs[mode].append(r)
            print(f"{run:>4} {mode:<10} {r['wall']:>8.2f} {r['cpu']:>8.2f} {r['rows'] / r['wall']:>12,.0f} "
                  f"{r['rows'] / r['cpu']:>12,.0f} {r['peak'] / 2**20:>9,.0f}")
    median = {mode: {key: statistics.median(r[key] for r in rs) for key in ("wall", "cpu", "peak")}
              for mode, rs in runs.items()}
    ref, imp = median["reference"], median["import"]
    import_rate = args.rows / imp["wall"]
    print(f"\nmedian of {args.repeat}: reference (parse only) {args.rows / ref['wall']:,.0f} rows/s, "
          f"import_csv {import_rate:,.0f} rows/s; import takes {imp['wall'] / ref['wall']:.2f}x the "
          f"reference's wall time ({imp['cpu'] / ref['cpu']:.2f}x its CPU time)")
    print(f"import: {args.rows / imp['cpu']:,.0f} rows per CPU-second (reference {args.rows / ref['cpu']:,.0f})")
    print(f"import peak RSS {imp['peak'] / 2**20:,.0f} MiB (reference {ref['peak'] / 2**20:,.0f} MiB)")
    print(f"targets: >= {TARGET_ROWS_PER_S:,} rows/s: {'MET' if import_rate >= TARGET_ROWS_PER_S else 'MISSED'}; "
          f"peak <= 2 GiB: {'MET' if imp['peak'] <= TARGET_PEAK_BYTES else 'MISSED'}")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.with_read:
        parts_dir = Path(tempfile.mkdtemp(prefix="tm-import-parts-"))
        try:
            measure("import", csv_path, env={"KEEP_PARTS": str(parts_dir)})
            r = measure("read_dataset", parts_dir)
            print(f"read_dataset (concat + exact-duplicate check) of the imported parts: {r['wall']:.2f} s wall, "
                  f"{r['cpu']:.2f} s CPU, {r['rows'] / r['wall']:,.0f} rows/s, peak {r['peak'] / 2**20:,.0f} MiB")
        finally:
            shutil.rmtree(parts_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
