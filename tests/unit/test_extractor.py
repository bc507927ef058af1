"""The knowledge-guided autoencoder: structure, branch selection, validation and gradient stops."""
import pytest
import torch

import engine
from engine.losses import get_loss
from engine.models import Extractor

N_GENES = 30


def make(**overrides):
    kwargs = dict(
        pre_encoder_dims=(24,),
        main_latent_dim=5,
        encoder_dims=(12,),
        decoder_dims=(20,),
        phenotypes={
            "celltype": {"out_dim": 4, "latent_dim": 3, "attach": None, "head_dims": (8,)},
            "age": {"out_dim": 1, "attach": "main"},
        },
        signatures={"tcell": {"out_dim": 6, "latent_dim": 2}},
        dropout=0.0,
    )
    kwargs.update(overrides)
    torch.manual_seed(0)
    return Extractor(N_GENES, **kwargs)


def batch(n=16):
    return torch.rand(n, N_GENES, generator=torch.Generator().manual_seed(1)) * 5


def has_grad(module):
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_exported_at_top_level():
    assert engine.Extractor is Extractor


def test_forward_keys_and_shapes():
    model = make(input_genes=list(range(0, N_GENES, 2)))
    out = model(batch())
    assert set(out) == {"x", "lat_pre", "lat_main", "lat_signature", "signature_out",
                        "lat_pheno", "pheno_out", "re_x", "lat_all"}
    assert out["x"].shape == (16, 15) and torch.equal(out["x"], batch()[:, ::2])
    assert out["lat_pre"].shape == (16, 24)
    assert out["lat_main"].shape == (16, 5)
    assert {k: v.shape for k, v in out["lat_pheno"].items()} == {"celltype": (16, 3)}
    shapes = {k: v.shape for k, v in out["pheno_out"].items()}
    assert shapes == {"celltype": (16, 4), "age": (16, 1)}
    assert {k: v.shape for k, v in out["lat_signature"].items()} == {"tcell": (16, 2)}
    assert out["signature_out"]["tcell"].shape == (16, 6)
    assert out["re_x"].shape == (16, 15)
    assert torch.equal(out["lat_all"], torch.cat(
        [out["lat_main"], out["lat_pheno"]["celltype"], out["lat_signature"]["tcell"]], dim=1))
    assert model.latent_names == ["main", "celltype", "tcell"]
    assert model.latent_dims == {"main": 5, "celltype": 3, "tcell": 2}
    assert model.input_genes.tolist() == list(range(0, N_GENES, 2))
    assert "input_genes" in dict(model.named_buffers())


def test_latents_are_linear():
    out = make()(batch(64) * 100)
    assert out["lat_main"].abs().max() > 1.0 and (out["lat_main"] < 0).any()


def test_head_input_and_attached_heads():
    model = make()
    out = model(batch())
    assert model.head_input("pheno", "age", out) is out["lat_main"]
    assert model.head_input("pheno", "celltype", out) is out["lat_pheno"]["celltype"]
    assert model.head_input("signature", "tcell", out) is out["lat_signature"]["tcell"]
    model.eval()
    out = model(batch())
    assert torch.allclose(model.pheno_heads["age"](model.head_input("pheno", "age", out)),
                          out["pheno_out"]["age"])


def test_attach_to_another_head_computes_its_latent():
    model = make(phenotypes={
        "celltype": {"out_dim": 4, "latent_dim": 3},
        "subtype": {"out_dim": 7, "attach": "celltype"},
    }, signatures={})
    assert model.pheno_heads["subtype"].linears[0].in_features == 3
    out = model(batch(), selected_pheno=["subtype"], forward_main_latent=False,
                forward_reconstruction=False)
    assert set(out["pheno_out"]) == {"subtype"}
    assert out["lat_main"] is None and out["lat_all"] is None and out["re_x"] is None
    assert set(out["lat_pheno"]) == {"celltype"}
    assert out["pheno_out"]["subtype"].shape == (16, 7)


def test_attach_to_all_reads_every_latent():
    model = make(signatures={
        "tcell": {"out_dim": 6, "latent_dim": 2},
        "everything": {"out_dim": 3, "attach": "all", "head_dims": (4,)},
    })
    assert model.signature_heads["everything"].linears[0].in_features == 5 + 3 + 2
    out = model(batch(), forward_pheno=False, selected_signature=["everything"],
                forward_main_latent=False, forward_reconstruction=False)
    assert out["lat_all"].shape == (16, 10)
    assert model.head_input("signature", "everything", out) is out["lat_all"]
    assert out["signature_out"]["everything"].shape == (16, 3)
    # Every latent was computed, so the decoder can run even though not every head was.
    out = model(batch(), forward_pheno=False, selected_signature=["everything"])
    assert out["re_x"].shape == (16, 30)


