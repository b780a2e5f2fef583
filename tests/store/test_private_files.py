"""A fresh server's data directory and SQLite database are private to the user who runs it."""

from __future__ import annotations

import stat
from pathlib import Path

from tastemaker.cli.wiring import build_services
from tastemaker.config import Settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_dir_and_database_files_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    services = build_services(Settings(data_dir=data_dir))
    with services.engine.begin() as conn:  # a write, so SQLite has created its -wal and -shm files
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS probe (x INTEGER)")
    services.engine.dispose()
    assert _mode(data_dir) == 0o700
    db = data_dir / "tastemaker.db"
    assert _mode(db) == 0o600
    for suffix in ("-wal", "-shm"):
        side = Path(f"{db}{suffix}")
        if side.exists():
            assert _mode(side) == 0o600, side


def test_an_existing_data_dir_loses_group_and_other_access(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    (data_dir / "tastemaker.db").touch(mode=0o644)
    (data_dir / "tastemaker.db").chmod(0o644)
    build_services(Settings(data_dir=data_dir)).engine.dispose()
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / "tastemaker.db") == 0o600
