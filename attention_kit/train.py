"""Reproducibility, threads, devices, and the training loop the labs share."""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch so that a notebook gives the same numbers every run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


COURSE_THREADS = 1
THREADS_VARIABLE = "ATTENTION_KIT_THREADS"
DEVICE_VARIABLE = "ATTENTION_KIT_DEVICE"


def set_threads(n: int | None = None) -> int:
    """Set how many CPU threads PyTorch uses inside one operation; return that number.

    With ``n=None`` it uses the environment variable ``ATTENTION_KIT_THREADS`` when it is
    set, and otherwise the course default, **one thread**, whatever the machine. The
    course's models are small: on a 2-core machine a second thread saved about 14% of
    the time when the cores were free, and in every lab run measured at a load average of
    4 or more it made the lab at least 2.5 times slower, because threads wait for each
    other (the measurements are in CONTRIBUTING.md, "One PyTorch thread per notebook").

    On a learner's machine with more cores, a notebook still uses one core for PyTorch,
    and the other cores stay free for JupyterLab, the browser and other notebooks
    (``make progress`` runs two labs at once). To try more threads, call
    ``set_threads(4)`` in the setup cell or start JupyterLab with
    ``ATTENTION_KIT_THREADS=4``; torch's own default is one thread per physical core.
    """
    if n is None:
        n = course_threads()
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_threads needs a whole number of threads >= 1, not {n!r}")
    torch.set_num_threads(n)
    return n


def course_threads() -> int:
    """The number of threads ``set_threads()`` chooses: ``ATTENTION_KIT_THREADS`` or 1."""
    text = os.environ.get(THREADS_VARIABLE, "").strip()
    if not text:
        return COURSE_THREADS
    if not text.isdigit() or int(text) < 1:
        raise ValueError(
            f"{THREADS_VARIABLE}={text!r}: set it to a whole number of threads, such as 2"
        )
    return int(text)


def get_device() -> torch.device:
    """The device for a learner's own models: the CPU unless they opt in to a GPU.

    Every lab is written for the CPU, where its small models train in seconds. Setting
    the environment variable ``ATTENTION_KIT_DEVICE=cuda`` (or ``mps`` on an Apple-silicon
    Mac) before starting JupyterLab makes this return that device instead; it raises a
    ``RuntimeError`` with a plain sentence when the device is not available, rather than
    quietly falling back to the CPU.
    """
    name = os.environ.get(DEVICE_VARIABLE, "").strip().lower() or "cpu"
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise RuntimeError(
            f"{DEVICE_VARIABLE}={name!r} is not a device the course knows: "
            "use cpu (the default), cuda or mps"
        )
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"{DEVICE_VARIABLE}={name} asks for a CUDA GPU, but this PyTorch sees none "
            f"(torch {torch.__version__}); unset the variable to run on the CPU"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(
            f"{DEVICE_VARIABLE}=mps asks for an Apple GPU, but this PyTorch sees none; "
            "unset the variable to run on the CPU"
        )
    return device


def random_batches(
    *tensors: Tensor, batch_size: int, seed: int = 0
) -> Iterator[tuple[Tensor, ...]]:
    """Endless batches of rows drawn at random (with replacement) from equally long tensors.

    Yields one tuple ``(t[rows] for t in tensors)`` per step, from a private random
    stream, so the batches do not depend on anything else the notebook draws.
    """
    generator = torch.Generator().manual_seed(seed)
    num_rows = len(tensors[0])
    while True:
        rows = torch.randint(0, num_rows, (batch_size,), generator=generator)
        yield tuple(t[rows] for t in tensors)


@dataclass
class History:
    """What ``fit`` records: the loss at every step and the wall-clock time."""

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.losses)


def fit(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, tuple[Tensor, ...]], Tensor],
    batches: Iterator[tuple[Tensor, ...]],
    num_steps: int,
    learning_rate: float = 5e-3,
    max_grad_norm: float = 1.0,
    description: str = "training",
    progress: bool = True,
) -> History:
    """Train ``model`` for ``num_steps`` steps of Adam and return the loss history.

    The learning rate warms up over the first 10% of the steps and then decays
    (a one-cycle schedule), which lets short runs use a large rate safely. Gradients
    are clipped to norm ``max_grad_norm``, as is usual for recurrent networks.

    Args:
        loss_fn: ``loss_fn(model, batch)`` -> scalar loss for one batch.
        batches: an iterator of batches, e.g. :func:`random_batches`.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=learning_rate, total_steps=num_steps, pct_start=0.1
    )
    history = History()
    model.train()
    start = time.perf_counter()
    bar = tqdm(
        range(num_steps),
        desc=description,
        # TQDM_DISABLE=1 (tqdm's own switch, set when nbgrader grades) hides it too.
        disable=not progress or os.environ.get("TQDM_DISABLE") == "1",
        file=sys.stdout,
        mininterval=3.0,
        ncols=80,
    )
    for _ in bar:
        loss = loss_fn(model, next(batches))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        schedule.step()
        history.losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    history.seconds = time.perf_counter() - start
    model.eval()
    return history


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``with evaluating(model):`` runs the block in eval mode (dropout off) and then
    gives every submodule back the mode it had, training or not."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.train(training)
