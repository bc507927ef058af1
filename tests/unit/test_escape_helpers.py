"""app/escape.py: what a user named a thing is what the page shows, through Panel's own renderers."""
import html
import re

import panel as pn
import pytest

from app.escape import html_text, markdown_text

NAMES = [
    "<img src=x onerror=alert(1)>.h5ad",
    "# not a heading",
    "**not bold** _nor italic_ `nor code`",
    "[a link](javascript:alert(1)) https://example.org evil.com",
    "$x^2$ :smile: a|b|c ~~struck~~",
    "1. not a list\n- nor this\n===",
    'quotes " and \' and & and \\ backslash',
]


def shown(pane) -> str:
    """The text a Markdown or Alert pane shows for an escaped object: backslashes and entities undone."""
    return html.unescape(re.sub(r"\\(.)", r"\1", pane.object))


def rendered_text(pane) -> str:
    """The text the browser shows for a pane: the HTML Panel sends, tags removed, entities undone."""
    markup = html.unescape(pane.get_root().text)
    assert not re.search(r"<(?!/?(p|br)\b)", markup), markup  # no element but paragraphs and breaks
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


@pytest.mark.parametrize("name", NAMES)
def test_markdown_panes_show_the_name_itself(name):
    pane = pn.pane.Markdown(markdown_text(name))
    assert rendered_text(pane).split() == name.split()
    assert shown(pane) == name


@pytest.mark.parametrize("name", NAMES)
def test_html_panes_show_the_name_itself(name):
    assert rendered_text(pn.pane.HTML(html_text(name))).split() == name.split()
