"""Unit 10: reading attention. A small attention-only transformer whose heads can be
looked at, removed and edited, the data it learns induction on, and the methods that
claim to say what a model attends to.

The model (:class:`AttentionOnlyTransformer`) is Unit 08's decoder without feed-forward
networks, as in Elhage et al. (2021) and Olsson et al. (2022): token embedding plus a
learned embedding per position (or none), ``num_layers`` causal attention layers, each
``x + sum_i head_i(norm(x)) + b_O``, a final LayerNorm and a linear map to the logits.
What makes it readable is that each layer returns every head's contribution to the
residual stream on its own: head i adds ``A_i V_i W_O^i`` (``(batch, n, d_model)``),
where ``W_O^i`` is head i's ``head_dim`` rows of ``W_O``. So a head can be zeroed,
replaced by its mean, or given other attention weights, and the sum of the heads plus
the bias is exactly what ``nn.MultiheadAttention``'s output projection gives.

Shapes: tokens ``(batch, n)``; residual stream ``(batch, n, d_model)``; per-head outputs
``(batch, heads, n, d_model)``; weights ``(batch, heads, n, n)`` per layer; logits
``(batch, n, vocab_size)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import head_size, scaled_dot_product_attention, split_heads
from .masks import causal_mask
from .train import History, evaluating, fit, random_batches, set_seed
from .transformer import lm_loss

# ---------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------


class HeadwiseAttention(nn.Module):
    """Pre-LN causal multi-head self-attention that keeps each head's output apart.

    ``norm``: LayerNorm(d_model); ``W_q``, ``W_k``, ``W_v``, ``W_o``: Linear(d_model,
    d_model) as in the kit's :class:`~attention_kit.attention.MultiHeadAttention`.
    """

    def __init__(self, d_model: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_size(d_model, num_heads)
        self.norm = nn.LayerNorm(d_model)
        self.W_q = nn.Linear(d_model, d_model)
        self.W_k = nn.Linear(d_model, d_model)
        self.W_v = nn.Linear(d_model, d_model)
        self.W_o = nn.Linear(d_model, d_model)

    def output_matrices(self) -> Tensor:
        """Every head's block of W_O: ``(heads, head_dim, d_model)``. (``nn.Linear``
        stores (out, in), so W_O is ``W_o.weight.T``; head i owns rows i*head_dim on.)"""
        return self.W_o.weight.T.reshape(self.num_heads, self.head_dim, -1)

    def values(self, x: Tensor) -> Tensor:
        """The values of the normalised stream x ``(batch, n, d_model)``: ``(batch,
        heads, n, head_dim)``."""
        return split_heads(self.W_v(self.norm(x)), self.num_heads)

    def forward(
        self, x: Tensor, weights: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """x ``(batch, n, d_model)`` -> per-head outputs ``(batch, heads, n, d_model)``
        and the weights ``(batch, heads, n, n)``. Given ``weights``, the layer uses them
        instead of its own (to ask what the head would output with another map)."""
        normed = self.norm(x)
        v = split_heads(self.W_v(normed), self.num_heads)
        if weights is None:
            q = split_heads(self.W_q(normed), self.num_heads)
            k = split_heads(self.W_k(normed), self.num_heads)
            mask = causal_mask(x.shape[1], device=x.device)
            _, weights = scaled_dot_product_attention(q, k, v, mask)
        mixed = weights @ v  # (batch, heads, n, head_dim)
        per_head = torch.einsum("bhnk,hkd->bhnd", mixed, self.output_matrices())
        return per_head, weights


@dataclass
class AttentionOnlyConfig:
    """The sizes of an :class:`AttentionOnlyTransformer`; ``positions`` is "learned"
    (an embedding per position) or "none"."""

    vocab_size: int
    context_length: int
    d_model: int = 64
    num_layers: int = 2
    num_heads: int = 4
    positions: str = "learned"

    def __post_init__(self):
        if self.positions not in ("learned", "none"):
            raise ValueError(
                f"positions is 'learned' or 'none', not {self.positions!r}"
            )


# ``edit(layer, per_head)`` returns the per-head outputs to use instead (an ablation).
HeadEdit = Callable[[int, Tensor], Tensor]


class AttentionOnlyTransformer(nn.Module):
    """A decoder-only transformer without feed-forward networks whose heads can be
    removed or edited one at a time. tokens ``(batch, n)`` -> logits ``(batch, n,
    vocab_size)`` and a list of ``num_layers`` weights ``(batch, heads, n, n)``."""

    def __init__(self, config: AttentionOnlyConfig):
        super().__init__()
        self.config = c = config
        self.token_embedding = nn.Embedding(c.vocab_size, c.d_model)
        if c.positions == "learned":
            self.position_embedding = nn.Embedding(c.context_length, c.d_model)
        self.layers = nn.ModuleList(
            HeadwiseAttention(c.d_model, c.num_heads) for _ in range(c.num_layers)
        )
        self.final_norm = nn.LayerNorm(c.d_model)
        self.output = nn.Linear(c.d_model, c.vocab_size, bias=False)

    def embed(self, tokens: Tensor) -> Tensor:
        """The residual stream before layer 0: ``(batch, n, d_model)``."""
        n = tokens.shape[1]
        if n > self.config.context_length:
            raise ValueError(f"{n} tokens, context is {self.config.context_length}")
        x = self.token_embedding(tokens)
        if self.config.positions == "learned":
            x = x + self.position_embedding(torch.arange(n, device=tokens.device))
        return x

    def unembed(self, x: Tensor) -> Tensor:
        """The residual stream after the last layer -> logits ``(batch, n, vocab)``."""
        return self.output(self.final_norm(x))

    def forward(
        self,
        tokens: Tensor,
        edit: HeadEdit | None = None,
        weights: dict[int, Tensor] | None = None,
    ) -> tuple[Tensor, list[Tensor]]:
        """Run the model; ``edit(layer, per_head)`` may replace a layer's per-head
        outputs (see :func:`ablate`), ``weights[layer]`` a layer's attention weights."""
        return self.run_from(self.embed(tokens), edit, weights)

    def run_from(
        self,
        x: Tensor,
        edit: HeadEdit | None = None,
        weights: dict[int, Tensor] | None = None,
    ) -> tuple[Tensor, list[Tensor]]:
        """The layers and the unembedding from the embedded stream x ``(batch, n,
        d_model)`` (gradient x input differentiates with respect to it)."""
        all_weights = []
        for index, layer in enumerate(self.layers):
            per_head, w = layer(x, None if weights is None else weights.get(index))
            if edit is not None:
                per_head = edit(index, per_head)
            x = x + per_head.sum(dim=1) + layer.W_o.bias
            all_weights.append(w)
        return self.unembed(x), all_weights


