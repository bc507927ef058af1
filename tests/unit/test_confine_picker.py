"""The server picker and DataLoader.load_path: nothing outside the data root is listed or loaded.

Panel's FileSelector listed a sibling folder named like the root and any folder behind a link;
the picker now lists, opens and loads by real paths only.
"""
import anndata as ad
import numpy as np
import pytest

from app.components.data_loader import DataLoader
from app.components.server_picker import FOLDER_MARK, ServerPicker, listing
from app.demo import DEMO_TITLE
from app.settings import Settings
from app.state import StudioState
from test_confine_read import write_tenx


@pytest.fixture
def place(tmp_path):
    """data/ (the root) beside data_secret/ and outside/, with links from the root out and within."""
    root, sibling, outside = tmp_path / "data", tmp_path / "data_secret", tmp_path / "outside"
    for folder in (root, sibling, outside, root / "sub"):
        folder.mkdir()
    for path in (root / "sub" / "cells.h5ad", sibling / "secret.h5ad", outside / "secret.h5ad"):
        ad.AnnData(np.ones((6, 3), dtype=np.float32)).write_h5ad(path)
    (root / "etc").symlink_to(outside)
    (root / "secret_link.h5ad").symlink_to(outside / "secret.h5ad")
    (root / "shortcut").symlink_to(root / "sub")  # a link that stays inside the root
    (root / ".hidden").mkdir()
    return root, sibling, outside


@pytest.fixture
def loader(place):
    loader = DataLoader(StudioState(), Settings(data_root=place[0]))
    loader.load_demo()
    return loader


def test_listing_shows_only_what_is_really_inside(place):
    root, _, _ = place
    assert listing(root, root) == (["shortcut", "sub"], [])
    assert listing(root / "sub", root) == ([], ["cells.h5ad"])


def test_the_picker_cannot_open_a_sibling_or_a_linked_folder_out(place):
    root, _, _ = place
    picker = ServerPicker(root)
    assert list(picker._list.options) == ["shortcut" + FOLDER_MARK, "sub" + FOLDER_MARK]
    for name in ("etc", "../data_secret", str(place[1]), "..", "/etc"):
        assert not picker.open(name) and picker.folder == root.resolve()
    picker.up()
    assert picker.folder == root.resolve() and picker._up.disabled
    assert picker.open("sub") and list(picker._list.options) == ["cells.h5ad"] and not picker._up.disabled
    picker._list.value = ["cells.h5ad"]
    assert picker.selected == ["sub/cells.h5ad"]
    picker.up()
    assert picker.folder == root.resolve()


@pytest.mark.parametrize("path", ["../data_secret/secret.h5ad", "etc/secret.h5ad", "secret_link.h5ad", "etc"])
def test_loading_anything_that_leads_out_is_refused(loader, place, path):
    demo = loader.state.adata
    assert not loader.load_path(path)
    assert loader.state.adata is demo and "outside the data folder" in loader.message
    assert loader.message.endswith("Ask the administrator to set HANAMI_DATA_ROOT to serve another folder.")


def test_loading_inside_through_an_inner_link_works(loader):
    assert loader.load_path("shortcut/cells.h5ad") and loader.state.dataset == "sub/cells.h5ad"


def test_a_tenx_folder_with_a_member_linked_out_is_refused_with_a_clear_message(loader, place):
    root, _, outside = place
    tenx = write_tenx(root / "sample")
    (outside / "passwd").write_text("root:x:0:0\ndaemon:x:1:1\nbin:x:2:2\n")
    (tenx / "barcodes.tsv").unlink()
    (tenx / "barcodes.tsv").symlink_to(outside / "passwd")
    demo = loader.state.adata
    assert not loader.load_path("sample")
    assert loader.state.adata is demo and loader.state.dataset == DEMO_TITLE
    assert "barcodes.tsv: outside the data folder" in loader.message and "passwd" not in loader.message
    assert loader.message.endswith(f"{DEMO_TITLE} is still loaded, unchanged.")


def test_the_pick_button_loads_the_selected_entry(loader):
    loader._picker.open("sub")
    loader._picker._list.value = ["cells.h5ad"]
    loader._on_pick()
    assert not loader.error and loader.state.dataset == "sub/cells.h5ad"
