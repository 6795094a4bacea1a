"""Lab 08's checkers: right answers written differently pass; MISTAKES (run in
test_checks.py) each fail with their own hint."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attention_kit.attention import MultiHeadAttention
from attention_kit.checks import (
    check_feed_forward,
    check_language_model_loss,
    check_sample_next,
    check_sampling_distribution,
    check_transformer_block,
)
from attention_kit.masks import causal_mask
from attention_kit.transformer import Block, FeedForward, filter_logits
from conftest import assert_fails_with, assert_passes, with_globals

# --- 08.1 FeedForward ------------------------------------------------------------------


class FeedForwardVariant(nn.Module):
    """The lab's class with one thing changed by a class attribute."""

    activation = staticmethod(F.gelu)
    hidden = None  # None: d_ff
    use_bias = True
    after_down = False

    def __init__(self, d_model, d_ff, bias=True):
        super().__init__()
        width = self.hidden(d_model) if self.hidden else d_ff
        bias = bias if self.use_bias else True
        self.up = nn.Linear(d_model, width, bias=bias)
        self.down = nn.Linear(width, d_model, bias=bias)

    def forward(self, x):
        out = self.down(self.activation(self.up(x)))
        return self.activation(out) if self.after_down else out


class FFNLinear(FeedForwardVariant):
    activation = staticmethod(lambda h: h)


class FFNRelu(FeedForwardVariant):
    activation = staticmethod(F.relu)


class FFNFourTimes(FeedForwardVariant):
    hidden = staticmethod(lambda d: 4 * d)


class FFNAlwaysBias(FeedForwardVariant):
    use_bias = False


class FFNTwice(FeedForwardVariant):
    after_down = True


class FFNTanhGelu(FeedForwardVariant):
    activation = staticmethod(lambda h: F.gelu(h, approximate="tanh"))


class FFNWithNorm(FeedForwardVariant):  # a LayerNorm inside: parameters the lab has not
    def __init__(self, d_model, d_ff, bias=True):
        super().__init__(d_model, d_ff, bias)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x):
        return super().forward(self.norm(x))


class FFNEinsumWithBuffer(nn.Module):  # right, written differently
    def __init__(self, d_model, d_ff, bias=True):
        super().__init__()
        self.up = nn.Linear(d_model, d_ff, bias=bias)
        self.down = nn.Linear(d_ff, d_model, bias=bias)
        self.register_buffer("one_half", torch.tensor(0.5))
        self.dropout = nn.Dropout(0.0)

    def forward(self, x):
        h = torch.einsum("...d,fd->...f", x.double(), self.up.weight.double())
        if self.up.bias is not None:
            h = h + self.up.bias
        h = self.one_half * h * (1 + torch.erf(h / math.sqrt(2)))  # exact GELU
        return self.dropout(self.down(h.float()))


class FFNWithDropout(FeedForwardVariant):  # right: dropout is the identity in eval
    def __init__(self, d_model, d_ff, bias=True):
        super().__init__(d_model, d_ff, bias)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x):
        return self.dropout(super().forward(x))


class FFNAlwaysDropout(FeedForwardVariant):  # random even in eval mode
    def forward(self, x):
        return F.dropout(super().forward(x), 0.1, training=True)


def test_feed_forward_reference_and_variants_pass(capsys):
    assert_passes(check_feed_forward, FeedForward, capsys, "FeedForward")
    assert_passes(check_feed_forward, FFNEinsumWithBuffer, capsys)
    assert_passes(check_feed_forward, FFNWithDropout, capsys)


# --- 08.2 TransformerBlock -------------------------------------------------------------


