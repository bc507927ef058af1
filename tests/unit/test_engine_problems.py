"""Configuration problems come back as data, every one with its location; choice lists come from
the engine's own types; a config file picks its family."""
import pytest
import yaml

from engine.config import ExtractorConfig, Problem, TrainingConfig, load_family_config, problems
from engine.config.choices import LOSSES, LOSSES_FOR, REGULARIZERS, ROLES
from engine.config.files import validate_config
from engine.config.flow import FlowConfig
from engine.data.errors import InputError


def test_every_problem_is_listed_with_its_location():
    data = {
        "main_latent_dim": 0,
        "dropout": 2,
        "phenotypes": {"x": {"attach": "nope"}, "y": {"attach": "zz"}},
        "training": {"story": {"phases": [{"tasks": [{"bogus": 1}]}]}},
    }
    found = problems(ExtractorConfig, data)
    assert [p.location for p in found] == [
        ("main_latent_dim",),
        ("dropout",),
        ("training", "story", "phases", "0", "tasks", "0", "bogus"),
        ("phenotypes", "x", "attach"),
        ("phenotypes", "y", "attach"),
    ]
    assert found[3] == Problem(("phenotypes", "x", "attach"), "there is no head named nope; use main, all or one of: x, y")
    assert found[2].message.startswith("unknown task keyword 'bogus'; a task takes backward_main_latent_regularization")
    with pytest.raises(InputError) as caught:
        validate_config(ExtractorConfig, data)
    assert caught.value.problems == found
    assert "phenotypes.y.attach: there is no head named zz" in str(caught.value)
    assert problems(ExtractorConfig, {}) == []


def test_choice_lists_come_from_the_configuration_types():
    assert ROLES == ("learn", "remove", "neutralize")
    assert set(LOSSES) == {"mse", "l1", "cosine", "nll", "bce", "nb"}
    assert "sw2_gmm" in REGULARIZERS
    assert LOSSES_FOR["categorical"] == ("nll", "bce")


def test_a_config_file_reads_as_its_family(tmp_path):
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump({"main_latent_dim": 4}))
    assert isinstance(load_family_config(tmp_path / "plain.yaml"), ExtractorConfig)  # no family: guided
    table = {"populations": ["T", "B"], "markers": ["CD3"], "values": [[1.0], [-1.0]]}
    (tmp_path / "flow.yaml").write_text(yaml.safe_dump({"family": "flow", **table}))
    assert isinstance(load_family_config(tmp_path / "flow.yaml"), FlowConfig)
    (tmp_path / "other.yaml").write_text(yaml.safe_dump({"family": "nosuch"}))
    with pytest.raises(InputError, match=r"other\.yaml: unknown model family nosuch; known: .*flow.*guided"):
        load_family_config(tmp_path / "other.yaml")


def test_one_default_per_training_setting():
    assert TrainingConfig().max_epochs == 30
    from engine.training import Trainer
    from tests.toy_controller import ToyController, toy_cells

    cells = toy_cells()
    controller = ToyController(cells.n_genes, lr=0.05)
    trainer = Trainer(controller, cells, TrainingConfig(lr=0.01, weight_decay=0.1, clip_grad_norm=1.0),
                      lr_step_epochs=3, progress=False)
    assert trainer.training.max_epochs == 30 and trainer.story.total_epochs == 30
    assert trainer.training.lr_step_epochs == 3
    group = controller.optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"], controller.clip_grad_norm) == (0.01, 0.1, 1.0)
    assert Trainer(controller, cells, progress=False).training.lr == 0.01  # the controller's settings now
    with pytest.raises(TypeError, match="unknown settings"):
        Trainer(controller, cells, max_epoch=3)