# ---------------------------------------------------------------------------------------
# Data: sequences in which a random segment repeats
# ---------------------------------------------------------------------------------------


def repeated_segments(
    num_sequences: int,
    length: int,
    vocab_size: int,
    min_period: int,
    max_period: int,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Sequences that repeat a random segment of ``period`` distinct tokens until they
    are ``length`` long: ``s_0 .. s_{P-1} s_0 .. s_{P-1} s_0 ..``.

    The period is drawn per sequence, uniformly from ``min_period .. max_period``
    (equal bounds give one fixed period). From position ``period`` on, every token has
    appeared before, and the token after its latest copy (at ``t - period + 1``) is the
    next one: an induction head reads it off.

    Returns:
        tokens ``(num_sequences, length)`` int64 and periods ``(num_sequences,)`` int64.
    """
    if not 1 <= min_period <= max_period <= min(length, vocab_size):
        raise ValueError(
            f"need 1 <= min_period <= max_period <= min(length, vocab_size), got "
            f"{min_period}, {max_period} (length {length}, vocabulary {vocab_size})"
        )
    generator = torch.Generator().manual_seed(seed)
    periods = torch.randint(
        min_period, max_period + 1, (num_sequences,), generator=generator
    )
    # distinct tokens within a segment: the first P entries of a random permutation
    segments = torch.rand(num_sequences, vocab_size, generator=generator).argsort(dim=1)
    positions = torch.arange(length)
    tokens = segments.gather(1, positions[None, :] % periods[:, None])
    return tokens, periods


def repeated_part(periods: Tensor, length: int) -> Tensor:
    """``(batch, length)`` bool, True at positions t >= period: the token there is a
    repeat, so the next one can be read off its latest copy."""
    return torch.arange(length, device=periods.device)[None, :] >= periods[:, None]


def sequence_loss(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
    """The language-model loss of ``model`` on ``batch[0]`` (tokens), for ``fit``."""
    logits, _ = model(batch[0])
    return lm_loss(logits, batch[0])


@torch.no_grad()
def next_token_accuracy(logits: Tensor, tokens: Tensor, periods: Tensor) -> dict:
    """Next-token accuracy and loss on the first occurrence and on the repeated part.

    Position t predicts token t + 1; it belongs to the repeated part when t >= period
    (see :func:`repeated_part`); the others are the first occurrence, whose next token
    has not appeared before.
    Returns ``{"repeated": accuracy, "first": accuracy, "repeated loss": nats,
    "first loss": nats}``.
    """
    predicted, targets = logits[:, :-1], tokens[:, 1:]
    repeated = repeated_part(periods, tokens.shape[1])[:, :-1]
    correct = (predicted.argmax(dim=-1) == targets).float()
    losses = F.cross_entropy(predicted.transpose(1, 2), targets, reduction="none")
    return {
        "repeated": correct[repeated].mean().item(),
        "first": correct[~repeated].mean().item(),
        "repeated loss": losses[repeated].mean().item(),
        "first loss": losses[~repeated].mean().item(),
    }


# ---------------------------------------------------------------------------------------
# Scores that find heads (Exercises 10.1 and 10.2)
# ---------------------------------------------------------------------------------------


def previous_token_score(weights: Tensor) -> Tensor:
    """Per head, the mean weight from each token to the one just before it.

    weights ``(batch, heads, n, n)`` with n >= 2 -> ``(heads,)``: the mean of
    ``A[b, head, t, t - 1]`` over every sequence b and every t >= 1.
    """
    return weights.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, 2))


def induction_score(weights: Tensor, periods: Tensor) -> Tensor:
    """Per head, the mean weight from each repeated token to the token after its
    earlier copy: ``A[b, head, t, t - period_b + 1]``.

    weights ``(batch, heads, n, n)``, periods ``(batch,)`` -> ``(heads,)``: the mean over
    every pair (b, t) with t >= period_b (all sequences pooled; there must be at least
    one such pair).
    """
    batch, heads, n, _ = weights.shape
    t = torch.arange(n, device=weights.device)
    source = (t[None, :] - periods[:, None] + 1).clamp(min=0)  # (batch, n)
    picked = weights.gather(-1, source[:, None, :, None].expand(batch, heads, n, 1))
    repeated = repeated_part(periods, n)[:, None, :].to(weights.dtype)  # (batch, 1, n)
    return (picked.squeeze(-1) * repeated).sum(dim=(0, 2)) / repeated.sum()


# ---------------------------------------------------------------------------------------
# Ablation (Exercise 10.3)
# ---------------------------------------------------------------------------------------


def ablate(layer: int, head: int, mode: str = "zero") -> HeadEdit:
    """An ``edit`` for :meth:`AttentionOnlyTransformer.forward` that removes one head:
    ``"zero"`` sets its output to 0, ``"mean"`` to its mean over the batch and the
    positions (a constant vector: the head's average contribution, no information)."""
    if mode not in ("zero", "mean"):
        raise ValueError(f"mode is 'zero' or 'mean', not {mode!r}")

    def edit(index: int, per_head: Tensor) -> Tensor:
        if index != layer:
            return per_head
        output = per_head[:, head]
        replacement = (
            torch.zeros_like(output)
            if mode == "zero"
            else output.mean(dim=(0, 1), keepdim=True).expand_as(output)
        )
        return torch.cat(
            [per_head[:, :head], replacement[:, None], per_head[:, head + 1 :]], dim=1
        )

    return edit


def ablated_loss(
    model: AttentionOnlyTransformer,
    tokens: Tensor,
    layer: int,
    head: int,
    mode: str = "zero",
) -> Tensor:
    """The language-model loss (a scalar) of ``model`` on ``tokens`` ``(batch, n)``
    with head ``head`` of layer ``layer`` removed (see :func:`ablate`); every later
    layer sees the changed residual stream."""
    with evaluating(model):
        logits, _ = model(tokens, edit=ablate(layer, head, mode))
    return lm_loss(logits, tokens)


# ---------------------------------------------------------------------------------------
# What a head's weights are worth: norms, rollout, gradients (Exercise 10.4)
# ---------------------------------------------------------------------------------------


def norm_weighted_attention(weights: Tensor, values: Tensor, W_o: Tensor) -> Tensor:
    """Kobayashi et al. (2020): how much key j moves query t's output in each head,
    ``|| a_tj * v_j W_o[head] ||``, the length of key j's term in the head's output.

    weights ``(batch, heads, n, m)``, values ``(batch, heads, m, head_dim)``, W_o
    ``(heads, head_dim, d_model)`` (every head's block of W_O) -> ``(batch, heads, n,
    m)``, non-negative.
    """
    projected = torch.einsum("bhmk,hkd->bhmd", values, W_o)  # (batch, heads, m, d)
    return weights * projected.norm(dim=-1)[:, :, None, :]


@torch.no_grad()
def layer_norm_weighted(
    model: AttentionOnlyTransformer, tokens: Tensor
) -> list[Tensor]:
    """:func:`norm_weighted_attention` of every layer of ``model`` on ``tokens``
    ``(batch, n)``: a list of ``(batch, heads, n, n)``."""
    maps = []
    with evaluating(model):
        x = model.embed(tokens)
        for layer in model.layers:
            per_head, weights = layer(x)
            norms = norm_weighted_attention(
                weights, layer.values(x), layer.output_matrices()
            )
            maps.append(norms)
            x = x + per_head.sum(dim=1) + layer.W_o.bias
    return maps


def attention_rollout(layer_weights: list[Tensor]) -> Tensor:
    """Abnar & Zuidema (2020): how much each input position flows into each position
    after all layers, if attention were the only way information moved.

    Each layer's weights ``(batch, heads, n, n)`` are averaged over heads, the residual
    connection is modelled as ``0.5 * A + 0.5 * I``, and the layers are multiplied,
    first layer rightmost. Returns ``(batch, n, n)``, rows summing to 1.
    """
    rollout = None
    for weights in layer_weights:
        averaged = weights.mean(dim=1)
        eye = torch.eye(
            averaged.shape[-1], dtype=averaged.dtype, device=averaged.device
        )
        step = 0.5 * averaged + 0.5 * eye
        rollout = step if rollout is None else step @ rollout
    return rollout


def gradient_times_input(
    model: AttentionOnlyTransformer, tokens: Tensor, queries: Tensor, targets: Tensor
) -> Tensor:
    """Per input position, the gradient of the logit of ``targets[b]`` at position
    ``queries[b]`` with respect to the embedded input (token plus position), times
    that input, summed over features (a first-order estimate of each input's share).

    tokens ``(batch, n)``, queries and targets ``(batch,)`` -> ``(batch, n)``.
    """
    with evaluating(model):
        x = model.embed(tokens).detach().requires_grad_(True)
        logits, _ = model.run_from(x)
    rows = torch.arange(len(tokens))
    chosen = logits[rows, queries, targets].sum()
    (gradient,) = torch.autograd.grad(chosen, x)
    return (gradient * x).sum(dim=-1).detach()


def copy_weight(weights: Tensor, periods: Tensor) -> Tensor:
    """Per head, the mean weight from each repeated token to the tokens after ALL its
    earlier copies, ``A[b, head, t, j]`` summed over ``j <= t`` with ``j = t + 1 (mod
    period_b)``, then averaged like :func:`induction_score` over every (b, t) with
    t >= period_b. It counts a head that reads any earlier copy, where the induction
    score counts only the latest. weights ``(batch, heads, n, n)`` -> ``(heads,)``."""
    n = weights.shape[-1]
    t = torch.arange(n, device=weights.device)
    same_phase = (t[None, :, None] + 1 - t[None, None, :]) % periods[:, None, None] == 0
    earlier = t[None, None, :] <= t[None, :, None]
    columns = (same_phase & earlier).to(weights.dtype)  # (batch, n, n)
    on_copies = (weights * columns[:, None]).sum(dim=-1)  # (batch, heads, n)
    repeated = repeated_part(periods, n)[:, None, :].to(weights.dtype)
    return (on_copies * repeated).sum(dim=(0, 2)) / repeated.sum()


def swap_copies(weights: Tensor, periods: Tensor) -> Tensor:
    """Other attention weights that should give (almost) the same output: in every row
    t >= 2 * period, the weights on key t - period + 1 (the token after the latest copy
    of token t) and on key t - 2 * period + 1 (the same token, one copy earlier) trade
    places. Rows t < 2 * period are unchanged.

    weights ``(batch, heads, n, n)``, periods ``(batch,)`` -> a new tensor, rows still
    summing to 1.
    """
    batch, heads, n, _ = weights.shape
    t = torch.arange(n, device=weights.device)[None, :]
    swappable = (t >= 2 * periods[:, None])[:, None, :, None]  # (batch, 1, n, 1)

    def column(offset: Tensor) -> Tensor:
        index = (t - offset[:, None] + 1).clamp(min=0)
        return index[:, None, :, None].expand(batch, heads, n, 1)

    latest, earlier = column(periods), column(2 * periods)
    on_latest = weights.gather(-1, latest) * swappable
    on_earlier = weights.gather(-1, earlier) * swappable
    change = on_earlier - on_latest
    return weights.scatter_add(-1, latest, change).scatter_add(-1, earlier, -change)


# ---------------------------------------------------------------------------------------
# Faithfulness: which earlier position does a prediction come from?
# ---------------------------------------------------------------------------------------


def one_query_per_sequence(periods: Tensor, seed: int = 0) -> tuple[Tensor, Tensor]:
    """For sequences of :func:`repeated_segments` (periods >= 2): a random position
    ``q`` of each segment's second copy but its last, ``period <= q <= 2 * period - 2``,
    and the position its next token is copied from, ``q - period + 1``: the only
    position before q that holds that token. Returns ``(queries, sources)``, each
    ``(batch,)``."""
    generator = torch.Generator().manual_seed(seed)
    offsets = (torch.rand(len(periods), generator=generator) * (periods - 1)).long()
    queries = periods + offsets
    return queries, queries - periods + 1


def _at_queries(maps: Tensor, queries: Tensor) -> Tensor:
    """Row ``queries[b]`` of ``maps[b]`` ``(batch, n, n)`` -> ``(batch, n)``."""
    return maps[torch.arange(len(queries)), queries]


@torch.no_grad()
def removal_effect(
    model: AttentionOnlyTransformer, tokens: Tensor, queries: Tensor
) -> Tensor:
    """A causal test of what the last layer reads: for each key j, how much the
    log-probability of the true next token at position ``queries[b]`` drops when no
    query may attend to key j in the last layer (its weight set to 0 in every head, the
    others rescaled to sum to 1). Positions of the last layer do not interact after it,
    so one run per key serves every query. tokens ``(batch, n)``, queries ``(batch,)``
    -> ``(batch, n)``."""
    last = len(model.layers) - 1
    rows = torch.arange(len(tokens))
    targets = tokens[rows, queries + 1]

    def target_log_prob(logits: Tensor) -> Tensor:
        return logits[rows, queries].log_softmax(dim=-1)[rows, targets]

    drops = []
    with evaluating(model):
        logits, weights = model(tokens)
        before = target_log_prob(logits)
        for j in range(tokens.shape[1]):
            edited = weights[last].clone()
            edited[..., j] = 0.0
            edited = edited / edited.sum(dim=-1, keepdim=True).clamp(min=1e-12)
            after = target_log_prob(model(tokens, weights={last: edited})[0])
            drops.append(before - after)
    return torch.stack(drops, dim=1)


def attribution_scores(
    model: AttentionOnlyTransformer, tokens: Tensor, queries: Tensor
) -> dict[str, Tensor]:
    """What five methods say the prediction at position ``queries[b]`` (of token
    ``queries[b] + 1``) comes from: a score per position, ``(batch, n)`` each, -inf at
    the query's own position and after it (those are not candidates).

    - "last layer's weights": the last layer's weights, mean over heads;
    - "attention rollout": :func:`attention_rollout` of every layer;
    - "norm-weighted": :func:`norm_weighted_attention` of the last layer, summed over
      heads;
    - "gradient x input": :func:`gradient_times_input` of the true next token's logit,
      absolute value;
    - "ablation": :func:`removal_effect`, the causal test.
    """
    rows = torch.arange(len(tokens))
    with torch.no_grad(), evaluating(model):
        _, weights = model(tokens)
    norms = layer_norm_weighted(model, tokens)[-1]
    targets = tokens[rows, queries + 1]
    scores = {
        "last layer's weights": _at_queries(weights[-1].mean(dim=1), queries),
        "attention rollout": _at_queries(attention_rollout(weights), queries),
        "norm-weighted": _at_queries(norms.sum(dim=1), queries),
        "gradient x input": gradient_times_input(model, tokens, queries, targets).abs(),
        "ablation": removal_effect(model, tokens, queries),
    }
    later = torch.arange(tokens.shape[1])[None, :] >= queries[:, None]
    return {name: s.masked_fill(later, float("-inf")) for name, s in scores.items()}


def faithfulness(
    model: AttentionOnlyTransformer, tokens: Tensor, queries: Tensor, sources: Tensor
) -> dict[str, float]:
    """For each method of :func:`attribution_scores`, the fraction of sequences whose
    top-scoring position is the true source ``sources[b]``."""
    return {
        name: (scores.argmax(dim=-1) == sources).float().mean().item()
        for name, scores in attribution_scores(model, tokens, queries).items()
    }


# ---------------------------------------------------------------------------------------
# Unit 10's two trained models: the settings, the training, the saved checkpoint
# ---------------------------------------------------------------------------------------

INDUCTION_LENGTH = 32  # tokens per sequence
INDUCTION_VOCAB = 64
VARYING_PERIODS = (8, 16)  # the induction model: a period per sequence, 8 to 16
FIXED_PERIOD = 12  # the shortcut model: every sequence has period 12
INDUCTION_STEPS = 600  # Adam steps of 32 sequences, learning rate 1e-2 (one-cycle)
CHECKPOINT = Path(__file__).resolve().parent / "trained" / "induction.pt"


def induction_model(seed: int = 0) -> AttentionOnlyTransformer:
    """A fresh model for the repeated-segment task: 2 layers of 4 heads, d_model 64,
    learned positions, seeded."""
    set_seed(seed)
    config = AttentionOnlyConfig(
        INDUCTION_VOCAB, INDUCTION_LENGTH, d_model=64, num_layers=2, num_heads=4
    )
    return AttentionOnlyTransformer(config)


def train_induction_model(
    min_period: int,
    max_period: int,
    steps: int = INDUCTION_STEPS,
    seed: int = 0,
    progress: bool = False,
) -> tuple[AttentionOnlyTransformer, History]:
    """Train :func:`induction_model` on 20,000 sequences of :func:`repeated_segments`
    with periods ``min_period .. max_period``, on one thread (so that every machine gets
    the same numbers). Returns the model (in eval mode) and its loss history."""
    model = induction_model(seed)
    tokens, _ = repeated_segments(
        20_000, INDUCTION_LENGTH, INDUCTION_VOCAB, min_period, max_period, seed=seed
    )
    batches = random_batches(tokens, batch_size=32, seed=seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        history = fit(model, sequence_loss, batches, steps, 1e-2, progress=progress)
    finally:
        torch.set_num_threads(threads)
    return model, history


def trained_models() -> dict[str, tuple[AttentionOnlyTransformer, list[float]]]:
    """The two models of Lecture 10 from the saved checkpoint (written by
    ``python -m course_tools.checkpoints``, which runs :func:`train_induction_model`):
    ``{"varying": (model, losses), "fixed": (model, losses)}``, periods
    :data:`VARYING_PERIODS` and :data:`FIXED_PERIOD`, in eval mode."""
    saved = torch.load(CHECKPOINT, weights_only=True)
    models = {}
    for name in ("varying", "fixed"):
        model = induction_model()
        model.load_state_dict(saved[name])
        models[name] = (model.eval(), saved[f"{name} losses"].tolist())
    return models
