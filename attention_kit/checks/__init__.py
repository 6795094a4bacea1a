"""Exercise checkers, one ``check_<name>`` per exercise, and :class:`ExerciseFailed`.

Usage in a lab: write the function, then run ``check_softmax(softmax)``.
"""

from .core import ExerciseFailed
from .unit01 import check_attention_pool, check_nadaraya_watson, check_softmax
from .unit02 import (
    check_additive_attention,
    check_masked_softmax,
    check_scaled_dot_product_attention,
)
from .unit03 import check_decoder_step

__all__ = [
    "ExerciseFailed",
    "check_additive_attention",
    "check_attention_pool",
    "check_decoder_step",
    "check_masked_softmax",
    "check_nadaraya_watson",
    "check_scaled_dot_product_attention",
    "check_softmax",
]
