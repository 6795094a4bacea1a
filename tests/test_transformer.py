"""Unit 08's transformer and data: equal to PyTorch's layers, causal, counted, seeded."""

import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attention_kit.data import (
    ADJECTIVES,
    NOUNS,
    VERBS,
    agreement_corpus,
    associative_recall,
    ngram_bits_per_character,
)
from attention_kit.masks import causal_mask, leaks_future, padding_mask
from attention_kit.models import MiniTransformer as ReExported
from attention_kit.transformer import (
    Block,
    FeedForward,
    MiniTransformer,
    TransformerConfig,
    bits_per_character,
    count_parameters,
    filter_logits,
    generate,
    lm_loss,
    recall_accuracy,
    recall_loss,
    text_windows,
)


def copy_into_torch_layer(block: Block, pre_norm: bool) -> nn.TransformerEncoderLayer:
    """PyTorch's encoder layer with the block's weights (GELU, no dropout)."""
    d = block.norm1.normalized_shape[0]
    layer = nn.TransformerEncoderLayer(
        d,
        block.attention.num_heads,
        block.ffn.up.out_features,
        dropout=0.0,
        activation="gelu",
        batch_first=True,
        norm_first=pre_norm,
    )
    a = block.attention
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(
            torch.cat([a.W_q.weight, a.W_k.weight, a.W_v.weight])
        )
        layer.self_attn.in_proj_bias.copy_(
            torch.cat([a.W_q.bias, a.W_k.bias, a.W_v.bias])
        )
        layer.self_attn.out_proj.load_state_dict(a.W_o.state_dict())
        layer.linear1.load_state_dict(block.ffn.up.state_dict())
        layer.linear2.load_state_dict(block.ffn.down.state_dict())
        layer.norm1.load_state_dict(block.norm1.state_dict())
        layer.norm2.load_state_dict(block.norm2.state_dict())
    return layer.eval()


@pytest.mark.parametrize("pre_norm", [True, False])
def test_block_equals_torch_encoder_layer_with_causal_mask(pre_norm):
    torch.manual_seed(0)
    block = Block(d_model=16, num_heads=4, d_ff=40, pre_norm=pre_norm)
    with torch.no_grad():  # non-trivial LayerNorm parameters
        for norm in (block.norm1, block.norm2):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_()
    layer = copy_into_torch_layer(block, pre_norm)
    x = torch.randn(3, 7, 16)
    mask = causal_mask(7)
    ours, weights = block(x, mask)
    # nn.TransformerEncoderLayer's boolean mask means True = NOT allowed: invert ours.
    theirs = layer(x, src_mask=~mask)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    assert weights.shape == (3, 4, 7, 7)
    assert torch.all(weights.masked_select(~mask) == 0)


def test_feed_forward_is_gelu_mlp():
    torch.manual_seed(1)
    ffn = FeedForward(8, 20)
    x = torch.randn(2, 5, 8)
    expected = (
        F.gelu(x @ ffn.up.weight.T + ffn.up.bias) @ ffn.down.weight.T + ffn.down.bias
    )
    torch.testing.assert_close(ffn(x), expected)


CONFIGS = [
    dict(positions="learned"),
    dict(positions="sinusoidal"),
    dict(positions="rope"),
    dict(positions="none"),
    dict(positions="learned", pre_norm=False),
    dict(positions="learned", window=3),
    dict(positions="learned", tie_embeddings=True, num_layers=3),
]


@pytest.mark.parametrize("options", CONFIGS, ids=str)
def test_no_position_sees_the_future(options):
    torch.manual_seed(2)
    model = MiniTransformer(
        TransformerConfig(11, 12, d_model=16, num_heads=2, **options)
    )
    tokens = torch.randint(0, 11, (2, 9))
    assert leaks_future(model, tokens, vocab_size=11) == []
    logits, weights = model(tokens)
    assert logits.shape == (2, 9, 11)
    assert len(weights) == model.config.num_layers
    assert all(w.shape == (2, 2, 9, 9) for w in weights)


def test_the_leakage_test_catches_a_model_without_the_mask():
    torch.manual_seed(3)
    model = MiniTransformer(TransformerConfig(11, 12, d_model=16, num_heads=2))
    model.attention_mask = lambda n, start=0: torch.ones(n, n + start, dtype=torch.bool)
    assert leaks_future(model, torch.randint(0, 11, (2, 6)), vocab_size=11)


