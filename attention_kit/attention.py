"""Reference implementations of the attention mechanisms the labs build.

Each function here is the "saved" version of something a lab asks learners to
write from scratch, so that later labs can import it. Shapes follow the course
notation: n queries, m keys, rows are items, the last dimension is features.
"""

from __future__ import annotations

import torch
from torch import Tensor


def nadaraya_watson(
    queries: Tensor, keys: Tensor, values: Tensor, bandwidth: float
) -> tuple[Tensor, Tensor]:
    """Nadaraya-Watson kernel regression with a Gaussian kernel, read as attention.

    Each query attends to every key with the score -(q - k)^2 / (2 * bandwidth^2);
    the softmax over keys turns the scores into weights, and the prediction is the
    weighted average of the values.

    Args:
        queries: ``(n,)`` the points where we predict.
        keys: ``(m,)`` the training inputs.
        values: ``(m,)`` or ``(m, d_v)`` the training targets.
        bandwidth: the kernel width h > 0; small h looks only at the nearest keys.

    Returns:
        predictions ``(n,)`` or ``(n, d_v)`` and weights ``(n, m)`` whose rows sum to 1.
    """
    if bandwidth <= 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}")
    differences = queries[:, None] - keys[None, :]  # (n, m)
    scores = -(differences**2) / (2 * bandwidth**2)
    # torch.softmax subtracts the row maximum first, so a tiny bandwidth (scores in
    # the -1e6 range) gives a one-hot row instead of 0/0.
    weights = torch.softmax(scores, dim=-1)
    return weights @ values, weights
