"""Small pieces the family builders share: css names, alerts, header rows, row widgets."""
from __future__ import annotations

import re

import panel as pn

from app.escape import html_text, markdown_text

# Row widgets sit under a header row, so their own labels are hidden (they keep their names).
NO_LABEL = [":host label, :host .bk-label { display: none; }"]
ALERT = [":host(.alert) { padding: 4px 10px; margin: 0 0 4px 0; font-size: 0.9em; }",
         ":host(.alert) p { margin: 0; }"]
ROW_MARGIN = (2, 5)


def css_name(label: str) -> str:
    """A css class fragment: characters other than letters, digits, `_` and `-` become `-`."""
    return re.sub(r"[^0-9A-Za-z_-]", "-", label)


def alert(css: str) -> pn.pane.Alert:
    return pn.pane.Alert("", alert_type="danger", visible=False, css_classes=[css], stylesheets=ALERT,
                         sizing_mode="stretch_width")


def next_step() -> pn.pane.Alert:
    """The 'what to do now' line shown after an action (hidden until there is one)."""
    made = alert("hanami-next-step")
    made.alert_type = "info"
    return made


def help_line(text: str, css: str = "hanami-help") -> pn.pane.HTML:
    """A small muted line under a title or control (the text is the studio's own, escaped anyway)."""
    return pn.pane.HTML(f"<small>{html_text(text)}</small>", margin=(0, 5), styles={"color": "#555"},
                        css_classes=[css], sizing_mode="stretch_width")


def say(pane: pn.pane.Alert, level: str, *lines: str) -> None:
    """Show plain-text lines (escaped, one per line) in an alert."""
    text = "<br>".join(markdown_text(part) for line in lines for part in line.splitlines())
    pane.alert_type, pane.object, pane.visible = level, text, True


def header(*cells: tuple) -> pn.Row:
    """Column titles: (text, width) or (text, width, help); the help shows when hovering the title
    (marked with a dotted underline) and is read out by screen readers."""
    def cell(text, width, help_text=""):
        if not help_text:
            return pn.pane.HTML(f"<b>{html_text(text)}</b>", width=width, margin=ROW_MARGIN)
        return pn.pane.HTML(f'<b title="{html_text(help_text)}" style="text-decoration: underline dotted; '
                            f'cursor: help">{html_text(text)}</b>', width=width, margin=ROW_MARGIN)

    return pn.Row(*(cell(*c) for c in cells))


def row_widgets(name: str, css: str, widths: dict[str, int], on_change):
    """A maker of one row's widgets: labelled '<name>: <field>' for screen readers (the label is
    hidden, a header row names the columns), css class '<css>-<field>' for tests."""

    def widget(cls, field, **kw):
        made = cls(label=f"{name}: {field}", width=widths[field], margin=ROW_MARGIN, css_classes=[f"{css}-{field}"],
                   stylesheets=NO_LABEL, **kw)
        made.param.watch(on_change, "value")
        return made

    return widget


def card(title: str, help_text: str, *body) -> pn.Card:
    """A builder's collapsible settings card: its title, a help line, then its widgets."""
    return pn.Card(help_line(help_text), *body, title=title, collapsible=True, sizing_mode="stretch_width",
                   margin=(5, 0))
