"""Writes Unit 10's checkpoint: ``python -m course_tools.checkpoints``.

Lecture 10 reads two trained models (the induction model, periods 8 to 16, and the
fixed-period shortcut model) from ``attention_kit/trained/induction.pt`` instead of
training them within its 20 s budget. This trains both with
:func:`attention_kit.reading.train_induction_model`, seeded and on one thread, and saves
their weights and loss histories; ``tests/test_reading.py`` trains them again and checks
that the result is the saved one.
"""

from __future__ import annotations

import torch

from attention_kit.reading import (
    CHECKPOINT,
    FIXED_PERIOD,
    VARYING_PERIODS,
    train_induction_model,
)


def induction_checkpoint() -> dict[str, torch.Tensor | dict]:
    """Both models' state dicts and loss histories, as saved."""
    saved = {}
    for name, periods in (
        ("varying", VARYING_PERIODS),
        ("fixed", (FIXED_PERIOD, FIXED_PERIOD)),
    ):
        model, history = train_induction_model(*periods)
        saved[name] = model.state_dict()
        saved[f"{name} losses"] = torch.tensor(history.losses)
    return saved


def main() -> int:
    CHECKPOINT.parent.mkdir(exist_ok=True)
    torch.save(induction_checkpoint(), CHECKPOINT)
    print(f"wrote {CHECKPOINT} ({CHECKPOINT.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
