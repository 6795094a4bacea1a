"""A small decoder-only transformer (Unit 08) in the GPT layout (Radford et al. 2019).

Shapes: tokens ``(batch, n)`` of integer ids; activations ``(batch, n, d_model)``;
attention weights ``(batch, heads, n, n)``; logits ``(batch, n, vocab_size)``.
Unit 09's key-value cache (:func:`attention_kit.efficient.cached_forward`) reuses
:meth:`MiniTransformer.embed`, :meth:`MiniTransformer.attention_mask` and each block's
modules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import MultiHeadAttention
from .masks import causal_band
from .positional import apply_rope, sinusoidal_encoding
from .train import evaluating

POSITIONS = ("learned", "sinusoidal", "rope", "none")
INITS = ("gpt2", "pytorch")


class FeedForward(nn.Module):
    """The position-wise feed-forward network ``down(gelu(up(x)))``, token by token.
    ``up``: ``Linear(d_model, d_ff)``; ``down``: ``Linear(d_ff, d_model)``."""

    def __init__(self, d_model: int, d_ff: int, bias: bool = True):
        super().__init__()
        self.up = nn.Linear(d_model, d_ff, bias=bias)
        self.down = nn.Linear(d_ff, d_model, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """x ``(..., d_model)`` -> ``(..., d_model)``."""
        return self.down(F.gelu(self.up(x)))


class RotaryMultiHeadAttention(MultiHeadAttention):
    """:class:`MultiHeadAttention` with RoPE (Su et al. 2021): each head's queries and
    keys are rotated by their positions before the scores; values are not."""

    def transform_queries_keys(
        self, q: Tensor, k: Tensor, positions: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """q ``(batch, heads, n, head_dim)`` and k ``(batch, heads, m, head_dim)``
        rotated by ``positions`` ``(n,)`` (n = m), or by ``0..n-1`` and ``0..m-1``."""
        return apply_rope(q, positions), apply_rope(k, positions)


class Block(nn.Module):
    """One transformer block. Pre-LN (GPT-2): ``x + attention(norm1(x))``, then
    ``x + ffn(norm2(x))``. Post-LN (Vaswani et al. 2017, ``pre_norm=False``):
    ``norm1(x + attention(x))``, then ``norm2(x + ffn(x))``."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        pre_norm: bool = True,
        rope: bool = False,
    ):
        super().__init__()
        self.pre_norm = pre_norm
        self.norm1 = nn.LayerNorm(d_model)
        attention = RotaryMultiHeadAttention if rope else MultiHeadAttention
        self.attention = attention(d_model, num_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_ff)

    def forward(
        self, x: Tensor, mask: Tensor | None = None, positions: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """x ``(batch, n, d_model)``, mask ``(n, n)`` (True = may attend), positions
        ``(n,)`` (for RoPE) -> the new x ``(batch, n, d_model)`` and the weights
        ``(batch, heads, n, n)``."""
        if self.pre_norm:
            normed = self.norm1(x)
            update, weights = self.attention(
                normed, normed, normed, mask, positions=positions
            )
            x = x + update
            x = x + self.ffn(self.norm2(x))
        else:
            update, weights = self.attention(x, x, x, mask, positions=positions)
            x = self.norm1(x + update)
            x = self.norm2(x + self.ffn(x))
        return x, weights


@dataclass
class TransformerConfig:
    """The sizes of a :class:`MiniTransformer`.

    ``positions``: "learned" (an embedding per position), "sinusoidal" (Vaswani et al.
    2017, added to the token embeddings), "rope" (rotating queries and keys) or "none".
    ``window``: None for full causal attention; w lets each token see itself and the
    w - 1 tokens before it (w = 1: only itself). ``d_ff`` defaults to 4 * d_model.
    ``init``: "gpt2" (:meth:`MiniTransformer.initialise`) or "pytorch" (each layer's
    own default: ``nn.Embedding`` N(0, 1), ``nn.Linear`` uniform in +-1/sqrt(fan_in)).
    """

    vocab_size: int
    context_length: int
    d_model: int = 64
    num_layers: int = 2
    num_heads: int = 4
    d_ff: int | None = None
    positions: str = "learned"
    pre_norm: bool = True
    tie_embeddings: bool = False
    window: int | None = None
    init: str = "gpt2"

    def __post_init__(self):
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, not {self.init!r}")
        if self.positions not in POSITIONS:
            raise ValueError(
                f"positions must be one of {POSITIONS}, not {self.positions!r}"
            )
        if self.window is not None and self.window < 1:
            raise ValueError(
                f"window must be >= 1 (1: each token sees only itself), got {self.window}"
            )
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model


class MiniTransformer(nn.Module):
    """A decoder-only transformer: token ids ``(batch, n)`` -> logits ``(batch, n,
    vocab_size)`` and every layer's attention weights. Output t scores token t + 1."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = c = config
        self.token_embedding = nn.Embedding(c.vocab_size, c.d_model)
        if c.positions == "learned":
            self.position_embedding = nn.Embedding(c.context_length, c.d_model)
        if c.positions == "sinusoidal":
            encoding = sinusoidal_encoding(c.context_length, c.d_model)
            self.register_buffer("position_encoding", encoding, persistent=False)
        self.blocks = nn.ModuleList(
            Block(c.d_model, c.num_heads, c.d_ff, c.pre_norm, c.positions == "rope")
            for _ in range(c.num_layers)
        )
        self.final_norm = nn.LayerNorm(c.d_model)
        self.output = nn.Linear(c.d_model, c.vocab_size, bias=False)
        if c.tie_embeddings:
            self.output.weight = self.token_embedding.weight
        if c.init == "gpt2":
            self.initialise()

    @torch.no_grad()
    def initialise(self) -> None:
        """GPT-2's initialisation (Radford et al. 2019): embedding and linear weights
        from N(0, 0.02^2), zero biases, LayerNorms at scale 1 and shift 0, and the two
        projections that add into the residual stream in each block (``W_o`` and
        ``ffn.down``) at std 0.02 / sqrt(2 * num_layers). The initial loss is then
        close to log(vocab_size), tied or not."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        residual_std = 0.02 / math.sqrt(2 * self.config.num_layers)
        for block in self.blocks:
            nn.init.normal_(block.attention.W_o.weight, std=residual_std)
            nn.init.normal_(block.ffn.down.weight, std=residual_std)

    def attention_mask(self, n: int, start: int = 0) -> Tensor:
        """``(n, start + n)`` boolean: queries at positions ``start .. start + n - 1``
        against keys ``0 .. start + n - 1``; causal, narrowed to the window if any."""
        device = self.output.weight.device
        queries = torch.arange(start, start + n, device=device)
        keys = torch.arange(start + n, device=device)
        return causal_band(queries, keys, self.config.window)

    def embed(self, tokens: Tensor, positions: Tensor) -> Tensor:
        """Token embeddings ``(batch, n, d_model)`` plus the learned or sinusoidal
        encodings of ``positions`` ``(n,)`` (RoPE and "none" add nothing here)."""
        x = self.token_embedding(tokens)
        if self.config.positions == "learned":
            x = x + self.position_embedding(positions)
        if self.config.positions == "sinusoidal":
            x = x + self.position_encoding[positions]
        return x

    def forward(self, tokens: Tensor, start: int = 0) -> tuple[Tensor, list[Tensor]]:
        """tokens ``(batch, n)`` at positions ``start..start+n-1`` -> logits ``(batch,
        n, vocab_size)`` and a list of ``num_layers`` weights ``(batch, heads, n, n)``."""
        n = tokens.shape[1]
        if start + n > self.config.context_length:
            raise ValueError(
                f"{start + n} tokens, context is {self.config.context_length}"
            )
        positions = torch.arange(start, start + n, device=tokens.device)
        x = self.embed(tokens, positions)
        mask = self.attention_mask(n, start)[:, start:]
        weights = []
        for block in self.blocks:
            x, w = block(x, mask, positions)
            weights.append(w)
        return self.output(self.final_norm(x)), weights


def count_parameters(
    vocab_size: int,
    context_length: int,
    d_model: int,
    num_layers: int,
    d_ff: int,
    positions: str = "learned",
    tie_embeddings: bool = False,
) -> int:
    """The number of parameters of :class:`MiniTransformer` (and of GPT-2) as a formula.

    The number of heads does not appear: splitting d_model into heads adds no weights.
    """
    embeddings = vocab_size * d_model
    if positions == "learned":
        embeddings += context_length * d_model
    attention = 4 * d_model * d_model + 4 * d_model  # W_q, W_k, W_v, W_o and biases
    ffn = 2 * d_model * d_ff + d_ff + d_model  # up and down, with biases
    norms = 2 * 2 * d_model  # two LayerNorms, each a scale and a shift per feature
    block = attention + ffn + norms
    output = 0 if tie_embeddings else d_model * vocab_size  # no bias, as in GPT-2
    return embeddings + num_layers * block + 2 * d_model + output


def lm_loss(logits: Tensor, tokens: Tensor, ignore_index: int = -100) -> Tensor:
    """The language-model loss: position t's logits score token t + 1.

    logits ``(batch, n, vocab)`` computed from ``tokens`` ``(batch, n)``; the last
    position has no next token and the first token is never a target. Targets equal to
    ``ignore_index`` (e.g. padding) are left out of the mean.
    """
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]),
        tokens[:, 1:].reshape(-1),
        ignore_index=ignore_index,
    )


