"""Small generated Personalize-shaped data for end-to-end tests (users in taste clusters, items in genres)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "SciFi"]

INTERACTIONS_SCHEMA = {
    "type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"},
        {"name": "EVENT_TYPE", "type": "string"},
        {"name": "EVENT_VALUE", "type": ["null", "float"]},
    ],
    "version": "1.0",
}
ITEMS_SCHEMA = {
    "type": "record", "name": "Items", "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "ITEM_ID", "type": "string"},
        {"name": "GENRES", "type": ["null", "string"], "categorical": True},
        {"name": "PRICE", "type": ["null", "float"]},
        {"name": "CREATION_TIMESTAMP", "type": "long"},
        {"name": "DESCRIPTION", "type": ["null", "string"], "textual": True},
    ],
    "version": "1.0",
}
USERS_SCHEMA = {
    "type": "record", "name": "Users", "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "AGE", "type": "int"},
        {"name": "MEMBERSHIP", "type": "string", "categorical": True},
    ],
    "version": "1.0",
}


def schema_json(schema: dict) -> str:
    return json.dumps(schema)


def write_dataset(folder: Path, *, users: int = 120, items: int = 90, per_user: int = 25, seed: int = 7,
                  event_types: tuple[str, ...] = ("click", "watch")) -> dict[str, Path]:
    """Write interactions.csv, items.csv and users.csv with taste structure; return their paths."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    item_genre = [GENRES[i % len(GENRES)] for i in range(items)]
    user_genre = [GENRES[u % len(GENRES)] for u in range(users)]
    base = 1_700_000_000
    paths = {"interactions": folder / "interactions.csv", "items": folder / "items.csv",
             "users": folder / "users.csv"}
    with paths["interactions"].open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"])
        for u in range(users):
            liked = [i for i in range(items) if item_genre[i] == user_genre[u]]
            others = [i for i in range(items) if item_genre[i] != user_genre[u]]
            for k in range(per_user):
                pool = liked if rng.random() < 0.8 else others
                item = int(rng.choice(pool))
                out.writerow([f"u{u}", f"i{item}", base + u * 1000 + k * 10, event_types[k % len(event_types)],
                              f"{rng.integers(1, 6)}.0"])
    with paths["items"].open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["ITEM_ID", "GENRES", "PRICE", "CREATION_TIMESTAMP", "DESCRIPTION"])
        for i in range(items):
            out.writerow([f"i{i}", item_genre[i], f"{5 + i % 20}.5", base - i * 3600,
                          f"A {item_genre[i].lower()} story number {i}"])
    with paths["users"].open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["USER_ID", "AGE", "MEMBERSHIP"])
        for u in range(users):
            out.writerow([f"u{u}", 18 + u % 50, "gold" if u % 3 == 0 else "basic"])
    return paths


def write_store_dataset(folder: Path, *, users: int = 100, bundles: int = 19, seed: int = 11) -> dict[str, Path]:
    """ECOMMERCE interactions (View and Purchase, >= 1000 of each) with known answers; return {"interactions": path}.

    i0 is the best seller (bought by ~90% of users, never viewed) and i1 the most viewed (viewed by ~90%, never
    bought): a popular list ranked by the wrong event type puts the other one first. Items i2.. come in bundles
    (i2+i3, i4+i5, ...) that are always bought together, so each one's frequently-bought-together partner is known.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    bundle_items = [(2 + 2 * b, 3 + 2 * b) for b in range(bundles)]
    viewable = list(range(2, 2 + 2 * bundles))
    path = folder / "interactions.csv"
    base = 1_700_000_000
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"])
        for u in range(users):
            rows: list[tuple[int, str]] = [(int(i), "View") for i in rng.choice(viewable, size=11, replace=False)]
            if rng.random() < 0.9:
                rows.append((1, "View"))
            for b in rng.choice(bundles, size=6, replace=False):
                rows += [(bundle_items[b][0], "Purchase"), (bundle_items[b][1], "Purchase")]
            if rng.random() < 0.9:
                rows.append((0, "Purchase"))
            for k, (item, event_type) in enumerate(rows):
                out.writerow([f"u{u}", f"i{item}", base + u * 1000 + k * 10, event_type, ""])
    return {"interactions": path}


def write_taste_groups(path: Path, *, items: int, users: int, groups: int, cover: int, extra: int,
                       seed: int = 11) -> Path:
    """An Interactions CSV of users and items in taste groups; each item reaches `cover` users of its group,
    and each user also picks `extra` items Zipf-popular within the group; timestamps increase per user."""
    rng = np.random.default_rng(seed)
    item_group = np.arange(items) % groups
    user_group = np.arange(users) % groups
    user_parts: list[np.ndarray] = []
    item_parts: list[np.ndarray] = []
    for group in range(groups):
        members = np.nonzero(user_group == group)[0]
        group_items = np.nonzero(item_group == group)[0]
        for item in group_items:  # every item: cover distinct users of its group
            user_parts.append(rng.choice(members, cover, replace=False))
            item_parts.append(np.full(cover, item))
        popular = group_items[np.minimum(rng.zipf(1.5, len(members) * extra) - 1, len(group_items) - 1)]
        user_parts.append(np.repeat(members, extra))
        item_parts.append(popular)
    user = np.concatenate(user_parts)
    item = np.concatenate(item_parts)
    order = np.lexsort((rng.random(len(user)), user))
    user, item = user[order], item[order]
    step = np.arange(len(user)) - np.searchsorted(user, user)
    stamp = 1_700_000_000 + user.astype(np.int64) * 10_000 + step * 10
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        out.write("USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\n")
        out.writelines(f"u{u},i{i},{t},click,\n" for u, i, t in zip(user, item, stamp, strict=True))
    return path
