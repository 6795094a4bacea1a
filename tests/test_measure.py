"""attention_kit.measure: peak memory, timing and slopes on cases with known answers."""

import pytest
import torch

from attention_kit.measure import fitted_slope, peak_memory, time_call


def test_peak_memory_of_one_allocation():
    assert peak_memory(lambda: torch.empty(1000, 1000)) == 4_000_000


def test_peak_memory_counts_what_is_alive_at_once():
    def two_at_a_time():
        a = torch.ones(500, 1000)  # 2 MB
        b = a * 2  # 2 MB more, while a is alive
        del a, b
        return torch.zeros(250, 1000)  # 1 MB, after both were freed

    # (a few bytes more: the scalar 2 becomes a tiny tensor)
    assert peak_memory(two_at_a_time) == pytest.approx(4_000_000, abs=1024)


def test_peak_memory_of_attention_grows_with_the_square_of_n():
    def attention(n):
        x = torch.randn(1, n, 16)
        return lambda: torch.softmax(x @ x.transpose(-2, -1), dim=-1) @ x

    small, large = peak_memory(attention(256)), peak_memory(attention(512))
    assert 3.5 < large / small < 4.5


def test_fitted_slope_recovers_a_power_law():
    sizes = [10, 100, 1000]
    assert fitted_slope(sizes, [3 * s**2 for s in sizes]) == pytest.approx(2.0)
    assert fitted_slope(sizes, [7 * s for s in sizes]) == pytest.approx(1.0)


def test_time_call_is_a_positive_median():
    assert 0 < time_call(lambda: sum(range(1000)), repeats=3) < 1
