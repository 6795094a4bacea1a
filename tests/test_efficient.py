"""Unit 09's efficient attention: each variant against the plain computation."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from attention_kit.attention import scaled_dot_product_attention
from attention_kit.efficient import (
    KVCache,
    cached_forward,
    elu_feature_map,
    generate_cached,
    grouped_query_attention,
    kv_cache_bytes,
    linear_attention,
    online_softmax_update,
    sliding_window_attention,
    sliding_window_mask,
    tiled_attention,
)
from attention_kit.masks import causal_mask, padding_mask
from attention_kit.positional import apply_rope
from attention_kit.transformer import MiniTransformer, TransformerConfig, generate


def model_with(positions, **options):
    torch.manual_seed(0)
    config = TransformerConfig(
        13, 24, d_model=16, num_heads=2, positions=positions, **options
    )
    return MiniTransformer(config).eval()


# --- KV cache ---------------------------------------------------------------------------


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rope", "none"])
@pytest.mark.parametrize("options", [{}, {"pre_norm": False}, {"window": 3}])
def test_cached_generation_equals_recompute(positions, options):
    model = model_with(positions, **options)
    prompt = torch.randint(0, 13, (3, 4), generator=torch.Generator().manual_seed(1))
    slow = generate(model, prompt, 20, greedy=True)
    fast = generate_cached(model, prompt, 20, greedy=True)
    assert torch.equal(fast, slow)
    sampled = [
        f(model, prompt, 20, top_k=5, generator=torch.Generator().manual_seed(2))
        for f in (generate, generate_cached)
    ]
    assert torch.equal(*sampled)


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rope"])
@pytest.mark.parametrize("options", [{}, {"pre_norm": False}, {"window": 3}])
def test_cached_logits_equal_full_pass(positions, options):
    model = model_with(positions, **options)
    tokens = torch.randint(0, 13, (2, 10), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full, _ = model(tokens)
        logits, cache = cached_forward(model, tokens[:, :6], KVCache())
        steps = [logits]
        for t in range(6, 10):
            logits, cache = cached_forward(model, tokens[:, t : t + 1], cache)
            steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 10


def test_rope_cache_needs_offset_positions():
    """Without the offset, the last logits differ: the test above is not vacuous."""
    model = model_with("rope")
    tokens = torch.randint(0, 13, (1, 8), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        full, _ = model(tokens)
        _, cache = cached_forward(model, tokens[:, :7], KVCache())
        right, _ = cached_forward(model, tokens[:, 7:], cache)
        # feeding the last token as if it were at position 0: the model's own start=0
        wrong, _ = model(tokens[:, 7:])
    torch.testing.assert_close(right[:, 0], full[:, 7], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(wrong[:, 0], full[:, 7], atol=1e-3)


def test_cache_does_not_exceed_context():
    model = model_with("learned")
    with pytest.raises(ValueError, match="context"):
        generate_cached(model, torch.zeros(1, 20, dtype=torch.long), 5)


def test_cache_is_allocated_once_and_filled_in_place():
    """KVCache.allocate makes every layer's tensors once; cached_forward writes each
    step's keys and values into them (no torch.cat, no new tensors) and returns the
    same cache. The filled part holds the keys and values of a full pass."""
    model = model_with("rope")
    tokens = torch.randint(0, 13, (2, 9), generator=torch.Generator().manual_seed(6))
    cache = KVCache.allocate(model, batch=2, capacity=12)
    assert (cache.capacity, cache.length) == (12, 0)
    storage = [t.data_ptr() for t in cache.keys + cache.values]
    with torch.no_grad():
        _, same = cached_forward(model, tokens[:, :5], cache)
        for t in range(5, 9):
            _, same = cached_forward(model, tokens[:, t : t + 1], same)
    assert same is cache and cache.length == 9
    assert [t.data_ptr() for t in cache.keys + cache.values] == storage
    for t in cache.keys + cache.values:  # positions 9..11 are still free
        assert (t[:, :, 9:] == 0).all() and (t[:, :, :9] != 0).any()
    # the last layer's keys are W_k of its (pre-LN) input, rotated, head by head
    x = model.embed(tokens, torch.arange(9))
    with torch.no_grad():
        for block in model.blocks[:-1]:
            x, _ = block(x, model.attention_mask(9), torch.arange(9))
        last = model.blocks[-1]
        heads = last.attention.W_k(last.norm1(x)).view(2, 9, 2, 8).transpose(1, 2)
    torch.testing.assert_close(cache.keys[-1][:, :, :9], apply_rope(heads))
    empty = KVCache()
    with torch.no_grad():
        _, filled = cached_forward(model, tokens[:, :3], empty)
    assert filled is empty and empty.capacity == model.config.context_length


def test_cache_refuses_more_than_it_holds():
    model = model_with("learned")
    cache = KVCache.allocate(model, batch=1, capacity=4)
    with torch.no_grad():
        cached_forward(model, torch.zeros(1, 3, dtype=torch.long), cache)
        with pytest.raises(ValueError, match="holds 4"):
            cached_forward(model, torch.zeros(1, 2, dtype=torch.long), cache)
        with pytest.raises(ValueError, match="batch of 2"):
            cached_forward(model, torch.zeros(2, 1, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="context"):
        KVCache.allocate(model, batch=1, capacity=25)  # the context is 24


def test_cache_memory_formula_matches_tensors():
    for batch, d_model, layers, heads in [(1, 16, 2, 2), (3, 32, 3, 4)]:
        torch.manual_seed(0)
        config = TransformerConfig(
            7, 30, d_model=d_model, num_layers=layers, num_heads=heads
        )
        model = MiniTransformer(config).eval()
        tokens = torch.randint(0, 7, (batch, 30))
        with torch.no_grad():
            _, cache = cached_forward(model, tokens, KVCache())
        assert cache.nbytes() == kv_cache_bytes(layers, 30, d_model, 4, batch)
        assert len(cache.keys) == len(cache.values) == layers
        assert cache.keys[0].shape == (batch, heads, 30, d_model // heads)
        with torch.no_grad():
            half = model.half()
            _, cache16 = cached_forward(half, tokens, KVCache())
        assert cache16.nbytes() == kv_cache_bytes(layers, 30, d_model, 2, batch)


def test_gqa_and_mqa_shrink_the_cache():
    # GPT-2 small: 12 layers, d_model 768, 12 heads, context 1024, float32
    full = kv_cache_bytes(12, 1024, 768, 4, num_heads=12)
    assert full == 12 * 2 * 1024 * 768 * 4
    assert kv_cache_bytes(12, 1024, 768, 4, num_heads=12, num_kv_heads=1) == full // 12
    assert kv_cache_bytes(12, 1024, 768, 4, num_heads=12, num_kv_heads=4) == full // 3
    with pytest.raises(ValueError):
        kv_cache_bytes(12, 1024, 768, 4, num_heads=12, num_kv_heads=5)
    # the formula against real tensors: a GQA layer caches kv_heads heads only
    g = torch.Generator().manual_seed(0)
    batch, heads, kv_heads, n, d = 2, 8, 2, 5, 4
    q = torch.randn(batch, heads, n, d, generator=g)
    k = torch.randn(batch, kv_heads, n, d, generator=g)
    v = torch.randn(batch, kv_heads, n, d, generator=g)
    cached = k.numel() * 4 + v.numel() * 4
    per_layer = kv_cache_bytes(1, n, heads * d, 4, batch, heads, kv_heads)
    assert cached == per_layer
    out = grouped_query_attention(q, k, v, causal_mask(n))
    expected = F.scaled_dot_product_attention(
        q,
        k.repeat_interleave(4, dim=1),
        v.repeat_interleave(4, dim=1),
        attn_mask=causal_mask(n),
    )
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)
    # with one kv head per head, GQA is multi-head attention
    k_full = torch.randn(batch, heads, n, d, generator=g)
    v_full = torch.randn(batch, heads, n, d, generator=g)
    torch.testing.assert_close(
        grouped_query_attention(q, k_full, v_full),
        scaled_dot_product_attention(q, k_full, v_full)[0],
    )


# --- tiled attention ----------------------------------------------------------------------


def qkv(batch_shape, n, m, d_k=8, d_v=5, dtype=torch.float32, seed=0, spread=1.0):
    g = torch.Generator().manual_seed(seed)
    q = spread * torch.randn(*batch_shape, n, d_k, generator=g, dtype=dtype)
    k = torch.randn(*batch_shape, m, d_k, generator=g, dtype=dtype)
    v = torch.randn(*batch_shape, m, d_v, generator=g, dtype=dtype)
    return q, k, v


@pytest.mark.parametrize(
    "n, m, block", [(1, 1, 4), (7, 13, 4), (33, 33, 8), (5, 40, 128)]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tiled_equals_plain_attention(n, m, block, dtype):
    q, k, v = qkv((2, 3), n, m, dtype=dtype)
    expected, _ = scaled_dot_product_attention(q, k, v)
    out = tiled_attention(q, k, v, block_size=block)
    assert out.dtype == dtype
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    reference = F.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("block", [1, 3, 4, 16])
def test_tiled_with_masks(block):
    n = 11
    q, k, v = qkv((2,), n, n, seed=1)
    causal = causal_mask(n)
    lengths = torch.tensor([n, 6])
    padding = padding_mask(lengths, n)[:, None, :]  # (batch, 1, m)
    for mask in (causal, padding, causal & padding, causal[None]):
        expected, _ = scaled_dot_product_attention(q, k, v, mask)
        out = tiled_attention(q, k, v, mask, block_size=block)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
        reference = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)
    out = tiled_attention(q, k, v, block_size=block, causal=True)
    torch.testing.assert_close(out, scaled_dot_product_attention(q, k, v, causal)[0])
    out = tiled_attention(q, k, v, padding, block_size=block, causal=True)
    expected = scaled_dot_product_attention(q, k, v, causal & padding)[0]
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n, m", [(1, 5), (3, 10), (10, 10), (6, 4)])
@pytest.mark.parametrize("block", [1, 3, 16])
def test_tiled_causal_is_aligned_bottom_right(n, m, block):
    """With n queries and m keys, query i sees keys j <= i + m - n (the queries are the
    last n positions), as PyTorch's causal_lower_right; n > m leaves the first n - m
    queries without a key, and their output is zero (as SDPA's)."""
    from torch.nn.attention.bias import causal_lower_right

    q, k, v = qkv((2,), n, m, seed=5)
    out = tiled_attention(q, k, v, block_size=block, causal=True)
    with warnings.catch_warnings():  # PyTorch warns of NaNs when n > m; it gives zeros
        warnings.simplefilter("ignore", UserWarning)
        bias = causal_lower_right(n, m)
        reference = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)
    i, j = torch.arange(n)[:, None], torch.arange(m)[None, :]
    expected, _ = scaled_dot_product_attention(q, k, v, j <= i + m - n)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_tiled_causal_decode_step_sees_every_key():
    """One new query against 5 keys (a decode step): the query is the last position and
    sees all 5 keys, not only the first (top-left alignment would return v[0])."""
    q, k, v = qkv((1,), 1, 5, seed=6)
    out = tiled_attention(q, k, v, block_size=2, causal=True)
    torch.testing.assert_close(out, scaled_dot_product_attention(q, k, v)[0])
    assert not torch.allclose(out, v[..., :1, :], atol=1e-3)


