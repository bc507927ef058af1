"""Gene sets from files, and matching their genes to a dataset's genes.

Gene sets drive signature heads, so a gene that silently fails to match weakens a model without
a word. ``match_genes`` therefore reports what it could not find, and bridges the two usual
mismatches: letter case, and symbols against Ensembl ids.
"""
import json
import re
from dataclasses import dataclass
from pathlib import Path

from engine.data.errors import InputError

TEXT_SUFFIXES = {".txt", ".grp"}
SYMBOL_COLUMNS = ("gene_symbols", "gene_symbol", "gene_names", "gene_name", "symbol", "symbols", "feature_name")
ENSEMBL = re.compile(r"^ENS[A-Z]*G\d+(\.\d+)?$")


def read_gene_sets(path) -> dict[str, list[str]]:
    """Read gene sets from GMT, JSON (``{name: [genes]}``) or plain text (one gene per line).

    A plain text file holds one set named after the file's stem; lines starting with ``#`` are
    comments (as in GSEA's GRP format). Genes keep their order; repeats within a set are dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Gene set file {path} does not exist: check the path.")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8-sig")
    if suffix == ".gmt":
        sets = _parse_gmt(text, path)
    elif suffix == ".json":
        sets = _parse_json(text, path)
    elif suffix in TEXT_SUFFIXES:
        sets = {path.stem: [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]}
    else:
        raise InputError(
            f"Gene set file {path} has an unknown format '{suffix}': use .gmt (name, description, "
            "genes, tab-separated), .json ({name: [genes]}) or .txt (one gene per line)."
        )
    if not sets:
        raise InputError(f"Gene set file {path} holds no gene sets.")
    for name, genes in sets.items():
        if not genes:
            raise InputError(f"Gene set file {path}: the set '{name}' has no genes.")
    return {name: list(dict.fromkeys(genes)) for name, genes in sets.items()}


def _parse_gmt(text, path):
    sets = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("\t")
        name = fields[0].strip()
        if len(fields) < 2 or not name:
            raise InputError(
                f"Gene set file {path}, line {number}: expected a set name, a description and genes "
                "separated by tabs."
            )
        if name in sets:
            raise InputError(f"Gene set file {path}, line {number}: the set '{name}' is defined twice.")
        sets[name] = [gene.strip() for gene in fields[2:] if gene.strip()]
    return sets


def _parse_json(text, path):
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"Gene set file {path}, line {error.lineno}: not valid JSON ({error.msg}).") from None
    shape_ok = isinstance(data, dict) and all(
        isinstance(genes, list) and all(isinstance(g, str) for g in genes) for genes in data.values()
    )
    if not shape_ok:
        raise InputError(f"Gene set file {path}: expected a JSON object mapping each set name to a list of gene names.")
    return {name: [gene.strip() for gene in genes if gene.strip()] for name, genes in data.items()}


@dataclass
class GeneMatch:
    """The dataset genes (var_names) a gene list matched, and the listed genes it did not."""

    matched: list[str]
    missing: list[str]


def match_genes(genes, adata, *, symbol_column=None) -> GeneMatch:
    """Match gene names or Ensembl ids to ``adata.var_names``.

    Each gene is tried, in order: exactly against var_names; as an Ensembl id ignoring version
    suffixes (ENSG00000141510.12); exactly against the symbol column; then both again ignoring
    case. The symbol column is ``symbol_column`` when given, otherwise, when var_names are
    Ensembl ids, the first var column with a usual name such as 'gene_symbols' or 'feature_name'.
    """
    if isinstance(genes, str):
        raise InputError(f"match_genes() expects a list of gene names, got the single string '{genes}'.")
    var_names = [str(v) for v in adata.var_names]
    symbols = _symbols(adata, symbol_column, var_names)
    exact = {v: v for v in var_names}
    by_id = {_strip_version(v): v for v in var_names if ENSEMBL.match(v)}
    by_symbol = {s: v for v, s in zip(var_names, symbols) if isinstance(s, str)} if symbols is not None else {}
    exact_lower, symbol_lower = _lowered(exact), _lowered(by_symbol)
    matched, missing = {}, []
    for gene in genes:
        gene = str(gene).strip()
        tries = [(exact, gene), (by_id, _strip_version(gene)), (by_symbol, gene),
                 (exact_lower, gene.lower()), (symbol_lower, gene.lower())]
        found = next((table[key] for table, key in tries if key in table), None)
        if found is None:
            missing.append(gene)
        else:
            matched[found] = None  # a dict keeps first-seen order without repeats
    return GeneMatch(matched=list(matched), missing=missing)


def _symbols(adata, symbol_column, var_names):
    """The var column of gene symbols to match through, or None when there is none to use."""
    if symbol_column is not None:
        if symbol_column not in adata.var:
            raise InputError(
                f"symbol_column '{symbol_column}' is not a var column; the var columns are: "
                f"{', '.join(map(str, adata.var.columns)) or 'none'}."
            )
        return list(adata.var[symbol_column])
    if not var_names or not all(ENSEMBL.match(v) for v in var_names[:100]):
        return None
    column = next((c for c in SYMBOL_COLUMNS if c in adata.var), None)
    return None if column is None else list(adata.var[column])


def _lowered(table):
    lowered = {}
    for key, value in table.items():
        lowered.setdefault(key.lower(), value)
    return lowered


def _strip_version(gene_id):
    return gene_id.split(".", 1)[0]
