"""A new page makes only what its first tab shows; the rest waits until its tab is opened."""
import panel as pn

from app.studio import MODEL_TAB, TRAIN_TAB, Studio


def test_tabs_are_rendered_when_first_opened():
    assert Studio()._tabs.dynamic


def test_the_model_builder_is_made_when_the_model_tab_opens():
    studio = Studio()
    assert studio.builder._builders == {} and studio.builder._body.objects == []
    studio._tabs.active = MODEL_TAB
    assert list(studio.builder._builders) == ["guided"] and len(studio.builder._body.objects) == 1


def test_the_train_tab_shows_the_training_options_of_the_chosen_family():
    studio = Studio()
    studio._tabs.active = TRAIN_TAB
    assert studio.builder.training.family() is studio.builder.builder
    assert "expression first, then add the rest" in studio.builder.training._story_choice.options


def test_the_page_still_renders():
    assert pn.panel(Studio()).get_root() is not None