def test_partial_forward_skips_branches():
    model = make()
    out = model(batch(), forward_pheno=False, forward_signature=False, forward_reconstruction=False)
    assert out["pheno_out"] == {} and out["signature_out"] == {}
    assert out["lat_pheno"] == {} and out["lat_signature"] == {}
    assert out["lat_all"] is None and out["re_x"] is None and out["lat_main"].shape == (16, 5)
    out = model(batch(), selected_pheno=["age"], forward_signature=False,
                forward_reconstruction=False)
    assert set(out["pheno_out"]) == {"age"} and out["lat_pheno"] == {}
    with pytest.raises(ValueError, match="did not compute"):
        model.head_input("pheno", "celltype", out)


@pytest.mark.parametrize("kwargs", [
    dict(selected_pheno=["age"]),
    dict(forward_signature=False),
    dict(forward_main_latent=False),
])
def test_reconstruction_needs_every_latent(kwargs):
    with pytest.raises(ValueError, match="forward_reconstruction=False"):
        make()(batch(), **kwargs)


def test_unknown_selection_lists_valid_names():
    with pytest.raises(ValueError, match="valid: .*celltype"):
        make()(batch(), selected_pheno=["cell_type"], forward_reconstruction=False)
    with pytest.raises(ValueError, match="valid: .*tcell"):
        make()(batch(), selected_signature=["bcell"], forward_reconstruction=False)


@pytest.mark.parametrize("phenotypes, signatures, message", [
    ({"a": {"out_dim": 2, "attach": "nowhere"}}, {}, "'a'.*'nowhere' does not exist"),
    ({"a": {"out_dim": 2, "attach": "main"}, "b": {"out_dim": 2, "attach": "a"}}, {},
     "'b'.*'a' is a head that attaches elsewhere"),
    ({"a": {"out_dim": 2}}, {}, "'a'.*latent_dim >= 1"),
    ({"a": {"out_dim": 2, "latent_dim": 0}}, {}, "'a'.*latent_dim >= 1"),
    ({"a": {"out_dim": 2, "latent_dim": 2}}, {"a": {"out_dim": 3, "latent_dim": 2}},
     "'a'.*both a phenotype and a signature"),
    ({"main": {"out_dim": 2, "latent_dim": 2}}, {}, "'main'.*reserved"),
    ({}, {"all": {"out_dim": 2, "latent_dim": 2}}, "'all'.*reserved"),
    ({"a": {"out_dim": 2, "latent_dim": 2, "colour": 1}}, {}, "'a'.*unknown keys"),
    ({"a": {"latent_dim": 2}}, {}, "'a'.*out_dim"),
    ({"a.b": {"out_dim": 2, "latent_dim": 2}}, {}, "'a.b'.*'\\.'"),
])
def test_invalid_head_specs(phenotypes, signatures, message):
    with pytest.raises(ValueError, match=message):
        Extractor(N_GENES, phenotypes=phenotypes, signatures=signatures)


def test_invalid_model_options():
    with pytest.raises(ValueError, match="reconstruction"):
        Extractor(N_GENES, reconstruction="poisson")
    with pytest.raises(ValueError, match="input_genes"):
        Extractor(N_GENES, input_genes=[0, N_GENES])
    with pytest.raises(ValueError, match="detach_from"):
        make()(batch(), detach=True, detach_from="decoder")


def encoders(model):
    return (model.pre_encoder, model.main_encoder, model.pheno_encoders, model.signature_encoders)


def readers(model):
    return (model.pheno_heads, model.signature_heads, model.decoder)


def _backward(model, **kwargs):
    model.zero_grad(set_to_none=True)
    out = model(batch(), **kwargs)
    loss = out["re_x"].pow(2).mean() + sum(o.pow(2).mean() for o in out["pheno_out"].values())
    loss = loss + sum(o.pow(2).mean() for o in out["signature_out"].values())
    loss.backward()


def test_no_detach_trains_everything():
    model = make()
    _backward(model)
    for part in (*encoders(model), *readers(model)):
        assert has_grad(part)


def test_detach_from_pre_encoder():
    model = make()
    _backward(model, detach=True, detach_from="pre_encoder")
    assert not has_grad(model.pre_encoder)
    for part in (*encoders(model)[1:], *readers(model)):
        assert has_grad(part)


def test_detach_from_encoder():
    model = make()
    _backward(model, detach=True, detach_from="encoder")
    for part in encoders(model):
        assert not has_grad(part)
    for part in readers(model):
        assert has_grad(part)


def test_nb_reconstruction_is_a_positive_mean_with_the_library_size():
    model = make(reconstruction="nb", input_genes=list(range(20)))
    counts = torch.poisson(batch() * 2)
    out = model(counts)
    assert out["re_x"].shape == (16, 20) and (out["re_x"] > 0).all()
    assert torch.allclose(out["re_x"].sum(dim=1), counts[:, :20].sum(dim=1), rtol=1e-5)
    assert model.log_theta.shape == (20,)
    loss = get_loss("nb")(out["re_x"], out["x"], log_theta=model.log_theta)
    loss.backward()
    assert model.log_theta.grad is not None and has_grad(model.pre_encoder)


def test_follows_the_module_dtype():
    model = make(input_genes=[1, 3, 5]).to(torch.float64)
    out = model(batch().double())
    assert out["re_x"].dtype == torch.float64 and model.input_genes.dtype == torch.long
