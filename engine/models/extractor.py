"""The knowledge-guided autoencoder (after SAKURA): a shared trunk, one latent per piece of
knowledge, heads that read them, and a decoder from all latents together.

Each phenotype (a label or a continuous value per cell) and each signature (a gene set whose
expression is regressed) gets a head. A head either owns a latent of its own, or attaches to the
main latent, to another head's latent, or to all latents concatenated. `forward` can skip any
branch and can cut gradients at the trunk or the latent encoders, which is what lets a controller
train one part of the model at a time. Latents are linear, so any prior range is reachable.
"""
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from engine.nn.fc import FCStack

_RESERVED = ("main", "all")
_SPEC_KEYS = {"out_dim", "latent_dim", "attach", "head_dims"}
_KINDS = ("pheno", "signature")
_DETACH_FROM = ("pre_encoder", "encoder")


def _normalise_specs(phenotypes: Mapping, signatures: Mapping) -> dict[str, dict[str, dict]]:
    """Check every head spec and fill defaults; raise ValueError naming the head and the problem."""
    specs = {"pheno": {}, "signature": {}}
    for kind, given in (("pheno", phenotypes), ("signature", signatures)):
        for name, spec in given.items():
            where = f"{'phenotype' if kind == 'pheno' else 'signature'} {name!r}"
            if not isinstance(name, str) or not name or "." in name:
                raise ValueError(f"{where}: a head name must be a non-empty string without '.'")
            if name in _RESERVED or hasattr(nn.ModuleDict(), name):
                raise ValueError(f"{where}: the name is reserved; rename the head")
            if name in specs["pheno"] or name in specs["signature"]:
                raise ValueError(f"{where}: the name is used by both a phenotype and a signature")
            unknown = set(spec) - _SPEC_KEYS
            if unknown:
                raise ValueError(
                    f"{where}: unknown keys {sorted(unknown)}; valid: {sorted(_SPEC_KEYS)}"
                )
            if "out_dim" not in spec or int(spec["out_dim"]) < 1:
                raise ValueError(f"{where}: needs out_dim >= 1 (classes, 1, or target genes)")
            attach = spec.get("attach")
            latent_dim = spec.get("latent_dim")
            if attach is None and (latent_dim is None or int(latent_dim) < 1):
                raise ValueError(f"{where}: owns a latent, so it needs latent_dim >= 1")
            specs[kind][name] = {
                "out_dim": int(spec["out_dim"]),
                "latent_dim": int(latent_dim) if attach is None else None,
                "attach": attach,
                "head_dims": tuple(int(d) for d in spec.get("head_dims") or ()),
            }
    owners = {n for kind in _KINDS for n, s in specs[kind].items() if s["attach"] is None}
    for kind in _KINDS:
        for name, spec in specs[kind].items():
            attach = spec["attach"]
            if attach is None or attach in _RESERVED:
                continue
            if attach == name:
                raise ValueError(
                    f"head {name!r}: cannot attach to itself; use attach=None to own a latent"
                )
            if attach not in owners:
                reason = "is a head that attaches elsewhere" if any(
                    attach in specs[k] for k in _KINDS) else "does not exist"
                raise ValueError(
                    f"head {name!r}: attach target {attach!r} {reason}; valid targets: "
                    f"{sorted(owners | set(_RESERVED))}"
                )
    return specs


def _gene_indices(input_genes: Sequence[int] | None, n_genes: int) -> torch.Tensor:
    """The model's input genes as a long tensor; every gene when None."""
    if input_genes is None:
        return torch.arange(n_genes)
    genes = torch.as_tensor(input_genes).long()
    in_range = genes.numel() > 0 and bool(((genes >= 0) & (genes < n_genes)).all())
    if genes.dim() != 1 or not in_range or genes.unique().numel() != genes.numel():
        raise ValueError(f"input_genes must be distinct indices in [0, {n_genes}), non-empty")
    return genes


