"""Boolean attention masks. True means "may attend".

That is the convention of ``F.scaled_dot_product_attention``'s boolean ``attn_mask``.
``nn.MultiheadAttention`` and ``nn.Transformer*`` read a boolean mask the other way round
(True = NOT allowed): convert with :func:`to_torch_mha_mask`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn


def padding_mask(lengths: Tensor, max_len: int) -> Tensor:
    """True at the real positions of each sequence, False at its padding.

    lengths ``(batch,)`` -> mask ``(batch, max_len)``; add a query axis with
    ``mask[:, None, :]`` to use it on scores ``(batch, n, max_len)``.
    """
    return torch.arange(max_len, device=lengths.device) < lengths[:, None]


def causal_mask(n: int, device: torch.device | str | None = None) -> Tensor:
    """``(n, n)``, True on and below the diagonal: query i may attend to keys 0..i."""
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


def causal_band(
    query_positions: Tensor, key_positions: Tensor, window: int | None = None
) -> Tensor:
    """``(len(query_positions), len(key_positions))``, True = may attend: the query at
    position i may see the key at position j when ``j <= i`` and, with a ``window`` w,
    ``i - j < w`` (itself and the w - 1 tokens before it). The positions are 1-D, so
    that a block of queries, or new tokens after a key-value cache, get their rows of
    the full ``(n, n)`` mask without building it: ``causal_band(arange(n), arange(n))``
    is ``causal_mask(n)``."""
    i, j = query_positions[:, None], key_positions[None, :]
    allowed = j <= i
    if window is not None:
        allowed = allowed & (i - j < window)
    return allowed


def padded_causal_mask(lengths: Tensor, n: int) -> Tensor:
    """Causal mask AND key padding mask for a right-padded batch.

    lengths ``(batch,)`` -> mask ``(batch, n, n)``: query i of sequence b may attend to
    key j when ``j <= i`` (causal) and ``j < lengths[b]`` (a real token, not padding).
    Padding is masked on the keys only; the rows of padded queries keep the real keys
    before them and their outputs are simply ignored. A sequence of length 0 gives
    all-False rows, which ``masked_softmax`` turns into all-zero weights. Add a head axis
    with ``mask[:, None]`` for scores ``(batch, heads, n, n)``.
    """
    keys = padding_mask(lengths, n)  # (batch, n): which keys are real
    return causal_mask(n, device=lengths.device) & keys[:, None, :]


def to_torch_mha_mask(mask: Tensor, num_heads: int | None = None) -> Tensor:
    """The course's mask (True = may attend) as ``nn.MultiheadAttention``'s ``attn_mask``.

    ``nn.MultiheadAttention`` and ``nn.Transformer*`` read a boolean mask the other way
    round: True = NOT allowed. So the conversion is ``~mask``. Their ``attn_mask`` must be
    ``(n, m)`` or ``(batch * num_heads, n, m)``; a per-sequence mask ``(batch, n, m)`` is
    repeated for each head (batch-major: row ``b * num_heads + h``) when ``num_heads`` is
    given.
    """
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be boolean (True = may attend), got {mask.dtype}")
    flipped = ~mask
    if num_heads is not None and flipped.dim() == 3:
        flipped = flipped.repeat_interleave(num_heads, dim=0)
    return flipped


def to_additive_mask(mask: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """The course's mask as a float mask that is ADDED to the scores: 0 where allowed,
    -inf where not. Both ``F.scaled_dot_product_attention`` and ``nn.MultiheadAttention``
    add a float ``attn_mask`` to the scores."""
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be boolean (True = may attend), got {mask.dtype}")
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
        ~mask, float("-inf")
    )


def _first_output(result: object) -> Tensor:
    # Modules of the kit return (output, weights); the test looks at the output.
    if isinstance(result, tuple | list):
        result = result[0]
    if not isinstance(result, Tensor):
        raise TypeError(f"model must return a tensor, got {type(result).__name__}")
    return result


def _same(a: Tensor, b: Tensor, atol: float) -> Tensor:
    """Per element: equal within atol, or NaN in both."""
    both_nan = torch.isnan(a) & torch.isnan(b)
    return ((a - b).abs() <= atol) | both_nan | (a == b)


def leaks_future(
    model: Callable[[Tensor], object],
    inputs: Tensor,
    *,
    vocab_size: int | None = None,
    trials: int = 2,
    atol: float = 0.0,
    use_gradients: bool = True,
    modes: Sequence[str] = ("eval", "train"),
    seed: int = 0,
) -> list[str]:
    """Find every position whose output depends on inputs after it. Empty list = no leak.

    Two tests:

    1. **Change the future.** For every position t, every input after t is replaced (token
       ids by other ids, float vectors by fresh random values; ``trials`` different
       replacements) and the output at each position ``s <= t`` must be unchanged.
    2. **Gradients** (float inputs only, ``use_gradients``): the gradient of output t (in
       a random direction, so that no sum can cancel) with respect to the inputs after t
       must be exactly zero.

    "Unchanged" means bit for bit (``atol=0``) by default. A correct causal model gives
    the forbidden keys weight exactly 0 (``exp(-inf) = 0``), so their values add exact
    zeros and the same kernels on the same shapes repeat the same arithmetic: any
    difference at all is a leak, however small. Raise ``atol`` only for a model whose
    kernels change their order of summation with the data.

    What it shows, and what it does not: the test runs ``model`` on these inputs, at
    this length, in the modes it is given. A mask built for a fixed size, or a code path
    taken only for long inputs, can be causal at this n and leak at another: run it at
    several lengths. A module is tested in each of ``modes`` ("eval", "train"); in train
    mode every forward pass starts from the same random seed, so that dropout drops the
    same entries each time and only the future differs. Each module of ``model`` is put
    back in the mode it was found in. A plain function is run as it is.

    Args:
        model: maps ``inputs`` to outputs ``(batch, n, ...)``; a tuple result is read as
            ``(output, ...)``.
        inputs: token ids ``(batch, n)`` (integer) or vectors ``(batch, n, ...)`` (float).
        vocab_size: the number of token ids the model accepts; defaults to
            ``inputs.max() + 1``. Replacement ids stay in ``[0, vocab_size)``.
        trials: how many different replacements of the future to try per position.
        atol: tolerance for "unchanged" (see above).
        use_gradients: also run the gradient test on float inputs.
        modes: the modes a module is tested in, any of "eval" and "train".
        seed: seeds the replacements (and, in train mode, every forward pass).

    Returns:
        human-readable findings, e.g. "output at position 2 changed when the inputs after
        position 2 changed (max |difference| 0.31)", with " (train mode)" added to those
        found only in train mode; ``[]`` when no position sees the future.
    """
    if inputs.dim() < 2:
        raise ValueError(
            f"inputs must be (batch, n) or (batch, n, ...), got {tuple(inputs.shape)}"
        )
    if not isinstance(model, nn.Module):
        return [
            text
            for _, text in _leak_findings(
                model, inputs, vocab_size, trials, atol, use_gradients, seed, None
            )
        ]
    unknown = set(modes) - {"eval", "train"}
    if unknown or not modes:
        raise ValueError(f"modes must be some of 'eval', 'train'; got {tuple(modes)}")
    found_in = {module: module.training for module in model.modules()}
    findings: list[str] = []
    seen: set[tuple] = set()
    try:
        for mode in modes:
            model.train(mode == "train")
            forward_seed = seed if mode == "train" else None
            for key, text in _leak_findings(
                model,
                inputs,
                vocab_size,
                trials,
                atol,
                use_gradients,
                seed,
                forward_seed,
            ):
                if key not in seen:
                    seen.add(key)
                    first = mode == modes[0]
                    findings.append(text if first else f"{text} ({mode} mode)")
    finally:
        for module, training in found_in.items():
            module.training = training
    return findings


def _call(
    model: Callable[[Tensor], object], x: Tensor, forward_seed: int | None
) -> Tensor:
    """The model's output; with ``forward_seed``, every call draws the same random
    numbers (dropout masks), and the caller's random state is left alone."""
    if forward_seed is None:
        return _first_output(model(x))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(forward_seed)
        return _first_output(model(x))


