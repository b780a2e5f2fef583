"""`tastemaker quickstart`: walk the whole admin manual against a server, printing every boto3 call it makes."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tastemaker.cli import data_notes, item_labels, sample_data
from tastemaker.cli.client import (
    Clients,
    Credentials,
    error_code,
    format_call,
    is_not_implemented,
    make_clients,
    program,
    require_credentials,
    resolve_credentials,
    resolve_endpoint,
    server_answers,
)
from tastemaker.cli.failures import CommandFailed
from tastemaker.cli.progress import wait_all
from tastemaker.store.status import Status

RECIPE = "arn:aws:personalize:::recipe/"
DATASET_TYPES = ("Interactions", "Items", "Users")
SIZES = {  # users, items, frequent interactions
    "tiny": (300, 200, 6_000),
    "small": (800, 400, 20_000),
    "default": (2_000, 1_000, 50_000),
}
DOMAIN_USE_CASE = {"VIDEO_ON_DEMAND": "aws-vod-top-picks", "ECOMMERCE": "aws-ecomm-recommended-for-you"}
SHOWN_METRICS = ("normalized_discounted_cumulative_gain_at_10", "precision_at_10", "mean_reciprocal_rank_at_25",
                 "coverage")


class StepSkipped(Exception):
    """A step could not run because the server does not implement an operation it needs."""


@dataclass
class Options:
    endpoint: str | None = None
    data_dir: Path = Path(".tastemaker")
    domain: str = "custom"
    data: Path | None = None
    size: str = "default"
    region: str | None = None
    seed: int = 42
    embedded: bool | None = None  # None: only when nothing answers at the endpoint


@dataclass
class Result:
    """What the walk created and learned; `missing` names operations the server does not implement yet."""

    dataset_group_arn: str | None = None
    arns: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    recommendations_before: list[str] = field(default_factory=list)
    recommendations_after: list[str] = field(default_factory=list)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    embedded: bool = False


@dataclass
class Catalog:
    """What the demo prints beside ids: each item's cluster (genre / category) and each user's history."""

    item_cluster: dict[str, str]
    histories: dict[str, list[str]]
    event_type: str  # the event type streamed with PutEvents and used by the filter ("" when the data has none)
    popularity: Counter[str]
    event_value: float | None = None  # sent with streamed events when the data has EVENT_VALUE (its largest value)
    notes: list[str] = field(default_factory=list)  # probably-wrong data, said in the data summary
    item_values: dict[str, tuple[str, ...]] = field(default_factory=dict)  # every genre of "A|B" items
    item_title: dict[str, str] = field(default_factory=dict)

    def values(self, item: str) -> tuple[str, ...]:
        return self.item_values.get(item) or (self.item_cluster.get(item, "?"),)

    def taste(self, user: str) -> Counter[str]:
        return Counter(v for i in self.histories.get(user, []) for v in self.values(i))


# ---------------------------------------------------------------------------------------------------
# Data: a generated dataset or a Personalize-shaped folder, copied where the server may import it


def _find(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.csv", f"{stem}.csv.gz"):
        if (folder / name).exists():
            return folder / name
    return None


def load_folder(folder: Path) -> tuple[dict[str, Path], dict[str, dict]]:
    """CSV and schema per dataset type in a folder holding interactions.csv[.gz] + interactions.schema.json..."""
    paths, schemas = {}, {}
    if _find(folder, "interactions") is None:
        raise SystemExit(f"{folder} has no interactions.csv (or .csv.gz); it is the one required dataset.")
    for kind in DATASET_TYPES:
        csv_path = _find(folder, kind.lower())
        if csv_path is None:
            continue
        schema_path = folder / f"{kind.lower()}.schema.json"
        if not schema_path.exists():
            raise SystemExit(f"{csv_path} has no schema: add {schema_path} (an Amazon Personalize Avro schema).")
        paths[kind], schemas[kind] = csv_path, json.loads(schema_path.read_text())
    return paths, schemas


def build_catalog(paths: dict[str, Path], schemas: dict[str, dict], event_type: str | None) -> Catalog:
    import pyarrow.csv as pacsv

    item_values: dict[str, tuple[str, ...]] = {}
    titles: dict[str, str] = {}
    if "Items" in paths:
        item_values, titles = item_labels.read_items(paths["Items"], schemas["Items"])
    item_cluster = {item: values[0] for item, values in item_values.items()}
    columns = ["USER_ID", "ITEM_ID"]
    names = {f["name"] for f in schemas["Interactions"]["fields"]}
    optional = [c for c in ("EVENT_TYPE", "EVENT_VALUE", "TIMESTAMP") if c in names]
    table = pacsv.read_csv(paths["Interactions"], convert_options=pacsv.ConvertOptions(
        include_columns=columns + optional, column_types={"USER_ID": "string", "ITEM_ID": "string"}))
    found = data_notes.notes(table, str(paths["Interactions"].name))
    histories: dict[str, list[str]] = {}
    users, items = table.column("USER_ID").to_pylist(), table.column("ITEM_ID").to_pylist()
    for user, item in zip(users, items, strict=True):
        histories.setdefault(user, []).append(item)
    if event_type is None and "EVENT_TYPE" in names:
        event_type = Counter(table.column("EVENT_TYPE").to_pylist()).most_common(1)[0][0]
    values = [v for v in table.column("EVENT_VALUE").to_pylist() if v is not None] if "EVENT_VALUE" in names else []
    return Catalog(item_cluster, histories, event_type or "", Counter(items),
                   float(max(values)) if values else None, found, item_values, titles)


def stage_data(options: Options, import_dir: Path, run_id: str) -> tuple[dict[str, Path], dict[str, dict], Catalog]:
    """Generate (or copy) the CSVs into the server's import folder; return paths, schemas and the catalog."""
    target = (import_dir / f"quickstart-{run_id}").resolve()
    if options.data is not None:
        source_paths, schemas = load_folder(options.data)
        target.mkdir(parents=True, exist_ok=True)
        paths = {kind: Path(shutil.copy2(path, target / path.name)) for kind, path in source_paths.items()}
        return paths, schemas, build_catalog(paths, schemas, None)
    users, items, interactions = SIZES[options.size]
    data = sample_data.generate(target, domain=options.domain, users=users, items=items,
                                interactions=interactions, seed=options.seed)
    catalog = build_catalog(data.paths, data.schemas, data.event_types[1 if options.domain != "ECOMMERCE" else 0])
    catalog.notes.clear()  # generated events may repeat by chance; the notes are for a user's own data
    return data.paths, data.schemas, catalog


