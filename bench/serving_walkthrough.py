"""Serving walkthrough on real data, through boto3 only: campaigns and domain recommenders on MovieLens and Amazon.

1. A custom dataset group on movielens-latest-small (its personalize/ CSVs and schemas, imported from local paths):
   aws-user-personalization (two versions), aws-personalized-ranking and aws-sims, each deployed as a campaign.
2. Checks every serving rule on them: a known user's 25 scored recommendations, the cold-start list, SIMS for a
   movie and for an unknown item, a ranking with an unknown movie, the error classes of wrong requests.
3. A VIDEO_ON_DEMAND group on the same ratings (>= 4 stars -> "Watch", else "Click") with aws-vod-top-picks, and
   an ECOMMERCE group on amazon-2018-all-beauty-5core (5 stars -> "Purchase", else "View") with
   aws-ecomm-recommended-for-you: no watched / purchased item may come back.
4. UpdateCampaign to the second version while a thread calls GetRecommendations as fast as it can.

Prints one PASS/FAIL line per check; exits 1 on any FAIL.

    .venv/bin/python bench/serving_walkthrough.py                 # starts a local server (2 workers)
    .venv/bin/python bench/serving_walkthrough.py --data ../shared/data --workers 1
    .venv/bin/python bench/serving_walkthrough.py --endpoint http://127.0.0.1:8080 --work /srv/imports/walk

With --endpoint the server's key comes from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, and both --data and
--work (where the derived CSVs are written) must lie under one of the server's --import-root folders.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[1]
RECIPE = "arn:aws:personalize:::recipe/"
ROLE = "arn:aws:iam::000000000000:role/Personalize"
TAG = uuid.uuid4().hex[:6]
T0 = time.time()
RESULTS: list[bool] = []


def say(text: str) -> None:
    print(f"[{time.time() - T0:7.1f}s] {text}", flush=True)


def check(name: str, ok: bool, detail: str = "") -> bool:
    RESULTS.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail else ""), flush=True)
    return bool(ok)


def error_code(call: Any) -> str:
    try:
        call()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "no error"


def wait(describe: Any, key: str, timeout: float = 1800) -> dict[str, Any]:
    """Poll a Describe call until ACTIVE; exit with the failureReason if it failed."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = describe()[key]
        if body["status"] == "ACTIVE":
            return body  # type: ignore[no-any-return]
        if "FAILED" in body["status"]:
            raise SystemExit(f"{key} {body['status']}: {body.get('failureReason')}")
        time.sleep(0.5)
    raise SystemExit(f"{key} not ACTIVE after {timeout}s")


def took(body: dict[str, Any]) -> str:
    return f"{(body['lastUpdatedDateTime'] - body['creationDateTime']).total_seconds():.1f} s"


# --- data --------------------------------------------------------------------------------------------------

def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        out.writerows(rows)
    return path


def derive_vod(ratings: list[dict[str, str]], folder: Path) -> Path:
    """MovieLens ratings as VIDEO_ON_DEMAND events: 4 stars or more is a Watch, anything lower a Click."""
    rows = [[r["USER_ID"], r["ITEM_ID"], r["TIMESTAMP"], "Watch" if float(r["EVENT_VALUE"]) >= 4 else "Click"]
            for r in ratings]
    return write_csv(folder / "vod" / "interactions.csv", ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE"], rows)


def derive_shop(reviews: list[dict[str, str]], folder: Path) -> Path:
    """Beauty reviews as ECOMMERCE events: 5 stars is a Purchase, else a View; one row per (user, item, type)."""
    seen, rows = set(), []
    for r in reviews:  # sorted by time: the first of each (user, item, type) stays
        kind = "Purchase" if float(r["EVENT_VALUE"]) >= 5 else "View"
        if (r["USER_ID"], r["ITEM_ID"], kind) not in seen:
            seen.add((r["USER_ID"], r["ITEM_ID"], kind))
            rows.append([r["USER_ID"], r["ITEM_ID"], r["TIMESTAMP"], kind])
    return write_csv(folder / "shop" / "interactions.csv", ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE"], rows)


def by_user(path: Path, event_type: str) -> dict[str, list[tuple[int, str]]]:
    """Per user, (timestamp, item) of every event of this type, newest first."""
    found: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in read_csv(path):
        if r["EVENT_TYPE"] == event_type:
            found[r["USER_ID"]].append((int(r["TIMESTAMP"]), r["ITEM_ID"]))
    return {u: sorted(events, reverse=True) for u, events in found.items()}


def latest(events: list[tuple[int, str]], depth: int = 100) -> set[str]:
    """Items surely among the newest `depth` events (newest first): with more, only those strictly newer than the
    depth-th event, since events of the same second may be ordered either way."""
    if len(events) <= depth:
        return {item for _, item in events}
    return {item for t, item in events if t > events[depth - 1][0]}


DOMAIN_INTERACTIONS = {"type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
                       "fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                                  {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"}],
                       "version": "1.0"}