def test_tiled_fully_masked_row_gives_zeros():
    q, k, v = qkv((3,), 4, 10, seed=2)
    mask = padding_mask(torch.tensor([10, 0, 3]), 10)[
        :, None, :
    ]  # batch 1 sees nothing
    out = tiled_attention(q, k, v, mask, block_size=4)
    assert torch.equal(out[1], torch.zeros(4, 5))
    expected, _ = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    # a row masked inside a block where other rows are not
    row_mask = torch.ones(4, 10, dtype=torch.bool)
    row_mask[2] = False
    out = tiled_attention(q, k, v, row_mask, block_size=3)
    assert torch.equal(out[:, 2], torch.zeros(3, 5))
    torch.testing.assert_close(out, scaled_dot_product_attention(q, k, v, row_mask)[0])


def test_tiled_wide_score_spread_does_not_overflow():
    # scores spread over several hundred: exp without the running max would overflow
    q, k, v = qkv((2,), 9, 30, seed=3, spread=60.0)
    scores = q @ k.transpose(-2, -1) / math.sqrt(8)
    assert (scores.amax(-1) - scores.amin(-1)).min() > 100
    out = tiled_attention(q, k, v, block_size=7)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, scaled_dot_product_attention(q, k, v)[0])


def test_tiled_never_holds_the_full_score_matrix():
    from attention_kit.measure import peak_memory

    q, k, v = qkv((1,), 1024, 1024, d_k=16, d_v=16, seed=4)
    with torch.no_grad():
        plain = peak_memory(lambda: scaled_dot_product_attention(q, k, v))
        tiled = peak_memory(lambda: tiled_attention(q, k, v, block_size=64))
    assert plain >= 1024 * 1024 * 4  # at least one (n, m) float32 matrix
    assert tiled < 1024 * 1024 * 4 / 4


