"""Claims of the user-facing pages that are not code samples stay true: every `serve` flag is in the settings
table, no page points at a path that exists only on the project's machines, and the console is not promised."""

from __future__ import annotations

import re

from tastemaker.cli.main import build_parser
from tests.docs.samples import PAGES, REPO


def test_every_serve_flag_is_in_the_settings_table() -> None:
    text = (REPO / "docs" / "configuration.md").read_text()
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    flags = [f for a in serve._actions for f in a.option_strings if f.startswith("--") and f != "--help"]
    assert flags and not [f for f in flags if f"`{f}" not in text]


def test_no_page_names_a_path_of_our_own_machines() -> None:
    for page in PAGES:
        for line in page.read_text().splitlines():
            assert not re.search(r"/work/|/home/\w+/", line), f"{page.name}: {line}"


def test_settings_page_says_where_s3_credentials_come_from() -> None:
    text = (REPO / "docs" / "configuration.md").read_text()
    assert "nothing else is read" not in text and "AWS_ACCESS_KEY_ID" in text