def test_window_one_attends_to_the_current_token_only():
    model = MiniTransformer(TransformerConfig(5, 8, d_model=8, num_heads=2, window=1))
    assert torch.equal(model.attention_mask(6), torch.eye(6, dtype=torch.bool))
    model = MiniTransformer(TransformerConfig(5, 8, d_model=8, num_heads=2, window=3))
    i, j = torch.meshgrid(torch.arange(6), torch.arange(6), indexing="ij")
    assert torch.equal(model.attention_mask(6), (j <= i) & (j > i - 3))
    # with a start offset (Unit 09's cache): rows are positions start..start+n-1
    assert torch.equal(model.attention_mask(2, start=4), ((j <= i) & (j > i - 3))[4:])


def test_models_reexports_the_transformer():
    assert ReExported is MiniTransformer


@pytest.mark.parametrize(
    "sizes",
    [
        dict(vocab_size=7, context_length=5, d_model=8, num_layers=1, d_ff=32),
        dict(vocab_size=30, context_length=64, d_model=32, num_layers=2, d_ff=128),
        dict(vocab_size=100, context_length=16, d_model=24, num_layers=3, d_ff=40),
    ],
)
@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "none"])
@pytest.mark.parametrize("tie", [False, True])
def test_parameter_count_formula(sizes, positions, tie):
    config = TransformerConfig(
        **sizes, num_heads=4, positions=positions, tie_embeddings=tie
    )
    model = MiniTransformer(config)
    expected = count_parameters(**sizes, positions=positions, tie_embeddings=tie)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_gpt2_small_parameter_count():
    # GPT-2 small (Radford et al. 2019): 50257 tokens, 1024 positions, d 768, 12 layers,
    # d_ff 3072, tied input and output embeddings.
    assert count_parameters(50257, 1024, 768, 12, 3072, tie_embeddings=True) == (
        124_439_808
    )


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("d_model, vocab_size", [(64, 100), (256, 100), (64, 1000)])
def test_initial_loss_is_about_log_vocab_size(d_model, vocab_size, tie):
    """GPT-2's initialisation: an untrained model's loss on random tokens is within 0.1
    of log V (a uniform guess), tied or not. nn.Embedding's N(0, 1) as a tied output
    matrix started near 43 at d 64 and 174 at d 256 (V 100)."""
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size, 32, d_model, num_heads=4, tie_embeddings=tie)
    model = MiniTransformer(config)
    tokens = torch.randint(
        0, vocab_size, (16, 32), generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        loss = lm_loss(model(tokens)[0], tokens).item()
    assert abs(loss - math.log(vocab_size)) < 0.1, (loss, math.log(vocab_size))


def test_pytorch_init_keeps_each_layers_default():
    """init="pytorch" leaves nn.Embedding's N(0, 1), whose tied output matrix gives an
    initial loss far above log V (the reason GPT-2's is the default)."""
    torch.manual_seed(0)
    config = TransformerConfig(100, 32, 64, tie_embeddings=True, init="pytorch")
    model = MiniTransformer(config)
    assert abs(model.token_embedding.weight.std().item() - 1) < 0.05
    tokens = torch.randint(0, 100, (16, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert lm_loss(model(tokens)[0], tokens).item() > 5 * math.log(100)  # 42.6
    with pytest.raises(ValueError, match="init"):
        TransformerConfig(100, 32, init="xavier")


def test_initialisation_is_gpt2s():
    torch.manual_seed(0)
    num_layers = 8
    model = MiniTransformer(
        TransformerConfig(500, 64, 128, num_layers=num_layers, tie_embeddings=True)
    )
    assert model.output.weight is model.token_embedding.weight
    residual = 0.02 / math.sqrt(2 * num_layers)
    for name, p in model.named_parameters():
        if "norm" in name:
            expected = 1.0 if name.endswith("weight") else 0.0
            assert torch.equal(p, torch.full_like(p, expected)), name
        elif name.endswith("bias"):
            assert torch.equal(p, torch.zeros_like(p)), name
        else:
            std = residual if name.endswith(("W_o.weight", "down.weight")) else 0.02
            assert abs(p.std().item() / std - 1) < 0.1, (name, p.std().item(), std)
            assert abs(p.mean().item()) < 0.1 * std, name


def test_same_seed_same_model_same_training():
    def train_two_steps():
        torch.manual_seed(4)
        model = MiniTransformer(TransformerConfig(9, 10, d_model=16, num_heads=2))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        tokens = torch.randint(
            0, 9, (4, 10), generator=torch.Generator().manual_seed(5)
        )
        for _ in range(2):
            loss = lm_loss(model(tokens)[0], tokens)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return model(tokens)[0]

    assert torch.equal(train_two_steps(), train_two_steps())


def test_lm_loss_is_the_shifted_cross_entropy():
    torch.manual_seed(6)
    logits = torch.randn(2, 5, 7)
    tokens = torch.randint(0, 7, (2, 5))
    by_hand = torch.stack(
        [
            -torch.log_softmax(logits[b, t], -1)[tokens[b, t + 1]]
            for b in range(2)
            for t in range(4)
        ]
    ).mean()
    torch.testing.assert_close(lm_loss(logits, tokens), by_hand)
    padded = tokens.clone()
    padded[1, 3:] = -100  # targets at positions 3 and 4 of row 1 are ignored
    kept = [(b, t) for b in range(2) for t in range(4) if not (b == 1 and t >= 2)]
    by_hand = torch.stack(
        [-torch.log_softmax(logits[b, t], -1)[tokens[b, t + 1]] for b, t in kept]
    ).mean()
    torch.testing.assert_close(lm_loss(logits, padded), by_hand)


def test_filter_logits_and_generation():
    logits = torch.tensor([[1.0, 4.0, 2.0, 3.0]])
    filtered = filter_logits(logits, temperature=2.0, top_k=2)
    assert torch.equal(filtered, torch.tensor([[-math.inf, 2.0, -math.inf, 1.5]]))
    assert torch.equal(filter_logits(logits, top_k=10), logits)
    torch.manual_seed(7)
    model = MiniTransformer(TransformerConfig(6, 8, d_model=16, num_heads=2))
    prompt = torch.tensor([[1, 2, 3]])
    greedy = generate(model, prompt, 4, greedy=True)
    tokens = prompt
    for _ in range(4):
        next_token = model(tokens)[0][:, -1].argmax(-1, keepdim=True)
        tokens = torch.cat([tokens, next_token], 1)
    assert torch.equal(greedy, tokens)
    first = generate(
        model, prompt, 10, top_k=2, generator=torch.Generator().manual_seed(1)
    )
    again = generate(
        model, prompt, 10, top_k=2, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(first, again)
    # longer than the context: only the last context_length tokens are fed back
    assert generate(model, prompt, 10, greedy=True).shape == (1, 13)


def test_associative_recall_has_the_stated_structure():
    inputs, targets = associative_recall(
        500, num_pairs=5, num_keys=9, num_values=7, seed=3
    )
    assert inputs.shape == (500, 11) and targets.shape == (500,)
    keys, values, query = inputs[:, 0:10:2], inputs[:, 1:10:2], inputs[:, 10]
    assert keys.min() >= 0 and keys.max() < 9
    assert values.min() >= 9 and values.max() < 16
    assert all(len(set(row)) == 5 for row in keys.tolist())  # distinct keys
    where = (keys == query[:, None]).int().argmax(dim=1)
    assert torch.all((keys == query[:, None]).sum(1) == 1)  # the query is one of them
    assert torch.equal(targets, values[torch.arange(500), where])
    # every pair slot is asked about, every value occurs
    assert set(where.tolist()) == set(range(5))
    assert set(targets.tolist()) == set(range(9, 16))
    again = associative_recall(500, num_pairs=5, num_keys=9, num_values=7, seed=3)
    assert torch.equal(again[0], inputs)
    with pytest.raises(ValueError):
        associative_recall(3, num_pairs=5, num_keys=4)


SENTENCE = re.compile(r"the (?:(\w+) )?(\w+)(.*) (\w+)\.")


def test_corpus_sentences_agree_and_brackets_match():
    text = agreement_corpus(400, seed=5)
    assert text == agreement_corpus(400, seed=5)
    lines = text.splitlines()
    assert len(lines) == 400
    singular_nouns = set(NOUNS)
    counts = {"agree": 0, "distractor": 0}
    for line in lines:
        match = SENTENCE.fullmatch(line)
        assert match, line
        adjective, noun, middle, verb = match.groups()
        assert adjective is None or adjective in ADJECTIVES
        plural = noun not in singular_nouns
        assert noun.removesuffix("s") in singular_nouns
        assert verb == (verb.removesuffix("s") if plural else verb)
        assert verb.removesuffix("s") in VERBS and (verb.endswith("s") != plural)
        counts["agree"] += 1
        stack = []
        for character in middle:
            if character in "([":
                stack.append(character)
            elif character in ")]":
                assert stack and {"(": ")", "[": "]"}[stack.pop()] == character, line
        assert not stack, line
        inner = re.findall(r"the (?:\w+ )?(\w+)[)\]]*(?= |$|[)\]])", middle)
        if any((n.endswith("s") and n[:-1] in singular_nouns) != plural for n in inner):
            counts["distractor"] += 1
    # many sentences have a noun of the other number between subject and verb
    assert counts["distractor"] > 100


def test_ngram_baselines_by_hand():
    train, valid = "abab", "ba"
    # alphabet {a, b}; unigram counts a:2, b:2 -> p = (2+1)/(4+2) = 1/2 each
    assert ngram_bits_per_character(train, valid, 1) == pytest.approx(1.0)
    # bigram: after 'b' comes 'a' once -> p(a | b) = (1+1)/(1+2) = 2/3
    assert ngram_bits_per_character(train, valid, 2) == pytest.approx(-math.log2(2 / 3))
    text = agreement_corpus(300, seed=0)
    valid = agreement_corpus(50, seed=1)
    unigram = ngram_bits_per_character(text, valid, 1)
    bigram = ngram_bits_per_character(text, valid, 2)
    assert bigram < unigram < math.log2(len(set(text)))


def test_lab_helpers_by_hand():
    torch.manual_seed(8)
    model = MiniTransformer(TransformerConfig(6, 8, d_model=16, num_heads=2))
    inputs = torch.randint(0, 6, (5, 7))
    targets = torch.randint(0, 6, (5,))
    logits = model(inputs)[0][:, -1]
    torch.testing.assert_close(
        recall_loss(model, (inputs, targets)), F.cross_entropy(logits, targets)
    )
    expected = (logits.argmax(-1) == targets).float().mean().item()
    assert recall_accuracy(model, inputs, targets) == expected
    text = torch.arange(10)
    windows = text_windows(text, 4)
    assert windows.shape == (7, 4) and torch.equal(
        windows[3], torch.tensor([3, 4, 5, 6])
    )
    ids = torch.randint(0, 6, (8 * 3 + 5,))  # 3 chunks of the context 8, 5 left over
    chunks = ids[:24].view(3, 8)
    by_hand = lm_loss(model(chunks)[0], chunks).item() / math.log(2)
    assert bits_per_character(model, ids) == pytest.approx(by_hand, rel=1e-6)


def test_rotary_attention_reads_masks_as_multi_head_attention_does():
    """RotaryMultiHeadAttention shares attention_mask with MultiHeadAttention: every
    mask shape it names gives the same result as its (n, n) or (batch, n, n) spelling,
    and a (batch, m) padding mask passed as a 2-D mask is refused, not misread."""
    from attention_kit.transformer import RotaryMultiHeadAttention

    torch.manual_seed(0)
    layer = RotaryMultiHeadAttention(8, 2)
    x = torch.randn(3, 5, 8)
    causal = causal_mask(5)
    padding = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] * 5])
    full = causal & padding[:, None, :]
    expected, weights = layer(x, x, x, full)
    assert weights.shape == (3, 2, 5, 5)
    assert torch.allclose(layer(x, x, x, full[:, None])[0], expected)  # 4-D as given
    assert torch.allclose(layer(x[:1], x[:1], x[:1], causal)[0], expected[:1])
    keys_only = padding[1]  # (m,): the same keys for every query
    assert torch.allclose(
        layer(x[1:2], x[1:2], x[1:2], keys_only)[0],
        layer(x[1:2], x[1:2], x[1:2], keys_only.expand(5, 5))[0],
    )
    with pytest.raises(ValueError, match="padding"):
        layer(x, x, x, padding)  # (batch, m) with batch != n


def rotary_and_plain(embed_dim=8, num_heads=2):
    from attention_kit.attention import MultiHeadAttention
    from attention_kit.transformer import RotaryMultiHeadAttention

    torch.manual_seed(0)
    rotary = RotaryMultiHeadAttention(embed_dim, num_heads)
    plain = MultiHeadAttention(embed_dim, num_heads)
    plain.load_state_dict(rotary.state_dict())
    return rotary, plain


def test_rotary_attention_with_rope_off_is_multi_head_attention():
    """RotaryMultiHeadAttention changes only transform_queries_keys: at position 0 for
    every token (a rotation by 0) it is MultiHeadAttention, masks and valid_keys too."""
    rotary, plain = rotary_and_plain()
    x = torch.randn(3, 5, 8, generator=torch.Generator().manual_seed(1))
    valid = padding_mask(torch.tensor([5, 3, 1]), 5)
    zeros = torch.zeros(5, dtype=torch.long)
    for mask in (None, causal_mask(5)):
        ours = rotary(x, x, x, mask, valid_keys=valid, positions=zeros)
        expected = plain(x, x, x, mask, valid_keys=valid)
        torch.testing.assert_close(ours, expected)
    assert (expected[1][2, :, :, 1:] == 0).all()  # sequence 2 has one real key
    moved = rotary(x, x, x, causal_mask(5), valid_keys=valid)[0]  # positions 0..4
    assert not torch.allclose(moved, expected[0], atol=1e-3)


def rotate_by_hand(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rotate pair (2i, 2i+1) of the row at position t by the angle t * 10000^(-2i/d),
    with an explicit 2x2 rotation matrix per pair and position."""
    d = x.shape[-1]
    out = torch.empty_like(x)
    for row, t in enumerate(positions.tolist()):
        for i in range(d // 2):
            angle = t * 10000 ** (-2 * i / d)
            c, s = math.cos(angle), math.sin(angle)
            rotation = torch.tensor([[c, -s], [s, c]], dtype=x.dtype)
            pair = x[..., row, 2 * i : 2 * i + 2]
            out[..., row, 2 * i : 2 * i + 2] = pair @ rotation.T
    return out


def test_rotary_attention_equals_rope_attention_by_hand():
    """q and k projected, split into heads, rotated by their positions, masked by a
    causal mask and valid_keys, attended, merged and projected: by hand, step by step."""
    rotary, _ = rotary_and_plain(embed_dim=8, num_heads=2)
    batch, n, heads, head_dim = 2, 4, 2, 4
    x = torch.randn(batch, n, 8, generator=torch.Generator().manual_seed(2))
    valid = padding_mask(torch.tensor([4, 2]), n)
    positions = torch.arange(3, 3 + n)  # as after a cache of 3 tokens

    def heads_of(linear):
        return linear(x).view(batch, n, heads, head_dim).transpose(1, 2)

    with torch.no_grad():
        q = rotate_by_hand(heads_of(rotary.W_q), positions)
        k = rotate_by_hand(heads_of(rotary.W_k), positions)
        v = heads_of(rotary.W_v)
        allowed = causal_mask(n) & valid[:, None, None, :]
        scores = (q @ k.transpose(-2, -1) / math.sqrt(head_dim)).masked_fill(
            ~allowed, float("-inf")
        )
        weights = torch.softmax(scores, dim=-1)
        merged = (weights @ v).transpose(1, 2).reshape(batch, n, 8)
        expected = rotary.W_o(merged)
        out, ours = rotary(
            x, x, x, causal_mask(n), valid_keys=valid, positions=positions
        )
    torch.testing.assert_close(ours, weights)
    torch.testing.assert_close(out, expected)
    assert (ours[1, ..., 2:] == 0).all()  # the padded keys of sequence 1


def test_next_token_is_the_shared_choice_of_both_generators():
    """next_token, used by generate and efficient.generate_cached: greedy is argmax;
    top_k = 1 leaves one token to draw; the draw follows the generator."""
    from attention_kit.transformer import next_token

    last = torch.tensor([[0.1, 3.0, -1.0, 2.9], [5.0, 0.0, 0.0, 4.0]])
    expected = torch.tensor([[1], [0]])
    assert torch.equal(next_token(last, greedy=True), expected)
    assert torch.equal(next_token(last, top_k=1), expected)
    draws = [
        next_token(last, top_k=2, generator=torch.Generator().manual_seed(7))
        for _ in range(2)
    ]
    assert torch.equal(*draws) and draws[0].shape == (2, 1)
    first, second = draws[0][:, 0].tolist()
    assert first in (1, 3) and second in (0, 3)  # only each row's two largest


def test_window_below_one_is_refused():
    """window = 0 would leave every query with no key (all-zero attention): refused,
    as sliding_window_mask refuses it."""
    with pytest.raises(ValueError, match="window must be >= 1"):
        TransformerConfig(10, 8, window=0)
    assert TransformerConfig(10, 8, window=1).window == 1
