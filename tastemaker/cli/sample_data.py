"""A realistic generated dataset (users, items, interactions with taste, popularity and time) in Personalize CSVs."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DOMAINS = ("custom", "ECOMMERCE", "VIDEO_ON_DEMAND")
NAMESPACE = "com.amazonaws.personalize.schema"
DAY = 86_400
END_TIME = 1_764_000_000  # the generated history ends here (late 2025); fixed so runs are reproducible

GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "SciFi", "Documentary", "Animation"]
GENRE_WORDS = {
    "Action": ["heist", "chase", "mercenary", "explosive", "rescue"],
    "Comedy": ["awkward", "wedding", "roommates", "prank", "hilarious"],
    "Drama": ["family", "courtroom", "grief", "ambition", "quiet"],
    "Horror": ["haunted", "cabin", "curse", "whispers", "midnight"],
    "Romance": ["summer", "letters", "second-chance", "paris", "sweethearts"],
    "SciFi": ["starship", "android", "time-loop", "colony", "quantum"],
    "Documentary": ["ocean", "wildlife", "history", "inventors", "climate"],
    "Animation": ["talking", "dragon", "toy", "magical", "forest"],
}
CATEGORIES = {  # ECOMMERCE: CATEGORY_L1 -> CATEGORY_L2 values
    "Electronics": ["Headphones", "Chargers", "Cameras"], "Books": ["Fiction", "Cookbooks", "Travel"],
    "Home": ["Kitchen", "Bedding", "Lighting"], "Sports": ["Running", "Yoga", "Cycling"],
    "Beauty": ["Skincare", "Fragrance", "Haircare"], "Toys": ["Puzzles", "Building", "Plush"],
    "Garden": ["Seeds", "Tools", "Planters"], "Fashion": ["Shoes", "Jackets", "Bags"],
}
PRODUCT_WORDS = {
    "Electronics": ["commuters", "gamers", "travellers"], "Books": ["readers", "cooks", "dreamers"],
    "Home": ["hosts", "early risers", "homebodies"], "Sports": ["runners", "climbers", "weekend riders"],
    "Beauty": ["sensitive skin", "night owls", "minimalists"], "Toys": ["toddlers", "tinkerers", "collectors"],
    "Garden": ["balcony growers", "beginners", "allotment fans"], "Fashion": ["city walkers", "hikers", "parents"],
}
PRICE_LEVEL = {"Electronics": 80.0, "Books": 15.0, "Home": 35.0, "Sports": 45.0, "Beauty": 25.0, "Toys": 20.0,
               "Garden": 18.0, "Fashion": 60.0}
ADJECTIVES = ["classic", "new", "bestselling", "award-winning", "compact", "premium", "bold", "gentle", "clever"]


@dataclass
class DomainSpec:
    """What a domain's generated data looks like: its clusters and event types (the first is the common one)."""

    name: str
    clusters: list[str]
    event_types: tuple[str, str]  # (frequent, rarer/stronger), e.g. ("View", "Purchase")
    strong_rate: float  # share of frequent events followed by the stronger event


SPECS = {
    "custom": DomainSpec("custom", GENRES, ("click", "watch"), 0.6),
    "VIDEO_ON_DEMAND": DomainSpec("VIDEO_ON_DEMAND", GENRES, ("Click", "Watch"), 0.6),
    "ECOMMERCE": DomainSpec("ECOMMERCE", list(CATEGORIES), ("View", "Purchase"), 0.12),
}


@dataclass
class SampleData:
    """The written files, their schemas (Avro dicts by dataset type) and facts quickstart prints."""

    folder: Path
    domain: str
    paths: dict[str, Path]  # dataset type (Interactions/Items/Users) -> CSV path
    schemas: dict[str, dict]
    event_types: tuple[str, str]
    item_cluster: dict[str, str] = field(default_factory=dict)  # item id -> genre / CATEGORY_L1
    user_cluster: dict[str, str] = field(default_factory=dict)  # user id -> favourite genre / category
    cluster_field: str = "GENRES"  # the Items column holding the cluster
    interactions: int = 0

    def items_of(self, cluster: str) -> list[str]:
        return [item for item, c in self.item_cluster.items() if c == cluster]