class Extractor(nn.Module):
    """Pre-encoder -> main latent + one latent per owning head -> heads; all latents -> decoder.

    `phenotypes` / `signatures` map a head name to {out_dim, latent_dim, attach, head_dims}
    (latent_dim is ignored for attached heads). `input_genes` are the gene indices fed to the
    model (signature genes excluded from the input are left out by the caller); `forward` takes
    the full (N, n_genes) batch. reconstruction="nb" makes the decoder output a negative binomial
    mean (softmax over genes times the cell's library size) with a learnt `log_theta`.
    """

    def __init__(
        self,
        n_genes: int,
        *,
        pre_encoder_dims: Sequence[int] = (256,),
        main_latent_dim: int = 16,
        encoder_dims: Sequence[int] = (64,),
        decoder_dims: Sequence[int] = (256,),
        phenotypes: Mapping[str, Mapping] | None = None,
        signatures: Mapping[str, Mapping] | None = None,
        input_genes: Sequence[int] | None = None,
        norm: str = "batch",
        dropout: float = 0.1,
        activation: str = "relu",
        reconstruction: str = "gaussian",
    ):
        super().__init__()
        if reconstruction not in ("gaussian", "nb"):
            raise ValueError(f"reconstruction must be 'gaussian' or 'nb', got {reconstruction!r}")
        if main_latent_dim < 1:
            raise ValueError(f"main_latent_dim must be >= 1, got {main_latent_dim}")
        specs = _normalise_specs(phenotypes or {}, signatures or {})
        self.phenotypes, self.signatures = specs["pheno"], specs["signature"]
        self.reconstruction = reconstruction
        self.n_genes = int(n_genes)

        genes = _gene_indices(input_genes, n_genes)
        self.register_buffer("input_genes", genes)
        self._selects_genes = not torch.equal(genes, torch.arange(n_genes))
        n_input = genes.numel()

        layer = dict(norm=norm, activation=activation, dropout=dropout)
        self.pre_encoder = FCStack(n_input, pre_encoder_dims, **layer)
        pre_out = self.pre_encoder.out_dim

        self._latent_dims = {
            "main": int(main_latent_dim),
            **{n: s["latent_dim"] for n, s in self.phenotypes.items() if s["attach"] is None},
            **{n: s["latent_dim"] for n, s in self.signatures.items() if s["attach"] is None},
        }

        def encoder(name):
            dims = [*encoder_dims, self._latent_dims[name]]
            return FCStack(pre_out, dims, last_linear=True, **layer)

        self.main_encoder = encoder("main")
        self.pheno_encoders = nn.ModuleDict(
            {n: encoder(n) for n in self.phenotypes if n in self._latent_dims})
        self.signature_encoders = nn.ModuleDict(
            {n: encoder(n) for n in self.signatures if n in self._latent_dims})
        total = sum(self._latent_dims.values())
        self.pheno_heads = nn.ModuleDict(
            {n: self._head("pheno", n, layer) for n in self.phenotypes})
        self.signature_heads = nn.ModuleDict(
            {n: self._head("signature", n, layer) for n in self.signatures})
        self.decoder = FCStack(total, [*decoder_dims, n_input], last_linear=True, **layer)
        if reconstruction == "nb":
            self.log_theta = nn.Parameter(torch.zeros(n_input))

    def _head(self, kind: str, name: str, layer: dict) -> FCStack:
        spec = self._specs(kind)[name]
        dims = [*spec["head_dims"], spec["out_dim"]]
        return FCStack(self._in_dim(kind, name), dims, last_linear=True, **layer)

    def _specs(self, kind: str) -> dict[str, dict]:
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {list(_KINDS)}, got {kind!r}")
        return self.phenotypes if kind == "pheno" else self.signatures

    def _source(self, kind: str, name: str) -> str:
        """The latent a head reads: its own name, 'main', another owner's name, or 'all'."""
        specs = self._specs(kind)
        if name not in specs:
            raise ValueError(f"unknown {kind} head {name!r}; valid: {list(specs)}")
        return specs[name]["attach"] or name

    def _in_dim(self, kind: str, name: str) -> int:
        source = self._source(kind, name)
        return sum(self._latent_dims.values()) if source == "all" else self._latent_dims[source]

    def _encoder(self, latent: str) -> FCStack:
        if latent == "main":
            return self.main_encoder
        if latent in self.pheno_encoders:
            return self.pheno_encoders[latent]
        return self.signature_encoders[latent]

    @property
    def latent_names(self) -> list[str]:
        """Every latent, in lat_all's fixed order: main, owning phenotypes, owning signatures."""
        return list(self._latent_dims)

    @property
    def latent_dims(self) -> dict[str, int]:
        """Width of each latent, by name (same order as latent_names)."""
        return dict(self._latent_dims)

    def _select(self, kind: str, forward: bool, selected) -> list[str]:
        specs = self._specs(kind)
        if selected is None:
            names = list(specs)
        else:
            names = [selected] if isinstance(selected, str) else list(selected)
            unknown = [n for n in names if n not in specs]
            if unknown:
                raise ValueError(f"unknown {kind} heads {unknown}; valid: {list(specs)}")
        return names if forward else []

    def head_input(self, kind: str, name: str, out: dict) -> torch.Tensor:
        """The tensor head `name` reads, taken from a forward output `out`.

        A controller re-runs a head on `grad_reverse(head_input(...))` or on a neutralised copy.
        """
        source = self._source(kind, name)
        if source == "all":
            z = out["lat_all"]
        elif source == "main":
            z = out["lat_main"]
        else:
            z = out["lat_pheno" if source in self.phenotypes else "lat_signature"].get(source)
        if z is None:
            raise ValueError(
                f"{kind} head {name!r} reads latent {source!r}, which this forward did not "
                f"compute; select the head (or every head, for 'all') in forward()"
            )
        return z

    def forward(
        self,
        batch: torch.Tensor,
        forward_signature: bool = True,
        selected_signature: Sequence[str] | None = None,
        forward_pheno: bool = True,
        selected_pheno: Sequence[str] | None = None,
        forward_main_latent: bool = True,
        forward_reconstruction: bool = True,
        detach: bool = False,
        detach_from: str = "",
    ) -> dict:
        """Run the selected branches on a full (N, n_genes) batch; see the module docstring.

        Only the latents the selected heads read (plus main when forward_main_latent) are
        computed. detach_from='pre_encoder' stops gradients into the trunk; 'encoder' also stops
        them into the latent encoders (heads and decoder still learn).
        """
        if detach and detach_from not in _DETACH_FROM:
            raise ValueError(
                f"detach_from must be one of {list(_DETACH_FROM)}, got {detach_from!r}"
            )
        phenos = self._select("pheno", forward_pheno, selected_pheno)
        signatures = self._select("signature", forward_signature, selected_signature)
        needed = {"main"} if forward_main_latent else set()
        for kind, names in (("pheno", phenos), ("signature", signatures)):
            for name in names:
                source = self._source(kind, name)
                needed |= set(self.latent_names) if source == "all" else {source}
        if forward_reconstruction:
            missing = [n for n in self.latent_names if n not in needed]
            if not forward_main_latent or missing:
                raise ValueError(
                    "reconstruction decodes every latent, but this forward skips "
                    f"{'main' if not forward_main_latent else missing}; pass "
                    "forward_reconstruction=False, or forward every latent (forward_main_latent="
                    "True, forward_pheno/forward_signature=True, selected_pheno/signature=None)"
                )

        x = batch.index_select(1, self.input_genes) if self._selects_genes else batch
        lat_pre = self.pre_encoder(x)
        if detach and detach_from == "pre_encoder":
            lat_pre = lat_pre.detach()
        latents = {n: self._encoder(n)(lat_pre) for n in self.latent_names if n in needed}
        if detach and detach_from == "encoder":
            lat_pre = lat_pre.detach()
            latents = {n: z.detach() for n, z in latents.items()}
        complete = len(latents) == len(self._latent_dims)
        lat_all = torch.cat([latents[n] for n in self.latent_names], dim=1) if complete else None
        out = {
            "x": x,
            "lat_pre": lat_pre,
            "lat_main": latents.get("main"),
            "lat_pheno": {n: z for n, z in latents.items() if n in self.phenotypes},
            "lat_signature": {n: z for n, z in latents.items() if n in self.signatures},
            "lat_all": lat_all,
        }
        out["pheno_out"] = {
            n: self.pheno_heads[n](self.head_input("pheno", n, out)) for n in phenos
        }
        out["signature_out"] = {
            n: self.signature_heads[n](self.head_input("signature", n, out)) for n in signatures
        }
        out["re_x"] = None
        if forward_reconstruction:
            re_x = self.decoder(out["lat_all"])
            if self.reconstruction == "nb":
                re_x = torch.softmax(re_x, dim=-1) * x.sum(dim=1, keepdim=True)
            out["re_x"] = re_x
        return out
