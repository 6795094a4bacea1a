"""Data generators for the labs. Everything is generated from a seed: no downloads."""

from __future__ import annotations

import datetime
import math
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
    """Characters <-> integer ids. Id 0 is padding, id 1 (``<bos>``) starts every decoder
    input and id 2 (``<eos>``) ends every decoder output."""

    PAD, BOS, EOS = 0, 1, 2

    def __init__(self, characters: str):
        self.itos = ["<pad>", "<bos>", "<eos>", *sorted(set(characters))]
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, texts: list[str], end: bool = False) -> tuple[Tensor, Tensor]:
        """texts -> ids ``(batch, longest)`` padded with PAD, and lengths ``(batch,)``;
        with ``end=True`` each row ends with EOS (counted in its length)."""
        rows = [[self.stoi[c] for c in text] + [self.EOS] * end for text in texts]
        lengths = torch.tensor([len(row) for row in rows])
        ids = torch.full((len(texts), int(lengths.max())), self.PAD, dtype=torch.long)
        for number, row in enumerate(rows):
            ids[number, : len(row)] = torch.tensor(row, dtype=torch.long)
        return ids, lengths

    def decode(self, ids: Tensor) -> list[str]:
        """ids ``(batch, length)`` -> texts: each row up to its first EOS, without
        padding or BOS."""
        texts = []
        for row in ids.tolist():
            if self.EOS in row:
                row = row[: row.index(self.EOS)]
            texts.append("".join(self.itos[i] for i in row if i > self.EOS))
        return texts


SOURCE_VOCAB = CharVocab(
    "".join(MONTHS + WEEKDAYS).lower() + "".join(MONTHS + WEEKDAYS).upper()
    + "0123456789 ,./-"
)  # fmt: skip
TARGET_VOCAB = CharVocab("0123456789-")
TARGET_STEPS = 11  # decoder steps for one ISO date: "YYYY-MM-DD", then EOS


def date_tensors(pairs: list[tuple[str, str]]) -> tuple[Tensor, Tensor, Tensor]:
    """Date pairs -> source ids ``(count, longest)``, lengths ``(count,)`` and target ids
    ``(count, TARGET_STEPS)``: the 10 characters of the ISO date, then EOS. Ready for
    :func:`attention_kit.train.random_batches`."""
    ids, lengths = SOURCE_VOCAB.encode([source for source, _ in pairs])
    targets, _ = TARGET_VOCAB.encode([target for _, target in pairs], end=True)
    return ids, lengths, targets


# ---------------------------------------------------------------------------------------
# Associative recall and a generated character corpus (Unit 08)
# ---------------------------------------------------------------------------------------


