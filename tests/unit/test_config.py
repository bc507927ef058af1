"""The knowledge-guided configuration: one validated object, read and written as YAML or JSON."""
import pytest
import yaml

from engine import InputError
from engine.config import ExtractorConfig, load_config, save_config

FULL = {
    "main_latent_dim": 12,
    "main_regularizers": [{"regularizer": "sw2_gmm", "labels": "cell_type", "weight": 0.5}],
    "phenotypes": {
        "cell_type": {"column": "bulk_labels", "latent_dim": 6},
        "batch": {"role": "remove", "alpha": 2.0},
        "age": {"kind": "continuous", "attach": "cell_type", "losses": [{"loss": "l1", "gradient": "neutralize"}]},
    },
    "signatures": {"cycle": {"genes": ["MKI67", "TOP2A"], "exclude_from_input": True, "target": "score"}},
    "training": {
        "max_epochs": 7,
        "story": {"phases": [{"epochs": 2, "tasks": [{"backward_pheno_loss": False}]}, {"epochs": 5}]},
    },
}


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip(tmp_path, suffix):
    config = ExtractorConfig.model_validate(FULL)
    save_config(config, tmp_path / f"c{suffix}")
    again = load_config(ExtractorConfig, tmp_path / f"c{suffix}")
    assert again == config
    assert again.phenotypes["batch"].attach == "main"
    assert again.phenotypes["batch"].losses[0].gradient == "reverse"
    assert again.phenotypes["batch"].losses[0].alpha.value(0) == 2.0


@pytest.mark.parametrize(
    "change, field",
    [
        ({"phenotypes": {"x": {"enabled": "yes"}}}, "phenotypes.x.enabled"),  # real booleans only
        ({"main_latent_dim": 0}, "main_latent_dim"),
        ({"phenotypes": {"x": {"attach": "nope"}}}, "phenotypes.x.attach"),
        ({"phenotypes": {"x": {"losses": [{"loss": "mse"}]}}}, "phenotypes.x.losses"),
        ({"main_regularizers": [{"regularizer": "sw2_gmm"}]}, "sw2_gmm"),
        ({"signatures": {"main": {"genes": ["A"]}}}, "reserved"),
        ({"dropuot": 0.1}, "dropuot"),
        ({"phenotypes": {"x": {"attach": "main", "regularizers": [{"regularizer": "l2"}]}}}, "has none of its own"),
    ],
)
def test_errors_name_the_field(tmp_path, change, field):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(change))
    with pytest.raises(InputError, match=field.replace(".", r"\.")) as error:
        load_config(ExtractorConfig, path)
    assert "bad.yaml" in str(error.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_config(ExtractorConfig, tmp_path / "none.yaml")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_config(ExtractorConfig, tmp_path / "broken.json")