# ---------------------------------------------------------------------------------------------------
# The walk


class Walk:
    """Prints each step and each call (as Python) before making it; records what it created."""

    def __init__(self, clients: Clients, out: TextIO, result: Result) -> None:
        self.clients, self.out, self.result = clients, out, result
        self.step_no = 0

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def step(self, title: str) -> None:
        self.step_no += 1
        self.say(f"\nStep {self.step_no}. {title}")

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        client = {"personalize": self.clients.personalize, "runtime": self.clients.runtime,
                  "events": self.clients.events}[service]
        self.say("  >>> " + format_call(service, operation, **params))
        try:
            response = getattr(client, operation)(**params)
        except Exception as exc:
            if is_not_implemented(exc):
                name = client.meta.method_to_api_mapping.get(operation, operation)
                if name not in self.result.missing:
                    self.result.missing.append(name)
                self.say(f"      (this server does not implement {name} yet; skipping what depends on it)")
                raise StepSkipped(name) from exc
            raise
        response.pop("ResponseMetadata", None)
        return response

    def show(self, **values: Any) -> None:
        for key, value in values.items():
            self.say(f"      {key} = {value}")

    def wait(self, label: str, describes: list[Callable[[], dict[str, Any]]], key: str) -> list[dict[str, Any]]:
        from botocore import xform_name

        self.say(f"      (asynchronous: polling personalize.describe_{xform_name(key)}(...) until "
                 f"{key}['status'] is ACTIVE)")
        bodies = wait_all(label, describes, key)
        for body in bodies:
            if body.get("status") != Status.ACTIVE:
                raise CommandFailed(f"{label}: {body.get('status')}: {body.get('failureReason', 'no reason given')}")
        return bodies


def _bind(method: Callable[..., dict[str, Any]], **params: str) -> Callable[[], dict[str, Any]]:
    """A Describe call with its ARN bound, for polling."""
    return lambda: method(**params)


