"""`SysVAE`: a conditional VAE for cells from very different systems (after SysVI, Hrovatin et al.
2025): a VampPrior over the latent and a latent cycle-consistency loss.

Per cell, with s its system and c its other covariates (one-hot, embedded or continuous):

    q(z | x, s, c) from an `EncoderTOTALVI` (normal latent, no library trunk)
    p(x | z, s, c) = N(mean, var) from a `GaussianDecoder`, on normalised log expression
    loss = w_rec * -log p(x | z) + w_kl * [log q(z | x) - log p(z)] + w_cyc * cycle

The cycle (the paper's, `cycle_input='other_system'`): decode z under a different system s'
with the other covariates blanked, re-encode that expression under s', and ask the two latent
means to agree after standardising each dimension on their concatenation (so shrinking the
latent cannot fake agreement). `cycle_input='own_system'` re-encodes the decoding under the
cell's own system instead, as scvi-tools' module does (kept for parity tests).

`std_as_variance` computes the variances as scvi-tools' SysVI does: it hands a standard deviation
where a variance goes, so the likelihood's per-gene variance is sqrt(softplus(raw)) and each
VampPrior component's variance is sqrt(v_k), the square root of its pseudo-input's posterior
variance. The second changes the model: for v_k < 1 the components are wider than the posteriors
they stand for, so they pull the cells' posteriors less as those narrow in training. Off by
default (the paper's VampPrior); measured in bench/sysvi.py (`--std-as-variance`).
`encoder_variance='softplus'` takes scvi-tools' encoder variance, softplus(head) rather than
TOTALVI's exp(head) (`EncoderTOTALVI`'s `variance_activation`); with both, ours computes the
variances as scvi-tools' SysVI does, up to the encoder's 1e-4 variance floor (on the mixology
platforms, 12 paired seeds, dropping the floor did not bring ours closer to scvi-tools).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from engine.models.vamp_prior import VampPrior
from engine.nn.encoder_totalvi import EncoderTOTALVI, one_hot_covariates
from engine.nn.gaussian_decoder import GaussianDecoder

PRIORS = ("vamp", "standard_normal")
CYCLE_INPUTS = ("other_system", "own_system")
EMBEDDING_DIM = 5
STANDARDISE_EPS = 1e-6


class SysVAE(nn.Module):
    """`tensors` (a dict) carry "x" (cells x genes), "batch" (system codes), and optionally
    "cat_covs" (cells x categorical covariates, integer codes, -1 missing) and "cont_covs"."""

    def __init__(self, n_input: int, n_batch: int, n_continuous_cov: int = 0, n_cats_per_cov: list[int] | None = None,
                 embed_categorical_covariates: bool = False, prior: str = "vamp", n_prior_components: int = 5,
                 trainable_priors: bool = True, pseudoinput_data: dict | None = None, n_latent: int = 15,
                 n_hidden: int = 256, n_layers: int = 2, dropout_rate: float = 0.1, out_var_mode: str = "feature",
                 *, cycle_input: str = "other_system", vamp_mixture: str = "per_dimension",
                 std_as_variance: bool = False, encoder_variance: str = "exp"):
        super().__init__()
        if n_batch < 2:
            raise ValueError(f"integration needs at least two systems, got {n_batch}")
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {list(PRIORS)}, got {prior!r}")
        if cycle_input not in CYCLE_INPUTS:
            raise ValueError(f"cycle_input must be one of {list(CYCLE_INPUTS)}, got {cycle_input!r}")
        self.n_batch, self.n_latent, self.cycle_input = n_batch, n_latent, cycle_input
        self.std_as_variance = bool(std_as_variance)
        self.n_cats_per_cov = [int(n) for n in (n_cats_per_cov or [])]
        self.n_continuous_cov = int(n_continuous_cov)
        self.embed = embed_categorical_covariates
        if self.embed:
            self.embeddings = nn.ModuleList(nn.Embedding(n, EMBEDDING_DIM) for n in self.n_cats_per_cov)
        one_hot = [n_batch] + ([] if self.embed else self.n_cats_per_cov)
        n_cont = self.n_continuous_cov + (EMBEDDING_DIM * len(self.n_cats_per_cov) if self.embed else 0)
        self.encoder = EncoderTOTALVI(n_input, n_latent, one_hot, n_layers, n_hidden, dropout_rate, "normal",
                                      n_continuous=n_cont, library=False, variance_activation=encoder_variance)
        self.decoder = GaussianDecoder(n_latent, n_input, sum(n for n in one_hot if n > 1) + n_cont, n_layers,
                                       n_hidden, dropout_rate, out_var_mode)
        self._one_hot = one_hot
        self.prior_kind = prior
        self.prior = (self._vamp(pseudoinput_data, n_prior_components, trainable_priors, vamp_mixture)
                      if prior == "vamp" else None)

    # -- covariates --------------------------------------------------------------------------
    def _covariates(self, batch, cat_covs, cont_covs) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """What the encoder and decoder take: the one-hot covariates' codes (system first) and the
        continuous block (embeddings of categorical covariates, then continuous covariates)."""
        cats = [cat_covs[:, i] for i in range(len(self.n_cats_per_cov))] if self.n_cats_per_cov else []
        continuous = []
        if self.embed:
            for codes, embedding in zip(cats, self.embeddings):
                continuous.append(embedding(codes.clamp(min=0)) * (codes >= 0)[:, None])
            cats = []
        if self.n_continuous_cov:
            continuous.append(cont_covs)
        return [batch] + cats, (torch.cat(continuous, dim=1) if continuous else None)

    def _decoder_covariates(self, cat_list, cont, dtype) -> torch.Tensor | None:
        kept = [(n, c) for n, c in zip(self._one_hot, cat_list) if n > 1]
        blocks = one_hot_covariates([n for n, _ in kept], [c for _, c in kept], dtype)
        if cont is not None:
            blocks.append(cont.to(dtype))
        return torch.cat(blocks, dim=1) if blocks else None

    def _vamp(self, data: dict | None, k: int, trainable: bool, mixture: str) -> VampPrior:
        if data is None:
            raise ValueError("a VampPrior needs pseudoinput_data: K cells' x, batch (and their covariates)")
        if data["x"].shape[0] != k:
            raise ValueError(f"pseudoinput_data holds {data['x'].shape[0]} cells but n_prior_components is {k}")
        cat_list, cont = self._covariates(data["batch"], data.get("cat_covs"), data.get("cont_covs"))
        cont = None if cont is None else cont.detach()  # embeddings' snapshot; VampPrior keeps its own copy
        return VampPrior(data["x"], [c.clamp(min=0) for c in cat_list], self._one_hot, cont, trainable, mixture)

    # -- the passes --------------------------------------------------------------------------
    def inference(self, x, batch, cat_covs=None, cont_covs=None) -> dict[str, torch.Tensor]:
        """q(z | x): {"z": a reparameterised sample, "qz_m": mean, "qz_v": variance}."""
        cat_list, cont = self._covariates(batch, cat_covs, cont_covs)
        out = self.encoder(x, *cat_list, cont=cont)
        return {"z": out.untran_z, "qz_m": out.z_mean, "qz_v": out.z_var}

    def generative(self, z, batch, cat_covs=None, cont_covs=None) -> dict[str, torch.Tensor]:
        """p(x | z): {"x_m": mean, "x_v": variance} of the normalised log expression (the variance
        per gene, (genes,), with out_var_mode 'feature')."""
        cat_list, cont = self._covariates(batch, cat_covs, cont_covs)
        x_m, x_v = self.decoder(z, self._decoder_covariates(cat_list, cont, z.dtype))
        return {"x_m": x_m, "x_v": x_v.sqrt() if self.std_as_variance else x_v}

    def random_select_batch(self, batch: torch.Tensor) -> torch.Tensor:
        """For every cell a system other than its own, uniformly among the other n_batch - 1."""
        draw = torch.randint(0, self.n_batch - 1, batch.shape, device=batch.device)
        return draw + (draw >= batch).long()

    def forward(self, tensors: dict, cycle: bool = True) -> tuple[dict, dict]:
        """The inference and generative outputs; with `cycle`, inference also holds "qz_cycle_m"."""
        x, batch = tensors["x"], tensors["batch"]
        cat_covs, cont_covs = tensors.get("cat_covs"), tensors.get("cont_covs")
        inference = self.inference(x, batch, cat_covs, cont_covs)
        generative = self.generative(inference["z"], batch, cat_covs, cont_covs)
        if cycle:
            other = self.random_select_batch(batch)
            if self.cycle_input == "other_system":
                blank_cats = None if cat_covs is None else torch.full_like(cat_covs, -1)
                blank_cont = None if cont_covs is None else torch.zeros_like(cont_covs)
                switched = self.generative(inference["z"], other, blank_cats, blank_cont)["x_m"]
                cycled = self.inference(switched, other, blank_cats, blank_cont)
            else:
                cycled = self.inference(generative["x_m"], other, cat_covs, cont_covs)
            inference["qz_cycle_m"] = cycled["qz_m"]
        return inference, generative

    # -- the objective ----------------------------------------------------------------------
    def prior_components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The VampPrior's component means and variances: the encoder, in eval mode (no dropout,
        batch norm's running statistics), over the pseudo-inputs (variances' square roots with
        `std_as_variance`)."""
        x, categories, continuous = self.prior.inputs()
        was_training = self.encoder.training
        self.encoder.eval()
        try:
            out = self.encoder(x, *categories, cont=continuous)
        finally:
            self.encoder.train(was_training)
        return out.z_mean, out.z_var.sqrt() if self.std_as_variance else out.z_var

    def kl(self, inference: dict) -> torch.Tensor:
        """KL(q(z|x) || p(z)) per cell: closed form for N(0, I), one-sample Monte Carlo for the VampPrior."""
        m, v = inference["qz_m"], inference["qz_v"]
        if self.prior is None:
            return 0.5 * (m.pow(2) + v - v.log() - 1).sum(dim=1)
        z = inference["z"]
        log_q = -0.5 * ((z - m).pow(2) / v + v.log() + math.log(2 * math.pi)).sum(dim=1)
        return log_q - self.prior.log_prob(z, *self.prior_components())

    @staticmethod
    def latent_cycle_consistency(z: torch.Tensor, z_cycle: torch.Tensor) -> torch.Tensor:
        """Per cell, the squared distance of the two latents after standardising each dimension
        with the mean and std of their concatenation (+ an epsilon, for constant dimensions)."""
        both = torch.cat([z, z_cycle])
        mean, std = both.mean(dim=0), both.std(dim=0) + STANDARDISE_EPS
        return ((z - mean) / std - (z_cycle - mean) / std).pow(2).sum(dim=1)

    def loss(self, tensors: dict, inference_outputs: dict, generative_outputs: dict, kl_weight: float = 1.0,
             reconstruction_weight: float = 1.0, z_distance_cycle_weight: float = 2.0) -> dict[str, torch.Tensor]:
        """The minibatch mean of the weighted per-cell loss, and each term's mean (0-dim tensors)."""
        x, x_m, x_v = tensors["x"], generative_outputs["x_m"], generative_outputs["x_v"]
        # gaussian NLL, constants dropped; log var summed over genes (it may be one value per gene)
        reconstruction = 0.5 * ((x - x_m).pow(2) / x_v).sum(dim=1) + 0.5 * x_v.log().sum(dim=-1)
        kl = self.kl(inference_outputs)
        per_cell = reconstruction_weight * reconstruction + kl_weight * kl
        out = {"reconstruction_loss": reconstruction.mean(), "kl_local": kl.mean()}
        if "qz_cycle_m" in inference_outputs:
            cycle = self.latent_cycle_consistency(inference_outputs["qz_m"], inference_outputs["qz_cycle_m"])
            per_cell = per_cell + z_distance_cycle_weight * cycle
            out["cycle_loss"] = cycle.mean()
        out["loss"] = per_cell.mean()
        return out

    def sample(self, *args, **kwargs):
        raise NotImplementedError(
            "SysVAE does not offer decoded expression: it models normalised log expression with a gaussian whose "
            "variance absorbs what the systems do not share, so its samples are not counts and would mislead; use "
            "the latent (latent()) for integration"
        )
