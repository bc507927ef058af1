"""app.words: the one place where the engine's loss term names become what the page shows."""
from app.words import names, roles_of, term_label


def test_every_kind_of_term_is_named_after_what_it_measures():
    assert term_label("total") == "total error (all terms, weighted)"
    assert term_label("reconstruction/mse") == "expression reconstruction error"
    assert term_label("reconstruction/nb") == "expression reconstruction error"
    assert term_label("main/sw2_uniform") == "main embedding: distance from an even spread (SW2 uniform)"
    assert term_label("pheno/bulk_labels/nll") == "bulk_labels: prediction error"
    assert term_label("pheno/n_counts/mse") == "n_counts: prediction error"
    assert term_label("pheno/bulk_labels/sw2_gmm") == "bulk_labels embedding: distance from one cluster per label (SW2 mixture)"
    assert term_label("signature/B cells/mse") == "gene program B cells: expression prediction error"
    assert term_label("signature/B cells/sw2_gaussian").startswith("gene program B cells embedding: ")
    assert term_label("raw/pheno/bulk_labels/nll") == "bulk_labels: prediction error (before weighting)"


def test_a_removed_annotation_reads_as_removed():
    roles = {"batch": "remove", "donor": "neutralize"}
    assert term_label("pheno/batch/nll", roles) == "batch (removed): prediction error, higher means better removed"
    assert term_label("pheno/donor/nll", roles) == "donor (read out only): prediction error"
    assert term_label("raw/pheno/batch/nll", roles).endswith("(before weighting)")


def test_unknown_terms_and_names_with_slashes_are_kept_readable():
    assert term_label("something/else/entirely/x") == "something/else/entirely/x"
    assert term_label("cells") == "cells"
    assert term_label("pheno/a/b/nll") == "a/b: prediction error"  # a head name that holds a slash


def test_roles_of_a_model_and_plain_lists():
    class Spec:
        role = "remove"

    class Config:
        phenotypes = {"batch": Spec()}

    class Model:
        config = Config()

    assert roles_of(Model()) == {"batch": "remove"} and roles_of(object()) == {}
    assert names(["CD14", "LYZ"]) == "CD14, LYZ" and names([]) == "none"
    assert names(range(12), most=3) == "0, 1, 2 and 9 more"
