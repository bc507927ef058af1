"""Text from users (file, column, gene, label and set names, and messages quoting them) shown as text.

Markdown and Alert panes render HTML, and HTML panes are HTML: a file named
``<img src=x onerror=...>.h5ad`` would run its script in the page. Every pane that shows such a
string passes it through one of these two helpers, chosen by what the pane renders.
"""
from __future__ import annotations

import html
import re

# Every ASCII punctuation mark Markdown (and Panel's plugins: math, emoji, linkify, tables) could
# read as syntax, except the five html.escape turns into entities; a backslash keeps each literal.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$:^=%@/?;,])")


def html_text(text: object) -> str:
    """`text` for an HTML pane: every character shows as itself, none is markup."""
    return html.escape(str(text), quote=True)


def markdown_text(text: object) -> str:
    """`text` for a Markdown or Alert pane: neither HTML nor Markdown syntax in it takes effect."""
    return html_text(_MARKDOWN_SPECIAL.sub(r"\\\1", str(text)))