def associative_recall(
    num_sequences: int,
    num_pairs: int = 6,
    num_keys: int = 16,
    num_values: int = 16,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Sequences ``k_0 v_0 k_1 v_1 ... k_{p-1} v_{p-1} q`` where the query q is one of
    the keys, and the answer is that key's value: a lookup in the model's own context.

    Keys are the tokens ``0 .. num_keys - 1`` (distinct within a sequence); values are
    the tokens ``num_keys .. num_keys + num_values - 1`` (they may repeat); the
    vocabulary has ``num_keys + num_values`` tokens.

    Returns:
        inputs ``(num_sequences, 2 * num_pairs + 1)`` and targets ``(num_sequences,)``,
        both int64; targets are value tokens.
    """
    if num_pairs > num_keys:
        raise ValueError(f"{num_pairs} distinct keys need num_keys >= {num_pairs}")
    generator = torch.Generator().manual_seed(seed)
    keys = torch.rand(num_sequences, num_keys, generator=generator).argsort(dim=1)
    keys = keys[:, :num_pairs]  # distinct keys: the first p of a random permutation
    values = num_keys + torch.randint(
        0, num_values, (num_sequences, num_pairs), generator=generator
    )
    asked = torch.randint(0, num_pairs, (num_sequences, 1), generator=generator)
    pairs = torch.stack([keys, values], dim=2).reshape(num_sequences, 2 * num_pairs)
    inputs = torch.cat([pairs, keys.gather(1, asked)], dim=1)
    return inputs, values.gather(1, asked).squeeze(1)


NOUNS = ["cat", "dog", "bird", "owl", "girl", "king", "frog", "duck"]
ADJECTIVES = ["big", "small", "old", "red", "shy", "loud"]
VERBS = ["sleep", "run", "sing", "jump", "eat", "swim"]
PREPOSITIONS = ["near", "behind", "with", "under"]
BRACKETS = {"(": ")", "[": "]"}


def _noun_phrase(rng: random.Random) -> tuple[str, bool]:
    """'the [adjective] noun[s]' and whether it is plural."""
    plural = rng.random() < 0.5
    adjective = f"{rng.choice(ADJECTIVES)} " if rng.random() < 0.5 else ""
    return f"the {adjective}{rng.choice(NOUNS)}{'s' if plural else ''}", plural


def _prepositional_phrase(rng: random.Random, depth: int) -> str:
    """'preposition noun-phrase', inside brackets, possibly holding another one."""
    phrase = f"{rng.choice(PREPOSITIONS)} {_noun_phrase(rng)[0]}"
    if depth < 2 and rng.random() < 0.4:
        phrase += " " + _prepositional_phrase(rng, depth + 1)
    opening = rng.choice(list(BRACKETS))
    return f"{opening}{phrase}{BRACKETS[opening]}"


def agreement_sentence(rng: random.Random) -> str:
    """One sentence of the corpus: a subject, up to two bracketed prepositional phrases
    (nested at most twice) whose nouns may differ in number, and a verb that agrees with
    the subject: 'runs' after a singular subject, 'run' after a plural one.

    'the small cats (near the dog [with the frog]) sleep.'
    """
    subject, plural = _noun_phrase(rng)
    middle = "".join(
        " " + _prepositional_phrase(rng, 1) for _ in range(rng.choice([0, 1, 1, 2]))
    )
    verb = rng.choice(VERBS) + ("" if plural else "s")
    return f"{subject}{middle} {verb}."


def agreement_corpus(num_sentences: int, seed: int = 0) -> str:
    """``num_sentences`` sentences of :func:`agreement_sentence`, one per line.

    Predicting the verb's last letter needs the subject's number, seen several words
    (and brackets) earlier; predicting a closing bracket needs the matching opening one.
    """
    rng = random.Random(seed)
    return "".join(agreement_sentence(rng) + "\n" for _ in range(num_sentences))


def agreement_pairs(num_pairs: int, seed: int = 0) -> list[tuple[str, str]]:
    """Minimal pairs for measuring agreement: ``(singular, plural)`` texts that differ
    only in the subject's number and end right after the verb's stem, where the next
    character is ``'s'`` after the singular subject and ``'.'`` after the plural one.

    Each text is one corpus sentence, a newline, and the sentence being tested (as in the
    running text a model is trained on); the same stems and the same bracketed phrases
    (whose nouns may have either number) appear in both members of a pair.

    ``('the owl runs.\\nthe dog (near the cats) sleep', 'the owl runs.\\nthe dogs (near the
    cats) sleep')``
    """
    rng = random.Random(seed)
    pairs = []
    for _ in range(num_pairs):
        previous = agreement_sentence(rng)
        subject, plural = _noun_phrase(rng)
        singular = subject.removesuffix("s") if plural else subject
        middle = "".join(
            " " + _prepositional_phrase(rng, 1) for _ in range(rng.choice([0, 1, 1, 2]))
        )
        stem = rng.choice(VERBS)
        pairs.append(
            tuple(f"{previous}\n{s}{middle} {stem}" for s in (singular, singular + "s"))
        )
    return pairs


def ngram_bits_per_character(train: str, valid: str, order: int) -> float:
    """Bits per character on ``valid`` of a character n-gram model counted on ``train``
    (order 1: unigram; order 2: bigram, the previous character as context), with add-one
    smoothing over the characters of both texts. The first ``order - 1`` characters of
    ``valid`` are context only."""
    alphabet = sorted(set(train) | set(valid))
    counts: dict[str, dict[str, int]] = {}
    for i in range(order - 1, len(train)):
        context = train[i - order + 1 : i]
        counts.setdefault(context, {}).setdefault(train[i], 0)
        counts[context][train[i]] += 1
    total_bits = 0.0
    for i in range(order - 1, len(valid)):
        seen = counts.get(valid[i - order + 1 : i], {})
        probability = (seen.get(valid[i], 0) + 1) / (sum(seen.values()) + len(alphabet))
        total_bits -= math.log2(probability)
    return total_bits / (len(valid) - order + 1)
