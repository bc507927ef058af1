"""A file browser for the server's data folder that shows nothing outside it.

Panel's FileSelector only checks that a typed path *starts with* the root's name, so it showed a
sibling folder named like the root (/data_secret beside /data) and any folder behind a link. Here
the listing is computed by this module and every entry, and every folder opened, must have its
real path (links followed) inside the root's real path: there is no path to type.
"""
from __future__ import annotations

import os
from pathlib import Path

import panel as pn

from app.escape import markdown_text
from engine.data.read import confined
from engine.data.errors import InputError

FOLDER_MARK = "/"  # after a folder's name, as in a path; an emoji needs a font the server cannot promise


def listing(folder: Path, root: Path) -> tuple[list[str], list[str]]:
    """Names of the sub-folders and files in `folder` whose real paths lie inside `root`.

    Hidden entries (a leading dot) are left out; a folder that cannot be read lists nothing.
    """
    folders, files = [], []
    try:
        names = sorted(os.listdir(folder), key=str.lower)
    except OSError:
        return [], []
    for name in names:
        path = folder / name
        if name.startswith(".") or not _inside(path, root):
            continue
        if path.is_dir():
            folders.append(name)
        elif path.is_file():
            files.append(name)
    return folders, files


def _inside(path: Path, root: Path) -> bool:
    try:
        confined(path, root)
    except InputError:
        return False
    return True


class ServerPicker(pn.viewable.Viewer):
    """Browse folders under `root` and select one file or 10x folder; `selected` is its path under root."""

    def __init__(self, root: Path, **params):
        super().__init__(**params)
        self.root = Path(os.path.realpath(root))
        self.folder = self.root
        self._where = pn.pane.Markdown(margin=(0, 10))
        self._up = pn.widgets.Button(label="⬆ Up one folder", disabled=True, width=150)
        self._up.on_click(lambda _: self.up())
        self._open = pn.widgets.Button(label="Open folder", width=120)
        self._open.on_click(lambda _: self.open_selected())
        self._list = pn.widgets.MultiSelect(
            size=12, sizing_mode="stretch_width", css_classes=["hanami-server-files"],
            description="Select one file, or a 10x folder (its matrix, barcodes and features files), then press "
                        "Load selected file; names ending in / are folders: Open folder shows what is inside.",
        )
        self._list.on_double_click(lambda event: self.open(event.option))
        self._show()

    @property
    def selected(self) -> list[str]:
        """The selected entries as paths relative to the root (what DataLoader.load_path takes)."""
        base = self.folder.relative_to(self.root)
        return [str(base / name) for name in self._list.value]

    def open(self, name: str) -> bool:
        """Show the sub-folder `name` of the current folder, if it is a folder inside the root."""
        target = self.folder / name
        if not (_inside(target, self.root) and target.is_dir()):
            return False
        self.folder = Path(os.path.realpath(target))
        self._show()
        return True

    def open_selected(self) -> bool:
        return len(self._list.value) == 1 and self.open(self._list.value[0])

    def up(self) -> None:
        if self.folder != self.root:
            self.folder = self.folder.parent
            self._show()

    def refresh(self) -> None:
        """List the current folder again (files may have been added on the server)."""
        self._show()

    def _show(self) -> None:
        folders, files = listing(self.folder, self.root)
        options = {name + FOLDER_MARK: name for name in folders} | {name: name for name in files}
        self._list.param.update(options=options, value=[])
        empty = "" if options else " (no files here)"
        self._where.object = f"in {markdown_text(self.folder)}{empty}"
        self._up.disabled = self.folder == self.root

    def __panel__(self):
        return pn.Column(self._where, self._list, pn.Row(self._up, self._open), sizing_mode="stretch_width")
