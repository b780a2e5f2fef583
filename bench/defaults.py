"""Do the default hyperparameters earn their place? Each recipe's defaults against the best that HPO finds.

    .venv/bin/python bench/defaults.py [DATASET_FOLDER ...] [--trials 6] [--recipes a,b] [--json OUT] [--threads N]

Per dataset (default: the three shared ones under /work/shared/data), Personalize's split holds 10% of the
users out as the test users. For each recipe with tunable hyperparameters, `tastemaker.recipes.hpo.tune`
searches them (seeded TPE, `--trials` trainings, NDCG@10 as the objective) on a validation split carved from
the training users only, exactly as a performHPO solution does; the defaults and the HPO-best parameters are
then both trained on the training users and scored on the test users. Related-items recipes are scored the
way GetSolutionMetrics scores them: each test user's newest input item is the query, the items they took next
are the truth (an item-to-item metric). Recipes without tunable hyperparameters get one row (nothing to find).
`VARIANTS` adds rows for non-tunable settings worth showing (aws-sims' item-count cap at Personalize's 0.9).
The v2 recipes are tuned by bench/sasrec_bench.py (see the v2 section of docs/recipes.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DATA = Path("/work/shared/data")
DATASETS = ("movielens-latest-small", "movielens-1m-partial", "amazon-2018-all-beauty-5core")
RECIPES = ("aws-user-personalization", "aws-personalized-ranking", "aws-sims", "aws-similar-items",
           "aws-semantic-similarity", "aws-popularity-count", "aws-trending-now")
OBJECTIVE = "normalized_discounted_cumulative_gain_at_10"
VARIANTS = {"aws-sims": ({"max_item_interaction_count_percentile": "0.9"},
                         {"max_item_interaction_count_percentile": "1.0"})}


def dataset_folder(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if not path.exists():
        path = DATA / name_or_path
    return path / "personalize" if (path / "personalize").is_dir() else path


def bench_recipe(name: str, data, split, trials: int) -> list[dict]:
    from tastemaker.errors import InvalidInputException
    from tastemaker.recipes import get_recipe
    from tastemaker.recipes.hpo import evaluate, tune, validation_split
    from tastemaker.recipes.training_data import InsufficientDataError

    recipe = get_recipe(name)

    def test_score(params: dict[str, str]) -> tuple[float, float]:
        started = time.process_time()
        value = float(evaluate(recipe.fit(split.train, params, seed=0), split)[OBJECTIVE])
        return round(value, 4), round(time.process_time() - started, 1)

    try:
        default, cpu = test_score({})
    except (InsufficientDataError, InvalidInputException) as exc:  # e.g. no text for semantic similarity
        return [{"recipe": name, "error": f"{type(exc).__name__}: {exc}"[:160]}]
    row: dict = {"recipe": name, "default": default, "fit_cpu_s": cpu}
    rows = [row]
    if any(hp.tunable for hp in recipe.hyperparameters):
        started = time.process_time()
        result = tune(recipe, split.train, max_trials=trials, objective_metric=OBJECTIVE, seed=0)
        row["hpo_cpu_s"] = round(time.process_time() - started, 1)
        validation = validation_split(split.train, 0)
        row["validation_default"] = round(float(
            evaluate(recipe.fit(validation.train, {}, seed=0), validation)[OBJECTIVE]), 4)
        row["validation_best"] = round(result.best_value, 4)
        changed = {k: v for k, v in result.best_params.items()
                   if k in {hp.name for hp in recipe.hyperparameters if hp.tunable}}
        row["best_params"] = changed
        row["hpo_best"], _ = test_score(changed)
        row["ratio"] = round(default / row["hpo_best"], 3) if row["hpo_best"] else None
    for variant in VARIANTS.get(name, ()):
        value, _ = test_score(dict(variant))
        rows.append({"recipe": name, "variant": variant, "default": value})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", default=list(DATASETS),
                        help="dataset folders (or names under /work/shared/data)")
    parser.add_argument("--trials", type=int, default=6, help="HPO trainings per recipe (Personalize allows 40)")
    parser.add_argument("--recipes", help="comma-separated recipe names (default: all non-v2 recipes)")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads for v2 training (0: the recipe's choice); 1 lets two runs share 2 cores")
    args = parser.parse_args()
    from _acc_data import limit_v2_threads, load_dataset

    limit_v2_threads(args.threads)

    from tastemaker.evaluation.splits import personalize_split

    recipes = args.recipes.split(",") if args.recipes else list(RECIPES)
    all_rows = []
    for dataset in args.datasets:
        data = load_dataset(dataset_folder(dataset))
        split = personalize_split(data, seed=0)
        for name in recipes:
            for row in bench_recipe(name, data, split, args.trials):
                row["dataset"] = Path(dataset).name
                all_rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(all_rows, indent=1))
    print_table(all_rows)


def print_table(rows: list[dict]) -> None:
    print(f"\nDefaults vs HPO-best, NDCG@10 on the test users (load average {os.getloadavg()[0]:.1f})")
    print("| dataset | recipe | default | HPO-best | default / best | HPO-best parameters | validation: default / best |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        name = row["recipe"] + (f" ({', '.join(f'{k}={v}' for k, v in row['variant'].items())})"
                                if "variant" in row else "")
        if "error" in row:
            print(f"| {row['dataset']} | {name} | {row['error']} | | | | |")
        elif "hpo_best" in row:
            params = ", ".join(f"{k}={v}" for k, v in row["best_params"].items())
            print(f"| {row['dataset']} | {name} | {row['default']} | {row['hpo_best']} | {row['ratio']} | {params} "
                  f"| {row['validation_default']} / {row['validation_best']} |")
        else:
            note = "-" if "variant" in row else "no tunable hyperparameters"
            print(f"| {row['dataset']} | {name} | {row['default']} | {note} | | | |")


if __name__ == "__main__":
    main()
