"""Reproducibility and devices; the training loop joins in a later unit."""

from __future__ import annotations

import random

import numpy as np
import torch


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch so that a notebook gives the same numbers every run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def get_device() -> torch.device:
    """A GPU when one is present, otherwise the CPU. Every lab runs on the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
