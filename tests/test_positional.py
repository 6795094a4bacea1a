"""attention_kit.positional against independent computations and the stated properties."""

import math

import pytest
import torch

from attention_kit.positional import (
    LearnedPositions,
    SinusoidalPositions,
    apply_rope,
    apply_rope_rotate_half,
    interleaved_to_halves,
    pair_frequencies,
    rotation_matrix,
    sinusoidal_encoding,
)


def random(*shape, seed=0, dtype=torch.float64):
    return torch.randn(
        *shape, generator=torch.Generator().manual_seed(seed), dtype=dtype
    )


def loop_table(num_positions, dim):
    """The formula of Vaswani et al. (2017), one entry at a time with math.sin/cos."""
    table = torch.zeros(num_positions, dim, dtype=torch.float64)
    for t in range(num_positions):
        for i in range(dim // 2):
            angle = t / 10000 ** (2 * i / dim)
            table[t, 2 * i] = math.sin(angle)
            table[t, 2 * i + 1] = math.cos(angle)
    return table


def complex_rope(x, positions):
    """RoPE as complex multiplication: pair (2i, 2i+1) is the number x_2i + j x_2i+1."""
    dim = x.shape[-1]
    z = torch.view_as_complex(x.to(torch.float64).reshape(*x.shape[:-1], dim // 2, 2))
    theta = torch.tensor(
        [[p / 10000 ** (2 * i / dim) for i in range(dim // 2)] for p in positions],
        dtype=torch.float64,
    )
    rotated = z * torch.polar(torch.ones_like(theta), theta)
    return torch.view_as_real(rotated).reshape(x.shape)


@pytest.mark.parametrize(("num_positions", "dim"), [(1, 2), (7, 2), (50, 16), (9, 6)])
def test_sinusoidal_matches_the_formula(num_positions, dim):
    table = sinusoidal_encoding(num_positions, dim, dtype=torch.float64)
    assert table.shape == (num_positions, dim)
    assert torch.allclose(table, loop_table(num_positions, dim), atol=1e-12)


def test_sinusoidal_row_zero_and_dtype_device():
    table = sinusoidal_encoding(4, 8)
    assert table.dtype == torch.float32 and table.device.type == "cpu"
    assert torch.equal(table[0], torch.tensor([0.0, 1.0] * 4))
    assert sinusoidal_encoding(0, 4).shape == (0, 4)
    assert sinusoidal_encoding(3, 4, dtype=torch.float64).dtype == torch.float64


@pytest.mark.parametrize("dim", [0, 3, 7])
def test_odd_dim_is_rejected(dim):
    with pytest.raises(ValueError, match="even"):
        sinusoidal_encoding(4, dim)
    with pytest.raises(ValueError, match="even"):
        apply_rope(torch.zeros(2, max(dim, 1)))


def test_frequencies():
    omega = pair_frequencies(8)
    assert torch.allclose(
        omega, torch.tensor([1.0, 10**-1, 10**-2, 10**-3], dtype=torch.float64)
    )


@pytest.mark.parametrize("delta", [0, 1, 3, 17, -5])
def test_rotation_identity(delta):
    dim = 16
    table = sinusoidal_encoding(80, dim, dtype=torch.float64)
    rotation = rotation_matrix(delta, dim)
    for t in (5, 20, 40):
        assert torch.allclose(table[t + delta], rotation @ table[t], atol=1e-12)
    # orthogonal: a rotation
    assert torch.allclose(rotation @ rotation.T, torch.eye(dim, dtype=torch.float64))


def test_dot_product_depends_only_on_offset():
    table = sinusoidal_encoding(100, 32, dtype=torch.float64)
    for delta in (0, 1, 4, 30):
        dots = (table[: 100 - delta] * table[delta:]).sum(-1)
        assert torch.allclose(dots, dots[0].expand_as(dots), atol=1e-10)
        expected = torch.cos(delta * pair_frequencies(32)).sum()
        assert torch.allclose(dots[0], expected)


@pytest.mark.parametrize("shape", [(1, 4), (5, 8), (2, 5, 8), (2, 3, 5, 8)])
def test_rope_matches_complex_rotation(shape):
    x = random(*shape, seed=1)
    seq = shape[-2]
    expected = complex_rope(x, list(range(seq)))
    assert torch.allclose(apply_rope(x), expected, atol=1e-12)
    assert apply_rope(x).shape == x.shape


def test_rope_explicit_positions_as_in_a_kv_cache():
    x = random(2, 4, 3, 8, seed=2)
    positions = torch.arange(5, 8)
    expected = complex_rope(x, [5, 6, 7])
    assert torch.allclose(apply_rope(x, positions), expected, atol=1e-12)
    # the same rows at the end of a longer sequence get the same rotation
    longer = torch.cat([random(2, 4, 5, 8, seed=3), x], dim=-2)
    assert torch.allclose(apply_rope(longer)[..., 5:, :], expected, atol=1e-12)
    # non-contiguous positions
    gaps = torch.tensor([0, 10, 3])
    assert torch.allclose(apply_rope(x, gaps), complex_rope(x, [0, 10, 3]), atol=1e-12)


def test_rope_positions_per_batch_broadcast():
    x = random(2, 4, 3, 8, seed=4)
    positions = torch.tensor([[0, 1, 2], [7, 8, 9]])[:, None, :]  # (batch, 1, seq)
    out = apply_rope(x, positions)
    assert torch.allclose(out[0], complex_rope(x[0], [0, 1, 2]), atol=1e-12)
    assert torch.allclose(out[1], complex_rope(x[1], [7, 8, 9]), atol=1e-12)
    with pytest.raises(ValueError, match="sequence axis"):
        apply_rope(x, torch.arange(4))


def test_rope_relative_property_and_norms():
    dim = 16
    q, k = random(dim, seed=5), random(dim, seed=6)

    def score(m, n):
        rq = apply_rope(q[None], torch.tensor([m]))[0]
        rk = apply_rope(k[None], torch.tensor([n]))[0]
        return rq @ rk

    for m, n in [(3, 1), (10, 8), (102, 100)]:
        assert math.isclose(score(m, n), score(2, 0), abs_tol=1e-10)
    assert not math.isclose(score(3, 0), score(2, 0), abs_tol=1e-3)
    x = random(3, 20, dim, seed=7)
    assert torch.allclose(apply_rope(x).norm(dim=-1), x.norm(dim=-1))
    # position 0 is the identity
    assert torch.equal(apply_rope(x[:, :1]), x[:, :1])


def test_rotate_half_is_a_permutation_of_interleaved():
    dim = 12
    perm = interleaved_to_halves(dim)
    assert sorted(perm.tolist()) == list(range(dim))
    x = random(2, 7, dim, seed=8)
    assert torch.allclose(
        apply_rope_rotate_half(x[..., perm]), apply_rope(x)[..., perm]
    )
    # and they really are different layouts
    assert not torch.allclose(apply_rope_rotate_half(x), apply_rope(x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rope_dtype_follows_input(dtype):
    x = random(3, 8, dtype=dtype)
    out = apply_rope(x, torch.arange(3))
    assert out.dtype == dtype and out.device == x.device
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert torch.allclose(out.double(), complex_rope(x, [0, 1, 2]), atol=tol)


def test_rope_gradient_flows():
    x = random(4, 8, seed=9).requires_grad_()
    apply_rope(x).pow(2).sum().backward()
    # the rotation preserves norms, so d|Rx|^2/dx = 2x
    assert torch.allclose(x.grad, 2 * x.detach())


def test_positions_modules():
    x = random(2, 5, 8, seed=10, dtype=torch.float32)
    assert torch.allclose(SinusoidalPositions(8)(x), x + sinusoidal_encoding(5, 8))
    shifted = SinusoidalPositions(8)(x, torch.arange(3, 8))
    assert torch.allclose(shifted, x + sinusoidal_encoding(8, 8)[3:], atol=1e-6)
    learned = LearnedPositions(6, 8)
    assert torch.allclose(learned(x), x + learned.table.weight[:5])
    with pytest.raises(IndexError, match="beyond"):
        learned(random(1, 7, 8, dtype=torch.float32))


def test_device_follows_the_input():
    # the meta device computes shapes only; a stand-in for a GPU on a CPU-only machine
    x = torch.zeros(2, 3, 8, device="meta")
    assert apply_rope(x).device.type == "meta"
    assert apply_rope(x, torch.arange(3)).device.type == "meta"
    assert apply_rope_rotate_half(x).device.type == "meta"
    assert sinusoidal_encoding(3, 8, device="meta").device.type == "meta"


def test_block_rotation_by_hand():
    """block_rotation (shared by rotation_matrix and the Lab 06 checker) puts
    [[cos b, sin b], [-sin b, cos b]] on each pair and zeros elsewhere."""
    from attention_kit.positional import block_rotation

    angles = torch.tensor([0.3, -1.2, 2.0])
    matrix = block_rotation(angles)
    assert matrix.shape == (6, 6) and matrix.dtype == torch.float64
    for i, b in enumerate(angles.double()):
        c, s = math.cos(b), math.sin(b)
        block = matrix[2 * i : 2 * i + 2, 2 * i : 2 * i + 2]
        assert torch.allclose(
            block, torch.tensor([[c, s], [-s, c]], dtype=torch.float64)
        )
    off_blocks = matrix.clone()
    for i in range(3):
        off_blocks[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = 0
    assert not off_blocks.any()
    assert torch.allclose(matrix @ matrix.T, torch.eye(6, dtype=torch.float64))


def test_alibi_slopes_and_bias():
    from attention_kit.positional import alibi_bias, alibi_slopes

    assert alibi_slopes(8).tolist() == [2.0**-k for k in range(1, 9)]  # Press et al.
    assert torch.allclose(
        alibi_slopes(4), torch.tensor([2**-2, 2**-4, 2**-6, 2**-8]).double()
    )
    bias = alibi_bias(torch.arange(4), torch.arange(4), alibi_slopes(2))
    assert bias.shape == (2, 4, 4)
    assert bias[0, 3, 0] == -(2**-4) * 3 and bias[1, 3, 1] == -(2**-8) * 2
    # a KV cache: queries at positions 5, 6 against keys 0..6 give the last rows
    full = alibi_bias(torch.arange(7), torch.arange(7), alibi_slopes(2))
    assert torch.equal(
        alibi_bias(torch.arange(5, 7), torch.arange(7), alibi_slopes(2)), full[:, 5:]
    )


def test_t5_buckets():
    from attention_kit.positional import relative_position_bucket

    distance = torch.arange(0, 300)
    buckets = relative_position_bucket(distance, num_buckets=32, max_distance=128)
    assert torch.equal(buckets[:16], torch.arange(16))  # one bucket per small distance
    assert (buckets.diff() >= 0).all()  # never decreasing with distance
    assert buckets[127].item() == 31 and (buckets[128:] == 31).all()
    assert buckets[16].item() == 16 and buckets[63].item() < 31
    assert relative_position_bucket(torch.tensor([-3])).item() == 0  # a future key


def test_t5_bias_module_shapes_and_cache_alignment():
    from attention_kit.positional import T5RelativeBias

    torch.manual_seed(0)
    bias = T5RelativeBias(num_heads=3)
    full = bias(6)
    assert full.shape == (3, 6, 6)
    assert torch.equal(bias(2, 6), full[:, 4:])  # the last 2 queries of 6
