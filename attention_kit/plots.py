"""Plots shared by the lectures and labs. Every attention-weight picture uses show_heatmap."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes


def _as_array(matrix) -> np.ndarray:
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().numpy()
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"show_heatmap draws a 2-D matrix, got shape {matrix.shape}")
    return matrix


def show_heatmap(
    matrix,
    xlabel: str = "keys",
    ylabel: str = "queries",
    title: str | None = None,
    xticklabels: Sequence[str] | None = None,
    yticklabels: Sequence[str] | None = None,
    ax: Axes | None = None,
    cmap: str = "Reds",
    vmin: float | None = 0.0,
    vmax: float | None = None,
    colorbar_label: str = "attention weight",
) -> Axes:
    """Draw a matrix of attention weights: one row per query, one column per key.

    Args:
        matrix: ``(n, m)`` tensor or array.
        xlabel, ylabel: axis names (keys across, queries down by default).
        xticklabels, yticklabels: a label per column / row, e.g. the tokens.
        ax: where to draw; a new figure when omitted.
        vmin, vmax: the colour range; weights start at 0, so vmin defaults to 0.

    Returns:
        The axes, so that callers can add to the picture.
    """
    matrix = _as_array(matrix)
    if ax is None:
        _, ax = plt.subplots(
            figsize=(0.5 + 0.35 * matrix.shape[1], 0.5 + 0.35 * matrix.shape[0])
        )
    image = ax.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    for labels, set_ticks, set_labels, size in (
        (xticklabels, ax.set_xticks, ax.set_xticklabels, matrix.shape[1]),
        (yticklabels, ax.set_yticks, ax.set_yticklabels, matrix.shape[0]),
    ):
        if labels is not None:
            if len(labels) != size:
                raise ValueError(
                    f"{len(labels)} tick labels for {size} rows or columns"
                )
            set_ticks(range(size))
            set_labels(labels)
    colorbar = ax.figure.colorbar(image, ax=ax, shrink=0.85)
    colorbar.set_label(colorbar_label)
    return ax
