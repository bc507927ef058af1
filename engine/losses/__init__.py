"""One registry of losses and regularisers, looked up by the names a config uses."""
from engine.losses.elementwise import LOSSES
from engine.losses.regularizers import REGULARIZERS


def _lookup(kind: str, registry: dict, name: str):
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; valid names: {', '.join(sorted(registry))}")
    return registry[name]


def get_loss(name: str):
    """The loss function called `name`; ValueError listing the valid names otherwise."""
    return _lookup("loss", LOSSES, name)


def get_regularizer(name: str):
    """The regulariser called `name`; ValueError listing the valid names otherwise."""
    return _lookup("regularizer", REGULARIZERS, name)


__all__ = ["LOSSES", "REGULARIZERS", "get_loss", "get_regularizer"]
