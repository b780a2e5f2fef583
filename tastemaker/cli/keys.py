"""`tastemaker keys`: create, list, rotate, disable, enable and delete scoped access keys in the metadata database.

Works on the database directly (like `db upgrade`), so it needs the same --data-dir / --db-url as the servers and
the same key-encryption key (TASTEMAKER_KEY_ENCRYPTION_KEY or DATA_DIR/access-keys.kek). Running servers pick a
change up within a second. A secret is printed once, at creation or rotation; the database holds it encrypted.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from tastemaker.config import Settings
from tastemaker.errors import InvalidInputException, ResourceInUseException, TastemakerError

DEFAULT_OVERLAP_SECONDS = 3600
_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tastemaker.cli.main import _add_state_flags

    sub = parser.add_subparsers(dest="keys_command", required=True)
    create = sub.add_parser("create", help="create a key; prints its secret once")
    create.add_argument("--name", required=True, help="a name for the key (letters, digits, +=,.@_-; at most 64)")
    scope = create.add_mutually_exclusive_group(required=True)
    scope.add_argument("--policy", help="the key's IAM-style policy: a JSON document or the path of a JSON file")
    scope.add_argument("--admin", action="store_true", help="allow every personalize:* action on every resource")
    listing = sub.add_parser("list", help="list the keys, their status and policies")
    rotate = sub.add_parser("rotate", help="give a key a new secret; the old one works for --overlap-seconds more")
    rotate.add_argument("key", metavar="ID", help="access key id or name")
    rotate.add_argument("--overlap-seconds", type=float, default=DEFAULT_OVERLAP_SECONDS,
                        help=f"how long the previous secret stays valid (default {DEFAULT_OVERLAP_SECONDS})")
    commands = [create, listing, rotate]
    for verb, text in (("disable", "refuse a key until it is enabled again (`root`: the root key)"),
                       ("enable", "accept a disabled key again"), ("delete", "delete a key for good")):
        one = sub.add_parser(verb, help=text)
        one.add_argument("key", metavar="ID", help="access key id or name (`root` for the root key)")
        commands.append(one)
    for command in commands:
        _add_state_flags(command)


def cmd_keys(args: argparse.Namespace) -> int:
    from tastemaker.cli.main import _settings
    from tastemaker.store import db

    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = db.create_engine(settings.resolved_db_url)
    try:
        db.upgrade(engine)
        handler = {"create": create, "list": list_keys, "rotate": rotate, "disable": disable, "enable": enable,
                   "delete": delete}[args.keys_command]
        handler(engine, settings, args)
    except TastemakerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def read_policy(value: str) -> dict[str, Any]:
    """--policy: inline JSON, or the path of a JSON file; validated (api.policy) before it is stored."""
    from tastemaker.api.policy import Policy

    text = value
    if not value.lstrip().startswith("{"):
        path = Path(value)
        if not path.is_file():
            raise InvalidInputException(f"--policy {value!r} is neither a JSON document nor a file.")
        text = path.read_text()
    return Policy.parse(text).document


def create(engine: sa.Engine, settings: Settings, args: argparse.Namespace) -> None:
    from tastemaker.api.keys import SecretBox, _new_key
    from tastemaker.api.policy import ADMIN_POLICY
    from tastemaker.store import access_keys

    if not _NAME.match(args.name) or args.name == access_keys.ROOT_ID:
        raise InvalidInputException(f"--name {args.name!r}: use 1 to 64 letters, digits and +=,.@_- (not 'root').")
    policy = ADMIN_POLICY if args.admin else read_policy(args.policy)
    box = SecretBox.open(settings, create=True)
    assert box is not None
    key = _new_key()
    with engine.begin() as conn:
        access_keys.insert(conn, access_key_id=key.access_key_id, name=args.name, policy=policy,
                           secret_ciphertext=box.encrypt(key.secret_access_key, key.access_key_id))
    print(f"Created access key {args.name!r}. The secret is shown only now; servers accept the key within a "
          "second.")
    print(f"AccessKeyId: {key.access_key_id}")
    print(f"SecretAccessKey: {key.secret_access_key}")


def rotate(engine: sa.Engine, settings: Settings, args: argparse.Namespace) -> None:
    from tastemaker.api.keys import SecretBox, _new_key
    from tastemaker.store import access_keys

    if args.overlap_seconds < 0:
        raise InvalidInputException("--overlap-seconds must be 0 or more.")
    box = SecretBox.open(settings, create=True)
    assert box is not None
    with engine.begin() as conn:
        row = access_keys.root(conn) if args.key == access_keys.ROOT_ID else access_keys.get(conn, args.key)
        if row.is_root:
            raise InvalidInputException("The root key's secret is set by TASTEMAKER_SECRET_ACCESS_KEY or "
                                        "DATA_DIR/credentials.json; change it there.")
        secret = _new_key().secret_access_key
        keep = args.overlap_seconds > 0
        until = time.time() + args.overlap_seconds
        access_keys.update(conn, row.access_key_id, secret_ciphertext=box.encrypt(secret, row.access_key_id),
                           previous_secret_ciphertext=row.secret_ciphertext if keep else None,
                           previous_expires_at=until if keep else None)
    print(f"Rotated access key {row.name!r}. The new secret is shown only now; the previous one is accepted "
          f"until {_when(until) if keep else 'now'}.")
    print(f"AccessKeyId: {row.access_key_id}")
    print(f"SecretAccessKey: {secret}")


def disable(engine: sa.Engine, settings: Settings, args: argparse.Namespace) -> None:
    from tastemaker.store import access_keys

    with engine.begin() as conn:
        access_keys.lock_changes(conn)  # the keep-an-admin check reads committed state only
        row = access_keys.root(conn) if args.key == access_keys.ROOT_ID else access_keys.get(conn, args.key)
        if row.is_root and not _admins(conn, besides=None):
            raise ResourceInUseException(
                "The root key can be disabled only once an enabled admin key exists; create one first with "
                "`tastemaker keys create --name admin --admin`.")
        _keep_an_admin(conn, row)
        access_keys.update(conn, row.access_key_id, enabled=False)
    print(f"Disabled access key {row.name!r}; servers refuse it within a second.")


def enable(engine: sa.Engine, settings: Settings, args: argparse.Namespace) -> None:
    from tastemaker.store import access_keys

    with engine.begin() as conn:
        access_keys.lock_changes(conn)
        row = access_keys.root(conn) if args.key == access_keys.ROOT_ID else access_keys.get(conn, args.key)
        access_keys.update(conn, row.access_key_id, enabled=True)
    print(f"Enabled access key {row.name!r}.")


def delete(engine: sa.Engine, settings: Settings, args: argparse.Namespace) -> None:
    from tastemaker.store import access_keys

    with engine.begin() as conn:
        access_keys.lock_changes(conn)  # the keep-an-admin check reads committed state only
        row = access_keys.root(conn) if args.key == access_keys.ROOT_ID else access_keys.get(conn, args.key)
        if row.is_root:
            raise InvalidInputException("The root key cannot be deleted; `tastemaker keys disable root` refuses it.")
        _keep_an_admin(conn, row)
        access_keys.delete(conn, row.access_key_id)
    print(f"Deleted access key {row.name!r}.")


def _admins(conn: sa.Connection, besides: str | None) -> list[str]:
    """Enabled keys (other than `besides`) whose policy may do everything: what may stand in for the root."""
    from tastemaker.api.policy import Policy
    from tastemaker.store import access_keys

    return [r.access_key_id for r in access_keys.list_all(conn)
            if not r.is_root and r.enabled and r.access_key_id != besides and r.policy is not None
            and Policy.parse(r.policy).is_admin]


def _keep_an_admin(conn: sa.Connection, row: Any) -> None:
    """Refuse to take away the last way in: the last enabled admin key while the root key is disabled."""
    from tastemaker.store import access_keys

    if row.is_root or not row.enabled:
        return
    root = access_keys.find(conn, access_keys.ROOT_ID)
    if root is not None and not root.enabled and not _admins(conn, besides=row.access_key_id):
        raise ResourceInUseException(f"{row.name!r} is the last enabled admin key and the root key is disabled; "
                                     "`tastemaker keys enable root` or create another admin key first.")


def list_keys(engine: sa.Engine, settings: Settings, args: argparse.Namespace) -> None:
    from tastemaker.api.policy import Policy
    from tastemaker.store import access_keys

    with engine.connect() as conn:
        rows = access_keys.list_all(conn)
    root = next((r for r in rows if r.is_root), None)
    root_id = settings.access_key_id or _root_id_from_file(settings)
    print(f"{'ACCESS KEY ID':22} {'NAME':20} {'STATUS':9} POLICY")
    print(f"{root_id or '(not created yet)':22} {'root':20} "
          f"{'enabled' if root is None or root.enabled else 'disabled':9} everything")
    now = time.time()
    for row in rows:
        if row.is_root:
            continue
        policy = Policy.parse(row.policy or {})
        summary = "admin: everything" if policy.is_admin else policy.summary()
        line = f"{row.access_key_id:22} {row.name:20} {'enabled' if row.enabled else 'disabled':9} {summary}"
        if row.previous_secret_ciphertext and (row.previous_expires_at or 0) > now:
            line += f" (previous secret accepted until {_when(row.previous_expires_at or 0)})"
        print(line)


def _root_id_from_file(settings: Settings) -> str | None:
    from tastemaker.api.keys import KEY_FILE

    path = settings.data_dir / KEY_FILE
    if not path.exists():
        return None
    return str(orjson.loads(path.read_bytes())["keys"][0]["access_key_id"])


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
