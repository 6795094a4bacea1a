"""Plots shared by the lectures and labs. Every attention-weight picture uses show_heatmap.

Colour maps are chosen so that a picture reads without colour, in greyscale or for a
colour-blind reader: the default ``Reds`` (and ``Greys``, ``Blues``, ``viridis``) get
darker or lighter steadily with the value, so lightness alone orders the cells. A
diverging map such as ``RdBu_r`` tells a positive from a negative value by hue alone;
where the sign matters, write the values into the cells (``annotate=True``) or draw
contour lines, dashed where negative.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb


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
    annotate: bool | str = False,
) -> Axes:
    """Draw a matrix of attention weights: one row per query, one column per key.

    Args:
        matrix: ``(n, m)`` tensor or array.
        xlabel, ylabel: axis names (keys across, queries down by default).
        xticklabels, yticklabels: a label per column / row, e.g. the tokens.
        ax: where to draw; a new figure when omitted.
        vmin, vmax: the colour range; weights start at 0, so vmin defaults to 0.
        annotate: write each value into its cell (True: two decimals; or a format
            such as ``"{:.1f}"``), in black or white, whichever contrasts more with
            the cell: the values then read without colour.

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
    if annotate:
        write_values(ax, image, matrix, "{:.2f}" if annotate is True else annotate)
    colorbar = ax.figure.colorbar(image, ax=ax, shrink=0.85)
    colorbar.set_label(colorbar_label)
    return ax


def relative_luminance(colour) -> float:
    """WCAG's relative luminance of a colour, 0 (black) to 1 (white)."""
    channels = np.array(to_rgb(colour))
    linear = np.where(
        channels <= 0.04045, channels / 12.92, ((channels + 0.055) / 1.055) ** 2.4
    )
    return float(linear @ np.array([0.2126, 0.7152, 0.0722]))


def contrast_ratio(first, second) -> float:
    """WCAG's contrast ratio of two colours, from 1 (equal) to 21 (black on white)."""
    light, dark = sorted(map(relative_luminance, (first, second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def write_values(ax: Axes, image, matrix: np.ndarray, template: str) -> None:
    """Write ``matrix[i, j]`` into each cell of a heatmap, black or white by contrast."""
    for (row, column), value in np.ndenumerate(matrix):
        cell = image.cmap(image.norm(value))
        ink = max(("black", "white"), key=lambda c: contrast_ratio(c, cell))
        ax.text(
            column,
            row,
            template.format(value),
            ha="center",
            va="center",
            color=ink,
            fontsize="small",
        )
