"""plots, data and train helpers."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from attention_kit.data import noisy_samples, wavy_function
from attention_kit.plots import contrast_ratio, show_heatmap
from attention_kit.train import COURSE_THREADS, get_device, set_seed, set_threads


def test_show_heatmap_labels_axes_ticks_and_colour_bar():
    weights = torch.softmax(torch.randn(3, 4), dim=-1)
    ax = show_heatmap(
        weights, xticklabels=list("abcd"), yticklabels=["x", "y", "z"], title="t"
    )
    assert (
        ax.get_xlabel() == "keys"
        and ax.get_ylabel() == "queries"
        and ax.get_title() == "t"
    )
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcd")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x", "y", "z"]
    colour_bars = [a for a in ax.figure.axes if a is not ax]
    assert len(colour_bars) == 1 and colour_bars[0].get_ylabel() == "attention weight"
    assert np.allclose(ax.images[0].get_array(), weights.numpy())
    plt.close(ax.figure)


def test_show_heatmap_can_write_the_values_legibly_into_the_cells():
    weights = torch.tensor([[0.0, 0.25], [0.5, 1.0]])
    ax = show_heatmap(weights, annotate=True)
    image = ax.images[0]
    texts = {(t.get_position(), t.get_text()): t.get_color() for t in ax.texts}
    assert sorted(text for _, text in texts) == ["0.00", "0.25", "0.50", "1.00"]
    for ((column, row), _), ink in texts.items():
        cell = image.cmap(image.norm(weights[row, column].item()))
        assert contrast_ratio(ink, cell) >= 4.5, (row, column, ink)
    assert texts[((1, 1), "1.00")] == "white" and texts[((0, 0), "0.00")] == "black"
    plt.close(ax.figure)
    ax = show_heatmap(-weights, vmin=None, cmap="RdBu_r", annotate="{:+.1f}")
    assert "-0.5" in [t.get_text() for t in ax.texts]
    plt.close(ax.figure)


def test_contrast_ratio_follows_wcag():
    assert contrast_ratio("black", "white") == pytest.approx(21.0)
    assert contrast_ratio("#777777", "white") == pytest.approx(4.48, abs=0.01)
    assert contrast_ratio("red", "red") == 1.0


def test_the_default_colour_map_reads_in_greyscale():
    """Lightness falls steadily along Reds, so the cells can be ordered without hue."""
    from attention_kit.plots import relative_luminance

    cmap = plt.get_cmap("Reds")
    luminance = [relative_luminance(cmap(x)) for x in np.linspace(0, 1, 64)]
    assert all(np.diff(luminance) < 0)


def test_show_heatmap_draws_into_given_axes_and_rejects_bad_input():
    fig, axes = plt.subplots(1, 2)
    assert show_heatmap(np.eye(2), ax=axes[1]) is axes[1]
    with pytest.raises(ValueError, match="2-D"):
        show_heatmap(np.zeros(3))
    with pytest.raises(ValueError, match="tick labels"):
        show_heatmap(np.eye(2), xticklabels=["only one"])
    plt.close("all")


def test_noisy_samples_are_sorted_seeded_and_noisy():
    x, y = noisy_samples(50, noise=0.3, seed=4)
    assert x.shape == y.shape == (50,)
    assert (x[1:] >= x[:-1]).all() and x.min() >= 0 and x.max() <= 5
    again_x, again_y = noisy_samples(50, noise=0.3, seed=4)
    assert torch.equal(x, again_x) and torch.equal(y, again_y)
    assert not torch.equal(y, noisy_samples(50, noise=0.3, seed=5)[1])
    residual_std = (y - wavy_function(x)).std().item()
    assert 0.2 < residual_std < 0.4
    assert torch.allclose(
        noisy_samples(10, noise=0.0)[1], wavy_function(noisy_samples(10)[0])
    )


def test_set_seed_makes_torch_and_numpy_repeat():
    set_seed(7)
    first = torch.rand(3), np.random.rand(3)
    set_seed(7)
    second = torch.rand(3), np.random.rand(3)
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1])


def test_get_device_is_the_cpu_unless_the_learner_opts_in(monkeypatch):
    monkeypatch.delenv("ATTENTION_KIT_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # even with a GPU
    assert get_device() == torch.device("cpu")
    monkeypatch.setenv("ATTENTION_KIT_DEVICE", "cuda")
    assert get_device() == torch.device("cuda")
    monkeypatch.setenv("ATTENTION_KIT_DEVICE", " CPU ")
    assert get_device() == torch.device("cpu")


def test_get_device_says_plainly_when_the_chosen_device_is_missing(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    for name, words in [("cuda", "sees none"), ("mps", "sees none"), ("tpu", "cpu")]:
        monkeypatch.setenv("ATTENTION_KIT_DEVICE", name)
        with pytest.raises(RuntimeError, match=words):
            get_device()


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_set_threads_uses_the_course_default_and_returns_it(
    monkeypatch, restore_threads
):
    monkeypatch.delenv("ATTENTION_KIT_THREADS", raising=False)
    torch.set_num_threads(2)
    assert set_threads() == COURSE_THREADS == torch.get_num_threads() == 1
    assert set_threads(2) == 2 == torch.get_num_threads()


def test_set_threads_reads_the_environment_and_refuses_nonsense(
    monkeypatch, restore_threads
):
    monkeypatch.setenv("ATTENTION_KIT_THREADS", "2")
    assert set_threads() == 2 == torch.get_num_threads()
    assert set_threads(1) == 1  # an explicit number wins
    monkeypatch.setenv("ATTENTION_KIT_THREADS", "many")
    with pytest.raises(ValueError, match="whole number"):
        set_threads()
    for wrong in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="whole number"):
            set_threads(wrong)
