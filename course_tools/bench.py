"""The course's measurements, printed as a table: ``make bench`` (python -m course_tools.bench).

Model quality and speed are measured here rather than asserted in timed tests, because
they depend on the machine. Every run is seeded; times are wall-clock on this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator

import torch
from torch import nn

from attention_kit.attention import scaled_dot_product_attention
from attention_kit.data import SOURCE_VOCAB, TARGET_VOCAB, date_datasets, date_tensors
from attention_kit.measure import fitted_slope, peak_memory, time_call
from attention_kit.models import Seq2Seq, seq2seq_loss, translate
from attention_kit.train import fit, random_batches, set_seed, set_threads
from course_tools.grading import measure_autograde

Row = tuple[str, str, str]  # measurement, value, note


def _announce(text: str) -> None:
    """Say on stderr what is about to run (the table comes at the end, on stdout)."""
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _bar_on_stderr() -> Iterator[None]:
    """fit's progress bar writes to sys.stdout when it starts: send it to stderr, so
    that stdout keeps the table alone."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _train_with_bar(
    model, loss_fn, batches, steps: int, learning_rate: float, what: str
):
    """fit with a progress bar on stderr, labelled ``what``."""
    _announce(f"  {what}")
    with _bar_on_stderr():
        return fit(model, loss_fn, batches, steps, learning_rate, description=what[:24])


def _date_accuracy(model: Seq2Seq, test_pairs: list[tuple[str, str]]) -> float:
    predictions, _ = translate(
        model, [s for s, _ in test_pairs], SOURCE_VOCAB, TARGET_VOCAB
    )
    return sum(p == t for p, (_, t) in zip(predictions, test_pairs, strict=True)) / len(
        test_pairs
    )


def _train_dates(
    attention_dim: int | None, steps: int, train_tensors
) -> tuple[Seq2Seq, float]:
    set_seed(0)  # the settings of Lab 03
    model = Seq2Seq(len(SOURCE_VOCAB), len(TARGET_VOCAB), attention_dim=attention_dim)
    batches = random_batches(*train_tensors, batch_size=32, seed=0)
    history = fit(model, seq2seq_loss, batches, steps, 1e-2, progress=False)
    return model, history.seconds


def date_task() -> list[Row]:
    """Unit 03: the GRU encoder-decoder on 1000 held-out dates, greedy decoding."""
    train_pairs, test_pairs = date_datasets(num_train=30_000, num_test=1000, seed=0)
    train_tensors = date_tensors(train_pairs)
    rows = []
    model, seconds = _train_dates(64, 200, train_tensors)
    rows.append(
        (
            "dates, with attention, 200 steps of 32",
            f"{_date_accuracy(model, test_pairs):.1%} exact match",
            f"{seconds:.1f} s training (target: >= 99% within 15 s)",
        )
    )
    model, seconds = _train_dates(None, 200, train_tensors)
    rows.append(
        (
            "dates, without attention, 200 steps of 32",
            f"{_date_accuracy(model, test_pairs):.1%} exact match",
            f"{seconds:.1f} s training",
        )
    )
    for steps in (400, 800, 1600, 3200):
        model, seconds = _train_dates(None, steps, train_tensors)
        accuracy = _date_accuracy(model, test_pairs)
        rows.append(
            (
                f"dates, without attention, {steps} steps",
                f"{accuracy:.1%} exact match",
                f"{seconds:.1f} s training",
            )
        )
        if accuracy >= 0.99:
            break
    return rows