class BlockVariant(nn.Module):
    """The lab's TransformerBlock with one step changed by a class attribute."""

    order = "pre"

    def __init__(self, d_model, num_heads, d_ff):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = MultiHeadAttention(d_model, num_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_ff)

    def attend(self, h, mask):
        return self.attention(h, h, h, mask)

    def forward(self, x, mask=None):
        o = self.order
        if o == "post":
            a, w = self.attend(x, mask)
            x = self.norm1(x + a)
            return self.norm2(x + self.ffn(x)), w
        if o == "stream":
            x = self.norm1(x)
            a, w = self.attend(x, mask)
            x = x + a
            return x + self.ffn(self.norm2(x)), w
        if o == "no-residual":
            x, w = self.attend(self.norm1(x), mask)
            return x + self.ffn(self.norm2(x)), w
        if o == "ffn-first":
            x = x + self.ffn(self.norm2(x))
            a, w = self.attend(self.norm1(x), mask)
            return x + a, w
        if o == "inverted-mask":
            a, w = self.attend(self.norm1(x), None if mask is None else ~mask)
            x = x + a
            return x + self.ffn(self.norm2(x)), w
        if o == "no-norm1":
            a, w = self.attend(x, mask)
            x = x + a
            return x + self.ffn(self.norm2(x)), w
        if o == "own-causal":
            a, w = self.attend(self.norm1(x), causal_mask(x.shape[-2]))
            x = x + a
            return x + self.ffn(self.norm2(x)), w
        if o == "parallel":  # both sub-layers read the same x
            a, w = self.attend(self.norm1(x), mask)
            return x + a + self.ffn(self.norm2(x)), w
        if o == "and-causal":  # the given mask combined with a causal one
            n = x.shape[-2]
            own = None if mask is None else causal_mask(n) & mask
            a, w = self.attend(self.norm1(x), own)
            x = x + a
            return x + self.ffn(self.norm2(x)), w
        if o == "causal-always":  # a causal mask of its own whenever a mask is given
            n = x.shape[-2]
            a, w = self.attend(self.norm1(x), None if mask is None else causal_mask(n))
            x = x + a
            return x + self.ffn(self.norm2(x)), w
        if o == "dropout-always":
            a, w = self.attend(self.norm1(x), mask)
            x = x + F.dropout(a, 0.1, training=True)
            return x + self.ffn(self.norm2(x)), w
        if o == "no-mask":
            a, w = self.attend(self.norm1(x), None)
            x = x + a
            return x + self.ffn(self.norm2(x)), w
        a, w = self.attend(self.norm1(x), mask)
        x = x + a
        return x + self.ffn(self.norm2(x)), w


def block_with(order):
    return type(f"Block_{order}", (BlockVariant,), {"order": order})


class BlockWithExtras(BlockVariant):  # right: a cached mask buffer, dropout (eval)
    def __init__(self, d_model, num_heads, d_ff):
        super().__init__(d_model, num_heads, d_ff)
        self.register_buffer("cached", torch.ones(4, 4, dtype=torch.bool).tril())
        self.dropout = nn.Dropout(0.1)

    def forward(self, x, mask=None):
        h = F.layer_norm(x, x.shape[-1:], self.norm1.weight, self.norm1.bias)
        a, w = self.attention(h, h, h, mask)
        x = x + self.dropout(a)
        return x + self.dropout(self.ffn(self.norm2(x))), w


def test_transformer_block_reference_and_variants_pass(capsys):
    assert_passes(check_transformer_block, Block, capsys, "TransformerBlock")
    assert_passes(check_transformer_block, BlockWithExtras, capsys)


def test_block_that_forgets_the_weights_is_told(capsys):
    class OnlyX(BlockVariant):
        def forward(self, x, mask=None):
            return super().forward(x, mask)[0]

    assert_fails_with(check_transformer_block, OnlyX, "(x, weights)")


# --- 08.3 language_model_loss ----------------------------------------------------------


def loss_ignore_index(logits, tokens, pad_id):
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]),
        tokens[:, 1:].reshape(-1),
        ignore_index=pad_id,
    )


def loss_by_hand(logits, tokens, pad_id):  # right, written with log_softmax and gather
    log_p = torch.log_softmax(logits[:, :-1].double(), -1)
    targets = tokens[:, 1:]
    picked = log_p.gather(-1, targets[..., None]).squeeze(-1)
    keep = targets != pad_id
    return -(picked * keep).sum() / keep.sum()


def loss_no_shift(logits, tokens, pad_id):
    return F.cross_entropy(logits.transpose(1, 2), tokens, ignore_index=pad_id)


def loss_backwards(logits, tokens, pad_id):
    return F.cross_entropy(
        logits[:, 1:].transpose(1, 2), tokens[:, :-1], ignore_index=pad_id
    )


def loss_with_padding(logits, tokens, pad_id):
    return F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:])


def loss_sum(logits, tokens, pad_id):
    return F.cross_entropy(
        logits[:, :-1].transpose(1, 2),
        tokens[:, 1:],
        ignore_index=pad_id,
        reduction="sum",
    )


def loss_pad_zero(logits, tokens, pad_id):
    return loss_ignore_index(logits, tokens, 0)


