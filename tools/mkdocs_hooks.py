"""MkDocs hook: include a module's docstring in a page, so a rule the code states is written once.

A line ``<!-- docstring: src/recsys/metrics.py -->`` in a page becomes that module's docstring, read
with ``ast`` (nothing is imported). The docstrings are written for ``help()`` in a reStructuredText-like
style, so three constructs are turned into Markdown: simple tables (``====  ====`` borders) become
Markdown tables, doctest blocks (``>>>``) and ``::`` literal blocks become code blocks, and the
three-space indentation of nested lists becomes four spaces (what Python-Markdown needs). A missing
module fails the build with the page's name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

MARKER = re.compile(r"^<!-- docstring: (?P<path>\S+\.py) -->$", re.MULTILINE)
BORDER = re.compile(r"^=+( +=+)+$")
ROOT = Path(__file__).resolve().parent.parent


def module_docstring(path: str) -> str:
    source = ROOT / path
    if not source.is_file():
        raise FileNotFoundError(f"docstring include: no module {path}")
    doc = ast.get_docstring(ast.parse(source.read_text(encoding="utf-8")))
    if not doc:
        raise ValueError(f"docstring include: {path} has no module docstring")
    return doc


def _table(lines: list[str]) -> list[str]:
    """An RST simple table (border, rows, border) as a Markdown table; the first column is the key."""
    starts = [m.start() for m in re.finditer(r"=+", lines[0])]
    rows: list[list[str]] = []
    for line in lines[1:-1]:
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]
        if cells[0] or not rows:
            rows.append(cells)
        else:  # a continuation line: it extends the previous row's cells
            rows[-1] = [f"{old} {new}".strip() for old, new in zip(rows[-1], cells)]
    out = ["| " + " | ".join([""] * len(starts)) + " |", "|" + "---|" * len(starts)]
    for row in rows:
        out.append("| " + " | ".join(_escape_pipes(c) for c in row) + " |")
    return out


def _escape_pipes(cell: str) -> str:
    """Escape ``|`` outside code spans (inside them Python-Markdown's tables keep it literal)."""
    parts = re.split(r"(`+[^`]*`+)", cell)
    return "".join(p if p.startswith("`") else p.replace("|", "\\|") for p in parts)


def to_markdown(doc: str) -> str:
    lines = doc.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if BORDER.match(line):
            end = next(j for j in range(i + 1, len(lines)) if BORDER.match(lines[j]))
            out += _table(lines[i : end + 1])
            i = end + 1
            continue
        if line.startswith(">>>"):
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i])
                i += 1
            out += ["```pycon", *block, "```"]
            continue
        if line.rstrip().endswith("::") and not line.strip().startswith(".."):
            out.append(line.rstrip()[:-1])
            i += 1
            while i < len(lines) and not lines[i].strip():
                i += 1
            block = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            indent = min(len(b) - len(b.lstrip()) for b in block if b.strip())
            out += ["", "```text", *[b[indent:] for b in block], "```", ""]
            continue
        if re.match(r"^ {3}\S", line):
            line = " " + line
        out.append(line)
        i += 1
    return "\n".join(out)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 (MkDocs' signature)
    def include(match: re.Match) -> str:
        path = match.group("path")
        try:
            body = to_markdown(module_docstring(path))
        except (FileNotFoundError, ValueError) as error:
            raise ValueError(f"{page.file.src_path}: {error}") from error
        return f'!!! quote "From the docstring of `{path}`"\n\n' + "\n".join(
            ("    " + l) if l.strip() else "" for l in body.splitlines()
        )

    return MARKER.sub(include, markdown)
