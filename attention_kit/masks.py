"""Boolean attention masks. True means "may attend" (PyTorch SDPA's convention)."""

from __future__ import annotations

import torch
from torch import Tensor


def padding_mask(lengths: Tensor, max_len: int) -> Tensor:
    """True at the real positions of each sequence, False at its padding.

    lengths ``(batch,)`` -> mask ``(batch, max_len)``; add a query axis with
    ``mask[:, None, :]`` to use it on scores ``(batch, n, max_len)``.
    """
    return torch.arange(max_len, device=lengths.device) < lengths[:, None]


def causal_mask(n: int, device: torch.device | str | None = None) -> Tensor:
    """``(n, n)``, True on and below the diagonal: query i may attend to keys 0..i."""
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()
