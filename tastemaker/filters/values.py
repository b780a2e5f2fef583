"""Parse request filterValues (`{"GENRES": "\\"comedy\\",\\"drama\\""}`) into lists of strings."""

from __future__ import annotations

import re
from collections.abc import Mapping

from tastemaker.errors import InvalidInputException

MAX_FILTER_VALUES = 25
MAX_KEY_LENGTH = 50
MAX_VALUE_LENGTH = 1000
_KEY = re.compile(r"[A-Za-z0-9_]+")
_BARE_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?", re.ASCII)


def parse_filter_values(raw: Mapping[str, str] | None) -> dict[str, list[str]]:
    """Split each value into its items.

    A value is one or more comma-separated items, each a double-quoted string (`\\"` and `\\\\`
    escape a quote and a backslash) or an unquoted number (`10`, `-2.5`). Whitespace around items
    is ignored.
    """
    if not raw:
        return {}
    if len(raw) > MAX_FILTER_VALUES:
        raise InvalidInputException(f"filterValues can have at most {MAX_FILTER_VALUES} entries; got {len(raw)}")
    out: dict[str, list[str]] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key) or len(key) > MAX_KEY_LENGTH:
            raise InvalidInputException(
                f"Invalid filterValues key {key!r}: use the parameter name without '$' "
                f"(letters, digits and _, at most {MAX_KEY_LENGTH} characters)"
            )
        if not isinstance(value, str):
            raise InvalidInputException(f"Invalid filterValues[{key!r}]: expected a string")
        if len(value) > MAX_VALUE_LENGTH:
            raise InvalidInputException(
                f"Invalid filterValues[{key!r}]: at most {MAX_VALUE_LENGTH} characters; got {len(value)}"
            )
        out[key] = _split_items(key, value)
    return out


def _split_items(key: str, text: str) -> list[str]:
    items: list[str] = []
    i, n = 0, len(text)

    def fail(pos: int, expected: str) -> InvalidInputException:
        found = repr(text[pos]) if pos < n else "end of value"
        return InvalidInputException(
            f"Invalid filterValues[{key!r}] at position {pos + 1}: expected {expected}, found {found}. "
            'Pass double-quoted, comma-separated items, e.g. "\\"comedy\\",\\"drama\\"", or a number'
        )

    while True:
        while i < n and text[i].isspace():
            i += 1
        if i < n and text[i] == '"':
            i = _read_quoted(text, i, items, fail)
        else:
            m = _BARE_NUMBER.match(text, i)
            if not m:
                raise fail(i, "a double-quoted value or a number")
            items.append(m.group())
            i = m.end()
        while i < n and text[i].isspace():
            i += 1
        if i == n:
            return items
        if text[i] != ",":
            raise fail(i, "',' or end of value")
        i += 1


def _read_quoted(text: str, start: int, items: list[str], fail) -> int:
    out: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in '"\\':
            out.append(text[i + 1])
            i += 2
        elif ch == '"':
            items.append("".join(out))
            return i + 1
        else:
            out.append(ch)
            i += 1
    raise fail(n, "a closing '\"'")
