"""Measuring cost: wall-clock time (CPU or GPU) and peak CPU memory of a call.

Used by Lab 04 and ``make bench`` to measure, rather than assert, how attention's cost
grows with the sequence length.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence

import torch
from torch.profiler import ProfilerActivity, profile


def _synchronize() -> None:
    """Wait for queued GPU work, so that it counts in the time of the call that queued
    it (CUDA kernels run asynchronously). Nothing to do when CUDA was never used."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def time_call(
    fn: Callable[[], object], repeats: int = 5, warmup: int = 1, threads: int | None = 1
) -> float:
    """The fastest wall-clock time of ``fn()`` in seconds, over ``repeats`` runs.

    The minimum, not the mean or the median: other programs can only make a run slower,
    so the fastest run is the best estimate of the call's own cost. ``threads`` pins
    PyTorch's CPU thread count while timing (restored afterwards), so that results do not
    depend on how many cores are free; 1 by default, as in the course's tests; None keeps
    the current count. On a GPU, queued work is waited for before the clock starts and
    before it stops.
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            _synchronize()
            start = time.perf_counter()
            fn()
            _synchronize()
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return min(times)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send the C-level stderr to /dev/null; some builds of the profiler log each start
    and stop there, which would clutter a notebook."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def peak_memory(fn: Callable[[], object]) -> int:
    """Peak bytes of CPU tensor memory allocated while ``fn()`` runs, beyond what
    existed before. Tensors that ``fn`` returns count too.

    PyTorch's profiler records every allocation (positive size) and free (negative
    size) as a "[memory]" event with a time stamp; replaying them in order and keeping
    the running total's maximum gives the peak. (The raw event list is read from the
    profiler's Kineto results, which is much faster than ``prof.events()`` for calls
    with thousands of small steps, such as a recurrent layer.)
    """
    with (
        _quiet_stderr(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        fn()
    events = [
        e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    ]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def fitted_slope(sizes: Sequence[float], costs: Sequence[float]) -> float:
    """Least-squares slope of log(cost) against log(size): cost grows like size^slope."""
    xs, ys = [math.log(s) for s in sizes], [math.log(c) for c in costs]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    numerator = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return numerator / sum((x - mean_x) ** 2 for x in xs)
