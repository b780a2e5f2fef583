"""quickstart on a user's own data: titles beside ids, a label attribute that groups items, and a "discovers X"
claim that is true when items carry several genres (MovieLens-shaped data)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tastemaker.cli.item_labels import choose_discovery, read_items
from tastemaker.cli.quickstart import Catalog


def write_items(folder: Path, fields: list[dict], rows: list[list[str]]) -> tuple[Path, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    schema = {"type": "record", "name": "Items", "namespace": "com.amazonaws.personalize.schema",
              "fields": [{"name": "ITEM_ID", "type": "string"}, *fields], "version": "1.0"}
    path = folder / "items.csv"
    path.write_text("\n".join([",".join(f["name"] for f in schema["fields"]), *(",".join(r) for r in rows)]) + "\n")
    return path, schema


def test_titles_and_every_genre_of_movielens_shaped_items(tmp_path: Path) -> None:
    path, schema = write_items(tmp_path, [{"name": "TITLE", "type": "string"},
                                          {"name": "GENRES", "type": ["null", "string"], "categorical": True}],
                               [["1", "Toy Story (1995)", "Adventure|Animation"], ["2", "Heat (1995)", "Action"]])
    values, titles = read_items(path, schema)
    assert values == {"1": ("Adventure", "Animation"), "2": ("Action",)}
    assert titles == {"1": "Toy Story (1995)", "2": "Heat (1995)"}


def test_the_label_is_a_field_that_groups_items_not_a_near_unique_one(tmp_path: Path) -> None:
    rows = [[f"p{k}", f"brand{k}", f"cat{k % 5}", f"Product number {k}"] for k in range(200)]
    path, schema = write_items(tmp_path, [{"name": "BRAND", "type": "string", "categorical": True},
                                          {"name": "CATEGORY", "type": "string", "categorical": True},
                                          {"name": "PRODUCT_NAME", "type": "string", "itemName": True}], rows)
    values, titles = read_items(path, schema)
    assert values["p7"] == ("cat2",) and titles["p7"] == "Product number 7"


def test_the_user_discovers_a_genre_none_of_their_films_carries() -> None:
    # The fan's films are all Action|Sci-Fi: by first genre alone Sci-Fi looks new to them, and it is not.
    films = {f"a{k}": ("Action", "Sci-Fi") for k in range(10)}
    films |= {f"s{k}": ("Sci-Fi",) for k in range(10)} | {f"d{k}": ("Documentary",) for k in range(10)}
    popularity = Counter({f: 100 - k for k, f in enumerate(sorted(films, key=lambda f: f[0] != "s"))})
    history = [f"a{k}" for k in range(8)]
    value, picks, touched = choose_discovery(films, popularity, history)
    assert value == "Documentary" and touched == 0
    assert all("Documentary" in films[p] for p in picks) and not set(picks) & set(history)
    catalog = Catalog({f: v[0] for f, v in films.items()}, {"fan": history}, "click", popularity, item_values=films)
    assert catalog.taste("fan")["Sci-Fi"] == 8
