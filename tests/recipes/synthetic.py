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


# --- next best action: actions with known per-user preferences ----------------------------------------------
ACTIONS_PER_GENRE = 2
TAKE_IF_GENRE = 0.7  # P(TAKEN | shown) for an action of the user's genre
TAKE_POPULAR = 0.35  # the "popular" action: everyone takes it sometimes
TAKE_OTHER = 0.05  # any other action


def action_genre(action_id: str) -> int | None:
    """Genre of a generated action ("a<genre>_<k>"); None for the popular and the expired action."""
    return int(action_id[1]) if action_id[1:2].isdigit() else None


def make_action_tables(n_users: int = 400, shown_per_user: int = 12, seed: int = 11, expired_at: int | None = None
                       ) -> tuple[pa.Table, pa.Table]:
    """(Actions, Action_Interactions) for users u0..u{n-1} whose genre is n % 4 (as in make_tables).

    The generator: each user is shown `shown_per_user` actions drawn uniformly; an action of the user's genre
    is TAKEN with probability 0.7, the popular action `a_pop` with 0.35, any other with 0.05; otherwise the
    event is NOT_TAKEN (or, one time in four, VIEWED). So every user's known best actions are their genre's
    two actions, while popularity favours `a_pop` (taken by every kind of user). With `expired_at`, the action
    `a_expired` (EXPIRATION_TIMESTAMP = expired_at) is taken by everyone with probability 0.9: the most popular
    and best-scoring action, which serving must never return once expired.
    """
    rng = np.random.default_rng(seed)
    ids = [f"a{g}_{k}" for g in range(len(GENRES)) for k in range(ACTIONS_PER_GENRE)] + ["a_pop"]
    values = [10] * (len(ids) - 1) + [5]
    expirations: list[int | None] = [None] * len(ids)
    if expired_at is not None:
        ids.append("a_expired")
        values.append(20)
        expirations.append(expired_at)
    actions = pa.table({"ACTION_ID": ids, "VALUE": pa.array(values, pa.int64()),
                        "EXPIRATION_TIMESTAMP": pa.array(expirations, pa.int64()),
                        "CATEGORY": ["genre" if action_genre(a) is not None else "general" for a in ids]})
    users, shown, kinds, times = [], [], [], []
    for user in range(n_users):
        genre = user % len(GENRES)
        t = START + 86_400 * 31 + int(rng.integers(0, 86_400 * 10))
        for action in rng.choice(ids, size=shown_per_user):
            action = str(action)
            p = (TAKE_IF_GENRE if action_genre(action) == genre else TAKE_POPULAR if action == "a_pop"
                 else 0.9 if action == "a_expired" else TAKE_OTHER)
            t += int(rng.integers(600, 36_000))
            users.append(f"u{user}")
            shown.append(action)
            kinds.append("TAKEN" if rng.random() < p else ("VIEWED" if rng.random() < 0.25 else "NOT_TAKEN"))
            times.append(t)
    interactions = pa.table({"USER_ID": users, "ACTION_ID": shown, "EVENT_TYPE": kinds,
                             "TIMESTAMP": pa.array(times, pa.int64())})
    return actions, interactions
