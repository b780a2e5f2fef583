"""One fresh-clone stand-in with a live server for the documentation samples (stopped when tests/docs is done)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.checkout import Checkout


@pytest.fixture(scope="package")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Checkout]:
    box = Checkout(tmp_path_factory.mktemp("checkout")).start()
    yield box
    box.stop()
