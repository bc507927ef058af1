"""The explorer's own category legend: colour, cell count and a show/hide tick per category.

Datashaded images carry no legend of their own, and a Tabulator stays light with hundreds of
categories where a widget per row would not.
"""
import pandas as pd
import panel as pn
import param

PAGE = 15


class CategoryLegend(pn.viewable.Viewer):
    """Rows of (category, colour, cells); ``hidden`` lists the categories the user hid."""

    entries = param.DataFrame(default=None, allow_None=True, doc="category, color, cells per category.")
    hidden = param.List(default=[], item_type=str, doc="Categories left out of the plot.")
    visible = param.Boolean(default=True, doc="False while the cells are coloured by a number.")

    def __init__(self, **params):
        super().__init__(**params)
        self._table = pn.widgets.Tabulator(
            pd.DataFrame(columns=["show", "color", "category", "cells"]),
            show_index=False,
            selectable=False,
            layout="fit_columns",
            # long names ("CD4+/CD45RA+/CD25- Naive T") wrap instead of being cut at the column's edge
            formatters={"show": {"type": "tickCross"}, "color": {"type": "color"}, "category": {"type": "textarea"}},
            editors={"show": {"type": "tickCross"}, "color": None, "category": None, "cells": None},
            titles={"show": "", "color": ""},
            widths={"show": 34, "color": 28, "cells": 70},
            page_size=PAGE,
            sizing_mode="stretch_width",
        )
        self._table.on_edit(self._on_edit)
        show_all = pn.widgets.Button(label="Show all", color="light", width=90)
        hide_all = pn.widgets.Button(label="Hide all", color="light", width=90)
        show_all.on_click(lambda _: self.param.update(hidden=[]))
        hide_all.on_click(lambda _: self.param.update(hidden=self._categories()))
        self._layout = pn.Column(pn.Row(show_all, hide_all), self._table, sizing_mode="stretch_width")
        self._refresh()

    def _categories(self) -> list[str]:
        return [] if self.entries is None else self.entries["category"].tolist()

    @param.depends("entries", "hidden", watch=True)
    def _refresh(self):
        if self.entries is None:
            return
        shown = ~self.entries["category"].isin(self.hidden)
        self._table.pagination = "local" if len(self.entries) > PAGE else None
        self._table.value = pd.concat([shown.rename("show"), self.entries[["color", "category", "cells"]]], axis=1)

    @param.depends("visible", watch=True)
    def _show(self):
        self._layout.visible = self.visible

    def _on_edit(self, event):
        category = self._table.value["category"].iloc[event.row]
        others = [c for c in self.hidden if c != category]
        self.hidden = others if event.value else others + [category]

    def __panel__(self):
        return self._layout