def test_online_update_rescales_what_came_before():
    # two blocks, the second with a larger maximum: the state after both equals the
    # state of one block holding all the keys
    g = torch.Generator().manual_seed(5)
    s1, s2 = torch.randn(3, 4, generator=g), torch.randn(3, 6, generator=g) + 5
    v1, v2 = torch.randn(4, 2, generator=g), torch.randn(6, 2, generator=g)
    empty = (torch.full((3, 1), float("-inf")), torch.zeros(3, 1), torch.zeros(3, 2))
    two = online_softmax_update(online_softmax_update(empty, s1, v1), s2, v2)
    one = online_softmax_update(empty, torch.cat([s1, s2], -1), torch.cat([v1, v2]))
    for a, b in zip(two, one, strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(
        two[2] / two[1],
        torch.softmax(torch.cat([s1, s2], -1), -1) @ torch.cat([v1, v2]),
    )


def test_tiled_rejects_bad_arguments():
    q, k, v = qkv((), 3, 3)
    with pytest.raises(ValueError):
        tiled_attention(q, k, v, block_size=0)
    with pytest.raises(TypeError):
        tiled_attention(q, k, v, mask=torch.ones(3, 3))


# --- sliding windows ----------------------------------------------------------------------


def test_sliding_window_mask_properties():
    n = 9
    for w in (1, 2, 4, 9, 20):
        mask = sliding_window_mask(n, w)
        assert mask.dtype == torch.bool and mask.shape == (n, n)
        assert torch.equal(mask & ~causal_mask(n), torch.zeros(n, n, dtype=torch.bool))
        assert mask.diagonal().all()
        # each query sees min(i + 1, w) keys: cost n*w, not n^2, once n >> w
        assert mask.sum(-1).tolist() == [min(i + 1, w) for i in range(n)]
        sym = sliding_window_mask(n, w, causal=False)
        assert torch.equal(sym, sym.T)
        assert torch.equal(sym & causal_mask(n), mask)
    assert torch.equal(sliding_window_mask(n, n), causal_mask(n))
    assert torch.equal(sliding_window_mask(n, 1), torch.eye(n, dtype=torch.bool))
    with pytest.raises(ValueError):
        sliding_window_mask(n, 0)


def test_sliding_window_matches_the_model_window():
    model = model_with("learned", window=3)
    assert torch.equal(model.attention_mask(10), sliding_window_mask(10, 3))


@pytest.mark.parametrize(
    "n, window, block", [(1, 1, 4), (13, 3, 4), (20, 7, 5), (9, 20, 4)]
)
def test_sliding_window_attention_equals_masked_attention(n, window, block):
    q, k, v = qkv((2, 2), n, n, seed=9)
    expected, _ = scaled_dot_product_attention(q, k, v, sliding_window_mask(n, window))
    out = sliding_window_attention(q, k, v, window, block_size=block)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_receptive_field_grows_by_window_minus_one_per_layer():
    n, w = 20, 4
    step = sliding_window_mask(n, w).long()
    reach = torch.eye(n, dtype=torch.long)
    for layers in range(1, 5):
        reach = ((step @ reach) > 0).long()
        # the last token depends on tokens n-1-layers*(w-1) .. n-1
        assert reach[-1].sum().item() == layers * (w - 1) + 1


# --- linear attention ---------------------------------------------------------------------


def explicit_linear_attention(q, k, v, causal):
    """The same formula with the (n, n) similarity matrix written out."""
    similarity = elu_feature_map(q) @ elu_feature_map(k).transpose(-2, -1)
    if causal:
        similarity = similarity * causal_mask(q.shape[-2]).to(similarity.dtype)
    return similarity @ v / similarity.sum(-1, keepdim=True)


@pytest.mark.parametrize("n", [1, 7, 16])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_linear_attention_equals_explicit_formula(n, causal, dtype):
    q, k, v = qkv((2, 3), n, n, d_k=6, d_v=4, dtype=dtype, seed=6)
    out = linear_attention(q, k, v, causal)
    assert out.shape == (2, 3, n, 4) and out.dtype == dtype
    torch.testing.assert_close(out, explicit_linear_attention(q, k, v, causal))


def test_causal_linear_attention_is_a_running_sum():
    q, k, v = qkv((2,), 10, 10, d_k=6, d_v=4, seed=7)
    phi_q, phi_k = elu_feature_map(q), elu_feature_map(k)
    assert (phi_q > 0).all() and (phi_k > 0).all()
    state = torch.zeros(2, 6, 4)
    normaliser = torch.zeros(2, 6)
    rows = []
    for i in range(10):  # the RNN view: one state update per token
        state = state + phi_k[:, i, :, None] * v[:, i, None, :]
        normaliser = normaliser + phi_k[:, i]
        numerator = (phi_q[:, i, None, :] @ state).squeeze(1)
        rows.append(numerator / (phi_q[:, i] * normaliser).sum(-1, keepdim=True))
    causal = linear_attention(q, k, v, causal=True)
    torch.testing.assert_close(causal, torch.stack(rows, dim=1))
    # the last causal row sees every key: it equals the non-causal last row
    torch.testing.assert_close(causal[:, -1], linear_attention(q, k, v)[:, -1])
    # the causal version ignores the future: changing the last key changes no earlier row
    k2 = k.clone()
    k2[:, -1] += 1
    torch.testing.assert_close(linear_attention(q, k2, v, True)[:, :-1], causal[:, :-1])


def test_linear_attention_differs_from_softmax():
    q, k, v = qkv((1,), 12, 12, seed=8, spread=3.0)
    gap = (linear_attention(q, k, v) - scaled_dot_product_attention(q, k, v)[0]).abs()
    assert gap.max() > 0.1  # an approximation with another kernel, not softmax
