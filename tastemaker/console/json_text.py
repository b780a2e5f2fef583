"""Where a JSON pointer (RFC 6901, e.g. `/fields/2/type`) points in a JSON text: the schema editor's error marks.

Schema validation (tastemaker.data.schemas.SchemaProblem) names the offending value by its JSON pointer, or a JSON
syntax error by its character offset; the editor shows the message with a line and column and marks the text.
`locate` walks the text the way a JSON parser does, member by member (each value it does not descend into is
skipped with the standard library's decoder, `raw_decode`), to the value the pointer names; when that value is
missing (a required member that is not there), it stops at the deepest container that exists. A value on one line
is marked whole; a container over several lines is marked by its member name (or its opening bracket).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class Mark:
    """A span of the text to highlight, and the line and column (1-based) where it starts."""

    start: int
    end: int
    line: int
    column: int

    def split(self, text: str) -> tuple[str, str, str]:
        """The text before the span, the span (a space when it is empty) and the text after it."""
        return text[:self.start], text[self.start:self.end] or " ", text[self.end:]


def mark_at(text: str, offset: int, length: int = 1) -> Mark:
    """A mark of `length` characters at `offset` (clamped to the text)."""
    start = max(0, min(offset, len(text) - 1)) if text else 0
    end = min(len(text), start + length)
    line = text.count("\n", 0, start) + 1
    return Mark(start, end, line, start - (text.rfind("\n", 0, start) + 1) + 1)


def locate(text: str, pointer: str) -> Mark | None:
    """The mark for the value `pointer` names in the JSON `text` (or its deepest existing container); None when
    the text is not JSON as far as the walk goes."""
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]] if pointer else []
    try:
        key_at, start = None, _space(text, 0)
        for token in tokens:
            found = _member(text, start, token)
            if found is None:
                break
            key_at, start = found
        end = _DECODER.raw_decode(text, start)[1]
    except (ValueError, IndexError):
        return None
    if "\n" in text[start:end] and text[start] in "[{":  # a container over several lines: its name or bracket
        start, end = (key_at, _DECODER.raw_decode(text, key_at)[1]) if key_at is not None else (start, start + 1)
    return mark_at(text, start, end - start)


def _space(text: str, at: int) -> int:
    found = _SPACE.match(text, at)
    return found.end() if found else at


def _member(text: str, at: int, token: str) -> tuple[int | None, int] | None:
    """(where the member's name starts, where its value starts) of member `token` of the object or array that
    starts at `at`; None when there is no such member (the last of repeated names, as json.loads keeps)."""
    opening = text[at]
    if opening not in "[{":
        return None
    found: tuple[int | None, int] | None = None
    at = _space(text, at + 1)
    index = 0
    while text[at] not in "]}":
        key_at: int | None = None
        if opening == "{":
            key_at = at
            key, at = _DECODER.raw_decode(text, at)
            at = _space(text, at)
            if text[at] != ":":
                raise ValueError("expected ':'")
            at = _space(text, at + 1)
            matches = key == token
        else:
            matches = str(index) == token
        if matches:
            found = (key_at, at)
        at = _space(text, _DECODER.raw_decode(text, at)[1])
        index += 1
        if text[at] == ",":
            at = _space(text, at + 1)
    return found
