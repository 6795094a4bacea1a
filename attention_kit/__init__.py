"""attention_kit: the reference code of the course *Attention, Step by Step*.

Each lab builds a piece from scratch; this package keeps the reference version so
that later labs can import it. The machinery that builds, tests and serves the course
(release, book, browser, slides, grading, learner tools, bench) is the separate
package ``course_tools``, which imports this one; this one never imports it.

- ``attention``: softmax-based pooling and scores, masked softmax, scaled dot-product,
  additive, self- and multi-head attention, Nadaraya-Watson regression
- ``masks``: ``padding_mask``, ``causal_mask``, ``padded_causal_mask`` (True = may
  attend); ``to_torch_mha_mask``, ``to_additive_mask``; ``leaks_future``, the leakage test
- ``positional``: ``sinusoidal_encoding``, ``apply_rope`` (interleaved pairs), learned and
  sinusoidal position modules
- ``position_study``: Unit 06's length-generalisation experiment
- ``transformer``: Unit 08's ``MiniTransformer`` (decoder-only, pre- or post-LN), its
  parameter count, ``lm_loss``, ``generate``
- ``efficient``: Unit 09's ``generate_cached`` (key-value cache for ``MiniTransformer``),
  ``kv_cache_bytes``, ``tiled_attention`` (online softmax), ``sliding_window_mask``,
  ``linear_attention``
- ``reading``: Unit 10's attention-only transformer (heads removable one at a time),
  repeated-segment data, head scores, ablation, norm-weighted attention, rollout,
  gradient x input, faithfulness, and the trained models of Lecture 10
- ``models``: the GRU encoder-decoder of Unit 03, with or without attention; re-exports
  ``MiniTransformer``
- ``data``: generated data sets (no downloads)
- ``train``: ``set_seed``, ``set_threads``, ``get_device``, ``random_batches``, ``fit``
- ``plots``: ``show_heatmap`` for every attention-weight picture
- ``measure``: time and peak memory of a call, log-log slopes
- ``checks``: one ``check_<name>`` per exercise, and ``ExerciseFailed``
"""

__version__ = "0.1.0"
