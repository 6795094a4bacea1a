"""attention_kit.measure: peak memory, timing and slopes on cases with known answers."""

import pytest
import torch

from attention_kit import measure
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


def test_time_call_is_the_fastest_of_the_repeats(monkeypatch):
    # A fake clock: run k takes 0.5, 0.2, 0.3 "seconds"; the warm-up is not timed.
    durations = iter([0.5, 0.2, 0.3])
    clock = {"now": 0.0}
    monkeypatch.setattr(measure.time, "perf_counter", lambda: clock["now"])

    def fn():
        clock["now"] += next(durations)

    warmups = []
    assert time_call(fn, repeats=3, warmup=0) == pytest.approx(0.2)
    assert time_call(lambda: warmups.append(1), repeats=2, warmup=3) == 0.0  # no tick
    assert len(warmups) == 5


def test_time_call_pins_the_thread_count_and_restores_it():
    before = torch.get_num_threads()
    seen = []
    time_call(lambda: seen.append(torch.get_num_threads()), repeats=2, threads=1)
    assert seen == [1, 1, 1]  # the warm-up and both repeats
    assert torch.get_num_threads() == before
    seen.clear()
    time_call(lambda: seen.append(torch.get_num_threads()), repeats=1, threads=None)
    assert seen == [before, before]


def test_time_call_waits_for_the_gpu_when_cuda_is_in_use(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: calls.append("sync"))
    time_call(lambda: calls.append("fn"), repeats=2, warmup=0)
    # before the clock starts and before it stops, around every timed run
    assert calls == ["sync", "fn", "sync", "sync", "fn", "sync"]


def test_time_call_does_not_touch_cuda_when_it_was_never_used(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setattr(
        torch.cuda, "synchronize", lambda: pytest.fail("synchronize without CUDA")
    )
    assert time_call(lambda: None, repeats=2) >= 0