def attention_cost() -> list[Row]:
    """Unit 04: time and peak memory of attention and of a GRU layer against n (d = 64,
    batch 1, no gradients), with the log-log slopes fitted on n >= 512."""
    lengths = [128, 256, 512, 1024, 2048, 4096, 8192]
    torch.manual_seed(0)
    gru = nn.GRU(64, 64, batch_first=True)
    layers = {
        "attention": lambda x: scaled_dot_product_attention(x, x, x),
        "GRU": lambda x: gru(x),
    }
    rows = []
    with torch.no_grad():
        for name, layer in layers.items():
            times, memories = [], []
            for n in lengths:
                x = torch.randn(1, n, 64)
                times.append(time_call(lambda layer=layer, x=x: layer(x), repeats=5))
                memories.append(peak_memory(lambda layer=layer, x=x: layer(x)))
                rows.append(
                    (
                        f"{name}, n = {n}",
                        f"{1e3 * times[-1]:.2f} ms",
                        f"peak memory {memories[-1] / 1e6:.2f} MB",
                    )
                )
            rows.append(
                (
                    f"{name}, fitted slopes (n >= 512)",
                    f"time ~ n^{fitted_slope(lengths[2:], times[2:]):.2f}",
                    f"memory ~ n^{fitted_slope(lengths[2:], memories[2:]):.2f}",
                )
            )
    return rows


def position_length_generalisation() -> list[Row]:
    """Unit 06: accuracy on "copy the token 2 places back" of one causal attention layer
    with no, sinusoidal, learned or rotary positions, trained on length 16 and tested on
    lengths 16 to 64 (attention_kit.position_study)."""
    from attention_kit.position_study import length_generalisation_rows

    return length_generalisation_rows()


def position_score_biases() -> list[Row]:
    """Unit 06: the same study for the score-bias family, ALiBi (slope 1/2) and T5's
    relative buckets, with the same steps and seeds as "positions"."""
    from attention_kit.position_study import BIAS_KINDS, length_generalisation_rows

    return length_generalisation_rows(kinds=BIAS_KINDS)


def _recall_data():
    """Lab 08's recall data: 20,000 training and 1,000 held-out sequences of 6 pairs,
    16 keys, 16 values."""
    from attention_kit.data import associative_recall

    train = associative_recall(20_000, 6, 16, 16, seed=1)
    return train, associative_recall(1000, 6, 16, 16, seed=2)


def _recall_run(
    num_layers: int, positions: str, steps: int, what: str, gpt2_init: bool = False
) -> tuple[float, float]:
    """Lab 08's recall model (d 32, 2 heads, PyTorch's default initialisation unless
    ``gpt2_init``) trained for ``steps`` steps of 64; accuracy on the 1,000 held-out
    sequences and training seconds."""
    from attention_kit.transformer import (
        MiniTransformer,
        TransformerConfig,
        recall_accuracy,
        recall_loss,
    )

    train, test = _recall_data()
    set_seed(0)
    init = "gpt2" if gpt2_init else "pytorch"
    config = TransformerConfig(
        32, 13, 32, num_layers, 2, positions=positions, init=init
    )
    model = MiniTransformer(config)
    batches = random_batches(*train, batch_size=64, seed=0)
    history = _train_with_bar(model, recall_loss, batches, steps, 3e-3, what)
    return recall_accuracy(model, *test), history.seconds


