"""The newcomer docs stay true to the code: every recipe, hyperparameter, use case and linked page exists."""

from __future__ import annotations

import re
from pathlib import Path

from tastemaker.cli.main import build_parser
from tastemaker.recipes import all_recipes
from tastemaker.recipes.catalog import USE_CASES

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_recipes_page_covers_every_recipe_hyperparameter_and_use_case() -> None:
    text = (DOCS / "recipes.md").read_text()
    for name, recipe in all_recipes().items():
        if name.startswith("aws-hrnn"):
            assert name in text
            continue
        assert f"\n## {name}\n" in text, name
        section = text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        for hp in recipe.hyperparameters:
            assert f"`{hp.name}` | {hp.default} |" in section, f"docs/recipes.md: update {name} {hp.name}"
    for use_case in USE_CASES:
        assert f"`{use_case.name}`" in text


def test_links_between_pages_resolve() -> None:
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+)\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_quickstart_page_documents_the_commands_real_flags() -> None:
    text = (DOCS / "quickstart.md").read_text()
    sub = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for command in ("quickstart", "cleanup"):
        for action in sub[command]._actions:
            flags = [f for f in action.option_strings if f.startswith("--") and f != "--help"]
            for flag in flags:
                if flag not in ("--region", "--timeout"):
                    assert flag in text, f"{command} {flag} is not documented"