def _leak_findings(
    model: Callable[[Tensor], object],
    inputs: Tensor,
    vocab_size: int | None,
    trials: int,
    atol: float,
    use_gradients: bool,
    seed: int,
    forward_seed: int | None,
) -> list[tuple[tuple, str]]:
    """``(key, finding)`` pairs; the key names the finding without its numbers."""
    is_tokens = not inputs.is_floating_point()
    if is_tokens and inputs.dim() != 2:
        raise ValueError(f"token ids must be (batch, n), got {tuple(inputs.shape)}")
    if is_tokens:
        vocab_size = int(inputs.max()) + 1 if vocab_size is None else vocab_size
        if vocab_size < 2:
            raise ValueError(
                "need at least two token ids to change the future; pass vocab_size"
            )
    batch, n = inputs.shape[:2]
    with torch.no_grad():
        reference = _call(model, inputs.clone(), forward_seed)
        again = _call(model, inputs.clone(), forward_seed)
    if reference.dim() < 2 or tuple(reference.shape[:2]) != (batch, n):
        raise ValueError(
            f"model output must be (batch, n, ...) = ({batch}, {n}, ...), "
            f"got {tuple(reference.shape)}"
        )
    if not bool(_same(reference, again, atol).all()):
        raise ValueError(
            "the model gives different outputs on the same inputs: dropout in a plain "
            "function (pass the module itself, whose modes the test sets), or "
            "randomness that torch.manual_seed does not control?"
        )

    generator = torch.Generator().manual_seed(seed)
    findings: list[tuple[tuple, str]] = []
    for t in range(n - 1):
        worst: dict[int, float] = {}
        for _ in range(trials):
            changed = inputs.clone()
            if is_tokens:
                # A shift by 1..vocab_size-1 (mod vocab_size) changes every id.
                shift = torch.randint(
                    1, vocab_size, changed[:, t + 1 :].shape, generator=generator
                ).to(changed.device)
                changed[:, t + 1 :] = (changed[:, t + 1 :] + shift) % vocab_size
            else:
                noise = torch.randn(
                    changed[:, t + 1 :].shape,
                    generator=generator,
                    dtype=changed.dtype,
                ).to(changed.device)
                changed[:, t + 1 :] = noise * (1 + changed.abs().max())
            with torch.no_grad():
                output = _call(model, changed, forward_seed)
            same = _same(output[:, : t + 1], reference[:, : t + 1], atol)
            same = same.reshape(batch, t + 1, -1).all(dim=-1).all(dim=0)  # (t + 1,)
            for s in torch.nonzero(~same).flatten().tolist():
                diff = (output[:, s] - reference[:, s]).abs().nan_to_num(float("inf"))
                worst[s] = max(worst.get(s, 0.0), float(diff.max()))
        for s, diff in sorted(worst.items()):
            findings.append(
                (
                    ("output", s, t),
                    f"output at position {s} changed when the inputs after position {t} "
                    f"changed (max |difference| {diff:.3g})",
                )
            )
    if use_gradients and not is_tokens and n > 1:
        findings += _gradient_findings(model, inputs, generator, atol, forward_seed)
    return findings


