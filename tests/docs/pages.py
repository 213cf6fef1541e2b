"""The code blocks of README.md and the documentation pages, as the tests read them.

A block is a fenced block (```lang ... ```). The line right above its fence may hold a marker,
an HTML comment that neither GitHub nor the site shows:

- ``<!-- test: continues -->``: a Python block that runs after the page's previous Python block,
  in its namespace (as a reader pasting both into one session would); any other Python block
  runs alone, in a fresh interpreter namespace, as pasted;
- ``<!-- test: output -->``: a text block that is exactly what the page's previous Python block
  printed;
- ``<!-- test: skip, REASON -->``: a Python block that is not run, for the stated reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
# Every page a user reads: the README and the site's pages (changelog.md includes CHANGELOG.md).
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
MARKERS = ("continues", "output", "skip")
_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(r"^<!-- test: (\w+)(.*?)-->$")


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    line: int  # of the opening fence, 1-based
    lang: str  # "" for a plain block
    text: str
    marker: str  # "", or one of MARKERS
    reason: str  # a skip's reason

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page``, in order."""
    lines = page.read_text().splitlines()
    found, i = [], 0
    name = page.relative_to(ROOT).as_posix()
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        above = _MARKER.match(lines[i - 1].strip()) if i else None
        marker, reason = (above.group(1), above.group(2).strip(" ,—-")) if above else ("", "")
        text = "\n".join(lines[i + 1 : end]) + "\n"
        found.append(Block(name, i + 1, fence.group(1), text, marker, reason))
        i = end + 1
    return found


def all_blocks() -> list[Block]:
    return [b for page in PAGES for b in blocks(page)]


def train_commands(block: Block) -> list[str]:
    """The ``python train.py ...`` commands of a shell block, comments cut, ``&&`` chains split."""
    commands = []
    for line in block.text.splitlines():
        for part in line.split(" #")[0].split("&&"):
            part = part.strip()
            if part.startswith("python train.py"):
                commands.append(part)
    return commands
