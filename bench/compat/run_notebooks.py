"""Run AWS's public Personalize sample notebooks, their code cells as written and in order, against Tastemaker.

The notebooks are read from a snapshot of github.com/aws-samples/amazon-personalize-samples (a checkout, or a
bare git directory read at HEAD); none of them is copied into this repository. Each notebook runs in a fresh
namespace, as in a fresh kernel, in its own folder under --work. Only the environment is changed:

- boto3 finds Tastemaker (personalize, personalize-runtime, personalize-events) and a moto server (S3, IAM, STS,
  SSM) through AWS_ENDPOINT_URL_* variables (bench/compat/environment.py);
- `!` lines: downloads of MovieLens / the retail demo store's CSVs are replaced by files made from the shared
  MovieLens copy, `unzip` does nothing (the files are already there), `mkdir` makes the folder, `ls`/`cat` run,
  `pip`/`conda` installs and `pygmentize` are skipped; anything else fails the cell;
- `%store` keeps variables between the notebooks of one run (`%store -r` restores them), `%%time` is dropped,
  `display` prints;
- `time.sleep` sleeps at most --sleep seconds (the notebooks' polling loops run unchanged, only faster), and
  raises CellTimeout once a cell has run --cell-timeout seconds (a loop waiting for a status that never comes,
  such as a notebook that waits for ACTIVE only and never for CREATE FAILED, fails its cell instead of hanging);
- `open` answers the SageMaker notebook-instance metadata file from the scratch folder;
- `--pandas1` puts back `DataFrame.append` (removed in pandas 2), which the POC-in-a-box workshop still calls, and
  pandas 1's `read_csv(dtype=..., index_col=...)`, which left the index its inferred type (POC-in-a-box 05).

Every code cell prints PASS or FAIL with the error; the run exits 1 when a cell failed.

    .venv/bin/python bench/compat/run_notebooks.py /work/.mirror/aws-samples+amazon-personalize-samples/repo
    .venv/bin/python bench/compat/run_notebooks.py SNAPSHOT --notebooks vod,promotions --max-users 150
    .venv/bin/python bench/compat/run_notebooks.py SNAPSHOT --json report.json --work /tmp/notebooks
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]  # this checkout
from environment import Environment, services

# The notebooks of issue #14, in the order a user runs them; a name may stand for a series run in one session.
NOTEBOOKS: dict[str, list[str]] = {
    "getting-started": ["getting_started/notebooks/1.Building_Your_First_Campaign.ipynb"],
    "poc-in-a-box": [f"next_steps/workshops/POC_in_a_box/completed/{name}.ipynb" for name in (
        "01_Validating_and_Importing_User_Item_Interaction_Data", "02_Validating_and_Importing_Item_Metadata",
        "03_Creating_and_Evaluating_Solutions", "04_Deploying_Campaigns_and_Filters",
        "05_Interacting_with_Campaigns_and_Filters", "06_Clean_Up_Resources")],
    "vod": ["getting_started/notebooks_managed_domains/Building_Your_First_Recommender_Video_On_Demand.ipynb"],
    "promotions": ["next_steps/core_use_cases/filters/promotions/Promotions.ipynb"],
}
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "movielens-latest-small" / "ml-latest-small"


class CellTimeout(Exception):
    """A cell still waiting after --cell-timeout seconds."""


class Clock:
    """The patched time.sleep: short sleeps, and a budget per cell."""

    def __init__(self, longest: float, budget: float) -> None:
        self.longest, self.budget, self.started = longest, budget, time.monotonic()
        self.real_sleep = time.sleep

    def sleep(self, seconds: float) -> None:
        if time.monotonic() - self.started > self.budget:
            raise CellTimeout(f"the cell was still waiting after {self.budget:.0f}s (--cell-timeout)")
        self.real_sleep(min(float(seconds), self.longest))


@dataclass
class CellResult:
    notebook: str
    cell: int
    ok: bool
    seconds: float
    error: str = ""
    first_line: str = ""


def read_notebook(snapshot: Path, path: str) -> dict[str, Any]:
    """A notebook's JSON from a checkout or from a bare git directory (HEAD)."""
    if (snapshot / path).exists():
        return json.loads((snapshot / path).read_text())  # type: ignore[no-any-return]
    shown = subprocess.run(["git", f"--git-dir={snapshot}", "show", f"HEAD:{path}"], capture_output=True, check=True)
    return json.loads(shown.stdout)  # type: ignore[no-any-return]


