"""Models the labs train.

Unit 03: a GRU encoder-decoder for sequences of characters, with Bahdanau's additive
attention or, for comparison, without it (Bahdanau, Cho & Bengio 2015, arXiv:1409.0473).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import AdditiveAttention
from .data import TARGET_STEPS, CharVocab
from .masks import padding_mask
from .train import evaluating
from .transformer import MiniTransformer, TransformerConfig  # noqa: F401  (Unit 08)


class Encoder(nn.Module):
    """Embeds characters and runs a bidirectional GRU over them: the annotation of
    position j is [forward state j ; backward state j]."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True, bidirectional=True)

    def forward(self, ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """ids ``(batch, m)``, lengths ``(batch,)`` -> annotations ``(batch, m, 2 hidden)``
        (zero at padding) and a summary ``(batch, 2 hidden)``: the forward state at the
        last real character and the backward state at the first."""
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embedding(ids), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        output, final = self.rnn(packed)
        annotations, _ = nn.utils.rnn.pad_packed_sequence(
            output, batch_first=True, total_length=ids.shape[1]
        )
        return annotations, torch.cat([final[0], final[1]], dim=-1)


class Decoder(nn.Module):
    """A GRU that writes the output one character at a time, reading a context c_i at
    step i: with attention, additive attention over the annotations with the previous
    state as the query; without, the encoder's summary (:func:`encoder_summary`)."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_dim: int,
        annotation_dim: int,
        attention_dim: int | None,
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.attention = (
            AdditiveAttention(hidden_dim, annotation_dim, attention_dim)
            if attention_dim
            else None
        )
        self.init_state = nn.Linear(annotation_dim, hidden_dim)
        self.rnn = nn.GRUCell(embed_dim + annotation_dim, hidden_dim)
        self.output = nn.Linear(hidden_dim + annotation_dim + embed_dim, vocab_size)

    def context(
        self, state: Tensor, annotations: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        """The context for one step: ``(batch, annotation_dim)`` and the attention
        weights ``(batch, m)`` (None without attention)."""
        if self.attention is None:
            return encoder_summary(annotations, mask), None
        # The previous state is the query: (batch, 1, hidden) against (batch, m, ...).
        context, weights = self.attention(
            state.unsqueeze(1), annotations, annotations, mask.unsqueeze(1)
        )
        return context.squeeze(1), weights.squeeze(1)

    def step(
        self, previous: Tensor, state: Tensor, annotations: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """One output character (Lab 03, Exercise 03.1).

        Args:
            previous: ``(batch,)`` ids of the previous output characters.
            state: ``(batch, hidden)`` the decoder state s_{i-1}.
            annotations: ``(batch, m, annotation_dim)``, zero at padding.
            mask: ``(batch, m)`` boolean, True at real input characters.

        Returns:
            logits ``(batch, vocab)``, the new state s_i, weights ``(batch, m)`` or None.
        """
        embedded = self.embedding(previous)
        context, weights = self.context(state, annotations, mask)
        state = self.rnn(torch.cat([embedded, context], dim=-1), state)
        logits = self.output(torch.cat([state, context, embedded], dim=-1))
        return logits, state, weights


def encoder_summary(annotations: Tensor, mask: Tensor) -> Tensor:
    """The encoder's final states read off its annotations ``(batch, m, 2 hidden)``: the
    forward half at the last real position and the backward half at position 0,
    ``(batch, 2 hidden)``. ``mask`` ``(batch, m)`` is True at real positions."""
    half = annotations.shape[-1] // 2
    last = mask.sum(dim=-1) - 1  # (batch,) position of the last real character
    forward = annotations[torch.arange(annotations.shape[0]), last, :half]
    return torch.cat([forward, annotations[:, 0, half:]], dim=-1)


class Seq2Seq(nn.Module):
    """Encoder-decoder for character sequences, with or without attention.

    ``Seq2Seq(..., attention_dim=None)`` is the baseline whose decoder sees the input
    only through the encoder's final states.
    """

    def __init__(
        self,
        source_vocab_size: int,
        target_vocab_size: int,
        embed_dim: int = 32,
        hidden_dim: int = 64,
        attention_dim: int | None = 64,
    ):
        super().__init__()
        self.encoder = Encoder(source_vocab_size, embed_dim, hidden_dim)
        self.decoder = Decoder(
            target_vocab_size, embed_dim, hidden_dim, 2 * hidden_dim, attention_dim
        )

    def encode(self, ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Everything the decoder needs before its first step.

        ids ``(batch, m)`` padded with PAD, lengths ``(batch,)`` -> annotations
        ``(batch, m', 2 hidden)``, mask ``(batch, m')`` (True at real characters) and the
        first decoder state s_{-1} ``(batch, hidden)``, where m' = lengths.max(): columns
        that are padding in every row are dropped.
        """
        lengths = lengths.to(ids.device)
        ids = ids[:, : int(lengths.max())]
        annotations, summary = self.encoder(ids, lengths)
        state = torch.tanh(self.decoder.init_state(summary))
        return annotations, padding_mask(lengths, ids.shape[1]), state

    def forward(
        self,
        ids: Tensor,
        lengths: Tensor,
        targets: Tensor | None = None,
        steps: int = TARGET_STEPS,
    ) -> tuple[Tensor, Tensor | None]:
        """Run the decoder for ``targets.shape[1]`` steps (or ``steps``).

        With ``targets`` ``(batch, n)`` it is teacher-forced: step i reads the true
        character i - 1 (``<bos>`` at step 0). Without, it is greedy and never stops
        early: step i reads its own previous output.

        Returns:
            logits ``(batch, n, vocab)`` and attention weights ``(batch, n, m')`` (None
            without attention), m' = lengths.max().
        """
        annotations, mask, state = self.encode(ids, lengths)
        previous = torch.full(
            (ids.shape[0],), CharVocab.BOS, dtype=torch.long, device=ids.device
        )
        num_steps = targets.shape[1] if targets is not None else steps
        all_logits, all_weights = [], []
        for i in range(num_steps):
            logits, state, weights = self.decoder.step(
                previous, state, annotations, mask
            )
            all_logits.append(logits)
            all_weights.append(weights)
            previous = targets[:, i] if targets is not None else logits.argmax(dim=-1)
        weights = None if all_weights[0] is None else torch.stack(all_weights, dim=1)
        return torch.stack(all_logits, dim=1), weights


def seq2seq_loss(model: Seq2Seq, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """Teacher-forced cross-entropy of one batch ``(ids, lengths, targets)`` (Lab 03,
    Exercise 03.2): the mean over every target character that is not PAD.

    targets ``(batch, n)``: each row's characters, its EOS, then PAD."""
    ids, lengths, targets = batch
    logits, _ = model(ids, lengths, targets)
    return F.cross_entropy(
        logits.flatten(0, 1), targets.flatten(), ignore_index=CharVocab.PAD
    )


@torch.no_grad()
def greedy_decode(
    model: Seq2Seq, ids: Tensor, lengths: Tensor, max_steps: int = TARGET_STEPS
) -> Tensor:
    """Greedy decoding (Lab 03, Exercise 03.3): each step feeds back the most likely
    character of the step before, starting from ``<bos>``.

    Returns ids ``(batch, k)``, k <= ``max_steps``: row b holds its characters up to and
    including its first EOS, then PAD. Decoding stops after ``max_steps`` steps, or
    earlier, after the step at which the last unfinished row writes its EOS.
    """
    with evaluating(model):
        annotations, mask, state = model.encode(ids, lengths)
        previous = torch.full(
            (ids.shape[0],), CharVocab.BOS, dtype=torch.long, device=ids.device
        )
        finished = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
        outputs = []
        for _ in range(max_steps):
            logits, state, _ = model.decoder.step(previous, state, annotations, mask)
            previous = logits.argmax(dim=-1).masked_fill(finished, CharVocab.PAD)
            outputs.append(previous)
            finished = finished | (previous == CharVocab.EOS)
            if finished.all():
                break
    return torch.stack(outputs, dim=1)


@torch.no_grad()
def translate(
    model: Seq2Seq,
    texts: list[str],
    source_vocab: CharVocab,
    target_vocab: CharVocab,
    steps: int = TARGET_STEPS,
) -> tuple[list[str], Tensor | None]:
    """Greedy decoding of ``texts`` for ``steps`` steps; returns the outputs (each up to
    its first EOS) and the attention weights ``(len(texts), steps, longest)`` (None for
    a model without attention)."""
    ids, lengths = source_vocab.encode(texts)
    with evaluating(model):
        logits, weights = model(ids, lengths, steps=steps)
    return target_vocab.decode(logits.argmax(dim=-1)), weights