def most_frequent_value_accuracy(inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """The expected accuracy of answering with the value that occurs most often in the
    sequence (a tie broken at random): the best a model can do that knows which values
    are present but not which one follows the asked key."""
    values = inputs[:, 1:-1:2]
    total = 0.0
    for row, target in zip(values.tolist(), targets.tolist(), strict=True):
        counts = {value: row.count(value) for value in row}
        best = [
            value for value, count in counts.items() if count == max(counts.values())
        ]
        total += (target in best) / len(best)
    return total / len(values)


# (name, layers, positions, steps, what to expect); the last keeps the kit's GPT-2 init
RECALL_RUNS = [
    ("2 layers, learned positions (the lab)", 2, "learned", 1000, ">= 99% within 60 s"),
    ("ablation: 1 layer", 1, "learned", 1000, "near the most-frequent-value strategy"),
    (
        "ablation: 1 layer, 3x the steps",
        1,
        "learned",
        3000,
        "no better than 1,000 steps",
    ),
    ("ablation: no positions", 2, "none", 1000, "far above chance, below 99%"),
    (
        "ablation: no positions, 3x the steps",
        2,
        "none",
        3000,
        "higher than 1,000 steps",
    ),
    ("RoPE instead of learned positions", 2, "rope", 1000, ">= 99%"),
    ("GPT-2 initialisation (the kit's)", 2, "learned", 1000, "may stay on the plateau"),
]


def recall_task() -> list[Row]:
    """Unit 08: associative recall, the lab's model and its two ablations (PyTorch's
    default initialisation, as in the lab) and the kit's GPT-2 initialisation, against
    chance (1/16) and the best strategy that does not find the asked key (answer the
    most frequent value of the sequence)."""
    _, test = _recall_data()
    rows = [
        ("recall, chance (1 of 16 values)", f"{1 / 16:.1%} exact match", ""),
        (
            "recall, most frequent value in the sequence",
            f"{most_frequent_value_accuracy(*test):.1%} exact match",
            "the best answer without finding the key",
        ),
    ]
    for number, (name, layers, positions, steps, expected) in enumerate(RECALL_RUNS):
        what = f"recall {number + 1}/{len(RECALL_RUNS)}: {name}, {steps} steps"
        gpt2_init = name.startswith("GPT-2")
        accuracy, seconds = _recall_run(layers, positions, steps, what, gpt2_init)
        rows.append(
            (
                f"recall, {name}, {steps} steps",
                f"{accuracy:.1%} exact match",
                f"{seconds:.1f} s training (expected: {expected})",
            )
        )
    return rows


# (name, attention window, positions, steps); the lab trains the first two
CHAR_RUNS = [
    ("the lab's model (RoPE)", None, "rope", 200),
    ("attention on the current token only", 1, "rope", 200),
    ("learned positions instead of RoPE", None, "learned", 200),
    ("the lab's model (RoPE)", None, "rope", 1000),
    ("attention on the current token only", 1, "rope", 1000),
    ("the lab's model (RoPE)", None, "rope", 3000),
]


def char_language_model() -> list[Row]:
    """Unit 08: the character LM on the generated agreement corpus, in bits per
    character on held-out sentences, against n-gram baselines and the same model with
    attention limited to the current token; and whether it learned agreement, on
    minimal pairs (data.agreement_pairs: the same text with a singular or a plural
    subject, ending at the verb's stem)."""
    from attention_kit.data import (
        agreement_corpus,
        agreement_pairs,
        ngram_bits_per_character,
    )
    from attention_kit.transformer import (
        MiniTransformer,
        TransformerConfig,
        bits_per_character,
        lm_loss,
        text_windows,
    )

    train, valid = agreement_corpus(4000, seed=0), agreement_corpus(500, seed=1)
    alphabet = sorted(set(train))
    train_ids, valid_ids = (
        torch.tensor([alphabet.index(c) for c in t]) for t in (train, valid)
    )
    pairs = visible_pairs(agreement_pairs(300, seed=2), 64)
    sentences = valid.splitlines()
    share = len(sentences) / len(valid)  # one verb ending per sentence, of all chars
    rows = [
        (
            f"char LM, {name} baseline",
            f"{ngram_bits_per_character(train, valid, k):.3f} bpc",
            "",
        )
        for name, k in [("unigram", 1), ("bigram", 2), ("trigram", 3)]
    ]
    rows.append(
        (
            "char LM, what agreement is worth",
            f"{share:.3f} bpc at most",
            f"1 bit per verb ending, one in {1 / share:.1f} characters",
        )
    )
    for number, (name, window, positions, steps) in enumerate(CHAR_RUNS):
        set_seed(0)
        config = TransformerConfig(
            len(alphabet), 64, 32, 2, 2, positions=positions, window=window
        )
        model = MiniTransformer(config)
        batches = random_batches(text_windows(train_ids, 64), batch_size=32, seed=0)
        history = _train_with_bar(
            model,
            lambda m, b: lm_loss(m(b[0])[0], b[0]),
            batches,
            steps,
            1e-2,
            f"char LM {number + 1}/{len(CHAR_RUNS)}: {name}, {steps} steps",
        )
        singular, plural, preferred = agreement_on_pairs(model, pairs, alphabet)
        rows.append(
            (
                f"char LM, {name}, {steps} steps",
                f"{bits_per_character(model, valid_ids):.3f} bpc",
                f"{history.seconds:.1f} s training; P('s') after a singular subject "
                f"{singular:.2f}, plural {plural:.2f}; right ending preferred "
                f"{preferred:.0%} of {2 * len(pairs)} (subject-blind: 50%)",
            )
        )
    return rows


def visible_pairs(pairs: list[tuple[str, str]], context: int) -> list[tuple[str, str]]:
    """The pairs whose tested sentence (after the last newline) fits in ``context``
    characters, so that a model reading the last ``context`` sees the subject."""
    return [pair for pair in pairs if len(pair[1].rsplit("\n", 1)[-1]) < context]


@torch.no_grad()
def agreement_on_pairs(
    model, pairs: list[tuple[str, str]], alphabet: list[str]
) -> tuple[float, float, float]:
    """On minimal pairs (singular, plural) ending at the verb's stem: the mean P('s')
    after the singular texts and after the plural ones, and the share of all texts
    where the right ending ('s' singular, '.' plural) gets more probability than the
    wrong one. A model blind to the subject gives both members of a pair the same
    distribution: equal means, and exactly 50% preferred."""
    s, dot = alphabet.index("s"), alphabet.index(".")
    context = model.config.context_length
    model.eval()
    ending = []
    for texts in zip(*pairs, strict=True):
        rows = []
        for text in texts:
            ids = torch.tensor([alphabet.index(c) for c in text])[-context:]
            p = torch.softmax(model(ids[None])[0][0, -1], -1)
            rows.append((p[s].item(), p[dot].item()))
        ending.append(torch.tensor(rows))
    singular, plural = ending
    preferred = torch.cat(
        [singular[:, 0] > singular[:, 1], plural[:, 1] > plural[:, 0]]
    )
    return (
        singular[:, 0].mean().item(),
        plural[:, 0].mean().item(),
        preferred.float().mean().item(),
    )


def _unit09_model(context: int):
    """The model of the KV-cache rows of make bench: MiniTransformer, vocabulary 32,
    d_model 64, 2 layers, 4 heads, learned positions (untrained: the cost of a step does
    not depend on the weights). Lecture 09 times another model (d_model 32, 2 heads,
    RoPE) and Lab 09 a third (d_model 64, 4 heads, RoPE): their speed-ups are theirs."""
    from attention_kit.transformer import MiniTransformer, TransformerConfig

    torch.manual_seed(0)
    return MiniTransformer(TransformerConfig(32, context, 64, 2, 4)).eval()


def kv_cache_speedup(lengths: tuple[int, ...] = (64, 128, 256, 512)) -> list[Row]:
    """Unit 09: greedy generation of 64 to 512 tokens after an 8-token prompt, recomputing
    the whole prefix at every step (transformer.generate) against a key-value cache
    (efficient.generate_cached), one timed run each; the tokens of the longest run are
    checked to be identical (greedy decoding is deterministic, so shorter runs are its
    prefixes)."""
    from attention_kit.efficient import generate_cached
    from attention_kit.transformer import generate

    model = _unit09_model(8 + max(lengths))
    prompt = torch.randint(0, 32, (1, 8), generator=torch.Generator().manual_seed(0))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the timings: two threads on a busy machine crawl
    try:
        same = torch.equal(
            generate(model, prompt, max(lengths), greedy=True),
            generate_cached(model, prompt, max(lengths), greedy=True),
        )
    finally:
        torch.set_num_threads(threads)
    rows = []
    for count in lengths:
        slow = time_call(lambda c=count: generate(model, prompt, c, greedy=True), 1, 0)
        fast = time_call(
            lambda c=count: generate_cached(model, prompt, c, greedy=True), 1, 0
        )
        rows.append(
            (
                f"KV cache, {count} generated tokens",
                f"{slow / fast:.1f}x faster than recompute",
                f"recompute {slow:.2f} s, cached {fast:.2f} s; identical tokens: {same}"
                + (" (target: >= 5x at 512)" if count == 512 else ""),
            )
        )
    return rows


def _variants(n: int, d: int = 64, window: int = 256):
    """The attention variants of Unit 09 on one (1, 1, n, d) input: name (saying causal
    or not), function, kind. The first three are the non-causal exact ones."""
    from attention_kit.efficient import (
        linear_attention,
        sliding_window_attention,
        tiled_attention,
    )
    from attention_kit.masks import causal_mask

    g = torch.Generator().manual_seed(n)
    # (batch, heads, n, d): PyTorch's fused CPU kernel needs the 4-D layout; a 3-D input
    # took its unfused path (measured with torch 2.13)
    q, k, v = (torch.randn(1, 1, n, d, generator=g) for _ in range(3))
    sdpa = torch.nn.functional.scaled_dot_product_attention
    return [
        (
            "plain (kit), not causal",
            lambda: scaled_dot_product_attention(q, k, v),
            "exact",
        ),
        ("tiled, blocks of 128, not causal", lambda: tiled_attention(q, k, v), "exact"),
        ("F.scaled_dot_product_attention, not causal", lambda: sdpa(q, k, v), "exact"),
        (
            "linear (elu + 1), not causal",
            lambda: linear_attention(q, k, v),
            "another similarity",
        ),
        (
            "plain (kit), causal",
            lambda: scaled_dot_product_attention(q, k, v, causal_mask(n)),
            "exact",
        ),
        (
            "F.scaled_dot_product_attention, causal",
            lambda: sdpa(q, k, v, is_causal=True),
            "exact",
        ),
        (
            f"sliding window {window}, causal",
            lambda: sliding_window_attention(q, k, v, window),
            "exact for its band",
        ),
        (
            "linear (elu + 1), causal",
            lambda: linear_attention(q, k, v, causal=True),
            "another similarity; a running (n, d, d) sum",
        ),
    ]


def tiled_memory(n: int = 8192) -> list[Row]:
    """Unit 09: peak memory and time of plain, tiled and PyTorch's attention at one
    large n (batch 1, one head, d 64, no gradients), measured in the same run."""
    rows, plain_memory, plain_time = [], None, None
    with torch.no_grad():
        for name, fn, _ in _variants(n)[:3]:
            memory = peak_memory(fn)
            seconds = time_call(fn, repeats=2, warmup=0)
            if plain_memory is None:
                plain_memory, plain_time = memory, seconds
            rows.append(
                (
                    f"{name}, n = {n}",
                    f"peak memory {memory / 1e6:.1f} MB"
                    f" ({memory / plain_memory:.3f} of plain)",
                    f"{seconds:.2f} s ({seconds / plain_time:.2f}x plain's time)"
                    + (" (target: tiled <= 1/10 of plain)" if "tiled" in name else ""),
                )
            )
    return rows


def attention_variants(lengths: tuple[int, ...] = (512, 2048, 4096)) -> list[Row]:
    """Unit 09's closing table: time and peak memory of every attention variant, causal
    and not, at several n (batch 1, one head, d 64, window 256, no gradients), one
    run."""
    rows = []
    with torch.no_grad():
        for n in lengths:
            for name, fn, kind in _variants(n):
                seconds = time_call(fn, repeats=2, warmup=1)
                memory = peak_memory(fn)
                rows.append(
                    (
                        f"{name}, n = {n}",
                        f"{1e3 * seconds:.1f} ms",
                        f"peak memory {memory / 1e6:.1f} MB; {kind}",
                    )
                )
    return rows


def kit_mha_vs_torch(batch: int = 8, n: int = 256, d: int = 256, heads: int = 8):
    """Unit 09: the kit's MultiHeadAttention against nn.MultiheadAttention with the same
    weights on the same input (self-attention, no mask, no gradients)."""
    from attention_kit.attention import MultiHeadAttention

    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(d, heads, batch_first=True).eval()
    ours = MultiHeadAttention(d, heads).load_from_torch(theirs).eval()
    x = torch.randn(batch, n, d)
    with torch.no_grad():
        same = torch.allclose(ours(x, x, x)[0], theirs(x, x, x)[0], atol=1e-5)
        mine = time_call(lambda: ours(x, x, x), repeats=5)
        with_weights = time_call(
            lambda: theirs(x, x, x, average_attn_weights=False), repeats=5
        )
        fast = time_call(lambda: theirs(x, x, x, need_weights=False), repeats=5)
    return [
        (
            f"kit MultiHeadAttention, ({batch}, {n}, {d}), {heads} heads",
            f"{1e3 * mine:.1f} ms",
            f"{mine / with_weights:.2f}x nn.MultiheadAttention returning per-head "
            f"weights ({1e3 * with_weights:.1f} ms), {mine / fast:.2f}x without weights "
            f"({1e3 * fast:.1f} ms); same output: {same} (target: within 1.5x)",
        )
    ]


def _phase_change_step(losses: list[float], window: int = 20) -> int:
    """The first step at which the mean loss of ``window`` steps falls below the middle
    of its first and last values: where the sudden drop happens."""
    means = torch.tensor(losses).unfold(0, window, 1).mean(dim=1)
    middle = (means[0] + means[-1]) / 2
    return int((means < middle).nonzero()[0]) + window - 1


def reading_attention() -> list[Row]:
    """Unit 10: the induction model (periods 8-16) and the fixed-period shortcut, trained
    as in the lab; their scores, mean ablations and the faithfulness table."""
    from attention_kit.reading import (
        FIXED_PERIOD,
        INDUCTION_LENGTH,
        INDUCTION_STEPS,
        INDUCTION_VOCAB,
        VARYING_PERIODS,
        ablate,
        faithfulness,
        induction_score,
        next_token_accuracy,
        one_query_per_sequence,
        previous_token_score,
        repeated_segments,
        train_induction_model,
    )

    def test_set(low: int, high: int):
        return repeated_segments(
            500, INDUCTION_LENGTH, INDUCTION_VOCAB, low, high, seed=1
        )

    tokens, periods = test_set(*VARYING_PERIODS)
    model, history = train_induction_model(*VARYING_PERIODS)
    with torch.no_grad():
        logits, weights = model(tokens)
    accuracy = next_token_accuracy(logits, tokens, periods)
    previous = previous_token_score(weights[0])
    induction = induction_score(weights[1], periods)
    low, high = VARYING_PERIODS
    rows = [
        (
            f"induction, periods {low}-{high}, {INDUCTION_STEPS} steps of 32",
            f"{accuracy['repeated']:.1%} on the repeated part",
            f"{history.seconds:.1f} s training on 1 thread (load average "
            f"{_load_average()}), phase change at step "
            f"{_phase_change_step(history.losses)}; first occurrence "
            f"{accuracy['first']:.1%} (target: >= 90% within 60 s)",
        ),
        (
            "induction, best previous-token score (layer 0)",
            f"{previous.max():.2f}",
            f"head {int(previous.argmax())}; heads 0-3: "
            + ", ".join(f"{v:.2f}" for v in previous.tolist())
            + " (target: >= 0.4)",
        ),
        (
            "induction, best induction score (layer 1)",
            f"{induction.max():.2f}",
            "heads 0-3: "
            + ", ".join(f"{v:.2f}" for v in induction.tolist())
            + " (target: >= 0.6)",
        ),
    ]
    losses = {}
    with torch.no_grad():
        for layer in range(len(model.layers)):
            for head in range(model.config.num_heads):
                edited, _ = model(tokens, edit=ablate(layer, head, "mean"))
                losses[layer, head] = (
                    lm_loss_of(edited, tokens),
                    next_token_accuracy(edited, tokens, periods)["repeated"],
                )
    prev_head = (0, int(previous.argmax()))
    weakest = min(losses, key=lambda k: losses[k][0])
    for name, (layer, head), target in (
        ("the previous-token head", prev_head, " (target: <= 30%)"),
        ("the weakest head", weakest, " (weakest: the smallest loss increase)"),
    ):
        loss, repeated = losses[layer, head]
        rows.append(
            (
                f"induction, mean-ablating {name} (layer {layer} head {head})",
                f"{repeated:.1%} on the repeated part",
                f"loss {loss:.3f} nats, {lm_loss_of(logits, tokens):.3f} with every "
                f"head{target}",
            )
        )
    queries, sources = one_query_per_sequence(periods)
    for method, hit_rate in faithfulness(model, tokens, queries, sources).items():
        rows.append(
            (
                f"faithfulness, {method}",
                f"{hit_rate:.1%} top position = source",
                "500 test sequences, one query each in the second copy",
            )
        )
    shortcut, shortcut_history = train_induction_model(FIXED_PERIOD, FIXED_PERIOD)
    for low, high in ((FIXED_PERIOD, FIXED_PERIOD), VARYING_PERIODS):
        tokens, periods = test_set(low, high)
        with torch.no_grad():
            logits, weights = shortcut(tokens)
        rows.append(
            (
                f"shortcut (trained on period {FIXED_PERIOD}), tested on periods "
                + (f"{low}-{high}" if low != high else f"{low}"),
                f"{next_token_accuracy(logits, tokens, periods)['repeated']:.1%} on the "
                "repeated part",
                f"best induction score {induction_score(weights[1], periods).max():.2f}, "
                f"best previous-token score {previous_token_score(weights[0]).max():.2f}"
                f"; {shortcut_history.seconds:.1f} s training",
            )
        )
    return rows


def _load_average() -> str:
    """The 1-minute load average, for notes on times (not available on Windows)."""
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "unknown"


def lm_loss_of(logits: torch.Tensor, tokens: torch.Tensor) -> float:
    """The language-model loss as a number."""
    from attention_kit.transformer import lm_loss

    return lm_loss(logits, tokens).item()


MEASUREMENTS: dict[str, Callable[[], list[Row]]] = {
    "dates": date_task,
    "attention-cost": attention_cost,
    "positions": position_length_generalisation,
    "position-biases": position_score_biases,
    "recall": recall_task,
    "char-lm": char_language_model,
    "kv-cache": kv_cache_speedup,
    "tiled-memory": tiled_memory,
    "variants": attention_variants,
    "kit-mha": kit_mha_vs_torch,
    "induction": reading_attention,
    "autograde": measure_autograde,
}


def print_table(rows: list[Row]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # No argparse `choices`: with nargs="*", Python 3.11 checks the empty default
    # against them and refuses to run with no arguments. The names are checked here.
    parser.add_argument(
        "only",
        nargs="*",
        metavar="measurement",
        help=f"which to run (default: all): {', '.join(MEASUREMENTS)}",
    )
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(MEASUREMENTS)
    if unknown:
        parser.error(
            f"unknown measurement(s) {sorted(unknown)}; choose from {list(MEASUREMENTS)}"
        )
    set_threads()  # the labs' setting: one thread unless ATTENTION_KIT_THREADS says
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads "
        "(time_call pins 1 thread for the timings), "
        f"torch {torch.__version__}, python {platform.python_version()}"
    )
    rows: list[Row] = [("measurement", "value", "note")]
    for name in args.only or MEASUREMENTS:
        start = time.perf_counter()
        rows += MEASUREMENTS[name]()
        print(f"[{name} measured in {time.perf_counter() - start:.0f} s]")
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
