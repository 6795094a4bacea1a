"""Data generators for the labs. Everything is generated from a seed: no downloads."""

from __future__ import annotations

import torch
from torch import Tensor


def wavy_function(x: Tensor) -> Tensor:
    """The smooth curve that the regression lab tries to recover: sin(2x) + x / 2."""
    return torch.sin(2 * x) + x / 2


def noisy_samples(
    num_samples: int,
    noise: float = 0.3,
    low: float = 0.0,
    high: float = 5.0,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Noisy observations of :func:`wavy_function` at random points.

    Returns:
        inputs ``(num_samples,)`` sorted in increasing order, and
        targets ``(num_samples,)`` = wavy_function(inputs) + Gaussian noise of std ``noise``.
    """
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.rand(num_samples, generator=generator) * (high - low) + low
    inputs = torch.sort(inputs).values
    targets = wavy_function(inputs) + noise * torch.randn(
        num_samples, generator=generator
    )
    return inputs, targets
