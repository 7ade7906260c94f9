"""fuse(): z-sum and RRF with exact expected orders and the edge cases (empty, single, ties, all equal)."""

from __future__ import annotations

import math

import pytest

from core.rag import fusion
from core.rag.fusion import fuse


def order(results: list[tuple[int, float]]) -> list[int]:
    return [i for i, _ in results]


def test_defaults_are_the_shipped_weights() -> None:
    assert (fusion.W_DENSE, fusion.W_LEXICAL) == (0.6, 0.4)
    assert fuse([(1, 0.9), (2, 0.1)], [(2, 5.0)]) == fuse([(1, 0.9), (2, 0.1)], [(2, 5.0)], w_dense=0.6,
                                                          w_lexical=0.4, method="zsum")


def test_empty_lists() -> None:
    assert fuse([], []) == []
    assert order(fuse([(3, 0.9), (1, 0.2)], [])) == [3, 1]  # one side alone keeps its order
    assert order(fuse([], [(4, 7.0), (2, 2.0)])) == [4, 2]


def test_exact_zsum_scores_and_order() -> None:
    dense = [(10, 3.0), (20, 2.0), (30, 1.0)]  # z: +1.2247, 0, -1.2247
    lexical = [(30, 9.0), (40, 1.0)]  # z: +1, -1; 40 is only lexical, 10 and 20 only dense
    fused = fuse(dense, lexical, w_dense=0.6, w_lexical=0.4)
    z = math.sqrt(1.5)
    expected = [(10, 0.6 * z - 0.4), (30, -0.6 * z + 0.4), (20, -0.4), (40, -0.6 * z - 0.4)]
    assert order(fused) == [10, 30, 20, 40]
    assert [s for _, s in fused] == pytest.approx([s for _, s in expected])


def test_dense_weight_one_keeps_dense_order_and_only_lexical_results_follow() -> None:
    fused = fuse([(10, 3.0), (20, 2.0), (30, 1.0)], [(30, 9.0), (40, 1.0)], w_dense=1.0, w_lexical=0.0)
    assert order(fused) == [10, 20, 30, 40]  # 30 and 40 tie; 30 has a dense rank


def test_single_result_each_side_has_no_spread() -> None:
    fused = fuse([(1, 0.9)], [(2, 5.0)])
    assert fused == [(1, 0.0), (2, 0.0)]  # z of a lone score is 0, not a division by zero


def test_all_equal_scores() -> None:
    fused = fuse([(1, 0.5), (2, 0.5), (3, 0.5)], [(3, 2.0), (4, 1.0)], w_dense=0.6, w_lexical=0.4)
    assert order(fused) == [3, 1, 2, 4]  # 1, 2 and 4 tie at -0.4: dense rank, then no dense rank
    assert [s for _, s in fused] == pytest.approx([0.4, -0.4, -0.4, -0.4])


def test_ties_order_by_dense_then_lexical_rank() -> None:
    assert order(fuse([], [(9, 1.0), (5, 1.0)])) == [9, 5]  # lexical rank decides before the id
    assert order(fuse([(9, 1.0)], [(5, 1.0)], w_dense=0.5, w_lexical=0.5)) == [9, 5]


def test_repeated_id_in_a_list_counts_once() -> None:
    fused = fuse([(1, 2.0), (1, 0.0), (2, 1.0)], [])
    assert order(fused) == [1, 2]
    assert [s for _, s in fused] == pytest.approx([0.6, -0.6])


def test_rrf() -> None:
    fused = fuse([(1, 0.9), (2, 0.8)], [(2, 3.0), (3, 1.0)], w_dense=0.5, w_lexical=0.5, method="rrf")
    assert order(fused) == [2, 1, 3]
    assert [s for _, s in fused] == pytest.approx([0.5 / 62 + 0.5 / 61, 0.5 / 61, 0.5 / 62])


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown method 'max'"):
        fuse([(1, 1.0)], [], method="max")  # type: ignore[arg-type]


def test_weights_for_a_query_lean_on_bm25_as_its_cjk_share_grows() -> None:
    from core.rag.fusion import W_DENSE, W_LEXICAL, cjk_share, weights_for

    assert weights_for("parse the config file") == (W_DENSE, W_LEXICAL)  # English: the measured weights exactly
    assert weights_for("") == (W_DENSE, W_LEXICAL)
    assert cjk_share("うるう年かどうかを判定する") == 1.0 and weights_for("うるう年かどうかを判定する") == (0.0, 1.0)
    assert cjk_share("설정 파일") == 1.0 and cjk_share("配置文件") == 1.0  # Korean, Chinese
    assert cjk_share("ﾃｽﾄ") == 1.0  # half-width katakana
    mixed = "JSON文字列を読む"  # 4 ASCII letters, 6 CJK characters; punctuation and spaces do not count
    assert cjk_share(mixed) == 0.6 and cjk_share(mixed + " !? _") == 0.6
    w_dense, w_lexical = weights_for(mixed)
    assert w_dense == pytest.approx(W_DENSE * 0.4) and w_dense + w_lexical == pytest.approx(1.0)
