"""The course's measurements, printed as a table: ``make bench`` (python -m attention_kit.bench).

Model quality and speed are measured here rather than asserted in timed tests, because
they depend on the machine. Every run is seeded; times are wall-clock on this machine.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import torch
from torch import nn

from .attention import scaled_dot_product_attention
from .data import SOURCE_VOCAB, TARGET_VOCAB, date_datasets, date_tensors
from .measure import fitted_slope, peak_memory, time_call
from .models import Seq2Seq, seq2seq_loss, translate
from .train import fit, random_batches, set_seed

Row = tuple[str, str, str]  # measurement, value, note


def _date_accuracy(model: Seq2Seq, test_pairs: list[tuple[str, str]]) -> float:
    predictions, _ = translate(
        model, [s for s, _ in test_pairs], SOURCE_VOCAB, TARGET_VOCAB
    )
    return sum(p == t for p, (_, t) in zip(predictions, test_pairs, strict=True)) / len(
        test_pairs
    )


def _train_dates(
    attention_dim: int | None, steps: int, train_tensors
) -> tuple[Seq2Seq, float]:
    set_seed(0)
    model = Seq2Seq(len(SOURCE_VOCAB), len(TARGET_VOCAB), attention_dim=attention_dim)
    batches = random_batches(*train_tensors, batch_size=128, seed=0)
    history = fit(model, seq2seq_loss, batches, steps, progress=False)
    return model, history.seconds


def date_task() -> list[Row]:
    """Unit 03: the GRU encoder-decoder on 1000 held-out dates, greedy decoding."""
    train_pairs, test_pairs = date_datasets(num_train=30_000, num_test=1000, seed=0)
    train_tensors = date_tensors(train_pairs)
    rows = []
    model, seconds = _train_dates(64, 200, train_tensors)
    rows.append(
        (
            "dates, with attention, 200 steps",
            f"{_date_accuracy(model, test_pairs):.1%} exact match",
            f"{seconds:.1f} s training (target: >= 99% within 60 s)",
        )
    )
    model, seconds = _train_dates(None, 200, train_tensors)
    rows.append(
        (
            "dates, without attention, 200 steps",
            f"{_date_accuracy(model, test_pairs):.1%} exact match",
            f"{seconds:.1f} s training",
        )
    )
    for steps in (400, 800, 1200):
        model, seconds = _train_dates(None, steps, train_tensors)
        accuracy = _date_accuracy(model, test_pairs)
        rows.append(
            (
                f"dates, without attention, {steps} steps",
                f"{accuracy:.1%} exact match",
                f"{seconds:.1f} s training",
            )
        )
        if accuracy >= 0.99:
            break
    return rows


def attention_cost() -> list[Row]:
    """Unit 04: time and peak memory of attention and of a GRU layer against n (d = 64,
    batch 1, no gradients), with the log-log slopes fitted on n >= 512."""
    lengths = [128, 256, 512, 1024, 2048, 4096, 8192]
    torch.manual_seed(0)
    gru = nn.GRU(64, 64, batch_first=True)
    layers = {
        "attention": lambda x: scaled_dot_product_attention(x, x, x),
        "GRU": lambda x: gru(x),
    }
    rows = []
    with torch.no_grad():
        for name, layer in layers.items():
            times, memories = [], []
            for n in lengths:
                x = torch.randn(1, n, 64)
                times.append(time_call(lambda layer=layer, x=x: layer(x), repeats=5))
                memories.append(peak_memory(lambda layer=layer, x=x: layer(x)))
                rows.append(
                    (
                        f"{name}, n = {n}",
                        f"{1e3 * times[-1]:.2f} ms",
                        f"peak memory {memories[-1] / 1e6:.2f} MB",
                    )
                )
            rows.append(
                (
                    f"{name}, fitted slopes (n >= 512)",
                    f"time ~ n^{fitted_slope(lengths[2:], times[2:]):.2f}",
                    f"memory ~ n^{fitted_slope(lengths[2:], memories[2:]):.2f}",
                )
            )
    return rows


def position_length_generalisation() -> list[Row]:
    """Unit 06: accuracy on "copy the token 2 places back" of one causal attention layer
    with no, sinusoidal, learned or rotary positions, trained on length 16 and tested on
    lengths 16 to 64 (attention_kit.position_study)."""
    from .position_study import length_generalisation_rows

    return length_generalisation_rows()


MEASUREMENTS: dict[str, Callable[[], list[Row]]] = {
    "dates": date_task,
    "attention-cost": attention_cost,
    "positions": position_length_generalisation,
}


def print_table(rows: list[Row]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # No argparse `choices`: with nargs="*", Python 3.11 checks the empty default
    # against them and refuses to run with no arguments. The names are checked here.
    parser.add_argument(
        "only",
        nargs="*",
        metavar="measurement",
        help=f"which to run (default: all): {', '.join(MEASUREMENTS)}",
    )
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(MEASUREMENTS)
    if unknown:
        parser.error(
            f"unknown measurement(s) {sorted(unknown)}; choose from {list(MEASUREMENTS)}"
        )
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads "
        "(time_call pins 1 thread for the timings), "
        f"torch {torch.__version__}, python {platform.python_version()}"
    )
    rows: list[Row] = [("measurement", "value", "note")]
    for name in args.only or MEASUREMENTS:
        start = time.perf_counter()
        rows += MEASUREMENTS[name]()
        print(f"[{name} measured in {time.perf_counter() - start:.0f} s]")
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
