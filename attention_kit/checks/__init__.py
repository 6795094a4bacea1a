"""Exercise checkers, one ``check_<name>`` per exercise, and :class:`ExerciseFailed`.

Usage in a lab: write the function, then run ``check_softmax(softmax)``.
"""

from .core import ExerciseFailed
from .unit01 import check_attention_pool, check_nadaraya_watson, check_softmax

__all__ = [
    "ExerciseFailed",
    "check_attention_pool",
    "check_nadaraya_watson",
    "check_softmax",
]