def _table(rows: Sequence[tuple[str, ...]], headers: tuple[str, ...]) -> list[str]:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=False)]
    line = "  ".join(f"{h:<{w}}" for h, w in zip(headers, widths, strict=True))
    lines = ["      " + line, "      " + "  ".join("-" * w for w in widths)]
    lines += ["      " + "  ".join(f"{c!s:<{w}}" for c, w in zip(row, widths, strict=True)) for row in rows]
    return lines


def walk(clients: Clients, options: Options, import_dir: Path, out: TextIO, result: Result) -> None:
    run_id = secrets.token_hex(3)
    prefix = f"quickstart-{run_id}"
    w = Walk(clients, out, result)
    p = clients.personalize
    domain = None if options.domain == "custom" else options.domain

    w.step("Create a dataset group" + (f" ({domain} domain)" if domain else " (custom)"))
    params: dict[str, Any] = {"name": prefix} | ({"domain": domain} if domain else {})
    group = w.call("personalize", "create_dataset_group", **params)["datasetGroupArn"]
    result.dataset_group_arn = group
    w.show(datasetGroupArn=group)
    w.wait("dataset group", [lambda: p.describe_dataset_group(datasetGroupArn=group)], "datasetGroup")

    w.step("Import data: schemas, datasets and import jobs")
    origin = f"the folder {options.data}" if options.data else f"generated {options.domain} data ({options.size})"
    paths, schemas, catalog = stage_data(options, import_dir, run_id)
    w.say(f"  data: {origin}, staged in {paths['Interactions'].parent}")
    w.say(f"        {sum(catalog.popularity.values()):,} interactions, {len(catalog.histories):,} users, "
          f"{len(catalog.popularity):,} items with interactions")
    for note in catalog.notes:
        w.say(f"        {note}")
    datasets = {}
    for kind in paths:
        schema_params: dict[str, Any] = {"name": f"{prefix}-{kind.lower()}", "schema": json.dumps(schemas[kind])}
        schema_params |= {"domain": domain} if domain else {}
        schema_arn = w.call("personalize", "create_schema", **schema_params)["schemaArn"]
        datasets[kind] = w.call("personalize", "create_dataset", name=f"{prefix}-{kind.lower()}",
                                schemaArn=schema_arn, datasetGroupArn=group, datasetType=kind)["datasetArn"]
        w.show(datasetArn=datasets[kind])
    w.wait("datasets", [_bind(p.describe_dataset, datasetArn=a) for a in datasets.values()], "dataset")
    try:
        jobs = [w.call("personalize", "create_dataset_import_job", jobName=f"{prefix}-{kind.lower()}",
                       datasetArn=datasets[kind], dataSource={"dataLocation": str(paths[kind])},
                       roleArn="arn:aws:iam::000000000000:role/PersonalizeImport")["datasetImportJobArn"]
                for kind in paths]
    except Exception as exc:
        if "import roots" in str(exc):
            raise SystemExit(
                f"The server cannot read {paths['Interactions'].parent}: quickstart stages data in "
                f"--data-dir/imports ({options.data_dir}/imports), which must be the data dir of the server at "
                f"{clients.endpoint} (or one of its --import-root folders). Pass the server's --data-dir, or "
                f"run quickstart on the server's machine. Server said: {exc}") from exc
        raise
    w.wait("import jobs", [_bind(p.describe_dataset_import_job, datasetImportJobArn=j) for j in jobs],
           "datasetImportJob")

    w.step("Create " + ("a recommender, a popularity baseline" if domain else "solutions, a campaign")
           + ", an event tracker and a filter")
    solutions = {}
    recipes = ["aws-user-personalization", "aws-popularity-count"] if not domain else ["aws-popularity-count"]
    for recipe in recipes:
        solutions[recipe] = w.call("personalize", "create_solution", name=f"{prefix}-{recipe[4:]}",
                                   datasetGroupArn=group, recipeArn=RECIPE + recipe,
                                   performAutoTraining=False)["solutionArn"]
    w.wait("solutions", [_bind(p.describe_solution, solutionArn=a) for a in solutions.values()], "solution")
    versions = {recipe: w.call("personalize", "create_solution_version", solutionArn=arn)["solutionVersionArn"]
                for recipe, arn in solutions.items()}
    recommender = None
    if domain:
        with contextlib.suppress(StepSkipped):
            use_case = DOMAIN_USE_CASE[domain]
            recommender = w.call("personalize", "create_recommender", name=f"{prefix}-{use_case[4:]}",
                                 datasetGroupArn=group, recipeArn=RECIPE + use_case)["recommenderArn"]
            result.arns["recommender"] = recommender
    w.say("  training (progress on stderr; the metrics come in step 5)")
    w.wait("training", [_bind(p.describe_solution_version, solutionVersionArn=a) for a in versions.values()],
           "solutionVersion")
    result.arns |= {f"version:{r}": a for r, a in versions.items()}
    if recommender:
        w.wait("recommender", [lambda: p.describe_recommender(recommenderArn=recommender)], "recommender")
    target: dict[str, str] = {"recommenderArn": recommender} if recommender else {}
    if not domain:
        with contextlib.suppress(StepSkipped):
            campaign = w.call("personalize", "create_campaign", name=f"{prefix}-campaign",
                              solutionVersionArn=versions["aws-user-personalization"],
                              minProvisionedTPS=1)["campaignArn"]
            result.arns["campaign"] = campaign
            w.show(campaignArn=campaign)
            w.wait("campaign", [lambda: p.describe_campaign(campaignArn=campaign)], "campaign")
            target = {"campaignArn": campaign}

    w.say("  real time: an event tracker (for PutEvents) and a filter")
    tracking_id = None
    with contextlib.suppress(StepSkipped):
        tracker = w.call("personalize", "create_event_tracker", name=f"{prefix}-tracker", datasetGroupArn=group)
        tracking_id = tracker["trackingId"]
        result.arns["event_tracker"] = tracker["eventTrackerArn"]
        w.show(eventTrackerArn=tracker["eventTrackerArn"], trackingId=tracking_id)
        w.wait("event tracker", [lambda: p.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"])],
               "eventTracker")
    filter_arn = None
    if catalog.event_type:
        with contextlib.suppress(StepSkipped):
            expression = f'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("{catalog.event_type}")'
            w.say(f"  a filter that hides what the user already did ({catalog.event_type}):")
            filter_arn = w.call("personalize", "create_filter", name=f"{prefix}-unseen", datasetGroupArn=group,
                                filterExpression=expression)["filterArn"]
            result.arns["filter"] = filter_arn
            w.wait("filter", [lambda: p.describe_filter(filterArn=filter_arn)], "filter")

    w.step("Get recommendations, stream events, see them change")
    if not target:
        w.say("  (skipped: nothing is deployed, because the server lacks " + ", ".join(result.missing) + ")")
    else:
        _recommend_and_stream(w, catalog, target, filter_arn, tracking_id, result)

    w.step("Monitor: offline metrics beside a popularity baseline")
    _metrics(w, versions, recommender, result)

    w.step("Clean up")
    command = f"{program()} cleanup --dataset-group {group}"
    if clients.endpoint != resolve_endpoint(None):
        command += f" --endpoint {clients.endpoint}"
    if result.embedded:
        w.say(f"  On a server that keeps running, this removes everything above:\n    {command}")
        return
    w.say("  Everything above stays in place so you can explore it (boto3, the AWS CLI, `tastemaker deployments`). Remove it with:")
    w.say(f"    {command}")
    w.say(f"  See it in the web console: {clients.endpoint}/console (sign in with the same access key).")
    w.say(f"  The staged CSV files stay in {paths['Interactions'].parent} (delete the folder when done).")


def _recommend_and_stream(w: Walk, catalog: Catalog, target: dict[str, str], filter_arn: str | None,
                          tracking_id: str | None, result: Result) -> None:
    # A user with a clear taste and a history long enough to be interesting.
    users = sorted(catalog.histories, key=lambda u: (-catalog.taste(u).most_common(1)[0][1]
                                                     / len(catalog.histories[u]), u))
    user = next((u for u in users if 10 <= len(catalog.histories[u]) <= 80), users[0])
    taste = catalog.taste(user)
    w.say(f"  user {user}: {len(catalog.histories[user])} past interactions, mostly "
          + ", ".join(f"{c} ({n})" for c, n in taste.most_common(2)))
    params: dict[str, Any] = dict(target, userId=user, numResults=10)
    if filter_arn:
        params["filterArn"] = filter_arn
    try:
        before = [r["itemId"] for r in w.call("runtime", "get_recommendations", **params)["itemList"]]
    except StepSkipped:
        return
    result.recommendations_before = before
    if tracking_id is None:
        _print_recommendations(w, catalog, before, None)
        return
    # Stream events of a taste the user has not shown (none of their past items carries it): its most popular
    # unseen items, preferably ones that share nothing with the user's main tastes.
    new_cluster, picks, touched = item_labels.choose_discovery(
        {i: catalog.values(i) for i in catalog.popularity}, catalog.popularity, catalog.histories[user])
    now = dt.datetime.now(dt.UTC)
    value = {"eventValue": catalog.event_value} if catalog.event_value is not None else {}
    events = [{"eventType": catalog.event_type or "click", "itemId": item,
               "sentAt": now - dt.timedelta(seconds=len(picks) - k)} | value for k, item in enumerate(picks)]
    if new_cluster == "?":
        claim = "turns to popular items they never saw"
    elif touched:
        claim = f"turns to {new_cluster} (only {touched} of their past items are {new_cluster})"
    else:
        claim = f"discovers {new_cluster}"
    w.say(f"  the user now {claim}: {len(events)} events on {', '.join(picks)}")
    try:
        w.call("events", "put_events", trackingId=tracking_id, userId=user, sessionId=f"session-{user}",
               eventList=events)
        after = [r["itemId"] for r in w.call("runtime", "get_recommendations", **params)["itemList"]]
    except StepSkipped:
        _print_recommendations(w, catalog, before, None)
        return
    except Exception as exc:  # e.g. the schema requires an interaction field quickstart cannot invent
        if error_code(exc) != "InvalidInputException":
            raise
        w.say(f"      (the server refused the events: {exc}; showing the list without them)")
        _print_recommendations(w, catalog, before, None)
        return
    result.recommendations_after = after
    _print_recommendations(w, catalog, before, after)
    share = (sum(new_cluster in catalog.values(i) for i in before),
             sum(new_cluster in catalog.values(i) for i in after))
    if new_cluster != "?":
        w.say(f"  {new_cluster} items in the top 10: {share[0]} before the events, {share[1]} after")


def _print_recommendations(w: Walk, catalog: Catalog, before: list[str], after: list[str] | None) -> None:
    def label(item: str | None) -> str:
        if not item:
            return ""
        title = catalog.item_title.get(item, "")
        title = f" {title[:28]}{'...' if len(title) > 28 else ''}" if title else ""
        return f"{item}{title} ({'|'.join(catalog.values(item)[:2])})"

    if after is None:
        single = [(str(k + 1), label(i)) for k, i in enumerate(before)]
        w.say("\n".join(_table(single, ("#", "recommended"))))
        return
    length = max(len(before), len(after))
    pairs = [(str(k + 1), label(before[k] if k < len(before) else None), label(after[k] if k < len(after) else None))
             for k in range(length)]
    w.say("\n".join(_table(pairs, ("#", "before the events", "after the events"))))


def body_recipe(recommender_arn: str | None) -> str:
    """The use case a quickstart recommender was created with (its name carries it)."""
    name = (recommender_arn or "").rsplit("/", 1)[-1]
    return next((u for u in DOMAIN_USE_CASE.values() if name.endswith(u[4:])), "recommender")


def _metrics(w: Walk, versions: dict[str, str], recommender: str | None, result: Result) -> None:
    if recommender:
        with contextlib.suppress(StepSkipped):
            body = w.call("personalize", "describe_recommender", recommenderArn=recommender)["recommender"]
            result.metrics["recommender"] = body.get("modelMetrics") or {}
    for recipe, arn in versions.items():
        result.metrics[recipe] = w.call("personalize", "get_solution_metrics", solutionVersionArn=arn)["metrics"]
    names = list(result.metrics)
    rows = []
    for metric in SHOWN_METRICS:
        values = [result.metrics[n].get(metric) for n in names]
        rows.append((metric, *("-" if v is None else f"{v:.4f}" for v in values)))
    headers = [f"{body_recipe(recommender)} (recommender)" if n == "recommender" else n for n in names]
    w.say("\n".join(_table(rows, ("metric", *headers))))
    learned = result.metrics.get("aws-user-personalization") or result.metrics.get("recommender") or {}
    baseline = result.metrics.get("aws-popularity-count", {})
    key = "normalized_discounted_cumulative_gain_at_10"
    if learned.get(key) and baseline.get(key):
        w.say(f"  the learned model ranks {learned[key] / baseline[key]:.1f}x better than popularity (NDCG@10)")


# ---------------------------------------------------------------------------------------------------
# Entry points


@contextlib.contextmanager
def connect(options: Options, out: TextIO) -> Iterator[tuple[Clients, Path, bool]]:
    """Clients for the server at --endpoint, or for an embedded server started (and stopped) here."""
    endpoint = resolve_endpoint(options.endpoint)
    embedded = options.embedded if options.embedded is not None else not server_answers(endpoint)
    if not embedded:
        credentials = require_credentials(resolve_credentials(options.data_dir), options.data_dir)
        print(f"Using the server at {endpoint} (key from {credentials.source}).", file=out)
        yield make_clients(endpoint, credentials, options.region), options.data_dir / "imports", False
        return
    from tastemaker.cli.local_server import LocalServer

    with tempfile.TemporaryDirectory(prefix="tastemaker-quickstart-") as tmp:
        server = LocalServer(Path(tmp) / "data", access_key="TMK" + secrets.token_hex(8).upper(),
                             secret_key=secrets.token_urlsafe(24))
        print(f"No server answers at {endpoint}; starting an embedded one (stopped at the end, with its data).",
              file=out, flush=True)
        server.start()
        print(f"Embedded server at {server.url} (data in {server.data_dir}).", file=out, flush=True)
        try:
            credentials = Credentials(server.access_key, server.secret_key, "the embedded server")
            yield make_clients(server.url, credentials, options.region), server.data_dir / "imports", True
        finally:
            server.stop()


def run_quickstart(options: Options, out: TextIO | None = None) -> Result:
    out = out or sys.stdout
    result = Result()
    with connect(options, out) as (clients, import_dir, embedded):
        result.embedded = embedded
        print("Tastemaker quickstart: the admin manual in six steps. Each step prints the boto3 call it makes.",
              file=out)
        try:
            walk(clients, options, import_dir, out, result)
        except (Exception, KeyboardInterrupt):
            if result.dataset_group_arn and not embedded:
                print(f"\nStopped before the end. To remove what was created so far:\n  {program()} cleanup "
                      f"--dataset-group {result.dataset_group_arn} --endpoint {clients.endpoint}", file=out)
            raise
        if embedded:
            print("\nThe embedded server is stopping now; its resources go with it. Start `make run` (or "
                  "`tastemaker serve`) to keep them.", file=out)
    if result.missing:
        print("\nNot yet implemented by this server (those parts were skipped): " + ", ".join(result.missing),
              file=out)
    return result


def add_arguments(parser: Any) -> None:
    parser.add_argument("--endpoint", help="server URL (default $TASTEMAKER_ENDPOINT or http://127.0.0.1:8080); "
                        "when nothing answers, an embedded server is started for the walk")
    parser.add_argument("--data-dir", default=".tastemaker",
                        help="the server's data dir: where its key file is and where data is staged for import")
    parser.add_argument("--domain", default="custom", choices=sample_data.DOMAINS,
                        help="custom (solutions and a campaign) or a domain group with a recommender")
    parser.add_argument("--data", type=Path, help="a Personalize-shaped folder (interactions.csv + "
                        "interactions.schema.json, optional items/users) instead of generated data")
    parser.add_argument("--size", default="default", choices=list(SIZES), help="size of the generated data")
    parser.add_argument("--region", default=None, help="the region to sign requests with (default $AWS_DEFAULT_REGION or us-east-1)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated data (default 42)")
    parser.add_argument("--embedded", action="store_true", help="always start an embedded server")


def cmd_quickstart(args: Any) -> int:
    options = Options(endpoint=args.endpoint, data_dir=Path(args.data_dir), domain=args.domain, data=args.data,
                      size=args.size, region=args.region, seed=args.seed, embedded=True if args.embedded else None)
    result = run_quickstart(options)
    return 3 if result.missing else 0