def _schema(name: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": NAMESPACE, "fields": fields, "version": "1.0"}


def schemas_for(domain: str) -> dict[str, dict]:
    """Avro schemas for the three datasets; they satisfy the domain's required and reserved field rules."""
    interactions: list[dict[str, Any]] = [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                    {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"}]
    if domain == "ECOMMERCE":
        items: list[dict[str, Any]] = [{"name": "ITEM_ID", "type": "string"}, {"name": "PRICE", "type": "float"},
                 {"name": "CATEGORY_L1", "type": "string", "categorical": True},
                 {"name": "CATEGORY_L2", "type": ["null", "string"], "categorical": True},
                 {"name": "CREATION_TIMESTAMP", "type": "long"},
                 {"name": "PRODUCT_DESCRIPTION", "type": ["null", "string"], "textual": True}]
        users: list[dict[str, Any]] = [{"name": "USER_ID", "type": "string"}, {"name": "AGE", "type": "int"},
                                       {"name": "MEMBERSHIP", "type": "string", "categorical": True}]
    else:
        if domain == "custom":
            interactions.append({"name": "EVENT_VALUE", "type": ["null", "float"]})
        items = [{"name": "ITEM_ID", "type": "string"},
                 {"name": "GENRES", "type": "string", "categorical": True},
                 {"name": "PRICE", "type": ["null", "float"]}, {"name": "CREATION_TIMESTAMP", "type": "long"},
                 {"name": "PRODUCT_DESCRIPTION", "type": ["null", "string"], "textual": True}]
        tier = "SUBSCRIPTION_MODEL" if domain == "VIDEO_ON_DEMAND" else "MEMBERSHIP"
        users = [{"name": "USER_ID", "type": "string"}, {"name": "AGE", "type": "int"},
                 {"name": tier, "type": "string", "categorical": True}]
    return {"Interactions": _schema("Interactions", interactions), "Items": _schema("Items", items),
            "Users": _schema("Users", users)}


def _description(rng: np.random.Generator, cluster: str, domain: str, sub: str | None) -> str:
    adjective = ADJECTIVES[int(rng.integers(len(ADJECTIVES)))]
    article = "An" if adjective[0] in "aeiou" else "A"
    if domain == "ECOMMERCE":
        buyer = PRODUCT_WORDS[cluster][int(rng.integers(3))]
        return f"{article} {adjective} pick from {cluster.lower()} / {str(sub).lower()}, made for {buyer}."
    picked = rng.choice(GENRE_WORDS[cluster], size=2, replace=False)
    return f"{article} {adjective} {cluster.lower()} story about {picked[0]} and {picked[1]}."


def generate(folder: Path, *, domain: str = "custom", users: int = 2000, items: int = 1000,
             interactions: int = 50_000, seed: int = 42) -> SampleData:
    """Write interactions.csv, items.csv and users.csv under `folder` and return what was written.

    `interactions` counts the frequent events (View, click...); the stronger ones (Purchase, watch...) come on top.

    Structure that a learning recipe can find and a popularity list cannot: every user has a favourite
    cluster (genre / category) and a second one, picks most items there, and otherwise follows a
    power-law global popularity; new items arrive over time and are interacted with only after their
    creation, more when they are fresh; users are active in bursts (sessions) over a 180-day window.
    """
    if domain not in SPECS:
        raise ValueError(f"unknown domain {domain!r}; choose one of {', '.join(DOMAINS)}")
    spec = SPECS[domain]
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n_clusters = len(spec.clusters)

    # Items: a cluster, a power-law popularity, a creation time (a fifth arrive during the window).
    item_cluster = rng.integers(n_clusters, size=items)
    popularity = 1.0 / np.power(rng.permutation(items) + 1.0, 0.9)
    window_start = END_TIME - 180 * DAY
    created = window_start - rng.integers(DAY, 3 * 365 * DAY, size=items)
    fresh = rng.random(items) < 0.2
    created[fresh] = window_start + rng.integers(0, 170 * DAY, size=int(fresh.sum()))

    # Users: a favourite and a second cluster, an activity level (lognormal, at least 3 interactions).
    favourite = rng.integers(n_clusters, size=users)
    second = (favourite + rng.integers(1, n_clusters, size=users)) % n_clusters
    activity = rng.lognormal(0.0, 0.8, size=users)
    counts = np.maximum(3, np.round(activity / activity.sum() * interactions)).astype(np.int64)

    # Interactions: per event choose favourite (70%), second (15%) or anything (15%), weighted by popularity.
    user_of = np.repeat(np.arange(users), counts)
    total = len(user_of)
    draw = rng.random(total)
    target = np.where(draw < 0.70, favourite[user_of], np.where(draw < 0.85, second[user_of], -1))
    chosen = np.empty(total, dtype=np.int64)
    for cluster in range(-1, n_clusters):
        rows = np.flatnonzero(target == cluster)
        pool = np.arange(items) if cluster < 0 else np.flatnonzero(item_cluster == cluster)
        weights = popularity[pool] / popularity[pool].sum()
        chosen[rows] = pool[rng.choice(len(pool), size=len(rows), p=weights)]
    # Time: each user has a few sessions; events inside a session are minutes apart.
    session_start = window_start + rng.integers(0, 180 * DAY, size=(users, 4))
    session = rng.integers(0, 4, size=total)
    times = session_start[user_of, session] + rng.integers(0, 3600, size=total)
    late = times < created[chosen]  # an item cannot be seen before it exists: move those events after release
    times[late] = np.minimum(END_TIME, created[chosen[late]] + rng.integers(0, 14 * DAY, size=int(late.sum())))

    frequent, strong = spec.event_types
    strong_mask = rng.random(total) < spec.strong_rate
    order = np.lexsort((times, user_of))
    paths = {"Interactions": folder / "interactions.csv", "Items": folder / "items.csv", "Users": folder / "users.csv"}
    rows_written = 0
    with paths["Interactions"].open("w", newline="") as fh:
        out = csv.writer(fh)
        header = ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE"] + (["EVENT_VALUE"] if domain == "custom" else [])
        out.writerow(header)
        ratings = np.clip(np.round(rng.normal(3.8, 0.9, size=total)), 1, 5)
        for k in order:
            base = [f"user{user_of[k]}", f"item{chosen[k]}", int(times[k])]
            value = [f"{ratings[k]:.1f}"] if domain == "custom" else []
            out.writerow(base + [frequent] + ([""] if value else []))
            rows_written += 1
            if strong_mask[k]:  # the stronger event follows the frequent one a few minutes later
                out.writerow(base[:2] + [int(min(END_TIME, times[k] + 120))] + [strong] + value)
                rows_written += 1

    item_cluster_names: dict[str, str] = {}
    with paths["Items"].open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow([f["name"] for f in schemas_for(domain)["Items"]["fields"]])
        for i in range(items):
            cluster = spec.clusters[item_cluster[i]]
            item_cluster_names[f"item{i}"] = cluster
            if domain == "ECOMMERCE":
                sub = CATEGORIES[cluster][int(rng.integers(3))]
                amount = PRICE_LEVEL[cluster] * float(rng.lognormal(0.0, 0.4))
                out.writerow([f"item{i}", f"{amount:.2f}", cluster, sub, int(created[i]),
                              _description(rng, cluster, domain, sub)])
            else:
                genres = cluster
                if rng.random() < 0.25:  # some titles carry a second genre (multi-value categorical)
                    genres += "|" + spec.clusters[int(rng.integers(n_clusters))]
                price = "" if rng.random() < 0.5 else f"{float(rng.choice([2.99, 3.99, 4.99])):.2f}"
                out.writerow([f"item{i}", genres, price, int(created[i]), _description(rng, cluster, domain, None)])

    with paths["Users"].open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow([f["name"] for f in schemas_for(domain)["Users"]["fields"]])
        tiers = ["free", "standard", "premium"] if domain == "VIDEO_ON_DEMAND" else ["bronze", "silver", "gold"]
        ages = np.clip(rng.normal(36, 12, size=users), 16, 90).astype(int)
        for u in range(users):
            out.writerow([f"user{u}", int(ages[u]), tiers[int(rng.choice(3, p=[0.5, 0.35, 0.15]))]])

    data = SampleData(folder=folder, domain=domain, paths=paths, schemas=schemas_for(domain),
                      event_types=spec.event_types, item_cluster=item_cluster_names,
                      user_cluster={f"user{u}": spec.clusters[favourite[u]] for u in range(users)},
                      cluster_field="CATEGORY_L1" if domain == "ECOMMERCE" else "GENRES",
                      interactions=rows_written)
    for kind, schema in data.schemas.items():
        (folder / f"{kind.lower()}.schema.json").write_text(json.dumps(schema, indent=2))
    return data
