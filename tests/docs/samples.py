"""Find the code samples of the user-facing pages: every fenced `python` or `sh` block, in page order.

A block is run as written, with one substitution: `http://127.0.0.1:8080` becomes the test server's URL. An
HTML comment on the line just before a fence changes what happens to it:

    <!-- sample: not runnable: REASON -->   the block is listed but not run (keep these few, with a reason)
    <!-- sample: save as NAME -->           the block (any language) is written to NAME for later blocks
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", REPO / "examples" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNABLE = {"python": "python", "py": "python", "sh": "sh", "bash": "sh", "shell": "sh"}
FENCE = re.compile(r"^(\s*)```([\w-]*)\s*$")
MARK = re.compile(r"^\s*<!--\s*sample:\s*(not runnable|save as)\s*:?\s*(.*?)\s*-->\s*$")
DEFAULT_ENDPOINT = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class Sample:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str  # "python", "sh", or the fence's own word for saved files
    code: str
    not_runnable: str | None = None  # the reason
    save_as: str | None = None

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def samples(pages: list[Path] = PAGES) -> list[Sample]:
    found = []
    for page in pages:
        lines = page.read_text().splitlines()
        k = 0
        while k < len(lines):
            opening = FENCE.match(lines[k])
            if not opening:
                k += 1
                continue
            end = next(j for j in range(k + 1, len(lines)) if lines[j].strip().startswith("```"))
            mark = MARK.match(lines[k - 1]) if k else None
            indent, word = len(opening.group(1)), opening.group(2)
            kind, value = (mark.group(1), mark.group(2)) if mark else (None, None)
            if word in RUNNABLE or kind == "save as":
                found.append(Sample(page, k + 1, RUNNABLE.get(word, word), "\n".join(x[indent:] for x in lines[k + 1:end]) + "\n",
                                    not_runnable=value if kind == "not runnable" else None,
                                    save_as=value if kind == "save as" else None))
            k = end + 1
    return found
