"""attention_kit: the reference code of the course *Attention, Step by Step*.

Each lab builds a piece from scratch; this package keeps the reference version so
that later labs can import it.

- ``attention``: nadaraya_watson (and, unit by unit, the attention functions and modules)
- ``checks``: one ``check_<name>`` per exercise, and ``ExerciseFailed``
- ``data``: generated data sets (no downloads)
- ``plots``: ``show_heatmap`` for every attention-weight picture
- ``train``: ``set_seed``, ``get_device``
- ``release``: writes the student labs from the solutions
"""

__version__ = "0.1.0"
