"""Scores for a latent space: how well batches mix and how well cell labels stay apart (scIB names)."""
from engine.metrics.integration import (
    Neighbors,
    clisi_knn,
    ilisi_knn,
    integration_metrics,
    knn_label_accuracy,
    lisi_per_cell,
    nearest_neighbors,
    silhouette_batch,
    silhouette_label,
)

__all__ = [
    "Neighbors",
    "clisi_knn",
    "ilisi_knn",
    "integration_metrics",
    "knn_label_accuracy",
    "lisi_per_cell",
    "nearest_neighbors",
    "silhouette_batch",
    "silhouette_label",
]
