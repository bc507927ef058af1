"""The gene-set upload reader of the Model tab, on its own (no widgets)."""
import pytest

from app.builders.gene_sets import MAX_UPLOAD_BYTES, built_in_sets, read_upload
from app.builders.registry import BUILDERS, builder_class
from engine.data.errors import InputError
from engine.families import family_class, family_names


def test_a_plain_list_is_named_after_the_users_file():
    assert read_upload("my markers.txt", b"CD3E\nCD4\n") == {"my markers": ["CD3E", "CD4"]}


@pytest.mark.parametrize(("filename", "data", "words"), [
    ("big.gmt", b"x" * (MAX_UPLOAD_BYTES + 1), "too large"),
    ("noextension", b"CD3E\n", "no extension"),
    ("sets.gmt", b"\xff\xfe\x00", "not a text file"),
])
def test_an_unusable_upload_is_explained_by_its_own_name(filename, data, words):
    with pytest.raises(InputError, match=words) as raised:
        read_upload(filename, data)
    assert "/tmp" not in str(raised.value)


def test_built_in_sets_and_a_builder_for_every_registered_family():
    assert "CD4 T cells" in built_in_sets()
    shipped = {name for name in family_names() if family_class(name).__module__.startswith("engine.")}
    assert shipped and shipped <= set(BUILDERS)  # families that tests register (a toy) need none
    with pytest.raises(KeyError, match="no builder"):
        builder_class("no such family")