class Kernel:
    """One notebook's namespace, with IPython's `!` and `%` lines turned into calls into this object."""

    def __init__(self, env: Environment, folder: Path, store: dict[str, Any]) -> None:
        self.env, self.folder, self.store = env, folder, store
        self.ns: dict[str, Any] = {"__name__": "__main__", "__nb__": self, "display": self.display,
                                   "open": env.open}

    @staticmethod
    def display(*values: Any) -> None:
        for value in values:
            print(repr(value)[:2000])

    def translate(self, source: str) -> str:
        """Cell source -> Python: cell magics dropped, `!cmd` -> __nb__.shell(...), `%magic` -> __nb__.magic(...)."""
        lines = source.splitlines()
        if lines and lines[0].startswith("%%"):
            if lines[0].split()[0] != "%%time":
                raise NotImplementedError(f"cell magic {lines[0]}")
            lines = lines[1:]
        out = []
        for line in lines:
            stripped = line.lstrip()
            indent = line[: len(line) - len(stripped)]
            if stripped.startswith("!"):
                out.append(f"{indent}__nb__.shell({stripped[1:]!r})")
            elif stripped.startswith("%"):
                out.append(f"{indent}__nb__.magic({stripped[1:]!r})")
            else:
                out.append(line)
        return "\n".join(out)

    def expand(self, command: str) -> str:
        """IPython's expansion of `{expression}` and `$name` in a shell line."""
        command = re.sub(r"\{([^{}]+)\}", lambda m: str(eval(m.group(1), self.ns)), command)
        return re.sub(r"\$(\w+)", lambda m: str(self.ns[m.group(1)]) if m.group(1) in self.ns else m.group(0),
                      command)

    def shell(self, command: str) -> None:
        """One `!` line; like IPython's subshell, a `cd` in it lasts only until the end of the line."""
        folder = self.folder
        for part in (p.strip() for p in self.expand(command).split("&&")):
            folder = self._shell_one(part, folder)

    def _shell_one(self, part: str, folder: Path) -> Path:
        words = shlex.split(part)
        program = Path(words[0]).name
        if program == "cd":
            return (folder / words[1]).resolve()
        if program in ("wget", "curl"):
            url = next(w for w in words[1:] if "://" in w)
            print(f"[env] {part}: {self.env.download(url, folder)}")
        elif program == "unzip":
            print(f"[env] {part}: nothing to do, the download already left the files")
        elif program == "mkdir":
            for name in (w for w in words[1:] if not w.startswith("-")):
                (folder / name).mkdir(parents=True, exist_ok=True)
        elif program in ("ls", "cat"):
            subprocess.run(part, shell=True, cwd=folder, check=False)
        elif program in ("pygmentize", "conda", "pip") or (program.startswith("python") and "pip" in words):
            print(f"[env] skipped: {part}")
        else:
            raise NotImplementedError(f"shell command not handled by the driver: {part}")
        return folder

    def magic(self, line: str) -> None:
        name, _, rest = line.partition(" ")
        if name != "store":
            raise NotImplementedError(f"line magic %{line}")
        args = rest.split()
        if args and args[0] == "-r":
            self.ns.update(self.store)
        else:
            for var in args:
                self.store[var] = self.ns[var]

    def run(self, source: str) -> None:
        code = self.translate(source)
        tree = ast.parse(code)
        last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        if last is not None:
            tree.body.pop()
        cwd = os.getcwd()
        os.chdir(self.folder)
        try:
            exec(compile(tree, "<cell>", "exec"), self.ns)  # noqa: S102 - running the cell is the point
            if last is not None:  # Jupyter shows the value of a cell's last expression
                value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), self.ns)
                if value is not None:
                    print(repr(value)[:1000])
        finally:
            os.chdir(cwd)


