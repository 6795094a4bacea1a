"""Data generators for the labs. Everything is generated from a seed: no downloads."""

from __future__ import annotations

import datetime
import random

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


# ---------------------------------------------------------------------------------------
# Dates written by people, and the same dates in ISO 8601 (Unit 03)
# ---------------------------------------------------------------------------------------

MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
WEEKDAYS = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
]
FIRST_DATE, LAST_DATE = datetime.date(1900, 1, 1), datetime.date(2099, 12, 31)


def _ordinal(day: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, ..., 21st, ..."""
    suffix = (
        "th" if day in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    )
    return f"{day}{suffix}"


def _fields(d: datetime.date) -> dict[str, str]:
    month, weekday = MONTHS[d.month - 1], WEEKDAYS[d.weekday()]
    return {
        "d": str(d.day), "dd": f"{d.day:02d}", "mm": f"{d.month:02d}", "yyyy": f"{d.year}",
        "Month": month, "month": month.lower(), "MONTH": month.upper(), "Mon": month[:3],
        "mon": month[:3].lower(), "Weekday": weekday, "weekday": weekday.lower(),
        "Wkd": weekday[:3], "nth": _ordinal(d.day),
    }  # fmt: skip


# Every format is unambiguous: the day, month and year can be read off one way only
# (no "11/23" next to "23/11", no two-digit years).
DATE_FORMATS = [
    "{yyyy}{mm}{dd}",
    "{dd}.{mm}.{yyyy}",
    "{yyyy}/{mm}/{dd}",
    "{dd}-{Mon}-{yyyy}",
    "{d} {mon} {yyyy}",
    "{Mon} {d}, {yyyy}",
    "{d} {Month} {yyyy}",
    "{MONTH} {d} {yyyy}",
    "{Month} {d}, {yyyy}",
    "{Wkd} {d} {Mon} {yyyy}",
    "{nth} of {Month}, {yyyy}",
    "{Weekday} {d} {Month} {yyyy}",
    "{Weekday}, {Month} {d}, {yyyy}",
    "{weekday}, the {nth} of {month} {yyyy}",
]


def format_date(d: datetime.date, style: int) -> str:
    """``d`` written in ``DATE_FORMATS[style]``, e.g. style 12 -> 'Monday, November 23, 2026'."""
    return DATE_FORMATS[style].format(**_fields(d))


def random_dates(count: int, seed: int) -> list[tuple[str, str]]:
    """``count`` pairs (human-written date, ISO date), dates uniform over 1900-2099,
    formats uniform over DATE_FORMATS."""
    rng = random.Random(seed)
    span = (LAST_DATE - FIRST_DATE).days
    pairs = []
    for _ in range(count):
        d = FIRST_DATE + datetime.timedelta(days=rng.randrange(span + 1))
        pairs.append((format_date(d, rng.randrange(len(DATE_FORMATS))), d.isoformat()))
    return pairs


def date_datasets(
    num_train: int = 30_000, num_test: int = 1000, seed: int = 0
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """A training set and a held-out set of date pairs; no input string is in both."""
    test = random_dates(num_test, seed=seed + 1)
    held_out = {source for source, _ in test}
    train = [
        p for p in random_dates(num_train + num_test, seed) if p[0] not in held_out
    ]
    return train[:num_train], test


class CharVocab:
    """Characters <-> integer ids. Id 0 is padding; id 1 starts every decoder input."""

    PAD, BOS = 0, 1

    def __init__(self, characters: str):
        self.itos = ["<pad>", "<bos>", *sorted(set(characters))]
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """texts -> ids ``(batch, longest)`` padded with PAD, and lengths ``(batch,)``."""
        lengths = torch.tensor([len(t) for t in texts])
        ids = torch.full((len(texts), int(lengths.max())), self.PAD, dtype=torch.long)
        for row, text in enumerate(texts):
            ids[row, : len(text)] = torch.tensor([self.stoi[c] for c in text])
        return ids, lengths

    def decode(self, ids: Tensor) -> list[str]:
        """ids ``(batch, length)`` -> texts, dropping padding."""
        return [
            "".join(self.itos[i] for i in row if i > self.BOS) for row in ids.tolist()
        ]


SOURCE_VOCAB = CharVocab(
    "".join(MONTHS + WEEKDAYS).lower() + "".join(MONTHS + WEEKDAYS).upper()
    + "0123456789 ,./-"
)  # fmt: skip
TARGET_VOCAB = CharVocab("0123456789-")


def date_tensors(pairs: list[tuple[str, str]]) -> tuple[Tensor, Tensor, Tensor]:
    """Date pairs -> source ids ``(count, longest)``, lengths ``(count,)`` and target ids
    ``(count, 10)``, ready for :func:`attention_kit.train.random_batches`."""
    ids, lengths = SOURCE_VOCAB.encode([source for source, _ in pairs])
    targets, _ = TARGET_VOCAB.encode([target for _, target in pairs])
    return ids, lengths, targets
