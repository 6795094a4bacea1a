"""Unit 09's make bench rows run, at tiny sizes (the real sizes run in make bench)."""

from course_tools import bench


def test_unit09_measurements_are_registered():
    for name in ("kv-cache", "tiled-memory", "variants", "kit-mha"):
        assert name in bench.MEASUREMENTS


def test_kv_cache_row_checks_identical_tokens():
    rows = bench.kv_cache_speedup(lengths=(3,))
    assert len(rows) == 1 and "identical tokens: True" in rows[0][2]


def test_tiled_memory_rows():
    rows = bench.tiled_memory(n=64)
    assert [r[0].split(",")[0] for r in rows] == [
        "plain (kit)",
        "tiled",
        "F.scaled_dot_product_attention",
    ]
    assert "(1.000 of plain)" in rows[0][1]


def test_variants_table_rows():
    rows = bench.attention_variants(lengths=(32,))
    assert len(rows) == 8
    assert all("peak memory" in r[2] for r in rows)
    # every row says whether it is causal: a decoder needs the causal rows
    assert all(", causal" in r[0] or ", not causal" in r[0] for r in rows)
    causal = [r[0].split(",")[0] for r in rows if ", causal" in r[0]]
    assert {"plain (kit)", "linear (elu + 1)"} <= set(causal)


def test_kit_mha_row_checks_the_same_output():
    rows = bench.kit_mha_vs_torch(batch=1, n=4, d=8, heads=2)
    assert "same output: True" in rows[0][2]