def _gradient_findings(
    model: Callable[[Tensor], object],
    inputs: Tensor,
    generator: torch.Generator,
    atol: float,
    forward_seed: int | None,
) -> list[tuple[tuple, str]]:
    x = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        output = _call(model, x, forward_seed)
        if not output.requires_grad:
            return []  # the output does not depend on x through autograd at all
        findings = []
        n = x.shape[1]
        for t in range(n - 1):
            direction = torch.randn(
                output[:, t].shape, generator=generator, dtype=output.dtype
            ).to(output.device)
            (grad,) = torch.autograd.grad(
                (output[:, t] * direction).sum(),
                x,
                retain_graph=True,
                allow_unused=True,
            )
            if grad is None:
                continue
            future = grad[:, t + 1 :].abs().nan_to_num(float("inf"))
            future = future.reshape(future.shape[0], n - 1 - t, -1).amax(dim=(0, 2))
            bad = torch.nonzero(future > atol).flatten() + t + 1
            if len(bad):
                findings.append(
                    (
                        ("gradient", t, tuple(bad.tolist())),
                        f"gradient of the output at position {t} is not zero with "
                        f"respect to the inputs at positions {bad.tolist()} (max "
                        f"|gradient| {float(future.max()):.3g})",
                    )
                )
    return findings
