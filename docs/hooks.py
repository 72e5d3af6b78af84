"""MkDocs hooks: the site's home page is README.md, and the changelog is CHANGELOG.md.

Both stay where GitHub and users read them (the repository root); their links are written for
that place, so links into docs/ are made relative to the site and links to other files of the
repository become plain text naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"index.md": "README.md", "changelog.md": "CHANGELOG.md"}
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def on_page_markdown(markdown: str, page, config, files) -> str:
    source = SOURCES.get(page.file.src_uri)
    if source is None:
        return markdown
    return LINK.sub(_relink, (ROOT / source).read_text(encoding="utf-8"))


def _relink(match: re.Match) -> str:
    bang, text, target = match.groups()
    if re.match(r"^[a-z]+:|^#", target):
        return match.group(0)
    if target.startswith("docs/"):
        return f"{bang}[{text}]({target.removeprefix('docs/')})"
    if target == "CHANGELOG.md":
        return f"[{text}](changelog.md)"
    return text if text == target else f"{text} (`{target}` in the repository)"
