"""Length generalisation of position encodings, measured (Unit 06).

One small attention model is trained on a task where *relative* position is all
that matters, "output the token ``offset`` places back", on sequences of length
``train_length``, and tested on longer ones. The same model and training run with
four ways of giving it positions:

- ``"none"``: no positional information (only the causal mask);
- ``"sinusoidal"``: :func:`~attention_kit.positional.sinusoidal_encoding` added to the
  token embeddings;
- ``"learned"``: a :class:`~attention_kit.positional.LearnedPositions` table with a row
  for every position up to the longest test length; rows beyond ``train_length`` are
  never trained and keep their random initial values;
- ``"rope"``: :func:`~attention_kit.positional.apply_rope` on queries and keys;

and, in ``BIAS_KINDS``, two that add a bias depending on the distance i - j to the
scores instead:

- ``"alibi"``: ALiBi's fixed penalty ``-slope * (i - j)`` (Press et al., 2022), with the
  slope 1/2 of the steepest of eight heads (one head's own slope, 2^-8, would hardly
  matter at these lengths);
- ``"t5"``: T5's learned bias per distance bucket (Raffel et al., 2020), 32 buckets
  up to distance 128: distances 0-15 have a bucket each, so distances 16 and more,
  never seen when training at length 16, fall in buckets that were never trained.

The model: token embedding (+ positions) -> one causal attention layer with a single
head (queries, keys and values with biases) -> a linear read-out of the attention output
to the vocabulary. No residual connection, so the answer has to come through attention.
"""

from __future__ import annotations

from statistics import fmean

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import masked_softmax, scaled_dot_product_attention
from .masks import causal_mask
from .positional import (
    LearnedPositions,
    SinusoidalPositions,
    T5RelativeBias,
    alibi_bias,
    apply_rope,
)
from .train import fit, set_seed

KINDS = ("none", "sinusoidal", "learned", "rope")
BIAS_KINDS = ("alibi", "t5")
ALL_KINDS = KINDS + BIAS_KINDS
ALIBI_SLOPE = 0.5
IGNORE = -100  # target of the first ``offset`` positions, which have no answer


def copy_back_task(
    num_sequences: int,
    length: int,
    vocab_size: int = 16,
    offset: int = 2,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Random token sequences and, at each position t, the target ``tokens[t - offset]``.

    Returns:
        tokens ``(num_sequences, length)`` and targets of the same shape, with
        ``IGNORE`` (-100, what ``F.cross_entropy`` skips) at positions t < offset.
    """
    tokens = torch.randint(0, vocab_size, (num_sequences, length), generator=generator)
    targets = torch.full_like(tokens, IGNORE)
    targets[:, offset:] = tokens[:, :-offset]
    return tokens, targets


class PositionStudyModel(nn.Module):
    """Embedding (+ positions), one causal attention layer, linear read-out.

    Input tokens ``(batch, seq)`` -> logits ``(batch, seq, vocab_size)``.
    ``kind`` is one of ``KINDS``; ``max_positions`` is the size of the learned table.
    """

    def __init__(
        self, kind: str, vocab_size: int = 16, dim: int = 32, max_positions: int = 64
    ):
        super().__init__()
        if kind not in ALL_KINDS:
            raise ValueError(f"kind must be one of {ALL_KINDS}, got {kind!r}")
        self.kind = kind
        self.embed = nn.Embedding(vocab_size, dim)
        if kind == "sinusoidal":
            self.positions = SinusoidalPositions(dim)
        elif kind == "learned":
            self.positions = LearnedPositions(max_positions, dim)
        elif kind == "t5":
            self.score_bias = T5RelativeBias(num_heads=1)
        self.W_q = nn.Linear(dim, dim)
        self.W_k = nn.Linear(dim, dim)
        self.W_v = nn.Linear(dim, dim)
        self.readout = nn.Linear(dim, vocab_size)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Returns logits ``(batch, seq, vocab)`` and weights ``(batch, seq, seq)``."""
        x = self.embed(tokens)
        if self.kind in ("sinusoidal", "learned"):
            x = self.positions(x)
        q, k, v = self.W_q(x), self.W_k(x), self.W_v(x)
        if self.kind == "rope":
            q, k = apply_rope(q), apply_rope(k)
        n = tokens.shape[-1]
        mask = causal_mask(n, device=tokens.device)
        if self.kind in BIAS_KINDS:
            scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5 + self._bias(n)
            weights = masked_softmax(scores, mask)
            out = weights @ v
        else:
            out, weights = scaled_dot_product_attention(q, k, v, mask)
        return self.readout(out), weights

    def _bias(self, n: int) -> Tensor:
        """``(n, n)``: the score bias of ``"alibi"`` or ``"t5"`` for one head."""
        if self.kind == "t5":
            return self.score_bias(n)[0]
        positions = torch.arange(n, device=self.W_q.weight.device)
        slope = torch.tensor([ALIBI_SLOPE])
        return alibi_bias(positions, positions, slope)[0].to(self.W_q.weight.dtype)


def copy_back_loss(model: PositionStudyModel, batch: tuple[Tensor, Tensor]) -> Tensor:
    tokens, targets = batch
    logits, _ = model(tokens)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)


