import math

import pytest

from eval.metrics import (
    abstention_precision_recall,
    aggregate,
    canonical,
    chars_before_first_hit,
    first_hit_rank,
    hit_at_k,
    hit_curve,
    is_hit,
    mrr_at_k,
    ndcg_at_k,
    reading_length,
)


@pytest.mark.parametrize("raw, want", [
    ("具 象 的 发 展 实 践", "具象的发展实践"),          # spaced CJK from PDF extraction
    ("提升企\n\n业竞争力的关键。", "提升企业竞争力的关键。"),  # hard-wrapped line joined
    ("ＡＢＣ１２３，", "ABC123,"),                        # full-width folded by NFKC
    ("a\u3000b\tc", "abc"),                              # ideographic space and tab
    ("", ""),
])
def test_canonical(raw, want):
    assert canonical(raw) == want


@pytest.mark.parametrize("text, anchors, want", [
    ("将抽象的政治理论转化为\n\n具 象 的 发 展 实 践", ["具象的发展实践"], True),
    ("党建与经营“两张皮” 的问题", ["“两张皮”的问题"], True),     # space in the text only
    ("党建与经营“两张皮”的问题", ["“两张皮” 的问题"], True),      # space in the anchor only
    ("全员，提升", ["全员,提升"], True),                         # a cleaner folded the comma
    ("党建工作", ["党建与业务"], False),
    ("党建工作", [], False),                                     # unanswerable: never a hit
    ("党建工作", ["", "  "], False),                             # empty anchors are no free hit
    ("甲乙丙", ["丁", "乙丙"], True),                              # any anchor
])
def test_is_hit(text, anchors, want):
    assert is_hit(text, anchors) is want


@pytest.mark.parametrize("texts, anchors, want", [
    (["甲", "乙", "丙"], ["乙"], 2),
    (["甲乙", "乙", "丙"], ["乙"], 1),
    (["甲", "乙", "丙"], ["丁"], None),
    ([], ["丁"], None),
    (["甲", "乙"], [], None),
])
def test_first_hit_rank(texts, anchors, want):
    assert first_hit_rank(texts, anchors) == want


@pytest.mark.parametrize("rank, k, hit, mrr, ndcg", [
    (1, 10, 1.0, 1.0, 1.0),
    (2, 10, 1.0, 0.5, 1 / math.log2(3)),
    (3, 10, 1.0, 1 / 3, 0.5),
    (10, 10, 1.0, 0.1, 1 / math.log2(11)),
    (11, 10, 0.0, 0.0, 0.0),
    (5, 1, 0.0, 0.0, 0.0),
    (5, 5, 1.0, 0.2, 1 / math.log2(6)),
    (None, 10, 0.0, 0.0, 0.0),
])
def test_rank_metrics(rank, k, hit, mrr, ndcg):
    assert hit_at_k(rank, k) == hit
    assert mrr_at_k(rank, k) == pytest.approx(mrr)
    assert ndcg_at_k(rank, k) == pytest.approx(ndcg)


@pytest.mark.parametrize("call, message", [
    (lambda: hit_at_k(1, 0), "k must be a positive integer, got 0"),
    (lambda: mrr_at_k(0, 10), "rank is 1-based"),
    (lambda: ndcg_at_k(-1, 10), "rank is 1-based"),
    (lambda: hit_curve([1], max_k=0), "k must be a positive integer"),
    (lambda: chars_before_first_hit(["a"], ["a"], k=0), "k must be a positive integer"),
])
def test_bad_arguments_name_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("texts, anchors, k, want", [
    (["甲乙", "丙丁戊", "目标"], ["目标"], 10, 5),      # read the two passages above the hit
    (["目标", "丙丁戊"], ["目标"], 10, 0),               # hit first: nothing read before it
    (["甲 乙\n", "丙"], ["丁"], 10, 3),                   # miss: the whole list, whitespace not counted
    (["甲乙", "丙丁", "目标"], ["目标"], 2, 4),          # hit below k counts as a miss of the top k
    (["甲乙", "丙丁", "戊"], ["戊"], 3, 4),
])
def test_chars_before_first_hit(texts, anchors, k, want):
    assert chars_before_first_hit(texts, anchors, k) == want


def test_reading_length_ignores_whitespace():
    assert reading_length("甲 乙\n\n丙\u3000") == 3


@pytest.mark.parametrize("found, answerable, precision, recall", [
    # abstained on q3 (unanswerable) and q2 (answerable); q4 unanswerable but answered
    ([True, False, False, True], [True, True, False, False], 0.5, 0.5),
    ([True, True, False, False], [True, True, False, False], 1.0, 1.0),   # perfect
    ([False, False, False, False], [True, True, False, False], 0.5, 1.0),  # abstain on everything
    ([True, True], [True, False], math.nan, 0.0),                          # never abstained
    ([False, True], [True, True], 0.0, math.nan),                          # nothing unanswerable
])
def test_abstention_precision_recall(found, answerable, precision, recall):
    p, r = abstention_precision_recall(found, answerable)
    assert (math.isnan(p) and math.isnan(precision)) or p == pytest.approx(precision)
    assert (math.isnan(r) and math.isnan(recall)) or r == pytest.approx(recall)


def test_abstention_lengths_must_match():
    with pytest.raises(ValueError, match="same length, got 2 and 1"):
        abstention_precision_recall([True, False], [True])


def test_hit_curve():
    assert hit_curve([1, 3, None, 2], max_k=4) == [0.25, 0.5, 0.75, 0.75]
    assert all(math.isnan(v) for v in hit_curve([], max_k=3))


def test_aggregate_groups_by_kind_in_kinds_order():
    rows = [
        {"kind": "english", "hit@1": 1.0, "mrr": 1.0},
        {"kind": "direct", "hit@1": 0.0, "mrr": 0.5},
        {"kind": "direct", "hit@1": 1.0, "mrr": 1.0},
        {"kind": "unanswerable", "hit@1": None, "mrr": None},
    ]
    got = aggregate(rows, ["hit@1", "mrr"])
    assert list(got) == ["direct", "english", "unanswerable", "all"]
    assert got["direct"] == {"n": 2.0, "hit@1": 0.5, "mrr": 0.75}
    assert got["english"]["hit@1"] == 1.0
    assert got["unanswerable"]["n"] == 1.0 and math.isnan(got["unanswerable"]["hit@1"])
    # None values are left out of the mean, not counted as zeros
    assert got["all"]["n"] == 4.0 and got["all"]["hit@1"] == pytest.approx(2 / 3)


def test_aggregate_other_group_key():
    rows = [{"system": "b", "x": 1}, {"system": "a", "x": 3}, {"system": "a", "x": 5}]
    got = aggregate(rows, ["x"], group_key="system")
    assert list(got) == ["a", "b", "all"] and got["a"]["x"] == 4.0 and got["all"]["x"] == 3.0