def loss_row_means(logits, tokens, pad_id):
    losses = F.cross_entropy(
        logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none"
    )
    keep = tokens[:, 1:] != pad_id
    return ((losses * keep).sum(1) / keep.sum(1)).mean()


def loss_float(logits, tokens, pad_id):
    return loss_ignore_index(logits, tokens, pad_id).item()


def loss_in_bits(logits, tokens, pad_id):  # nats / ln 2
    return loss_ignore_index(logits, tokens, pad_id) / math.log(2)


def loss_masked_by_inputs(logits, tokens, pad_id):  # pad read from the inputs
    log_p = torch.log_softmax(logits[:, :-1], -1)
    nll = -log_p.gather(-1, tokens[:, 1:, None]).squeeze(-1)
    keep = tokens[:, :-1] != pad_id
    return (nll * keep).sum() / keep.sum()


def test_language_model_loss_right_answers_pass(capsys):
    assert_passes(check_language_model_loss, loss_ignore_index, capsys, "5/5")
    assert_passes(check_language_model_loss, loss_by_hand, capsys)


# --- 08.4 sampling_distribution --------------------------------------------------------


def distribution_reference(logits, temperature=1.0, top_k=None):
    return torch.softmax(filter_logits(logits, temperature, top_k), -1)


def distribution_sorted(logits, temperature=1.0, top_k=None):  # right, via sort
    scaled = logits.double() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        threshold = scaled.sort(-1, descending=True).values[..., top_k - 1 : top_k]
        scaled = torch.where(scaled >= threshold, scaled, -math.inf)
    return torch.softmax(scaled, -1)


def distribution_multiplied(logits, temperature=1.0, top_k=None):
    return distribution_reference(logits * temperature**2, temperature, top_k)


def distribution_k_plus_one(logits, temperature=1.0, top_k=None):
    k = None if top_k is None else top_k + 1
    return distribution_reference(logits, temperature, k)


def distribution_k_minus_one(logits, temperature=1.0, top_k=None):  # `<=` for `<`
    scaled = logits / temperature
    if top_k is None or top_k >= logits.shape[-1]:
        return torch.softmax(scaled, -1)
    kth = scaled.topk(top_k, -1).values[..., -1:]
    return torch.softmax(scaled.masked_fill(scaled <= kth, -math.inf), -1)


def distribution_smallest(logits, temperature=1.0, top_k=None):
    if top_k is None or top_k >= logits.shape[-1]:
        return distribution_reference(logits, temperature)
    scaled = logits / temperature
    kth = scaled.topk(top_k, -1, largest=False).values[..., -1:]
    return torch.softmax(scaled.masked_fill(scaled > kth, -math.inf), -1)


def distribution_not_renormalised(logits, temperature=1.0, top_k=None):
    p = torch.softmax(logits / temperature, -1)
    if top_k is None or top_k >= logits.shape[-1]:
        return p
    kth = p.topk(top_k, -1).values[..., -1:]
    return p.masked_fill(p < kth, 0.0)


def distribution_minus_inf_probabilities(logits, temperature=1.0, top_k=None):
    p = torch.softmax(logits / temperature, -1)
    if top_k is None or top_k >= logits.shape[-1]:
        return p
    kth = p.topk(top_k, -1).values[..., -1:]
    return p.masked_fill(p < kth, -math.inf)


def distribution_naive_exp(logits, temperature=1.0, top_k=None):
    filtered = filter_logits(logits, temperature, top_k)
    e = torch.exp(filtered)
    return e / e.sum(-1, keepdim=True)


def distribution_ignores_top_k(logits, temperature=1.0, top_k=None):
    return torch.softmax(logits / temperature, -1)


def distribution_topk_always(logits, temperature=1.0, top_k=None):  # k > vocab raises
    scaled = logits / temperature
    if top_k is not None:
        kth = scaled.topk(top_k, dim=-1).values[..., -1:]
        scaled = scaled.masked_fill(scaled < kth, -torch.inf)
    return torch.softmax(scaled, dim=-1)


def test_sampling_distribution_right_answers_pass(capsys):
    assert_passes(check_sampling_distribution, distribution_reference, capsys, "8/8")
    assert_passes(check_sampling_distribution, distribution_sorted, capsys)


# --- 08.5 sample_next ------------------------------------------------------------------


def sample_reference(logits, temperature, top_k, generator):
    p = distribution_reference(logits, temperature, top_k)
    return torch.multinomial(p, 1, generator=generator).squeeze(-1)