def train_copy_back(
    kind: str,
    train_length: int = 16,
    max_positions: int = 64,
    steps: int = 300,
    batch_size: int = 64,
    vocab_size: int = 16,
    dim: int = 32,
    offset: int = 2,
    seed: int = 0,
    progress: bool = False,
) -> PositionStudyModel:
    """Train a :class:`PositionStudyModel` on fresh batches of length ``train_length``."""
    set_seed(seed)
    model = PositionStudyModel(kind, vocab_size, dim, max_positions)
    generator = torch.Generator().manual_seed(seed)

    def batches():
        while True:
            yield copy_back_task(
                batch_size, train_length, vocab_size, offset, generator
            )

    fit(
        model,
        copy_back_loss,
        batches(),
        steps,
        learning_rate=1e-2,
        description=kind,
        progress=progress,
    )
    return model


@torch.no_grad()
def accuracy_by_position(
    model: PositionStudyModel,
    length: int,
    num_sequences: int = 200,
    offset: int = 2,
    seed: int = 1,
) -> Tensor:
    """``(length,)``: the fraction of test sequences answered right at each position
    (NaN at positions t < offset, which have no answer)."""
    vocab_size = model.embed.num_embeddings
    generator = torch.Generator().manual_seed(seed)
    tokens, targets = copy_back_task(
        num_sequences, length, vocab_size, offset, generator
    )
    logits, _ = model(tokens)
    right = (logits.argmax(-1) == targets).double().mean(0)
    right[:offset] = float("nan")
    return right


def accuracy(
    model: PositionStudyModel,
    length: int,
    num_sequences: int = 200,
    offset: int = 2,
    seed: int = 1,
    from_position: int = 0,
) -> float:
    """Mean accuracy over positions ``max(offset, from_position) .. length - 1``."""
    per_position = accuracy_by_position(model, length, num_sequences, offset, seed)
    return per_position[max(offset, from_position) :].mean().item()


def length_generalisation(
    train_length: int = 16,
    test_lengths: tuple[int, ...] = (16, 24, 32),
    steps: int = 300,
    seeds: tuple[int, ...] = (0,),
    kinds: tuple[str, ...] = KINDS,
    offset: int = 2,
    **config,
) -> dict[str, dict[int, float]]:
    """Train each kind (once per seed) and test it at every length.

    Returns ``{kind: {length: accuracy}}``, the accuracy averaged over seeds and over
    all answerable positions of the test sequences, and ``{kind + " beyond": {length:
    accuracy}}``, the accuracy on the positions at or beyond ``train_length`` only (for
    the test lengths longer than training).
    """
    max_positions = max(max(test_lengths), train_length)
    results: dict[str, dict[int, float]] = {}
    for kind in kinds:
        models = [
            train_copy_back(
                kind,
                train_length,
                max_positions,
                steps,
                offset=offset,
                seed=s,
                **config,
            )
            for s in seeds
        ]
        results[kind] = {
            n: fmean(accuracy(m, n, offset=offset) for m in models)
            for n in test_lengths
        }
        results[kind + " beyond"] = {
            n: fmean(
                accuracy(m, n, offset=offset, from_position=train_length)
                for m in models
            )
            for n in test_lengths
            if n > train_length
        }
    return results


def length_generalisation_rows(
    train_length: int = 16,
    test_lengths: tuple[int, ...] = (16, 24, 32, 48, 64),
    steps: int = 600,
    seeds: tuple[int, ...] = (0, 1, 2),
    kinds: tuple[str, ...] = KINDS,
) -> list[tuple[str, str, str]]:
    """``make bench``'s rows: accuracy of each kind at each test length, and on the
    positions beyond ``train_length`` alone, averaged over ``seeds``."""
    results = length_generalisation(train_length, test_lengths, steps, seeds, kinds)
    rows = []
    for kind in kinds:
        for n in test_lengths:
            beyond = results[kind + " beyond"].get(n)
            note = f"trained on n = {train_length}, {steps} steps, {len(seeds)} seeds"
            if beyond is not None:
                note = f"positions >= {train_length}: {beyond:.1%}; " + note
            rows.append(
                (
                    f"copy 2 back, {kind} positions, n = {n}",
                    f"{results[kind][n]:.1%}",
                    note,
                )
            )
    return rows


@torch.no_grad()
def prefix_majority_by_position(
    length: int,
    num_sequences: int = 200,
    vocab_size: int = 16,
    offset: int = 2,
    seed: int = 1,
) -> Tensor:
    """``(length,)``: the expected accuracy at each position t of guessing "the most
    frequent token among the earlier positions 0..t-1" (a tie broken by a fair draw,
    counted as 1/k for k tied tokens), on the test sequences
    :func:`accuracy_by_position` uses.

    A strategy that needs no positions at all: what a causal model without positions
    can still do. NaN at t < offset.
    """
    generator = torch.Generator().manual_seed(seed)
    tokens, targets = copy_back_task(
        num_sequences, length, vocab_size, offset, generator
    )
    one_hot = F.one_hot(tokens, vocab_size)  # (batch, length, vocab)
    counts = one_hot.cumsum(dim=1) - one_hot  # occurrences before t
    most = counts == counts.max(dim=-1, keepdim=True).values  # the tied leaders
    answer = targets.clamp(min=0)[..., None]
    is_leader = most.gather(-1, answer)[..., 0]
    right = (is_leader / most.sum(-1)).double().mean(0)
    right[:offset] = float("nan")
    return right
