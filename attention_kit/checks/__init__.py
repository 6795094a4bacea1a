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
from .unit03 import (
    check_decoder_step,
    check_greedy_decode,
    check_teacher_forced_loss,
)
from .unit04 import check_self_attention, check_simple_self_attention
from .unit05 import check_merge_heads, check_multi_head_attention, check_split_heads
from .unit06 import (
    check_apply_rope,
    check_offset_rotation,
    check_rope_self_attention,
    check_sinusoidal_encoding,
)
from .unit07 import (
    check_causal_mask,
    check_leaks_future,
    check_padded_causal_mask,
    check_to_mha_mask,
)
from .unit08 import (
    check_feed_forward,
    check_language_model_loss,
    check_sample_next,
    check_sampling_distribution,
    check_transformer_block,
)
from .unit09 import (
    check_attend_with_cache,
    check_linear_attention,
    check_online_softmax_update,
    check_sliding_window_mask,
)
from .unit10 import (
    check_ablated_loss,
    check_induction_score,
    check_norm_weighted_attention,
    check_previous_token_score,
)

__all__ = [
    "ExerciseFailed",
    "check_ablated_loss",
    "check_additive_attention",
    "check_apply_rope",
    "check_attend_with_cache",
    "check_attention_pool",
    "check_causal_mask",
    "check_decoder_step",
    "check_feed_forward",
    "check_greedy_decode",
    "check_induction_score",
    "check_language_model_loss",
    "check_leaks_future",
    "check_linear_attention",
    "check_masked_softmax",
    "check_merge_heads",
    "check_multi_head_attention",
    "check_norm_weighted_attention",
    "check_nadaraya_watson",
    "check_offset_rotation",
    "check_online_softmax_update",
    "check_padded_causal_mask",
    "check_previous_token_score",
    "check_rope_self_attention",
    "check_sample_next",
    "check_sampling_distribution",
    "check_scaled_dot_product_attention",
    "check_self_attention",
    "check_simple_self_attention",
    "check_sinusoidal_encoding",
    "check_sliding_window_mask",
    "check_softmax",
    "check_split_heads",
    "check_teacher_forced_loss",
    "check_to_mha_mask",
    "check_transformer_block",
]