def sample_inverse_cdf(logits, temperature, top_k, generator):  # right, another way
    p = distribution_sorted(logits, temperature, top_k)
    u = torch.rand(p.shape[:-1] + (1,), generator=generator, dtype=p.dtype)
    cdf = p.cumsum(-1)
    return (cdf < u).sum(-1).clamp(max=p.shape[-1] - 1)


def sample_int32(logits, temperature, top_k, generator):
    return sample_reference(logits, temperature, top_k, generator).int()


def sample_greedy(logits, temperature, top_k, generator):
    return logits.argmax(-1)


def sample_global_rng(logits, temperature, top_k, generator):
    p = distribution_reference(logits, temperature, top_k)
    return torch.multinomial(p, 1).squeeze(-1)


def sample_multiplied(logits, temperature, top_k, generator):
    return sample_reference(logits * temperature**2, temperature, top_k, generator)


def sample_probabilities(logits, temperature, top_k, generator):
    return distribution_reference(logits, temperature, top_k)


def sample_unsqueezed(logits, temperature, top_k, generator):
    p = distribution_reference(logits, temperature, top_k)
    return torch.multinomial(p, 1, generator=generator)


def sample_squeeze_all(logits, temperature, top_k, generator):
    p = distribution_reference(logits, temperature, top_k)
    return torch.multinomial(p, 1, generator=generator).squeeze()


def sample_shared_uniform(logits, temperature, top_k, generator):
    """Inverse CDF with ONE uniform number for the whole batch."""
    p = distribution_reference(logits, temperature, top_k)
    u = torch.rand(1, generator=generator)
    return (p.cumsum(-1) < u).sum(-1).clamp(max=p.shape[-1] - 1)


def sample_reseeds_generator(logits, temperature, top_k, generator):
    generator.manual_seed(0)
    return sample_reference(logits, temperature, top_k, generator)


def sample_from_the_learners_distribution(logits, temperature, top_k, generator):
    """Right, if the learner's sampling_distribution (Exercise 08.4) is."""
    p = sampling_distribution(logits, temperature, top_k)
    return torch.multinomial(p, 1, generator=generator).squeeze(-1)


sampling_distribution = distribution_reference  # the learner's 08.4, solved


def sample_own_generator(logits, temperature, top_k, generator):
    return sample_reference(
        logits, temperature, top_k, torch.Generator().manual_seed(0)
    )


def sample_first_row_only(logits, temperature, top_k, generator):
    p = distribution_reference(logits, temperature, top_k)
    return torch.multinomial(p[0], len(p), replacement=True, generator=generator)


def sample_ignores_top_k(logits, temperature, top_k, generator):
    return sample_reference(logits, temperature, None, generator)


def sample_ignores_temperature(logits, temperature, top_k, generator):
    return sample_reference(logits, 1.0, top_k, generator)


def test_sample_next_right_answers_pass(capsys):
    assert_passes(check_sample_next, sample_reference, capsys, "sample_next")
    assert_passes(check_sample_next, sample_inverse_cdf, capsys)
    assert_passes(check_sample_next, sample_from_the_learners_distribution, capsys)


def test_sample_next_waits_for_the_distribution_exercise(capsys):
    def stub_distribution(logits, temperature, top_k):
        raise NotImplementedError("Exercise 08.4")

    def answer(logits, temperature, top_k, generator):
        p = stub_distribution(logits, temperature, top_k)
        return torch.multinomial(p, 1, generator=generator).squeeze(-1)

    check_sample_next(answer)
    assert "waits for Exercise 08.4" in capsys.readouterr().out


@pytest.mark.parametrize(
    "checker", [check_feed_forward, check_transformer_block], ids=lambda c: c.__name__
)
def test_module_checkers_refuse_a_function(checker):
    assert_fails_with(checker, lambda *args: torch.zeros(1), "nn.Module")


def distribution_softmax_dim_1(logits, temperature=1.0, top_k=None):
    """Softmax over axis 1: the vocabulary for (batch, vocab), not (batch, n, vocab)."""
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth_largest = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    return torch.softmax(logits, dim=1 if logits.dim() > 1 else 0)