# --- set-up ------------------------------------------------------------------------------------------------

def create_group(p: Any, name: str, datasets: dict[str, tuple[str, Path]], domain: str | None = None) -> str:
    """A dataset group with one dataset per type, each import job started (not awaited)."""
    extra = {"domain": domain} if domain else {}
    group = p.create_dataset_group(name=f"{name}-{TAG}", **extra)["datasetGroupArn"]
    wait(lambda: p.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    for kind, (schema, path) in datasets.items():
        schema_arn = p.create_schema(name=f"{name}-{kind.lower()}-{TAG}", schema=schema, **extra)["schemaArn"]
        ds = p.create_dataset(name=f"{name}-{kind.lower()}-{TAG}", schemaArn=schema_arn, datasetGroupArn=group,
                              datasetType=kind)["datasetArn"]
        wait(lambda ds=ds: p.describe_dataset(datasetArn=ds), "dataset")
        p.create_dataset_import_job(jobName=f"{name}-{kind.lower()}-{TAG}", datasetArn=ds, roleArn=ROLE,
                                    dataSource={"dataLocation": str(path)})
    return group  # type: ignore[no-any-return]


def wait_imports(p: Any, group: str, label: str) -> None:
    """Wait for every import job of the group's datasets."""
    for ds in p.list_datasets(datasetGroupArn=group)["datasets"]:
        for job in p.list_dataset_import_jobs(datasetArn=ds["datasetArn"])["datasetImportJobs"]:
            arn = job["datasetImportJobArn"]
            body = wait(lambda arn=arn: p.describe_dataset_import_job(datasetImportJobArn=arn), "datasetImportJob")
            say(f"{label}: {ds['datasetType']} imported in {took(body)}")


def setup(p: Any, data: Path, work: Path) -> dict[str, Any]:
    ml = data / "movielens-latest-small" / "personalize"
    beauty = data / "amazon-2018-all-beauty-5core" / "personalize"
    ratings = read_csv(ml / "interactions.csv")
    vod_csv = derive_vod(ratings, work)
    shop_csv = derive_shop(read_csv(beauty / "interactions.csv"), work)
    say(f"derived CSVs in {work}: {vod_csv.name} (VOD), {shop_csv.name} (ECOMMERCE)")

    groups = {
        "ml": create_group(p, "walk-ml", {
            "Interactions": ((ml / "interactions.schema.json").read_text(), ml / "interactions.csv"),
            "Items": ((ml / "items.schema.json").read_text(), ml / "items.csv")}),
        "vod": create_group(p, "walk-vod", {"Interactions": (json.dumps(DOMAIN_INTERACTIONS), vod_csv)},
                            "VIDEO_ON_DEMAND"),
        "shop": create_group(p, "walk-shop", {"Interactions": (json.dumps(DOMAIN_INTERACTIONS), shop_csv)},
                             "ECOMMERCE"),
    }
    for label, group in groups.items():
        wait_imports(p, group, label)

    versions: dict[str, str] = {}
    solutions: dict[str, str] = {}
    for key, recipe in (("up", "aws-user-personalization"), ("rank", "aws-personalized-ranking"),
                        ("sims", "aws-sims")):
        sol = p.create_solution(name=f"walk-{key}-{TAG}", datasetGroupArn=groups["ml"],
                                recipeArn=RECIPE + recipe)["solutionArn"]
        wait(lambda sol=sol: p.describe_solution(solutionArn=sol), "solution")
        solutions[key] = sol
        versions[key] = p.create_solution_version(solutionArn=sol)["solutionVersionArn"]
    recommenders = {
        "vod": p.create_recommender(name=f"walk-top-picks-{TAG}", datasetGroupArn=groups["vod"],
                                    recipeArn=RECIPE + "aws-vod-top-picks")["recommenderArn"],
        "shop": p.create_recommender(name=f"walk-for-you-{TAG}", datasetGroupArn=groups["shop"],
                                     recipeArn=RECIPE + "aws-ecomm-recommended-for-you")["recommenderArn"],
    }
    for key, arn in versions.items():
        body = wait(lambda arn=arn: p.describe_solution_version(solutionVersionArn=arn), "solutionVersion")
        say(f"solution version {key} ({body['recipeArn'].rsplit('/', 1)[-1]}) trained in {took(body)}")
    # New data arrives (the 3,683 tag events, appended); the second version, trained on it while the first is
    # deployed, is what UpdateCampaign moves to in step 4.
    interactions = next(d["datasetArn"] for d in p.list_datasets(datasetGroupArn=groups["ml"])["datasets"]
                        if d["datasetType"].lower() == "interactions")
    job = p.create_dataset_import_job(jobName=f"walk-ml-tags-{TAG}", datasetArn=interactions, roleArn=ROLE,
                                      importMode="INCREMENTAL",
                                      dataSource={"dataLocation": str(ml / "interactions_tag_events.csv")})
    body = wait(lambda: p.describe_dataset_import_job(datasetImportJobArn=job["datasetImportJobArn"]),
                "datasetImportJob")
    say(f"ml: tag events appended (INCREMENTAL) in {took(body)}")
    versions["up2"] = p.create_solution_version(solutionArn=solutions["up"])["solutionVersionArn"]
    campaigns = {}
    for key in ("up", "rank", "sims"):
        config = {}
        if key == "up":  # no exploration slots: the walkthrough checks an exact, descending top-25
            config = {"campaignConfig": {"itemExplorationConfig": {"explorationWeight": "0"}}}
        campaigns[key] = p.create_campaign(name=f"walk-{key}-{TAG}", solutionVersionArn=versions[key],
                                           **config)["campaignArn"]
    for key, arn in campaigns.items():
        body = wait(lambda arn=arn: p.describe_campaign(campaignArn=arn), "campaign")
        say(f"campaign {key} ACTIVE after {took(body)}")
    for key, arn in recommenders.items():
        body = wait(lambda arn=arn: p.describe_recommender(recommenderArn=arn), "recommender")
        say(f"recommender {key} ({body['recipeArn'].rsplit('/', 1)[-1]}) ACTIVE after {took(body)}")
    body = wait(lambda: p.describe_solution_version(solutionVersionArn=versions["up2"]), "solutionVersion")
    say(f"solution version up2 trained in {took(body)}")
    return {"groups": groups, "versions": versions, "campaigns": campaigns, "recommenders": recommenders,
            "ratings": ratings, "titles": {r["ITEM_ID"]: r["TITLE"] for r in read_csv(ml / "items.csv")},
            "vod_csv": vod_csv, "shop_csv": shop_csv}


# --- checks ------------------------------------------------------------------------------------------------

def scored(items: list[dict[str, Any]]) -> tuple[bool, float]:
    """(every item has a score and they descend, their sum)."""
    scores = [i.get("score") for i in items]
    if any(s is None for s in scores):
        return False, float("nan")
    return all(a >= b for a, b in itertools.pairwise(scores)), float(sum(scores))


def check_campaigns(rt: Any, s: dict[str, Any]) -> None:
    up, rank, sims = (s["campaigns"][k] for k in ("up", "rank", "sims"))
    titles, ratings = s["titles"], s["ratings"]
    rated: dict[str, set[str]] = defaultdict(set)
    for r in ratings:
        rated[r["USER_ID"]].add(r["ITEM_ID"])
    users_per_item = Counter(r["ITEM_ID"] for r in ratings)  # one row per (user, item) in this file
    user = "1"

    first = rt.get_recommendations(campaignArn=up, userId=user)
    again = rt.get_recommendations(campaignArn=up, userId=user)
    items = first["itemList"]
    descending, total = scored(items)
    check("user-personalization, known user", len(items) == 25 and descending and 0 < total <= 1,
          f"user {user} ({len(rated[user])} ratings): {len(items)} items (default numResults), scores descending "
          f"{items[0]['score']:.4f}..{items[-1]['score']:.4f}, sum {total:.4f}; "
          f"top 3: {'; '.join(titles.get(i['itemId'], '?') for i in items[:3])}")
    check("fresh recommendationId", first["recommendationId"] != again["recommendationId"]
          and first["recommendationId"].startswith("RID-"), f"{first['recommendationId']} then {again['recommendationId']}")
    big = rt.get_recommendations(campaignArn=up, userId=user, numResults=500)["itemList"]
    descending, total = scored(big)
    check("numResults 500", len(big) == 500 and len({i["itemId"] for i in big}) == 500 and descending and total <= 1,
          f"{len(big)} distinct items, sum of scores {total:.4f}")

    cold_a = rt.get_recommendations(campaignArn=up, userId=f"nobody-{TAG}")["itemList"]
    cold_b = rt.get_recommendations(campaignArn=up, userId=f"nobody-else-{TAG}")["itemList"]
    ids_a, ids_b = [i["itemId"] for i in cold_a], [i["itemId"] for i in cold_b]
    descending, total = scored(cold_a)
    known = [i["itemId"] for i in items]
    check("unknown user -> cold-start list", len(ids_a) == 25 and ids_a == ids_b and ids_a != known
          and descending and total <= 1,
          f"same 25 for two unknown users, {len(set(ids_a) & set(known))}/25 shared with user {user}; "
          f"median popularity rank {median_rank(ids_a, users_per_item)}; "
          f"top 3: {'; '.join(titles.get(i, '?') for i in ids_a[:3])}")

    movie = "1"  # Toy Story (1995)
    similar = rt.get_recommendations(campaignArn=sims, itemId=movie)["itemList"]
    ids = [i["itemId"] for i in similar]
    check("SIMS for a movie", len(ids) == 25 and movie not in ids and all("score" not in i for i in similar)
          and all(i in titles for i in ids),
          f"{titles[movie]}: {len(ids)} items, no scores, itself absent; "
          f"top 3: {'; '.join(titles.get(i, '?') for i in ids[:3])}")
    unknown = rt.get_recommendations(campaignArn=sims, itemId=f"no-such-movie-{TAG}")["itemList"]
    ids = [i["itemId"] for i in unknown]
    top100 = {i for i, _ in users_per_item.most_common(100)}
    check("SIMS, unknown item -> popular items", len(ids) == 25 and all("score" not in i for i in unknown)
          and len(set(ids) & top100) >= 20,
          f"{len(set(ids) & top100)}/25 among the 100 most-rated movies, median popularity rank "
          f"{median_rank(ids, users_per_item)}; top 3: {'; '.join(titles.get(i, '?') for i in ids[:3])}")

    history = sorted(rated[user])[:9]
    ghost = f"unseen-movie-{TAG}"
    inputs = history[:4] + [ghost] + history[4:]
    ranked = rt.get_personalized_ranking(campaignArn=rank, userId=user, inputList=inputs)["personalizedRanking"]
    order = [i["itemId"] for i in ranked]
    descending, total = scored(ranked[:-1])
    check("personalized ranking", sorted(order) == sorted(inputs) and order[-1] == ghost
          and "score" not in ranked[-1] and descending and 0 < total <= 1,
          f"10 inputs (one unknown id at position 5) -> same 10, unknown last without score, "
          f"scores descending, sum {total:.4f}")

    errors = {
        "GetRecommendations without userId (user-personalization)": (
            "InvalidInputException", lambda: rt.get_recommendations(campaignArn=up)),
        "GetRecommendations with itemId on user-personalization": (
            "InvalidInputException", lambda: rt.get_recommendations(campaignArn=up, userId=user, itemId=movie)),
        "GetRecommendations without itemId (SIMS)": (
            "InvalidInputException", lambda: rt.get_recommendations(campaignArn=sims, userId=user)),
        "GetRecommendations on a ranking campaign": (
            "InvalidInputException", lambda: rt.get_recommendations(campaignArn=rank, userId=user)),
        "GetPersonalizedRanking on a user-personalization campaign": (
            "InvalidInputException",
            lambda: rt.get_personalized_ranking(campaignArn=up, userId=user, inputList=history)),
        "unknown campaign": (
            "ResourceNotFoundException",
            lambda: rt.get_recommendations(campaignArn=up.rsplit("/", 1)[0] + f"/missing-{TAG}", userId=user)),
        "numResults 0": ("InvalidInputException", lambda: rt.get_recommendations(campaignArn=up, userId=user,
                                                                                numResults=0)),
        "numResults 501": ("InvalidInputException", lambda: rt.get_recommendations(campaignArn=up, userId=user,
                                                                                  numResults=501)),
    }
    for name, (expected, call) in errors.items():
        got = error_code(call)
        check(f"error: {name}", got == expected, got)


def median_rank(ids: list[str], counts: Counter[str]) -> int:
    rank = {item: k + 1 for k, (item, _) in enumerate(counts.most_common())}
    ranks = sorted(rank.get(i, len(rank) + 1) for i in ids)
    return ranks[len(ranks) // 2]


def check_recommenders(rt: Any, s: dict[str, Any]) -> None:
    """Domain exclusions (spec: the latest 100 interactions per user and event type are used)."""
    for key, event_type, other in (("vod", "Watch", "Click"), ("shop", "Purchase", "View")):
        path = s["vod_csv" if key == "vod" else "shop_csv"]
        excluded, kept = by_user(path, event_type), by_user(path, other)
        recipe = "aws-vod-top-picks" if key == "vod" else "aws-ecomm-recommended-for-you"
        ranked = sorted(excluded, key=lambda u: -len(excluded[u]))
        light = [u for u in ranked if len(excluded[u]) <= 100][:30]  # every such event must be excluded
        heavy = [u for u in ranked if len(excluded[u]) > 100][:10]  # only the newest 100 must be
        for users, what in ((light, f"every {event_type}"), (heavy, f"latest 100 {event_type}")):
            if not users:
                continue
            returned = hits = older = scores = others = 0
            for u in users:
                items = rt.get_recommendations(recommenderArn=s["recommenders"][key], userId=u)["itemList"]
                ids = {i["itemId"] for i in items}
                everything = {item for _, item in excluded[u]}
                returned += len(ids)
                hits += len(ids & latest(excluded[u]))
                older += len((ids & everything) - latest(excluded[u]))
                others += len(ids & {item for _, item in kept.get(u, [])})
                scores += sum("score" in i for i in items)
            sizes = [len(excluded[u]) for u in users]
            check(f"{recipe} excludes {what}", returned == 25 * len(users) and hits == 0 and scores == 0,
                  f"{len(users)} users with {min(sizes)}-{max(sizes)} {event_type} events: {returned} items, "
                  f"{hits} in the excluded window, no scores; allowed: {older} older {event_type} items, "
                  f"{others} {other} items")


# --- campaign update under load ----------------------------------------------------------------------------

def update_under_load(p: Any, make_runtime: Any, s: dict[str, Any]) -> None:
    campaign, v1, v2 = s["campaigns"]["up"], s["versions"]["up"], s["versions"]["up2"]
    stop = threading.Event()
    log: list[tuple[float, str, tuple[str, ...]]] = []  # (time, error code or "", items)

    def client_loop() -> None:
        rt = make_runtime()
        while not stop.is_set():
            t = time.time()
            try:
                items = rt.get_recommendations(campaignArn=campaign, userId="1")["itemList"]
                ids = tuple(f"{i['itemId']}:{i['score']:.6f}" for i in items)
                log.append((t, "", ids))
            except Exception as exc:  # noqa: BLE001 - every failure counts, not only service errors
                log.append((t, getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__, ()))

    thread = threading.Thread(target=client_loop, daemon=True)
    thread.start()
    time.sleep(3)
    start = time.time()
    p.update_campaign(campaignArn=campaign, solutionVersionArn=v2)
    timeline: list[tuple[float, str, str]] = []
    while time.time() - start < 600:
        body = p.describe_campaign(campaignArn=campaign)["campaign"]
        state = (body.get("latestCampaignUpdate", {}).get("status", "-"),
                 "v2" if body["solutionVersionArn"] == v2 else "v1" if body["solutionVersionArn"] == v1 else "?")
        if not timeline or timeline[-1][1:] != state:
            timeline.append((time.time() - start, *state))
        if state == ("ACTIVE", "v2") or "FAILED" in state[0]:
            break
        time.sleep(0.1)
    switched = time.time()
    time.sleep(3)  # serving workers re-read a campaign at most once a second
    stop.set()
    thread.join(30)

    calls = len(log)
    failures = [(t, code) for t, code, _ in log if code]
    seconds = log[-1][0] - log[0][0] if log else 0.0
    say("describe_campaign during the update (s after UpdateCampaign: latestCampaignUpdate.status, serving):")
    for t, status, version in timeline:
        say(f"    {t:6.2f} s  {status:<20} {version}")
    before = [ids for t, code, ids in log if not code and t < start]
    after = [ids for t, code, ids in log if not code and t > switched + 2]
    during = sum(1 for t, _, _ in log if start <= t <= start + timeline[-1][0])
    if before and after and before[-1] != after[-1]:
        new = [t - start for t, code, ids in log if not code and ids == after[-1]]
        old = [t - start for t, code, ids in log if not code and ids == before[-1]]
        others = sum(1 for _, code, ids in log if not code and ids not in (before[-1], after[-1]))
        detail = (f"user 1's v2 list (items and scores) first served {new[0]:.2f} s after UpdateCampaign, v1's "
                  f"last {old[-1]:.2f} s after ({timeline[-1][0]:.2f} s: describe_campaign shows v2); "
                  f"{others} responses matched neither")
    else:
        detail = "v1 and v2 give user 1 the same list and scores: the switch is not visible to the client"
    check("UpdateCampaign under load", timeline[-1][1:] == ("ACTIVE", "v2") and calls > 0 and not failures,
          f"{calls} calls in {seconds:.1f} s ({calls / max(seconds, 1e-9):.0f}/s; {during} of them between "
          f"UpdateCampaign and the switch in describe_campaign), {len(failures)} failed"
          f"{' ' + str(Counter(code for _, code in failures).most_common(3)) if failures else ''}; {detail}")


# --- main --------------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data",
                        help="folder holding movielens-latest-small/ and amazon-2018-all-beauty-5core/")
    parser.add_argument("--endpoint", help="a running server; default: start one in a temporary folder")
    parser.add_argument("--work", type=Path, help="where derived CSVs go (under an import root); default: a temp dir")
    parser.add_argument("--workers", type=int, default=2, help="API workers of the local server")
    args = parser.parse_args()
    data = args.data.resolve()
    if args.endpoint and not args.work:
        parser.error("--endpoint needs --work: a folder under the server's import root for the derived CSVs")
    scratch = Path(tempfile.mkdtemp(prefix="tm-walkthrough-"))
    work = (args.work or scratch / "imports").resolve()
    work.mkdir(parents=True, exist_ok=True)
    server = None
    config = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120)
    if args.endpoint:
        session = boto3.Session(region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))

        def client(service: str) -> Any:
            return session.client(service, endpoint_url=args.endpoint, config=config)
    else:
        sys.path.insert(0, str(REPO))
        from tastemaker.cli.local_server import LocalServer

        server = LocalServer(scratch / "server", import_roots=[data, work], extra_args=["--workers", str(args.workers)])
        server.start(timeout=120)
        say(f"server {server.url} ({args.workers} workers), data {data}, scratch {scratch}")

        def client(service: str) -> Any:
            return server.client(service)
    try:
        p = client("personalize")
        state = setup(p, data, work)
        say("set-up done; checks:")
        rt = client("personalize-runtime")
        check_campaigns(rt, state)
        check_recommenders(rt, state)
        update_under_load(p, lambda: client("personalize-runtime"), state)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    failed = RESULTS.count(False)
    print(f"{'PASS' if not failed else 'FAIL'}  walkthrough: {len(RESULTS) - failed}/{len(RESULTS)} checks passed "
          f"in {time.time() - T0:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