def run_series(name: str, paths: list[str], snapshot: Path, env: Environment, clock: Clock,
               quiet: bool) -> list[CellResult]:
    folder = env.work / name
    folder.mkdir(parents=True, exist_ok=True)
    store: dict[str, Any] = {}
    results = []
    for path in paths:
        notebook = read_notebook(snapshot, path)
        kernel = Kernel(env, folder, store)
        cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
        for index, cell in enumerate(cells):
            source = "".join(cell["source"])
            first = next((line for line in source.splitlines() if line.strip()), "")[:70]
            started = time.perf_counter()
            clock.started = time.monotonic()
            time.sleep = clock.sleep  # type: ignore[assignment]
            try:
                if quiet:
                    with contextlib.redirect_stdout(io.StringIO()):
                        kernel.run(source)
                else:
                    kernel.run(source)
                result = CellResult(Path(path).name, index, True, time.perf_counter() - started, first_line=first)
            except Exception as exc:  # noqa: BLE001 - any failure of a cell is reported, and the next cell runs
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                result = CellResult(Path(path).name, index, False, time.perf_counter() - started, detail[:600], first)
            finally:
                time.sleep = clock.real_sleep  # type: ignore[assignment]
            results.append(result)
            mark = "PASS" if result.ok else "FAIL"
            print(f"{mark} {result.notebook} cell {index:2d} {result.seconds:6.1f}s  {first}"
                  + (f"\n     {result.error}" if result.error else ""), file=sys.stderr, flush=True)
    return results


def _pandas1_read_csv(read_csv: Any) -> Any:
    """pandas < 2 did not apply `dtype` to the `index_col` column: the index kept its inferred (numeric) type, and
    POC-in-a-box 05 looks movies up by `items_df.loc[589]` after `read_csv(..., dtype={'movieId': 'object'},
    index_col=0)`. Give such an index its numeric type back, as pandas 1 did."""
    def patched(*args: Any, **kwargs: Any) -> Any:
        frame = read_csv(*args, **kwargs)
        dtype, index_col = kwargs.get("dtype"), kwargs.get("index_col")
        if isinstance(dtype, dict) and index_col is not None and index_col is not False and frame.index.name in dtype:
            import pandas as pd

            with contextlib.suppress(ValueError, TypeError):
                frame.index = pd.Index(pd.to_numeric(frame.index), name=frame.index.name)
        return frame
    return patched


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("snapshot", type=Path, help="amazon-personalize-samples: a checkout or a bare git dir")
    parser.add_argument("--notebooks", default=",".join(NOTEBOOKS),
                        help=f"comma-separated: names of {list(NOTEBOOKS)}, or .ipynb paths inside the snapshot")
    parser.add_argument("--data", type=Path, default=SHARED, help="an ml-latest-small folder (ratings/movies.csv)")
    parser.add_argument("--max-users", type=int, default=None, help="keep only users 1..N of the ratings")
    parser.add_argument("--work", type=Path, default=Path("/tmp/tastemaker-notebooks"),
                        help="scratch folder (emptied first: each run starts from a new server, as a fresh account)")
    parser.add_argument("--sleep", type=float, default=0.2, help="longest sleep a notebook's time.sleep gets")
    parser.add_argument("--cell-timeout", type=float, default=600, help="seconds a cell may wait in time.sleep")
    parser.add_argument("--endpoint", default=None, help="a running Tastemaker (else one is started)")
    parser.add_argument("--pandas1", action="store_true", help="restore pandas 1 behaviour the notebooks rely on (DataFrame.append, read_csv index dtype)")
    parser.add_argument("--quiet", action="store_true", help="hide the cells' own output")
    parser.add_argument("--json", type=Path, default=None, help="write the per-cell results here")
    args = parser.parse_args(argv)

    marker = args.work / ".tastemaker-notebooks"
    if args.work.exists() and any(args.work.iterdir()):  # a previous run's server would make the creates collide
        if not marker.exists():
            parser.error(f"--work {args.work} is not empty and was not made by this driver; name another folder")
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True, exist_ok=True)
    marker.touch()
    env = Environment(args.data, args.work.resolve(), args.max_users)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server it started, as on Ctrl-C
    clock = Clock(args.sleep, args.cell_timeout)
    if args.pandas1:
        import pandas as pd

        if not hasattr(pd.DataFrame, "append"):
            pd.DataFrame.append = lambda self, other, **kw: pd.concat([self, other], **kw)  # type: ignore[attr-defined]
        pd.read_csv = _pandas1_read_csv(pd.read_csv)
    results: list[CellResult] = []
    with services(env, args.endpoint):
        for name in args.notebooks.split(","):
            paths = NOTEBOOKS.get(name, [name])
            results += run_series(Path(name).stem, paths, args.snapshot, env, clock, args.quiet)
    summary: dict[str, list[int]] = {}
    for r in results:
        summary.setdefault(r.notebook, [0, 0])[0 if r.ok else 1] += 1
    for notebook, (passed, failed) in summary.items():
        print(f"{notebook}: {passed} passed, {failed} failed of {passed + failed} code cells")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 1 if any(not r.ok for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