def filter_logits(logits: Tensor, temperature: float = 1.0, top_k: int | None = None):
    """Logits ``(..., vocab)`` divided by the temperature, with everything below the
    k-th largest set to -inf. softmax of the result is the sampling distribution."""
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth_largest = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    return logits


@torch.no_grad()
def generate(
    model: MiniTransformer,
    prompt: Tensor,
    num_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    greedy: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Extend ``prompt`` ``(batch, n)`` by ``num_tokens`` tokens, one at a time,
    recomputing the whole (last ``context_length``) prefix at every step.

    Each new token is :func:`next_token` of the last position's logits: the most likely
    (``greedy``) or drawn with ``generator``. Returns ``(batch, n + num_tokens)``.
    """
    tokens = prompt
    with evaluating(model):
        for _ in range(num_tokens):
            logits, _ = model(tokens[:, -model.config.context_length :])
            new = next_token(logits[:, -1], temperature, top_k, greedy, generator)
            tokens = torch.cat([tokens, new], dim=1)
    return tokens


def next_token(
    last: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    greedy: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One step's choice from the last position's logits ``(batch, vocab)``: the most
    likely token (``greedy``) or a draw from softmax(filter_logits(...)) with
    ``generator``. Returns ids ``(batch, 1)``."""
    if greedy:
        return last.argmax(dim=-1, keepdim=True)
    probabilities = torch.softmax(filter_logits(last, temperature, top_k), dim=-1)
    return torch.multinomial(probabilities, 1, generator=generator)


# --- training and evaluation helpers for Lab 08 and make bench --------------------------


def recall_loss(model: MiniTransformer, batch: tuple[Tensor, Tensor]) -> Tensor:
    """Associative recall: cross-entropy of the value predicted at the last position
    (the query key) for a batch ``(inputs (batch, n), targets (batch,))``."""
    inputs, targets = batch
    logits, _ = model(inputs)
    return F.cross_entropy(logits[:, -1], targets)


@torch.no_grad()
def recall_accuracy(model: MiniTransformer, inputs: Tensor, targets: Tensor) -> float:
    """The fraction of sequences whose most likely last-position token is the value."""
    with evaluating(model):
        logits, _ = model(inputs)
    return (logits[:, -1].argmax(dim=-1) == targets).float().mean().item()


def text_windows(ids: Tensor, length: int) -> Tensor:
    """Every window of ``length`` consecutive ids of a 1-D text: ``(len - length + 1,
    length)``, a view (no copy), for :func:`attention_kit.train.random_batches`."""
    return ids.unfold(0, length, 1)


@torch.no_grad()
def bits_per_character(model: MiniTransformer, ids: Tensor) -> float:
    """The LM loss in bits per character on a 1-D text, cut into chunks of the model's
    context; the first character of each chunk is context only, never a target."""
    length = model.config.context_length
    chunks = ids[: len(ids) // length * length].view(-1, length)
    with evaluating(model):
        nats = sum(  # every chunk has length - 1 targets: weigh each batch by its rows
            lm_loss(model(batch)[0], batch).item() * len(batch)
            for batch in chunks.split(256)
        )
    return nats / len(chunks) / math.log(2)
