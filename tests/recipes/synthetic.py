"""Small structured data for recipe tests: users in taste clusters walk through their genre's items in order."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

GENRES = ("action", "comedy", "drama", "horror")
GENRE_WORDS = {
    "action": "explosion chase hero fight",
    "comedy": "funny laugh joke wedding",
    "drama": "family tears courtroom life",
    "horror": "ghost blood haunted night",
}
ITEMS_PER_GENRE = 30
COLD_ITEMS_PER_GENRE = 2  # in the Items dataset only, never interacted with
START = 1_700_000_000


def make_tables(n_users: int = 400, events_per_user: int = 30, seed: int = 7
                ) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(interactions, items, users) Personalize-shaped tables with strong genre and sequence structure."""
    rng = np.random.default_rng(seed)
    user_rows, item_rows, times, types, values = [], [], [], [], []
    for user in range(n_users):
        genre = user % len(GENRES)
        position = int(rng.integers(0, ITEMS_PER_GENRE))
        t = START + int(rng.integers(0, 86_400 * 30))
        for _ in range(events_per_user):
            if rng.random() < 0.9:  # mostly the next item of the user's genre (a sequence)
                position = (position + int(rng.integers(1, 3))) % ITEMS_PER_GENRE
                item = genre * ITEMS_PER_GENRE + position
            else:
                item = int(rng.integers(0, len(GENRES) * ITEMS_PER_GENRE))
            t += int(rng.integers(60, 3_600))
            user_rows.append(f"u{user}")
            item_rows.append(f"i{item}")
            times.append(t)
            purchase = rng.random() < 0.2
            types.append("Purchase" if purchase else "View")
            values.append(float(rng.integers(1, 6)))
    interactions = pa.table({
        "USER_ID": pa.array(user_rows, pa.string()),
        "ITEM_ID": pa.array(item_rows, pa.string()),
        "TIMESTAMP": pa.array(times, pa.int64()),
        "EVENT_TYPE": pa.array(types, pa.string()),
        "EVENT_VALUE": pa.array(values, pa.float32()),
    })
    ids, genres, names, descriptions, created = [], [], [], [], []
    per_genre = ITEMS_PER_GENRE + COLD_ITEMS_PER_GENRE
    for g, genre in enumerate(GENRES):
        for k in range(per_genre):
            index = g * ITEMS_PER_GENRE + k if k < ITEMS_PER_GENRE else 1000 + g * 100 + k
            ids.append(f"i{index}")
            genres.append(f"{genre}|{'classic' if k % 3 == 0 else 'new'}")
            names.append(f"{genre.title()} story {k}")
            descriptions.append(f"A {genre} film: {GENRE_WORDS[genre]} number {k}")
            created.append(START - 86_400 * (per_genre - k))
    items = pa.table({"ITEM_ID": ids, "GENRES": genres, "NAME": names, "DESCRIPTION": descriptions,
                      "CREATION_TIMESTAMP": pa.array(created, pa.int64())})
    users = pa.table({"USER_ID": [f"u{u}" for u in range(n_users)],
                      "SEGMENT": [GENRES[u % len(GENRES)] for u in range(n_users)]})
    return interactions, items, users


def cold_item_ids() -> list[str]:
    return [f"i{1000 + g * 100 + k}" for g in range(len(GENRES))
            for k in range(ITEMS_PER_GENRE, ITEMS_PER_GENRE + COLD_ITEMS_PER_GENRE)]


def genre_of_item_id(item_id: str) -> int | None:
    index = int(item_id[1:])
    if index >= 1000:
        return (index - 1000) // 100
    return index // ITEMS_PER_GENRE