MISTAKES = [
    (check_feed_forward, FFNLinear, "non-linearity"),
    (check_feed_forward, FFNRelu, "ReLU"),
    (check_feed_forward, FFNFourTimes, "hidden width is d_ff"),
    (check_feed_forward, FFNAlwaysBias, "bias=bias"),
    (check_feed_forward, FFNTwice, "not after"),
    (check_feed_forward, FFNTanhGelu, "tanh approximation"),
    (check_feed_forward, FFNWithNorm, "no other parameters"),
    (check_feed_forward, FFNAlwaysDropout, "random"),
    (check_transformer_block, block_with("dropout-always"), "random"),
    (check_transformer_block, block_with("and-causal"), "combined with a causal mask"),
    (check_transformer_block, block_with("causal-always"), "replaced by a causal mask"),
    (check_transformer_block, block_with("post"), "post-LN"),
    (check_transformer_block, block_with("parallel"), "in parallel"),
    (check_transformer_block, block_with("stream"), "un-normalised x"),
    (
        check_transformer_block,
        block_with("no-residual"),
        "residual connection around the attention",
    ),
    (check_transformer_block, block_with("ffn-first"), "comes after the attention"),
    (check_transformer_block, block_with("no-mask"), "mask is not used"),
    (check_transformer_block, block_with("inverted-mask"), "mask is inverted"),
    (check_transformer_block, block_with("no-norm1"), "input is not normalised"),
    (check_transformer_block, block_with("own-causal"), "with mask=None"),
    (check_language_model_loss, loss_no_shift, "no shift"),
    (check_language_model_loss, loss_backwards, "wrong way"),
    (check_language_model_loss, loss_with_padding, "padded positions"),
    (check_language_model_loss, loss_sum, "sum"),
    (check_language_model_loss, loss_pad_zero, "not pad_id"),
    (check_language_model_loss, loss_row_means, "per-row means"),
    (check_language_model_loss, loss_float, "torch.Tensor"),
    (check_language_model_loss, loss_in_bits, "in nats"),
    (check_language_model_loss, loss_masked_by_inputs, "TARGET"),
    (check_sampling_distribution, distribution_topk_always, "every token is kept"),
    (check_sampling_distribution, distribution_multiplied, "divide by it"),
    (check_sampling_distribution, distribution_k_plus_one, "k + 1"),
    (check_sampling_distribution, distribution_smallest, "SMALLEST"),
    (check_sampling_distribution, distribution_k_minus_one, "k - 1"),
    (check_sampling_distribution, distribution_not_renormalised, "renormalised"),
    (
        check_sampling_distribution,
        distribution_minus_inf_probabilities,
        "LOGITS to -inf",
    ),
    (check_sampling_distribution, distribution_naive_exp, "overflow"),
    (check_sampling_distribution, distribution_ignores_top_k, "nothing was filtered"),
    (check_sampling_distribution, distribution_softmax_dim_1, "LAST axis"),
    (check_sample_next, sample_greedy, "argmax"),
    (check_sample_next, sample_global_rng, "generator you are given"),
    (check_sample_next, sample_multiplied, "divide the logits"),
    (check_sample_next, sample_probabilities, "token ids"),
    (check_sample_next, sample_unsqueezed, "squeeze"),
    (check_sample_next, sample_ignores_top_k, "outside the top"),
    (check_sample_next, sample_squeeze_all, "squeeze(-1), not"),
    (check_sample_next, sample_ignores_temperature, "differ from softmax"),
    (check_sample_next, sample_own_generator, "was not used"),
    (check_sample_next, sample_shared_uniform, "one per row"),
    (check_sample_next, sample_reseeds_generator, "re-seeded"),
    (  # a right 08.5 calling a wrong 08.4: the core blames 08.4, with 08.4's hint
        check_sample_next,
        with_globals(
            sample_from_the_learners_distribution,
            sampling_distribution=distribution_multiplied,
        ),
        "your sampling_distribution does not pass Exercise 08.4 yet; fix it first",
    ),
    (check_sample_next, sample_first_row_only, "EACH row"),
    (check_sample_next, sample_int32, "int64"),
]


def test_naive_exp_overflows_in_the_wide_case():
    """08.4's wide case (logits * 60, temperature 0.7) reaches past 89 in every row, so
    exp without the softmax's max subtraction overflows float32 there."""
    answer_logits = []

    def spy(logits, temperature=1.0, top_k=None):
        answer_logits.append(logits / temperature)
        return distribution_reference(logits, temperature, top_k)

    check_sampling_distribution(spy)
    assert any(bool((scaled.amax(-1) > 89).all()) for scaled in answer_logits)
