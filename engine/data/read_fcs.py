"""Flow and mass cytometry FCS files (2.0, 3.0, 3.1) read with flowio into AnnData.

Features are named by marker ($PnS) because that is what knowledge tables use, falling back to the
channel ($PnN) where a channel has no marker; both stay in `var['channel']` and `var['marker']`.
`uns['spillover']` holds the spillover matrix as a DataFrame indexed and columned by channel name,
and `uns['fcs_meta']` every TEXT keyword as a string (keys lower case without `$`, as flowio gives
them, with `/` turned into `_` because h5ad cannot store it in a key) plus `fcs_version`.
"""
from pathlib import Path

import flowio
import numpy as np
import pandas as pd
from anndata import AnnData

from engine.data.errors import InputError
from engine.data.validate import unreadable

SPILLOVER_KEYS = ("spillover", "spill")  # flowio drops `$`, so this covers $SPILLOVER, SPILL, $SPILL


def read_fcs(path: Path) -> AnnData:
    """Read events x channels as float32, with gain and log amplification applied by flowio."""
    try:
        flow = flowio.FlowData(str(path))
    except Exception as err:
        raise unreadable(path, "an FCS 2.0/3.0/3.1 file", err) from err
    _check_layout(path, flow)
    try:
        events = flow.as_array(preprocess=True).astype(np.float32)
    except Exception as err:
        raise unreadable(path, "an FCS 2.0/3.0/3.1 file", err) from err
    channels = [str(name) for name in flow.pnn_labels]
    markers = [str(name).strip() for name in flow.pns_labels]
    var = pd.DataFrame(
        {"channel": channels, "marker": markers},
        index=pd.Index([marker or channel for marker, channel in zip(markers, channels)], dtype=str),
    )
    obs = pd.DataFrame(index=pd.Index([str(i) for i in range(events.shape[0])], dtype=str))
    adata = AnnData(events, obs=obs, var=var)
    adata.uns["fcs_meta"] = {key.replace("/", "_"): str(value) for key, value in flow.text.items()}
    adata.uns["fcs_meta"]["fcs_version"] = str(flow.version)
    spillover = _spillover(path, flow.text)
    if spillover is not None:
        adata.uns["spillover"] = spillover
    return adata


def _check_layout(path: Path, flow: flowio.FlowData) -> None:
    """The header's parameter and event counts must describe the data segment, or every value
    would land in the wrong channel."""
    par, tot, described, held = flow.channel_count, flow.event_count, len(flow.pnn_labels), len(flow.events)
    if par != described:
        raise InputError(
            f"{path}: the header says each event has {par} parameters ($PAR) but names {described} "
            f"channels ($P1N to $P{described}N); the two must agree. The file was damaged or edited: "
            "export it again from the acquisition software."
        )
    if held % par or held < par * tot:  # a little padding after the last event is tolerated
        raise InputError(
            f"{path}: the header promises {tot:,} events ($TOT) of {par} parameters ($PAR), that is "
            f"{par * tot:,} values, but the data segment holds {held:,}. The file is truncated or its "
            "header was edited: export it again from the acquisition software."
        )


def _spillover(path: Path, text: dict[str, str]) -> pd.DataFrame | None:
    """Parse 'n, n channel names, n*n values' into an n x n DataFrame."""
    key = next((key for key in SPILLOVER_KEYS if key in text), None)
    if key is None:
        return None
    fields = [field.strip() for field in text[key].split(",")]
    try:
        n = int(fields[0])
        values = np.array(fields[1 + n:], dtype=np.float64)
    except ValueError as err:
        raise InputError(
            f"{path}: the {key.upper()} keyword is malformed ({err}); expected a channel count, "
            "that many channel names, then count x count numbers. Fix or remove the keyword."
        ) from err
    if n < 1 or len(fields) != 1 + n + n * n:
        raise InputError(
            f"{path}: the {key.upper()} keyword has {len(fields)} comma-separated fields for "
            f"{n} channels; expected {1 + n + n * n} (the count, {n} names, {n * n} values). "
            "Fix or remove the keyword."
        )
    names = pd.Index(fields[1:1 + n], dtype=str)
    return pd.DataFrame(values.reshape(n, n), index=names, columns=names)
